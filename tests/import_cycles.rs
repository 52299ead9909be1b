//! The source files of the runtime's kernel modules, of the GEMM module and of the plan
//! crate depend on each other without cycles: a file that another file uses never uses
//! that file back, directly or through others. (`mod` declarations are not uses; `use`
//! items and `crate::` / `super::` / child-module paths in code are.) A cycle is how a
//! shared helper ends up inside one kernel that every other kernel imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's source files under `dir`, by module path (`exec::conv::geom`).
fn modules(src: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("source dir").flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            modules(src, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            out.insert(parts.join("::"), path);
        }
    }
}

/// Code with comments and string literals blanked out (so paths in docs do not count),
/// up to the file's inline `#[cfg(test)] mod` (whose `super` is the file itself).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lines: Vec<&str> = text.lines().collect();
    let end = (0..lines.len())
        .find(|&i| {
            lines[i].trim() == "#[cfg(test)]" && lines.get(i + 1).is_some_and(|l| l.trim_start().starts_with("mod "))
        })
        .unwrap_or(lines.len());
    for line in &lines[..end] {
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            }
            out.push(if in_str { ' ' } else { c });
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Every path a `use` item names, braces expanded: `a::{b, c::{d}}` gives `a::b`, `a::c::d`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let base = join(prefix, head);
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], &base, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], &base, out);
    } else if !tree.is_empty() {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(join(prefix, path));
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}::{b}"),
    }
}

/// The paths a file refers to: its `use` items and the `crate::`/`super::`/`self::`
/// paths and child-module paths in its code.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let tail = &rest[i + 4..];
        let Some(end) = tail.find(';') else { break };
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            expand(&tail[..end], "", &mut out);
        }
        rest = &tail[end..];
    }
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if starts_word && (bytes[i].is_alphabetic() || bytes[i] == '_') {
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_' || bytes[j] == ':') {
                j += 1;
            }
            let word: String = bytes[i..j].iter().collect();
            if word.contains("::") {
                out.push(word.trim_end_matches(':').to_string());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The file module that `path`, written inside module `module`, refers to.
fn resolve(path: &str, module: &str, known: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
    match segs.first().copied() {
        Some("crate") => {
            base.clear();
            segs.remove(0);
        }
        Some("self") => {
            segs.remove(0);
        }
        Some("super") => {
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop()?;
            }
        }
        // A child module of this one (`geom::ConvGeom`), else an outside crate or item.
        Some(first) if known.contains_key(&join(module, first)) => {}
        _ => return None,
    }
    let full: Vec<&str> = base.into_iter().chain(segs).collect();
    (0..=full.len()).rev().map(|n| full[..n].join("::")).find(|m| known.contains_key(m))
}

/// Uses between the files under `scope` (module prefix) of the crate at `src`.
fn graph(src: &Path, scope: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut known = BTreeMap::new();
    modules(src, src, &mut known);
    let in_scope = |m: &str| scope.is_empty() || m == scope || m.starts_with(&format!("{scope}::"));
    let mut edges = BTreeMap::new();
    for (module, path) in known.iter().filter(|(m, _)| in_scope(m)) {
        let code = code_only(&std::fs::read_to_string(path).expect("source file"));
        let used: BTreeSet<String> = paths(&code)
            .iter()
            .filter_map(|p| resolve(p, module, &known))
            .filter(|m| m != module && in_scope(m))
            .collect();
        edges.insert(module.clone(), used);
    }
    edges
}

/// One cycle of `edges`, if there is any.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if !state.contains_key(n.as_str()) {
            if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn assert_acyclic(krate: &str, scope: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates").join(krate).join("src");
    let edges = graph(&src, scope);
    assert!(edges.len() > 1, "{krate}/{scope}: found no files");
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle in {krate} ({scope}): {}", cycle.join(" -> "));
    }
}

#[test]
fn runtime_kernel_modules_have_no_import_cycles() {
    assert_acyclic("runtime", "exec");
}

#[test]
fn gemm_module_has_no_import_cycles() {
    assert_acyclic("kernels", "gemm");
}

#[test]
fn plan_crate_has_no_import_cycles() {
    assert_acyclic("plan", "");
}

#[test]
fn the_checker_finds_cycles() {
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    edges.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&edges), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    edges.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_cycle(&edges), None);
    let mut known = BTreeMap::new();
    for m in ["exec", "exec::conv", "exec::conv::geom", "exec::registry"] {
        known.insert(m.to_string(), PathBuf::new());
    }
    assert_eq!(resolve("super::registry::Why", "exec::conv", &known), Some("exec::registry".into()));
    assert_eq!(resolve("super::Exec", "exec::conv", &known), Some("exec".into()));
    assert_eq!(resolve("geom::ConvGeom", "exec::conv", &known), Some("exec::conv::geom".into()));
    assert_eq!(resolve("crate::exec::conv::geom::X", "exec::registry", &known), Some("exec::conv::geom".into()));
    assert_eq!(resolve("sinter_ir::View", "exec::conv", &known), None);
    let mut out = Vec::new();
    expand("super::{conv::{self, Weights}, Exec}", "", &mut out);
    assert_eq!(out, ["super::conv::self", "super::conv::Weights", "super::Exec"]);
}
