//! The `regex` test of an `[sets.as_path.NAME]` set: a regular expression over the AS path
//! written out as text, in the convention router operators know from Cisco IOS, Junos and
//! GoBGP: AS numbers of an AS_SEQUENCE separated by spaces, an AS_SET as `{a,b}`, the
//! confederation segments (RFC 5065 §3) as `(a b)` and `[a,b]`, and `_` standing for any
//! delimiter: a space, a brace or bracket, a comma, or the start or end of the path.
//!
//! Only when asked: the structural tests of the set run first, and the expression is compiled
//! once at load by the `regex` crate (already built as a dependency of bgpkit-parser), whose
//! matching time is linear in the path's length whatever the expression (no backtracking: an
//! operator's pattern cannot stall the RIB thread). Compiled programs are bounded in size.

use crate::wire::aspath::{Segment, AS_CONFED_SEQUENCE, AS_CONFED_SET, AS_SEQUENCE, AS_SET};
use std::fmt::Write;

/// The largest compiled program accepted (bytes): a pattern over AS paths needs far less.
const SIZE_LIMIT: usize = 1 << 20;

/// What `_` stands for.
const DELIMITER: &str = r"(?:^|$|[ ,{}()\[\]])";

/// A compiled AS path expression; equal when written the same (a reload compares sets).
#[derive(Clone, Debug)]
pub struct PathRegex {
    source: String,
    re: regex::Regex,
}

impl PartialEq for PathRegex {
    fn eq(&self, other: &PathRegex) -> bool {
        self.source == other.source
    }
}

impl PathRegex {
    /// Compile `source`; the error says what is wrong with it, for the config message.
    pub fn new(source: &str) -> Result<PathRegex, String> {
        if source.is_empty() {
            return Err("an empty regex matches every path; leave the key out instead".into());
        }
        let translated = source.replace('_', DELIMITER);
        let re =
            regex::RegexBuilder::new(&translated).size_limit(SIZE_LIMIT).dfa_size_limit(SIZE_LIMIT).build().map_err(
                |e| match e {
                    regex::Error::CompiledTooBig(_) => format!("the regex \"{source}\" is too large"),
                    other => format!("the regex \"{source}\" does not compile: {}", first_line(&other.to_string())),
                },
            )?;
        Ok(PathRegex { source: source.to_string(), re })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Does the expression match `text` (a path written by `path_text`)?
    pub fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text)
    }
}

/// The last line of the regex crate's message (the earlier ones repeat the pattern).
fn first_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).map_or(s, str::trim)
}

/// The path as the expression sees it: `65001 65002 {65003,65004}`.
pub fn path_text(path: &[Segment]) -> String {
    let mut out = String::new();
    for seg in path {
        if !out.is_empty() {
            out.push(' ');
        }
        let (open, sep, close) = match seg.kind {
            AS_SEQUENCE => ("", ' ', ""),
            AS_SET => ("{", ',', "}"),
            AS_CONFED_SEQUENCE => ("(", ' ', ")"),
            AS_CONFED_SET => ("[", ',', "]"),
            _ => ("", ' ', ""),
        };
        out.push_str(open);
        for (i, asn) in seg.asns.iter().enumerate() {
            if i > 0 {
                out.push(sep);
            }
            let _ = write!(out, "{asn}");
        }
        out.push_str(close);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(asns: &[u32]) -> Segment {
        Segment { kind: AS_SEQUENCE, asns: asns.to_vec() }
    }

    fn matches(re: &str, path: &[Segment]) -> bool {
        PathRegex::new(re).expect("compiles").is_match(&path_text(path))
    }

    #[test]
    fn a_path_is_written_with_spaces_braces_and_brackets_per_segment_type() {
        let path = [
            Segment { kind: AS_CONFED_SEQUENCE, asns: vec![65100, 65101] },
            Segment { kind: AS_CONFED_SET, asns: vec![65102, 65103] },
            seq(&[65001, 65002]),
            Segment { kind: AS_SET, asns: vec![64500, 64501] },
        ];
        assert_eq!(path_text(&path), "(65100 65101) [65102,65103] 65001 65002 {64500,64501}");
        assert_eq!(path_text(&[]), "");
    }

    #[test]
    fn the_underscore_matches_any_delimiter_so_an_as_number_is_never_matched_inside_another() {
        let path = [seq(&[65001, 3356, 64500])];
        assert!(matches("_3356_", &path));
        assert!(matches("^65001_", &path), "the start of the path is a delimiter");
        assert!(matches("_64500$", &path));
        assert!(!matches("_356_", &path), "not inside 3356");
        assert!(!matches("^3356_", &path));
        assert!(matches("^65001_3356_64500$", &path), "a whole path");
        assert!(matches("_64500_", &[seq(&[65001]), Segment { kind: AS_SET, asns: vec![64500, 64501] }]));
        assert!(matches("^$", &[]), "the empty path of an iBGP route of ours");
        assert!(matches("^65001(_[0-9]+)*_64500$", &path));
    }

    #[test]
    fn a_bad_or_empty_expression_is_refused_with_what_is_wrong() {
        let err = PathRegex::new("_(65001_").expect_err("unbalanced");
        assert!(err.starts_with("the regex \"_(65001_\" does not compile:"), "{err}");
        assert!(!err.contains('\n'), "one line for the config message: {err}");
        assert!(PathRegex::new("").is_err());
        // Unicode classes repeated: a program far over the limit.
        match PathRegex::new(r"\w{2000}") {
            Err(e) => assert!(e.contains("too large"), "{e}"),
            Ok(_) => panic!("a program over the size limit compiled"),
        }
    }

    #[test]
    fn expressions_are_equal_when_written_the_same() {
        assert_eq!(PathRegex::new("_3356_").unwrap(), PathRegex::new("_3356_").unwrap());
        assert_ne!(PathRegex::new("_3356_").unwrap(), PathRegex::new("_174_").unwrap());
    }
}
