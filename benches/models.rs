//! End-to-end latency of the real models of issue 4, one benchmark per model and
//! intra-op thread count (`models/resnet50/threads=1`, ...).
//!
//! Needs the prepared test data (`cargo xtask testdata`, or `SINTER_MODELS_DIR`); without
//! it every model is skipped with a message. Plans are built once per model with the
//! builder, then loaded once per thread count; inputs are seeded random values.
//!
//! ```sh
//! cargo bench --bench models              # all
//! cargo bench --bench models -- resnet50  # one model
//! ```

use anyhow::{Context as _, Result};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter::{DType, Engine, Tensor};
use sinter_builder::{build_onnx, parse_shapes, BuildOptions};
use sinter_plan::Plan;
use sinter_runtime::RuntimeOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// (test-data directory, input shapes): the models and shapes of issue 4's table.
const MODELS: [(&str, &str); 4] = [
    ("resnet50", "input:1x3x224x224"),
    ("mobilenetv2", "input:1x3x224x224"),
    ("ppocr_det", "x:1x3x640x640"),
    ("ppocr_cls", "x:1x3x48x192"),
];

const THREADS: [usize; 2] = [1, 2];

fn models_dir() -> PathBuf {
    std::env::var_os("SINTER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/testdata"))
}

/// The plan bytes of one model (built once; each engine is loaded from them).
fn build(model: &Path, shapes: &str) -> Result<Vec<u8>> {
    let opts = BuildOptions { shapes: parse_shapes(shapes)?, ..Default::default() };
    let (plan, _) = build_onnx(model, &opts).with_context(|| format!("building {}", model.display()))?;
    Ok(plan.to_bytes())
}

/// Seeded standard-normal floats (zeros for other dtypes; the benchmarked models take f32).
fn inputs(engine: &Engine) -> Result<Vec<(String, Tensor)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    engine
        .inputs()
        .into_iter()
        .map(|info| {
            let t = if info.dtype == DType::F32 {
                let n: usize = info.shape.iter().product();
                let data = (0..n)
                    .map(|_| {
                        let (u, v): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
                        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
                    })
                    .collect();
                Tensor::from_vec(&info.shape, data)?
            } else {
                Tensor::zeros(info.dtype, &info.shape)
            };
            Ok((info.name, t))
        })
        .collect()
}

/// A context of a fresh engine with `threads` intra-op threads, inputs set.
fn prepare(name: &str, plan: &[u8], threads: usize) -> Result<sinter::Context> {
    let engine = Engine::with_options(Plan::from_bytes(plan)?, &RuntimeOptions { threads: Some(threads) })?;
    eprintln!("{name}: threads {threads}, isa {}", engine.isa().name());
    let mut ctx = engine.context();
    for (name, t) in inputs(&engine)? {
        ctx.set_input(&name, &t)?;
    }
    Ok(ctx)
}

fn bench_models(c: &mut Criterion) {
    let dir = models_dir();
    let mut group = c.benchmark_group("models");
    // Whole-model runs take milliseconds to hundreds of milliseconds: few, long samples.
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for (name, shapes) in MODELS {
        let model = dir.join(name).join("model.onnx");
        if !model.is_file() {
            eprintln!("skipping {name}: {} is missing (run `cargo xtask testdata`)", model.display());
            continue;
        }
        // Built on first use, so that a filtered-out model costs nothing (criterion calls a
        // benchmark's closure only when the filter matches, once per sample).
        let mut plan: Option<Vec<u8>> = None;
        for threads in THREADS {
            let mut ctx: Option<sinter::Context> = None;
            group.bench_function(BenchmarkId::new(name, format!("threads={threads}")), |b| {
                let ctx = ctx.get_or_insert_with(|| {
                    let bytes = plan.get_or_insert_with(|| build(&model, shapes).unwrap_or_else(|e| panic!("{e:#}")));
                    prepare(name, bytes, threads).unwrap_or_else(|e| panic!("{name}: {e:#}"))
                });
                b.iter(|| ctx.run().unwrap_or_else(|e| panic!("{name}: {e}")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_models);
criterion_main!(benches);
