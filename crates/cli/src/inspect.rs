use anyhow::{Context, Result};
use serde_json::json;
use sinter_plan::{Location, PlanInfo, Target, TensorDesc};
use std::path::Path;

fn io_json(t: &TensorDesc) -> serde_json::Value {
    json!({ "name": t.name, "shape": t.shape, "dtype": t.dtype.name() })
}

/// Reads only the header and the schedule: inspecting a plan never touches its weights.
pub fn run(plan: &Path, as_json: bool, dot: bool, svg: bool) -> Result<()> {
    let info = PlanInfo::read(plan).with_context(|| format!("reading {}", plan.display()))?;
    if dot {
        for f in crate::dot::write(plan, &info.meta, svg)? {
            println!("wrote {}", f.display());
        }
        return Ok(());
    }
    let (header, meta) = (&info.header, &info.meta);
    let tensor = |id: u32| meta.tensors.get(id as usize);
    let ios = |b: &[sinter_plan::Binding]| b.iter().filter_map(|b| tensor(b.tensor)).collect::<Vec<_>>();
    let (inputs, outputs) = (ios(&meta.inputs), ios(&meta.outputs));
    if as_json {
        let kernels: Vec<_> = meta
            .kernels
            .iter()
            .map(|k| {
                json!({
                    "op_type": k.op_type,
                    "nodes": k.nodes.iter().map(|n| json!({"name": n.name, "op_type": n.op_type})).collect::<Vec<_>>(),
                    "inputs": k.inputs.iter().map(|i| i.and_then(tensor).map(|t| t.name.clone())).collect::<Vec<_>>(),
                    "outputs": k.outputs.iter().filter_map(|&i| tensor(i)).map(|t| t.name.clone()).collect::<Vec<_>>(),
                    "tactic": k.packing.as_ref().map(|p| p.layout.tactic()),
                    "impl": k.implementation,
                    "precision": k.precision.name(),
                    "fallback_reason": k.fallback_reason,
                })
            })
            .collect();
        let v = json!({
            "format_version": header.format_version,
            "producer": header.producer,
            "target": header.target,
            "model": meta.model_name,
            "source_nodes": meta.source_nodes,
            "inputs": inputs.iter().map(|t| io_json(t)).collect::<Vec<_>>(),
            "outputs": outputs.iter().map(|t| io_json(t)).collect::<Vec<_>>(),
            "kernels": kernels,
            "weights_bytes": header.weights.len,
            "arena_bytes": header.arena_bytes,
            "workspace_bytes": header.workspace_bytes,
            "workspace_per_thread_bytes": header.workspace_per_thread_bytes,
            "rewrites": meta.optimizer.applied.iter().map(|a| json!({
                "pass": a.pass, "rule": a.rule, "nodes": a.nodes, "created": a.created,
            })).collect::<Vec<_>>(),
            "refusals": meta.optimizer.refused.iter().map(|r| json!({
                "pass": r.pass, "rule": r.rule, "node": r.node, "reason": r.reason,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("plan {}", plan.display());
    let host = Target::host();
    let runs_here = Target::from_name(&header.target).is_some_and(|t| t.backend() == host.backend() && t.runs_on(host));
    let note = if runs_here { String::new() } else { format!(" (does not run on this machine, {host})") };
    println!(
        "  format v{}, produced by sinter {}, target {}{note}",
        header.format_version, header.producer, header.target
    );
    println!("  model '{}': {} ONNX nodes -> {} kernels", meta.model_name, meta.source_nodes, meta.kernels.len());
    println!("  weights {} bytes, arena {} bytes", header.weights.len, header.arena_bytes);
    println!("  workspace {} bytes + {} bytes per thread", header.workspace_bytes, header.workspace_per_thread_bytes);
    for (label, list) in [("inputs", &inputs), ("outputs", &outputs)] {
        println!("{label}:");
        for t in list {
            println!("  {} {}{:?}", t.name, t.dtype, t.shape);
        }
    }
    println!("kernels:");
    for (i, k) in meta.kernels.iter().enumerate() {
        let names: Vec<&str> = k.nodes.iter().map(|n| n.name.as_str()).collect();
        let out = k.outputs.first().and_then(|&o| tensor(o));
        let shape = out.map(|t| format!("{}{:?}", t.dtype, t.shape)).unwrap_or_default();
        let weights: u64 = k
            .inputs
            .iter()
            .flatten()
            .filter_map(|&i| tensor(i))
            .map(|t| if let Location::Weights { bytes, .. } = t.location { bytes } else { 0 })
            .sum();
        let tactic = k.packing.as_ref().map(|p| format!(", {}", p.layout.tactic())).unwrap_or_default();
        println!(
            "  {i:4} {:<20} {:<40} -> {shape} ({} {}, weights {weights} B{tactic})",
            k.op_type,
            names.join(","),
            k.implementation,
            k.precision
        );
        if let Some(why) = &k.fallback_reason {
            println!("         fast kernels refused it: {why}");
        }
    }
    let log = &meta.optimizer;
    println!("optimizer: {} rewrites applied, {} candidates refused", log.applied.len(), log.refused.len());
    for a in &log.applied {
        let created = if a.created.is_empty() { "removed".to_string() } else { a.created.join(", ") };
        println!("  {}/{}: {} -> {created}", a.pass, a.rule, a.nodes.join(", "));
    }
    for r in &log.refused {
        println!("  refused {}/{}: {}: {}", r.pass, r.rule, r.node, r.reason);
    }
    Ok(())
}
