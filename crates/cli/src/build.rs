use crate::progress::spinner;
use anyhow::{Context, Result};
use sinter_builder::{parse_shapes, BuildOptions};
use sinter_plan::Target;
use std::path::PathBuf;

/// Optimizer controls of `sinter build`.
#[derive(clap::Args)]
pub struct OptimizerArgs {
    /// Switch an optimizer rule off (repeatable); `--list-rules` names them.
    #[arg(long = "disable-rule", value_name = "NAME")]
    disable_rule: Vec<String>,
    /// Stop the optimizer after N rewrites (to bisect a wrong rewrite).
    #[arg(long, value_name = "N")]
    max_steps: Option<usize>,
    /// Build without optimizing: one kernel per model node.
    #[arg(long)]
    no_optimize: bool,
    /// Print every rewrite applied and every candidate refused, with the reason.
    #[arg(long)]
    report: bool,
    /// List the optimizer's passes and rules, then exit.
    #[arg(long)]
    list_rules: bool,
    /// Refuse a plan whose execution context would need more than BYTES: activation
    /// arena + kernel workspace + per-thread workspace × --threads.
    #[arg(long, value_name = "BYTES")]
    max_memory: Option<u64>,
    /// Threads the --max-memory check assumes a context runs on (default: the number of
    /// physical cores, as `sinter run`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Machine the plan is for: x86_64, aarch64, or generic (runs anywhere). The runtime
    /// refuses a plan for another architecture. Default: this machine's.
    #[arg(long, value_name = "TARGET")]
    target: Option<Target>,
    /// Choose each layer's kernel by a fixed rule instead of timing the candidates here
    /// (reproducible plans; plans for another target always use the rule).
    #[arg(long)]
    deterministic_tactics: bool,
}

pub fn run(model: Option<PathBuf>, output: Option<PathBuf>, shapes: Option<&str>, o: &OptimizerArgs) -> Result<()> {
    if o.list_rules {
        for pass in sinter_optimizer::rules::default_passes() {
            println!("{}:", pass.name);
            for rule in &pass.rules {
                println!("  {}", rule.name());
            }
        }
        return Ok(());
    }
    let (Some(model), Some(output)) = (model, output) else {
        anyhow::bail!("sinter build needs MODEL and -o OUTPUT");
    };
    let (model, output) = (model.as_path(), output.as_path());
    let opts = BuildOptions {
        shapes: shapes.map(parse_shapes).transpose()?.unwrap_or_default(),
        no_optimize: o.no_optimize,
        max_memory: o.max_memory,
        threads: o.threads.map(|t| t as usize),
        target: o.target,
        deterministic_tactics: o.deterministic_tactics,
        optimizer: sinter_optimizer::Options {
            disabled: o.disable_rule.iter().cloned().collect(),
            max_steps: o.max_steps,
        },
        ..Default::default()
    };
    let pb = spinner(&format!("building {}", model.display()));
    let built = sinter_builder::build_onnx(model, &opts);
    pb.finish_and_clear();
    let (plan, report) = built.with_context(|| format!("building {}", model.display()))?;
    plan.save(output).with_context(|| format!("writing {}", output.display()))?;
    println!("built {} -> {}", model.display(), output.display());
    println!("  target            {}", plan.header().target);
    println!("  nodes in model    {}", report.model_nodes);
    println!("  folded or fused   {}", report.folded_nodes);
    println!("  kernels in plan   {}", report.kernels);
    println!("  weight bytes      {}", report.weights_bytes);
    println!("  arena bytes       {} (all activations: {})", report.arena_bytes, report.activations_bytes);
    println!(
        "  workspace bytes   {} + {} per thread (kernel scratch)",
        report.workspace_bytes, report.workspace_per_thread_bytes
    );
    println!("  rewrites applied  {}", report.optimizer.steps);
    println!(
        "  eliminated        {} concats, {} splits/slices (written in place)",
        report.concats_eliminated, report.splits_eliminated
    );
    let winograd = report.tactics.iter().filter(|t| t.chosen.starts_with("winograd")).count();
    let timed = report.tactics.iter().filter(|t| !t.timings.is_empty()).count();
    println!(
        "  tactics           {winograd} of {} layers with candidates run by Winograd ({})",
        report.tactics.len(),
        if timed > 0 { "timed on this machine" } else { "chosen by rule" }
    );
    println!("  reference kernels {} refused by every fast kernel for their op", report.fallbacks.len());
    println!("  build time        {:.1} ms", report.build_time.as_secs_f64() * 1e3);
    if o.report {
        print!("{}", report.optimizer);
        println!("tactics:");
        for t in &report.tactics {
            let timings: Vec<String> = t.timings.iter().map(|(name, ms)| format!("{name} {ms:.3} ms")).collect();
            let how = if timings.is_empty() { "by rule".to_string() } else { timings.join(", ") };
            println!("  {:<40} {:<18} ({how})", t.node, t.chosen);
        }
        println!("fallbacks to the reference evaluator:");
        for f in &report.fallbacks {
            println!("  {} '{}': {}", f.op_type, f.node, f.reason);
        }
    }
    Ok(())
}
