//! Per-kernel time of a plan: `cargo run --release -p sinter-runtime --example profile -- PLAN [THREADS] [RUNS]`.
//! Runs on zero inputs; prints time per op type and the slowest kernels.

use sinter_runtime::{Engine, RuntimeOptions, Tensor};
use std::collections::HashMap;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: profile PLAN [THREADS] [RUNS]")?;
    let threads = args.get(2).map(|t| t.parse()).transpose()?;
    let runs: usize = args.get(3).map(|t| t.parse()).transpose()?.unwrap_or(20);
    let engine = Engine::load_with(path, &RuntimeOptions { threads })?;
    let mut ctx = engine.context();
    for i in engine.inputs() {
        ctx.set_input(&i.name, &Tensor::zeros(i.dtype, &i.shape))?;
    }
    for _ in 0..3 {
        ctx.run()?;
    }
    let mut per_kernel: Vec<(String, String, Duration)> = Vec::new();
    let mut run_sums = Vec::with_capacity(runs);
    for r in 0..runs {
        let times = ctx.profile()?;
        run_sums.push(times.iter().map(|k| k.time).sum::<Duration>());
        for (i, k) in times.into_iter().enumerate() {
            if r == 0 {
                per_kernel.push((k.op_type, k.node, k.time));
            } else {
                per_kernel[i].2 = per_kernel[i].2.min(k.time);
            }
        }
    }
    let total: Duration = per_kernel.iter().map(|k| k.2).sum();
    run_sums.sort();
    println!(
        "{} kernels, sum of per-kernel minima {:.3} ms, median run {:.3} ms ({} on {} threads)",
        per_kernel.len(),
        ms(total),
        ms(run_sums.get(run_sums.len() / 2).copied().unwrap_or_default()),
        engine.isa(),
        engine.threads()
    );
    let mut by_op: HashMap<&str, (Duration, usize)> = HashMap::new();
    for (op, _, t) in &per_kernel {
        let e = by_op.entry(op).or_default();
        e.0 += *t;
        e.1 += 1;
    }
    let mut by_op: Vec<_> = by_op.into_iter().collect();
    by_op.sort_by_key(|e| std::cmp::Reverse(e.1 .0));
    for (op, (t, n)) in by_op {
        println!("  {op:<20} {n:>4} kernels {:>9.3} ms {:>5.1}%", ms(t), 100.0 * t.as_secs_f64() / total.as_secs_f64());
    }
    let mut slow: Vec<_> = per_kernel.iter().enumerate().collect();
    slow.sort_by_key(|e| std::cmp::Reverse(e.1 .2));
    println!("slowest kernels:");
    for (i, (op, node, t)) in slow.into_iter().take(usize::MAX) {
        println!("  #{i:<4} {op:<16} {node:<40} {:>8.3} ms", ms(*t));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
