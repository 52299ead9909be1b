use crate::inputs;
use anyhow::{bail, Context as _, Result};
use indicatif::ProgressBar;
use serde_json::json;
use sinter_ir::Tensor;
use sinter_runtime::Engine;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Settings {
    pub threads: usize,
    pub warmup: usize,
    pub iterations: usize,
    pub json: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The value at quantile `q` of sorted samples (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn run(plan: &Path, s: &Settings, input_specs: &[String]) -> Result<()> {
    if s.threads == 0 || s.iterations == 0 {
        bail!("--threads and --iterations must be at least 1");
    }
    let t0 = Instant::now();
    let engine = Engine::load(plan).with_context(|| format!("loading {}", plan.display()))?;
    let load = t0.elapsed();
    let inputs = inputs::gather(input_specs, &engine.inputs(), 0)?;

    let mut ctx = engine.context();
    let set = |ctx: &mut sinter_runtime::Context, inputs: &[(String, Tensor)]| -> Result<()> {
        for (n, t) in inputs {
            ctx.set_input(n, t)?;
        }
        Ok(())
    };
    set(&mut ctx, &inputs)?;
    let t1 = Instant::now();
    ctx.run()?;
    let first = t1.elapsed();

    // Every worker runs its own context: warm-up, then timed iterations.
    let per_thread = s.iterations.div_ceil(s.threads);
    let barrier = std::sync::Barrier::new(s.threads);
    let bar = if s.json {
        ProgressBar::hidden()
    } else {
        crate::progress::bar((per_thread * s.threads) as u64, "benchmarking")
    };
    let samples: Vec<(Vec<f64>, Instant, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..s.threads)
            .map(|_| {
                scope.spawn(|| -> Result<(Vec<f64>, Instant, Instant)> {
                    let mut ctx = engine.context();
                    set(&mut ctx, &inputs)?;
                    for _ in 0..s.warmup {
                        ctx.run()?;
                    }
                    let mut lat = Vec::with_capacity(per_thread);
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..per_thread {
                        let t = Instant::now();
                        ctx.run()?;
                        lat.push(ms(t.elapsed()));
                        bar.inc(1);
                    }
                    Ok((lat, start, Instant::now()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("a bench thread panicked")))
            .collect::<Result<Vec<_>>>()
    })?;
    bar.finish_and_clear();
    // Throughput over the timed phase only (all workers start together after warm-up).
    let start = samples.iter().map(|s| s.1).min().unwrap_or_else(Instant::now);
    let end = samples.iter().map(|s| s.2).max().unwrap_or(start);
    let wall = end.duration_since(start);
    let mut lat: Vec<f64> = samples.into_iter().flat_map(|s| s.0).collect();
    lat.sort_by(f64::total_cmp);
    let n = lat.len();
    let mean = lat.iter().sum::<f64>() / n as f64;
    let throughput = n as f64 / wall.as_secs_f64().max(f64::MIN_POSITIVE);
    let stats = json!({
        "min": lat[0], "mean": mean, "median": quantile(&lat, 0.5), "p90": quantile(&lat, 0.9),
        "p99": quantile(&lat, 0.99), "max": lat[n - 1],
    });
    if s.json {
        let v = json!({
            "plan": plan.display().to_string(),
            "load_ms": ms(load),
            "first_inference_ms": ms(first),
            "latency_ms": stats,
            "throughput_per_s": throughput,
            "threads": s.threads,
            "iterations": n,
            "warmup": s.warmup,
            "wall_ms": ms(wall),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("plan {}", plan.display());
        println!("  load               {:9.3} ms", ms(load));
        println!("  first inference    {:9.3} ms", ms(first));
        println!("  load + first       {:9.3} ms", ms(load + first));
        println!("  latency over {n} runs on {} thread(s):", s.threads);
        for key in ["min", "mean", "median", "p90", "p99", "max"] {
            println!("    {key:<8} {:9.3} ms", stats[key].as_f64().unwrap_or(f64::NAN));
        }
        println!("  throughput         {throughput:9.2} inferences/s");
    }
    Ok(())
}
