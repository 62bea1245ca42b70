//! What ships around the binaries: the man pages name every configuration key and pass
//! `mandoc -Tlint`; every shell script passes shellcheck; the LSB init script really starts,
//! reports, reloads and stops focld; scripts/install.sh installs everything and the systemd
//! unit passes `systemd-analyze verify` against the installed files.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every key the configuration code knows, per table, from its own "known keys" messages.
fn known_keys() -> Vec<(String, Vec<String>)> {
    let text = r#"
zzz_root = 1
[global]
asn = 65001
router_id = "192.0.2.1"
zzz = 1
[[peers]]
address = "192.0.2.2"
remote_as = 65002
zzz = 1
[[prefixes]]
network = "192.0.2.0/24"
zzz = 1
[archive]
zzz = 1
[[archive.destinations]]
type = "local"
path = "/x"
zzz = 1
[rpki]
zzz = 1
[[rpki.caches]]
address = "127.0.0.1"
zzz = 1
[[rpki.files]]
path = "/v.json"
zzz = 1
[bmp]
zzz = 1
[[bmp.stations]]
address = "127.0.0.1"
port = 1790
zzz = 1
"#;
    let errors = focl::config::parse(text, Path::new("k.toml")).expect_err("unknown keys");
    let mut out = Vec::new();
    for e in errors {
        let msg = e.message;
        let Some((_, list)) = msg.split_once("; known keys: ").or_else(|| msg.split_once("; known tables: ")) else {
            continue;
        };
        out.push((e.key, list.split(", ").map(String::from).collect()));
    }
    out
}

#[test]
fn every_config_key_is_in_the_man_page_and_in_every_key_toml() {
    let keys = known_keys();
    assert_eq!(keys.len(), 11, "one list per table: {keys:?}");
    let page = std::fs::read_to_string(repo().join("man/focl.toml.5")).expect("man page");
    let every = std::fs::read_to_string(repo().join("tests/config/every-key.toml")).expect("every-key.toml");
    let mut missing = Vec::new();
    for (table, list) in &keys {
        for key in list {
            if table == "zzz_root" {
                // Top-level tables: the page has a section or an entry for each.
                if !page.contains(&format!("[{key}]")) && !page.contains(&format!("[[{key}]]")) {
                    missing.push(format!("table [{key}] in focl.toml.5"));
                }
                continue;
            }
            // Arrays of tables below a table: `[[archive.destinations]]`, `[[rpki.caches]]`.
            if ["destinations", "caches", "files", "stations"].contains(&key.as_str()) {
                let parent = table.split('.').next().unwrap_or_default();
                let header = format!("[[{parent}.{key}]]");
                if !page.contains(&header) {
                    missing.push(format!("{header} in focl.toml.5"));
                }
                if !every.lines().any(|l| l == header) {
                    missing.push(format!("{header} in tests/config/every-key.toml"));
                }
                continue;
            }
            let documented =
                page.lines().any(|l| l.starts_with(".It Cm ") && l.split([' ', ',']).any(|w| w == key.as_str()));
            if !documented {
                missing.push(format!("{table}: {key} in focl.toml.5"));
            }
            if !every.lines().any(|l| {
                l.starts_with(&format!("{key} =")) || l == format!("[{key}]") || l == format!("[[archive.{key}]]")
            }) {
                missing.push(format!("{table}: {key} in tests/config/every-key.toml"));
            }
        }
    }
    assert!(missing.is_empty(), "keys the code knows but the documentation or test file lacks: {missing:#?}");
}

/// The tables at `path` below `table`; an array of tables gives each of its entries.
fn tables_at<'a>(table: &'a toml::Table, path: &[&str]) -> Vec<&'a toml::Table> {
    let Some((first, rest)) = path.split_first() else {
        return vec![table];
    };
    match table.get(*first) {
        Some(toml::Value::Table(sub)) => tables_at(sub, rest),
        Some(toml::Value::Array(items)) => {
            items.iter().filter_map(toml::Value::as_table).flat_map(|sub| tables_at(sub, rest)).collect()
        }
        _ => Vec::new(),
    }
}

#[test]
fn every_config_key_is_printed_by_the_effective_config_of_every_key_toml() {
    let keys = known_keys();
    assert_eq!(keys.len(), 11, "one list per table: {keys:?}");
    let path = repo().join("tests/config/every-key.toml");
    let text = std::fs::read_to_string(&path).expect("every-key.toml");
    let config = focl::config::parse(&text, &path).expect("every-key.toml is a valid configuration");
    let shown = config.effective_toml();
    let printed: toml::Table = toml::from_str(&shown).expect("focld -n -v prints TOML");
    let mut missing = Vec::new();
    for (unknown, list) in &keys {
        // "archive.destinations[0].zzz": the keys of archive.destinations; "zzz_root": the root.
        let at: Vec<&str> = unknown.split('.').map(|p| p.split('[').next().unwrap_or(p)).collect();
        let tables = tables_at(&printed, &at[..at.len() - 1]);
        for key in list {
            if !tables.iter().any(|t| t.contains_key(key.as_str())) {
                missing.push(format!("{unknown}: {key}"));
            }
        }
    }
    assert!(missing.is_empty(), "keys the reader knows but the printer leaves out: {missing:#?}\n{shown}");
}

#[test]
fn man_pages_pass_mandoc_lint() {
    for page in ["man/focld.8", "man/focl.8", "man/focl.toml.5"] {
        let out = Command::new("mandoc")
            .args(["-Tlint", "-W", "warning"])
            .arg(repo().join(page))
            .output()
            .expect("mandoc (Debian package mandoc) is installed");
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.trim().is_empty(), "{page}:\n{text}");
    }
}

#[test]
fn every_shell_script_passes_shellcheck() {
    let mut scripts: Vec<(PathBuf, Option<&str>)> = Vec::new();
    for dir in ["scripts", "scripts/interop", "scripts/bench"] {
        for e in std::fs::read_dir(repo().join(dir)).expect("dir").flatten() {
            let p = e.path();
            let head = std::fs::read_to_string(&p).unwrap_or_default();
            if p.is_file() && head.starts_with("#!") && (head.contains("sh\n") || head.contains("bash")) {
                scripts.push((p, None));
            }
        }
    }
    scripts.push((repo().join("etc/init.d/focld"), None));
    scripts.push((repo().join("etc/rc.d/focld"), Some("sh")));
    scripts.push((repo().join("etc/rc.d/focld.openbsd"), Some("ksh")));
    assert!(scripts.len() >= 10, "{scripts:?}");
    for (script, shell) in &scripts {
        // From the repository root, as the scripts' `source=` directives are written.
        let relative = script.strip_prefix(repo()).expect("in the repository");
        let mut cmd = Command::new("shellcheck");
        cmd.current_dir(repo()).arg("-x");
        if let Some(s) = shell {
            cmd.args(["-s", s]);
        }
        let out = cmd.arg(relative).output().expect("shellcheck (Debian package shellcheck) is installed");
        assert!(out.status.success(), "{}:\n{}", script.display(), String::from_utf8_lossy(&out.stdout));
    }
}

fn sh(script: &Path, arg: &str, env: &[(&str, String)]) -> (i32, String) {
    let out = Command::new("sh")
        .arg(script)
        .arg(arg)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run the init script");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn init_d_script_starts_reports_reloads_and_stops_focld() {
    let dir = TempDir::new("initd");
    let d = dir.path();
    let port = free_port("127.0.0.1");
    let config = |extra_peer: &str| {
        format!(
            "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port}\"\n\
             control_socket = \"{d}/run/focld.sock\"\nlog_file = \"{d}/focld.log\"\n\n\
             [[peers]]\naddress = \"127.0.0.61\"\nremote_as = 65061\npassive = true\n{extra_peer}",
            d = d.display()
        )
    };
    let cfg = d.join("focl.toml");
    std::fs::write(&cfg, config("")).expect("write");
    let env = [
        ("DAEMON", focld_bin().to_string()),
        ("FOCLD_CONFIG", cfg.display().to_string()),
        ("FOCLD_PIDFILE", d.join("focld.pid").display().to_string()),
        ("FOCLD_RUNDIR", d.join("run").display().to_string()),
    ];
    let script = repo().join("etc/init.d/focld");
    let socket = d.join("run/focld.sock");
    let focl =
        |args: &[&str]| Command::new(focl_bin()).arg("-s").arg(&socket).arg("-j").args(args).output().expect("focl");

    assert_eq!(sh(&script, "status", &env).0, 3, "not running yet");
    let (rc, out) = sh(&script, "start", &env);
    assert_eq!(rc, 0, "{out}");
    let (rc, out) = sh(&script, "status", &env);
    assert_eq!(rc, 0, "{out}");
    let pid: u32 = std::fs::read_to_string(d.join("focld.pid")).expect("pidfile").trim().parse().expect("pid");
    assert!(out.contains(&format!("running (pid {pid})")), "{out}");
    assert!(focl(&["status"]).status.success());

    // reload with a new peer; a broken file is refused before focld sees it.
    std::fs::write(&cfg, config("\n[[peers]]\naddress = \"127.0.0.62\"\nremote_as = 65062\npassive = true\n"))
        .expect("write");
    let (rc, out) = sh(&script, "reload", &env);
    assert_eq!(rc, 0, "{out}");
    let two = wait_for(Duration::from_secs(10), || {
        let out = focl(&["peer", "list"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok().and_then(|v| v.as_array().map(Vec::len))
            == Some(2)
    });
    assert!(two, "the new peer is configured after reload");
    std::fs::write(&cfg, "[global]\nasn = 0\n").expect("write");
    let (rc, out) = sh(&script, "reload", &env);
    assert_eq!(rc, 6, "a broken configuration is not sent to focld: {out}");
    assert!(out.contains("global.asn"), "{out}");
    assert_eq!(sh(&script, "status", &env).0, 0, "still running");

    let (rc, out) = sh(&script, "stop", &env);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(sh(&script, "status", &env).0, 3, "stopped");
    assert!(!alive(pid), "focld {pid} has exited");
    assert!(std::fs::read_to_string(d.join("focld.log")).expect("log").contains("focld stopped"));
}

#[test]
fn install_script_installs_everything_and_the_systemd_unit_verifies() {
    let dir = TempDir::new("install");
    let prefix = dir.path().join("usr");
    let bin_dir = Path::new(focld_bin()).parent().expect("target dir").to_path_buf();
    let out = Command::new(repo().join("scripts/install.sh"))
        .arg(&prefix)
        .env("FOCL_BIN_DIR", &bin_dir)
        .output()
        .expect("install.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [
        "sbin/focld",
        "bin/focl",
        "share/man/man8/focld.8",
        "share/man/man8/focl.8",
        "share/man/man5/focl.toml.5",
        "share/examples/focl/focl.example.toml",
        "share/examples/focl/focld.service",
        "share/examples/focl/focld.init.d",
        "share/examples/focl/focld.rc.freebsd",
        "share/examples/focl/focld.rc.openbsd",
    ] {
        assert!(prefix.join(f).is_file(), "{f} installed");
    }
    let example = prefix.join("share/examples/focl/focl.example.toml");
    let check = Command::new(prefix.join("sbin/focld")).arg("-n").arg("-c").arg(&example).output().expect("focld -n");
    assert!(check.status.success(), "the example configuration is valid: {}", String::from_utf8_lossy(&check.stderr));

    let Ok(which) = Command::new("sh").args(["-c", "command -v systemd-analyze"]).output() else { return };
    if !which.status.success() {
        eprintln!("systemd-analyze is not installed here: the unit was not verified");
        return;
    }
    // The unit as installed under this prefix, with the man pages it names.
    let unit = std::fs::read_to_string(repo().join("etc/systemd/focld.service"))
        .expect("unit")
        .replace("/usr/local", &prefix.display().to_string());
    let unit_path = dir.path().join("focld.service");
    std::fs::write(&unit_path, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .env("MANPATH", prefix.join("share/man"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let about_us: Vec<&str> = text.lines().filter(|l| l.contains("focld.service")).collect();
    assert!(out.status.success() && about_us.is_empty(), "systemd-analyze verify:\n{text}");
}

/// Every field of every reply type in the control protocol (the `focl -j` contract), from the
/// source of `src/control/proto.rs`.
fn reply_fields() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("src/control/proto.rs")).expect("proto.rs");
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    // `#[serde(rename = "as")]` names the field in JSON.
    let mut renamed: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("pub struct ") {
            current = rest.split([' ', '{', '(']).next().map(String::from);
        } else if line.starts_with('}') {
            current = None;
        } else if let Some((_, rest)) = line.split_once("rename = \"") {
            renamed = rest.split('"').next().map(String::from);
        } else if let (Some(s), Some(rest)) = (&current, line.trim().strip_prefix("pub ")) {
            if let Some((field, _)) = rest.split_once(':') {
                out.push((s.clone(), renamed.take().unwrap_or_else(|| field.trim().to_string())));
            }
        }
    }
    // The envelope is documented in focld(8)'s control protocol section, not per command.
    out.retain(|(s, _)| !["Request", "Reply", "CtlError"].contains(&s.as_str()));
    out
}

#[test]
fn every_json_field_focl_prints_is_in_its_man_page() {
    let fields = reply_fields();
    assert!(fields.len() > 80, "the reader found the reply types: {fields:?}");
    let page = std::fs::read_to_string(repo().join("man/focl.8")).expect("man page");
    let words: std::collections::HashSet<&str> =
        page.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
    let missing: Vec<String> =
        fields.iter().filter(|(_, f)| !words.contains(f.as_str())).map(|(s, f)| format!("{s}.{f}")).collect();
    assert!(missing.is_empty(), "JSON fields not in man/focl.8: {missing:?}");
}
