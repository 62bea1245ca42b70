//! The shape of the tree (docs/architecture.md): no module imports a type from a module that
//! imports it back, directly or through others; thread modules reach each other only through
//! `msg`.
//!
//! Reads every `crate::` path in the non-test code of every file under `src/` (not `src/bin`),
//! resolves it to the longest module it names, and looks for cycles between modules. A module
//! and its own submodules (`rib` and `rib::query`) may use each other: that is one module split
//! into files. Everything else counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Module path of a file: `src/rib/mod.rs` -> `rib`, `src/rib/query.rs` -> `rib::query`.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().to_string()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "bin") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its `#[cfg(test)]` module (which is always last here) and
/// without comments.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b::{c, d::e}` path in `code`, expanded to `a::b::c`, `a::b::d::e`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        let base = rest[..end].trim_end_matches(':').to_string();
        if rest[end..].starts_with('{') && rest[..end].ends_with("::") {
            let close = rest[end..].find('}').map(|j| end + j).unwrap_or(rest.len());
            for item in rest[end + 1..close].split(',') {
                let item = item.split_whitespace().next().unwrap_or("");
                let item = item.trim_start_matches('{');
                if !item.is_empty() && item != "self" {
                    out.push(format!("{base}::{item}"));
                }
            }
            out.push(base);
        } else {
            out.push(base);
        }
    }
    out
}

fn related(a: &str, b: &str) -> bool {
    a == b || b.starts_with(&format!("{a}::")) || a.starts_with(&format!("{b}::"))
}

fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let mut graph = BTreeMap::new();
    for f in &files {
        let me = module_of(f);
        let text = std::fs::read_to_string(f).expect("readable source");
        let mut deps = BTreeSet::new();
        for path in crate_paths(&code_of(&text)) {
            // The longest module that the path names.
            let mut parts: Vec<&str> = path.split("::").collect();
            while !parts.is_empty() && !modules.contains(&parts.join("::")) {
                parts.pop();
            }
            let target = parts.join("::");
            if !target.is_empty() && !related(&me, &target) {
                deps.insert(target);
            }
        }
        graph.insert(me, deps);
    }
    graph
}

/// A cycle through `start`, if any (depth-first search over the graph).
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_path_reader_expands_nested_imports() {
    let paths = crate_paths("use crate::msg::{PeerMsg, RibMsg};\nuse crate::control::proto::{self as ctl, Reply};\nlet x = crate::utc::unix_secs(t);");
    assert!(paths.contains(&"msg::PeerMsg".to_string()), "{paths:?}");
    assert!(paths.contains(&"control::proto::Reply".to_string()), "{paths:?}");
    assert!(paths.contains(&"utc::unix_secs".to_string()), "{paths:?}");
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycle_from(&g, "a"), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = dependency_graph();
    assert!(graph.contains_key("msg") && graph.contains_key("session::driver"), "{:?}", graph.keys());
    let cycles: Vec<String> = graph.keys().filter_map(|m| cycle_from(&graph, m)).map(|c| c.join(" -> ")).collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn thread_modules_reach_each_other_only_through_msg() {
    // The threads' own modules; `session::sock` is socket-option code the listener shares.
    let threads = [
        "session",
        "rib",
        "mrt::writer",
        "archive",
        "listener",
        "monitor",
        "rpki",
        "bmp",
        "control::server",
        "control::dispatch",
    ];
    let graph = dependency_graph();
    let mut wrong = Vec::new();
    for (m, deps) in &graph {
        let Some(owner) = threads.iter().find(|t| related(t, m)) else { continue };
        for d in deps {
            if d == "session::sock" {
                continue;
            }
            if let Some(other) = threads.iter().find(|t| related(t, d)) {
                if other != owner {
                    wrong.push(format!("{m} uses {d}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "thread modules that use each other (go through msg instead):\n{}", wrong.join("\n"));
}
