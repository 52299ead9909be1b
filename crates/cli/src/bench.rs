//! `sinter bench`: plan load time, time to first inference, steady-state latency.
//!
//! `--threads N` is the intra-op thread count of each execution context (its own pool);
//! `--contexts K` runs K contexts concurrently for throughput. Latency statistics are
//! taken over all timed runs of all contexts.

use crate::inputs;
use anyhow::{bail, Context as _, Result};
use indicatif::ProgressBar;
use serde_json::json;
use sinter_ir::Tensor;
use sinter_runtime::{Context, Engine, RuntimeOptions};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Settings {
    /// Threads per context; `None` lets the runtime pick (physical cores).
    pub threads: Option<usize>,
    /// Concurrent execution contexts.
    pub contexts: usize,
    pub warmup: usize,
    pub iterations: usize,
    pub json: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The value at quantile `q` of sorted, non-empty samples (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency statistics in milliseconds.
#[derive(Debug, PartialEq)]
struct Stats {
    min: f64,
    mean: f64,
    median: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Stats {
    /// `None` for no samples.
    fn of(mut samples: Vec<f64>) -> Option<Stats> {
        samples.sort_by(f64::total_cmp);
        let (&min, &max) = (samples.first()?, samples.last()?);
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        Some(Stats {
            min,
            mean,
            median: quantile(&samples, 0.5),
            p90: quantile(&samples, 0.9),
            p99: quantile(&samples, 0.99),
            max,
        })
    }

    fn rows(&self) -> [(&'static str, f64); 6] {
        [
            ("min", self.min),
            ("mean", self.mean),
            ("median", self.median),
            ("p90", self.p90),
            ("p99", self.p99),
            ("max", self.max),
        ]
    }
}

fn set_inputs(ctx: &mut Context, inputs: &[(String, Tensor)]) -> Result<()> {
    for (n, t) in inputs {
        ctx.set_input(n, t)?;
    }
    Ok(())
}

pub fn run(plan: &Path, s: &Settings, input_specs: &[String]) -> Result<()> {
    if s.threads == Some(0) || s.contexts == 0 || s.iterations == 0 {
        bail!("--threads, --contexts and --iterations must be at least 1");
    }
    let options = RuntimeOptions { threads: s.threads };
    let t0 = Instant::now();
    let engine = Engine::load_with(plan, &options).with_context(|| format!("loading {}", plan.display()))?;
    let load = t0.elapsed();
    // Making up random inputs is the benchmark's own work, not the runtime's: not timed.
    let inputs = inputs::gather(input_specs, &engine.inputs(), 0)?;

    // First inference on a fresh context: arena, thread pool, input copy and the run.
    let t1 = Instant::now();
    let mut first_ctx = engine.context();
    set_inputs(&mut first_ctx, &inputs)?;
    first_ctx.run()?;
    let first_run = t1.elapsed();

    let mut contexts = vec![first_ctx];
    for _ in 1..s.contexts {
        let mut ctx = engine.context();
        set_inputs(&mut ctx, &inputs)?;
        contexts.push(ctx);
    }

    // Every context runs on its own thread: warm-up, then timed iterations.
    let per_context = s.iterations.div_ceil(s.contexts);
    let barrier = std::sync::Barrier::new(s.contexts);
    let bar = if s.json {
        ProgressBar::hidden()
    } else {
        crate::progress::bar((per_context * s.contexts) as u64, "benchmarking")
    };
    let samples: Vec<(Vec<f64>, Instant, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = contexts
            .into_iter()
            .map(|mut ctx| {
                let (barrier, bar) = (&barrier, &bar);
                scope.spawn(move || -> Result<(Vec<f64>, Instant, Instant)> {
                    for _ in 0..s.warmup {
                        ctx.run()?;
                    }
                    let mut lat = Vec::with_capacity(per_context);
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..per_context {
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
    // Throughput over the timed phase only (all contexts start together after warm-up).
    let start = samples.iter().map(|s| s.1).min().unwrap_or_else(Instant::now);
    let end = samples.iter().map(|s| s.2).max().unwrap_or(start);
    let wall = end.duration_since(start);
    let lat: Vec<f64> = samples.into_iter().flat_map(|s| s.0).collect();
    let n = lat.len();
    let Some(stats) = Stats::of(lat) else { bail!("no timed runs") };
    let throughput = n as f64 / wall.as_secs_f64().max(f64::MIN_POSITIVE);
    let (isa, threads) = (engine.isa().name(), engine.threads());
    if s.json {
        let latency: serde_json::Map<String, serde_json::Value> =
            stats.rows().iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let v = json!({
            "plan": plan.display().to_string(),
            "isa": isa,
            "threads": threads,
            "contexts": s.contexts,
            "load_ms": ms(load),
            "first_run_ms": ms(first_run),
            "first_inference_ms": ms(load + first_run),
            "latency_ms": latency,
            "throughput_per_s": throughput,
            "iterations": n,
            "warmup": s.warmup,
            "wall_ms": ms(wall),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("plan {}", plan.display());
        println!("  isa                {isa}");
        println!("  threads            {threads} per context, {} context(s)", s.contexts);
        println!("  load               {:9.3} ms", ms(load));
        println!("  first run          {:9.3} ms", ms(first_run));
        println!("  first inference    {:9.3} ms (load + first run)", ms(load + first_run));
        println!("  latency over {n} runs after {} warm-up run(s) per context:", s.warmup);
        for (key, v) in stats.rows() {
            println!("    {key:<8} {v:9.3} ms");
        }
        println!("  throughput         {throughput:9.2} inferences/s");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_nearest_rank() {
        // 1..=10 shuffled: nearest-rank median is the 5th value, p90 the 9th, p99 the 10th.
        let s = Stats::of(vec![7.0, 3.0, 10.0, 1.0, 5.0, 9.0, 2.0, 8.0, 4.0, 6.0]).unwrap();
        assert_eq!(s, Stats { min: 1.0, mean: 5.5, median: 5.0, p90: 9.0, p99: 10.0, max: 10.0 });
        assert_eq!(Stats::of(vec![]), None);
        let one = Stats::of(vec![2.5]).unwrap();
        assert_eq!((one.min, one.median, one.p99, one.max), (2.5, 2.5, 2.5, 2.5));
    }
}
