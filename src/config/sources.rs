//! `[[sources]]`: tables read from files and announced to chosen peers (issue 20). The only
//! type is "mrt": an RFC 6396 TABLE_DUMP_V2 file. The file itself is read by the source
//! thread (`src/source/`), not here: a missing or broken file does not stop focld.

use super::model::{PeerConfig, SourceConfig, DEFAULT_PREFIX_SHIFT};
use super::reader::{Field, Reader, Table};
use std::net::IpAddr;
use toml::de::DeValue;

/// The source types focld knows.
const SOURCE_TYPES: &[&str] = &["mrt"];

pub(super) fn read_sources(cx: &mut Reader, top: &mut Table<'_, '_>, peers: &[PeerConfig]) -> Vec<SourceConfig> {
    let mut sources: Vec<(usize, SourceConfig)> = Vec::new();
    for mut t in top.tables(cx, "sources") {
        let source = read_source(cx, &mut t, peers);
        let (line, path) = (t.line.unwrap_or(0), t.path.clone());
        t.finish(cx);
        let Some(s) = source else { continue };
        if let Some((l, _)) = sources.iter().find(|(_, o)| o.name == s.name) {
            cx.error(
                Some(line),
                &format!("{path}.name"),
                format!("source '{}' is already defined at line {l}", s.name),
            );
            continue;
        }
        sources.push((line, s));
    }
    sources.into_iter().map(|(_, s)| s).collect()
}

fn read_source(cx: &mut Reader, t: &mut Table<'_, '_>, peers: &[PeerConfig]) -> Option<SourceConfig> {
    let name = t.required(cx, "name").and_then(|f| {
        let s = cx.str(&f)?;
        if s.is_empty() || s.parse::<IpAddr>().is_ok() || s.contains(char::is_whitespace) {
            cx.at(&f, format!("'{s}' is not a source name (a word without spaces, not an address)"));
            return None;
        }
        Some(s.to_string())
    });
    let kind = t.required(cx, "type").and_then(|f| {
        let s = cx.str(&f)?;
        if !SOURCE_TYPES.contains(&s) {
            cx.at(&f, format!("unknown source type '{s}'; the only type is \"mrt\" (a TABLE_DUMP_V2 file)"));
            return None;
        }
        Some(s.to_string())
    });
    let file = t.required(cx, "file").and_then(|f| {
        if cx.str(&f).is_some_and(str::is_empty) {
            cx.at(&f, "the file path must not be empty");
            return None;
        }
        cx.path(&f)
    });
    let peer = t.get(cx, "peer").and_then(|f| cx.parsed(&f, |s| format!("'{s}' is not an IP address")));
    let prefix_shift = t
        .get(cx, "prefix_shift")
        .and_then(|f| cx.int_in(&f, -255i16, 255, "prefix_shift", " (added to the first IPv4 octet / IPv6 16 bits)"))
        .unwrap_or(DEFAULT_PREFIX_SHIFT);
    let limit = t.get(cx, "limit").and_then(|f| cx.int_in(&f, 1u32, u32::MAX, "limit", " prefixes"));
    let to = match t.required(cx, "to") {
        Some(f) => read_targets(cx, &f, peers)?,
        None => return None,
    };
    Some(SourceConfig { name: name?, kind: kind?, file: file?, peer, prefix_shift, limit, to })
}

/// `to = ["upstream", "192.0.2.3"]`: every entry a name or address of a `[[peers]]` entry.
fn read_targets(cx: &mut Reader, f: &Field<'_, '_>, peers: &[PeerConfig]) -> Option<Vec<String>> {
    let DeValue::Array(items) = f.value else {
        cx.type_error(f, "an array of peer names or addresses");
        return None;
    };
    if items.is_empty() {
        cx.at(f, "a source needs at least one peer to announce to");
        return None;
    }
    let mut to = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let entry =
            Field { key: format!("{}[{i}]", f.key), line: cx.line_of(item.span().start), value: item.get_ref() };
        let Some(s) = cx.str(&entry) else {
            ok = false;
            continue;
        };
        let known =
            peers.iter().any(|p| p.name.as_deref() == Some(s) || s.parse::<IpAddr>().is_ok_and(|a| a == p.address));
        if !known {
            cx.at(&entry, format!("'{s}' is not the name or address of a [[peers]] entry"));
            ok = false;
        } else if to.iter().any(|t| t == s) {
            cx.at(&entry, format!("'{s}' is listed twice"));
            ok = false;
        } else {
            to.push(s.to_string());
        }
    }
    ok.then_some(to)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn a_source_with_every_key_is_read_and_relative_files_are_taken_from_the_start_directory() {
        let c = ok(&format!(
            "{MINIMAL}name = \"upstream\"\n\n[[sources]]\nname = \"jinx\"\ntype = \"mrt\"\nfile = \"rib.bz2\"\n\
             peer = \"196.223.14.55\"\nprefix_shift = -3\nlimit = 1000\nto = [\"upstream\", \"192.0.2.2\"]\n"
        ));
        let s = &c.sources[0];
        assert_eq!((s.name.as_str(), s.kind.as_str()), ("jinx", "mrt"));
        assert!(s.file.ends_with("rib.bz2"));
        assert_eq!((s.peer, s.prefix_shift, s.limit), (Some("196.223.14.55".parse().unwrap()), -3, Some(1000)));
        assert_eq!(s.to, vec!["upstream".to_string(), "192.0.2.2".to_string()]);
    }

    #[test]
    fn bad_sources_name_their_file_line_and_key() {
        let e = errors(&format!(
            "{MINIMAL}\n[[sources]]\nname = \"a\"\ntype = \"bmp\"\nfile = \"x.mrt\"\nto = [\"nobody\"]\n\n\
             [[sources]]\nname = \"a\"\ntype = \"mrt\"\nfile = \"x.mrt\"\nto = [\"192.0.2.2\"]\nprefix_shift = 300\n\n\
             [[sources]]\ntype = \"mrt\"\nfile = \"\"\npeer = \"nope\"\nlimit = 0\nto = []\n"
        ));
        let want = [
            "focl.toml:11: sources[0].type: unknown source type 'bmp'; the only type is \"mrt\"",
            "focl.toml:13: sources[0].to[0]: 'nobody' is not the name or address of a [[peers]] entry",
            "focl.toml:20: sources[1].prefix_shift: prefix_shift must be from -255 to 255",
            "focl.toml:22: sources[2].name: missing required key",
            "focl.toml:24: sources[2].file: the file path must not be empty",
            "focl.toml:25: sources[2].peer: 'nope' is not an IP address",
            "focl.toml:26: sources[2].limit: limit must be from 1 to 4294967295 prefixes, got 0",
            "focl.toml:27: sources[2].to: a source needs at least one peer to announce to",
        ];
        for w in want {
            assert!(e.iter().any(|e| e.starts_with(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn two_sources_with_one_name_are_an_error() {
        let one = "[[sources]]\nname = \"a\"\ntype = \"mrt\"\nfile = \"x.mrt\"\nto = [\"192.0.2.2\"]\n";
        let e = errors(&format!("{MINIMAL}\n{one}\n{one}"));
        assert_eq!(e, vec!["focl.toml:15: sources[1].name: source 'a' is already defined at line 9"]);
    }
}
