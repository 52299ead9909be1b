use crate::inputs;
use anyhow::{Context, Result};
use sinter_ir::Tensor;
use sinter_runtime::Engine;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A file name for an output: characters outside `[A-Za-z0-9._-]` become `_`,
/// and a clash with an earlier name gets a numeric suffix.
pub fn sanitize(name: &str, taken: &mut HashSet<String>) -> String {
    let mut base: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    if base.is_empty() || base.chars().all(|c| c == '.') {
        base = format!("output{}", taken.len());
    }
    let mut candidate = base.clone();
    let mut i = 1;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{base}_{i}");
        i += 1;
    }
    candidate
}

fn summary(t: &Tensor) -> String {
    let v = t.to_f64_vec();
    let (min, max) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let mean = if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.5}")).collect();
    format!(
        "{}{:?} min {min:.5} max {max:.5} mean {mean:.5} [{}{}]",
        t.dtype(),
        t.shape(),
        head.join(", "),
        if v.len() > 6 { ", …" } else { "" }
    )
}

pub fn run(plan: &Path, input_specs: &[String], output_dir: Option<&Path>, seed: u64) -> Result<()> {
    let t0 = Instant::now();
    let engine = Engine::load(plan).with_context(|| format!("loading {}", plan.display()))?;
    let load = t0.elapsed();
    let inputs = inputs::gather(input_specs, &engine.inputs(), seed)?;
    let t1 = Instant::now();
    let outputs = engine.run(&inputs)?;
    let infer = t1.elapsed();
    let mut taken = HashSet::new();
    for (name, t) in &outputs {
        println!("{name}: {}", summary(t));
        if let Some(dir) = output_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let file: PathBuf = dir.join(format!("{}.npy", sanitize(name, &mut taken)));
            sinter_npy::write(&file, t)?;
            println!("  -> {}", file.display());
        }
    }
    println!("load {:.2} ms, inference {:.2} ms", load.as_secs_f64() * 1e3, infer.as_secs_f64() * 1e3);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_names_are_safe_and_unique() {
        let mut taken = HashSet::new();
        assert_eq!(sanitize("save_infer_model/scale_0.tmp_1", &mut taken), "save_infer_model_scale_0.tmp_1");
        assert_eq!(sanitize("a/b", &mut taken), "a_b");
        assert_eq!(sanitize("a:b", &mut taken), "a_b_1");
        assert_eq!(sanitize("..", &mut taken), "output3");
    }
}
