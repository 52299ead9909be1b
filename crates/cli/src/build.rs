use crate::progress::spinner;
use anyhow::{Context, Result};
use sinter_builder::{parse_shapes, BuildOptions};
use std::path::Path;

pub fn run(model: &Path, output: &Path, shapes: Option<&str>) -> Result<()> {
    let opts = BuildOptions { shapes: shapes.map(parse_shapes).transpose()?.unwrap_or_default(), ..Default::default() };
    let pb = spinner(&format!("building {}", model.display()));
    let built = sinter_builder::build_onnx(model, &opts);
    pb.finish_and_clear();
    let (plan, report) = built.with_context(|| format!("building {}", model.display()))?;
    plan.save(output).with_context(|| format!("writing {}", output.display()))?;
    println!("built {} -> {}", model.display(), output.display());
    println!("  nodes in model    {}", report.model_nodes);
    println!("  folded at build   {}", report.folded_nodes);
    println!("  kernels in plan   {}", report.kernels);
    println!("  weight bytes      {}", report.weights_bytes);
    println!("  arena bytes       {} (all activations: {})", report.arena_bytes, report.activations_bytes);
    println!("  build time        {:.1} ms", report.build_time.as_secs_f64() * 1e3);
    Ok(())
}
