//! The configuration parser on any text: errors, never a panic; and what it accepts prints
//! (`focld -n -v`) as TOML it accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cfg) = focl::config::parse(text, Path::new("fuzz.toml")) {
        let shown = cfg.effective_toml();
        assert!(
            focl::config::parse(&shown, Path::new("shown.toml")).is_ok(),
            "effective config does not parse:\n{shown}"
        );
    }
});
