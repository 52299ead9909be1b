use crate::progress::spinner;
use anyhow::{Context, Result};
use sinter_builder::{parse_shapes, BuildOptions};
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
    /// Refuse a plan whose activation arena would exceed BYTES.
    #[arg(long, value_name = "BYTES")]
    max_memory: Option<u64>,
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
    println!("  nodes in model    {}", report.model_nodes);
    println!("  folded or fused   {}", report.folded_nodes);
    println!("  kernels in plan   {}", report.kernels);
    println!("  weight bytes      {}", report.weights_bytes);
    println!("  arena bytes       {} (all activations: {})", report.arena_bytes, report.activations_bytes);
    println!("  rewrites applied  {}", report.optimizer.steps);
    println!(
        "  eliminated        {} concats, {} splits/slices (written in place)",
        report.concats_eliminated, report.splits_eliminated
    );
    println!("  build time        {:.1} ms", report.build_time.as_secs_f64() * 1e3);
    if o.report {
        print!("{}", report.optimizer);
    }
    Ok(())
}
