//! Graphviz drawings of a plan: the model graph before optimization and the kernel
//! graph after, fused kernels labelled with the model nodes they contain.

use anyhow::{bail, Context, Result};
use sinter_plan::{Location, PlanMeta};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// Edges from each value's producer to its readers; values nobody produces are graph inputs.
fn draw<'a>(title: &str, nodes: impl Iterator<Item = (String, String, Vec<&'a str>, Vec<&'a str>)>) -> String {
    let nodes: Vec<_> = nodes.collect();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, (_, _, _, outs)) in nodes.iter().enumerate() {
        for o in outs {
            producer.insert(o, i);
        }
    }
    let mut out =
        format!("digraph {} {{\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=Helvetica];\n", quote(title));
    for (i, (label, tooltip, ins, _)) in nodes.iter().enumerate() {
        let _ = writeln!(out, "  n{i} [label={}, tooltip={}];", quote(label), quote(tooltip));
        for v in ins {
            match producer.get(v) {
                Some(p) => {
                    let _ = writeln!(out, "  n{p} -> n{i};");
                }
                None => {
                    let _ = writeln!(out, "  {} [shape=ellipse];\n  {} -> n{i};", quote(v), quote(v));
                }
            }
        }
    }
    out.push_str("}\n");
    out
}

pub fn before(meta: &PlanMeta) -> String {
    draw(
        "before optimization",
        meta.source_graph.iter().map(|n| {
            (
                format!("{}\n{}", n.op_type, n.name),
                n.name.clone(),
                n.inputs.iter().map(String::as_str).filter(|s| !s.is_empty()).collect(),
                n.outputs.iter().map(String::as_str).collect(),
            )
        }),
    )
}

pub fn after(meta: &PlanMeta) -> String {
    let name = |id: u32| meta.tensors.get(id as usize).map(|t| t.name.as_str()).unwrap_or("?");
    let is_weight =
        |id: u32| meta.tensors.get(id as usize).is_some_and(|t| matches!(t.location, Location::Weights { .. }));
    draw(
        "after optimization",
        meta.kernels.iter().map(|k| {
            let contains: Vec<&str> = k.nodes.iter().map(|n| n.op_type.as_str()).collect();
            let label = if k.nodes.len() > 1 {
                format!("{}\n[{}]", k.op_type, contains.join(" + "))
            } else {
                k.op_type.clone()
            };
            let tooltip = k.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ");
            let ins = k.inputs.iter().flatten().filter(|&&i| !is_weight(i)).map(|&i| name(i)).collect();
            (label, tooltip, ins, k.outputs.iter().map(|&o| name(o)).collect())
        }),
    )
}

/// Writes `PLAN.before.dot` and `PLAN.after.dot` (and `.svg` with `svg`) beside the plan.
pub fn write(plan: &Path, meta: &PlanMeta, svg: bool) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (stage, text) in [("before", before(meta)), ("after", after(meta))] {
        let dot = plan.with_extension(format!("{stage}.dot"));
        std::fs::write(&dot, text).with_context(|| format!("writing {}", dot.display()))?;
        written.push(dot.clone());
        if svg {
            let out = dot.with_extension("svg");
            let status = Command::new("dot").arg("-Tsvg").arg(&dot).arg("-o").arg(&out).status();
            match status {
                Ok(s) if s.success() => written.push(out),
                Ok(s) => bail!("graphviz `dot` failed ({s}) on {}", dot.display()),
                Err(_) => bail!(
                    "--svg needs Graphviz's `dot` on PATH (e.g. apt-get install graphviz); the .dot files are written"
                ),
            }
        }
    }
    Ok(written)
}
