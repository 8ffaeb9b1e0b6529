//! The layout rule that no module imports a module that imports it (directly or around a
//! longer cycle), checked over every crate's sources: each `crate::a::b` path outside test code
//! is an edge from the file's module to the longest module prefix it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 7] = ["shared", "engine", "messenger", "client", "relay", "tests", "load"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` are the crate root.
fn module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

/// The modules a source file names through `crate::` paths (before its tests).
fn imports(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let path: String = code[at + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        let deepest = |parts: &[&str]| {
            (1..=parts.len()).rev().map(|k| parts[..k].join("::")).find(|m| modules.contains(m))
        };
        // `crate::pages::{chat, shell}` imports each module named in the braces.
        let rest = &code[at + 7 + path.len()..];
        if path.ends_with("::") && rest.starts_with('{') {
            let inside = rest[1..].split('}').next().unwrap_or_default();
            for name in inside.split(',').map(|n| n.trim().split("::").next().unwrap_or_default()) {
                let named: Vec<&str> = parts.iter().copied().chain([name]).collect();
                found.extend(deepest(&named));
            }
            continue;
        }
        if let Some(m) = deepest(&parts) {
            found.insert(m);
        }
    }
    found
}

fn cycle_from(start: &str, graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                return Some(path.clone());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cycles = Vec::new();
    for krate in CRATES {
        let src = root.join(krate).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let modules: BTreeSet<String> = files.iter().map(|f| module(&src, f)).collect();
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let me = module(&src, file);
            let mut deps = imports(&std::fs::read_to_string(file).unwrap(), &modules);
            deps.remove(&me);
            graph.entry(me).or_default().extend(deps);
        }
        for m in graph.keys() {
            if let Some(cycle) = cycle_from(m, &graph) {
                cycles.push(format!("{krate}: {}", cycle.join(" → ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_check_finds_a_cycle() {
    let modules: BTreeSet<String> = ["a", "b", "b::c"].map(String::from).into();
    assert_eq!(imports("use crate::b::c::Thing;", &modules), ["b::c".to_string()].into());
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), ["b::c".to_string()].into()),
        ("b::c".to_string(), ["a".to_string()].into()),
        ("b".to_string(), BTreeSet::new()),
    ]
    .into();
    assert_eq!(cycle_from("a", &graph), Some(vec!["a".to_string(), "b::c".to_string()]));
    assert_eq!(cycle_from("b", &graph), None);
}
