//! The README's operator table, generated from the conformance manifest: for each op
//! type, how many of its ONNX node tests pass through the manifest.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::Path;

const BEGIN: &str = "<!-- optable:begin -->";
const END: &str = "<!-- optable:end -->";

/// Node test names are `test_<op in snake case>[_variant]`: the longest matching op wins.
fn op_of<'a>(test: &str, ops: &'a [(String, String)]) -> Option<&'a str> {
    let t = test.strip_prefix("test_")?;
    ops.iter()
        .filter(|(snake, _)| t == snake || t.starts_with(&format!("{snake}_")))
        .max_by_key(|(snake, _)| snake.len())
        .map(|(_, op)| op.as_str())
}

fn snake(op: &str) -> String {
    let mut s = String::new();
    for (i, c) in op.chars().enumerate() {
        let prev_lower = i > 0 && op.chars().nth(i - 1).is_some_and(|p| p.is_lowercase() || p.is_ascii_digit());
        if c.is_uppercase() && prev_lower {
            s.push('_');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

pub fn write(root: &Path) -> Result<()> {
    let manifest = std::fs::read_to_string(root.join("tests/conformance/manifest.txt"))?;
    let ops: Vec<(String, String)> =
        sinter_ir::ops::supported_ops().into_iter().map(|op| (snake(op), op.to_string())).collect();
    let mut counts: BTreeMap<&str, usize> = ops.iter().map(|(_, o)| (o.as_str(), 0)).collect();
    let mut cases = 0;
    for name in manifest.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()) {
        let name = name.split_whitespace().next().unwrap_or_default();
        cases += 1;
        if let Some(op) = op_of(name, &ops) {
            *counts.entry(op).or_default() += 1;
        }
    }
    let mut table = format!("{BEGIN}\n{} operators, {cases} ONNX node conformance cases in the manifest.\n\n| operator | node tests passing |\n|---|---|\n", counts.len());
    for (op, n) in &counts {
        table.push_str(&format!("| {op} | {n} |\n"));
    }
    table.push_str(END);
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    let (Some(a), Some(b)) = (readme.find(BEGIN), readme.find(END)) else {
        bail!("README.md has no {BEGIN} … {END} block");
    };
    let updated = format!("{}{}{}", &readme[..a], table, &readme[b + END.len()..]);
    std::fs::write(readme_path, updated)?;
    println!("README operator table: {} operators, {cases} cases", counts.len());
    Ok(())
}
