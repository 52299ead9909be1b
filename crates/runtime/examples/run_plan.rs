//! A deployment-sized program: load a plan and run it, with nothing but the runtime and
//! the `.npy` reader (no builder, no ONNX importer). Its stripped size is what the runtime
//! adds to an application on a board (see targets/README.md).
//!
//! ```sh
//! run_plan MODEL.plan [NAME=FILE.npy ...] [--out DIR] [--iterations N]
//! ```
//!
//! Inputs not given are zeros. Prints each output's shape, min, max and sum and,
//! with `--out`, writes `DIR/<index>.npy` for each output in plan order.

use sinter_runtime::{Engine, Tensor};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

struct Args {
    plan: PathBuf,
    inputs: Vec<(String, PathBuf)>,
    out: Option<PathBuf>,
    iterations: usize,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    const USAGE: &str = "usage: run_plan MODEL.plan [NAME=FILE.npy ...] [--out DIR] [--iterations N]";
    let mut plan = None;
    let (mut inputs, mut out, mut iterations) = (Vec::new(), None, 1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            "--iterations" => {
                let n = args.next().ok_or(USAGE)?;
                iterations = n.parse().map_err(|_| format!("--iterations: '{n}' is not a count"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ if plan.is_none() => plan = Some(PathBuf::from(a)),
            _ => {
                let (name, file) = a.split_once('=').ok_or_else(|| format!("'{a}' is not NAME=FILE.npy\n{USAGE}"))?;
                inputs.push((name.to_string(), PathBuf::from(file)));
            }
        }
    }
    Ok(Args { plan: plan.ok_or(USAGE)?, inputs, out, iterations: iterations.max(1) })
}

fn summary(t: &Tensor) -> String {
    let v = t.to_f64_vec();
    let (min, max) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let sum: f64 = v.iter().sum();
    format!("{}{:?} min {min:.6} max {max:.6} sum {sum:.6}", t.dtype(), t.shape())
}

fn run(args: Args) -> Result<(), String> {
    let t0 = Instant::now();
    let engine = Engine::load(&args.plan).map_err(|e| format!("loading {}: {e}", args.plan.display()))?;
    let load = t0.elapsed();
    let mut fed = Vec::new();
    for info in engine.inputs() {
        let t = match args.inputs.iter().find(|(n, _)| *n == info.name) {
            Some((_, file)) => sinter_npy::read(file).map_err(|e| e.to_string())?,
            None => Tensor::zeros(info.dtype, &info.shape),
        };
        fed.push((info.name, t));
    }
    if let Some((name, _)) = args.inputs.iter().find(|(n, _)| !fed.iter().any(|(f, _)| f == n)) {
        let names: Vec<&str> = fed.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!("unknown input '{name}'; the plan's inputs are: {}", names.join(", ")));
    }
    let mut outputs = Vec::new();
    let t1 = Instant::now();
    for _ in 0..args.iterations {
        outputs = engine.run(&fed).map_err(|e| e.to_string())?;
    }
    let per_run_ms = t1.elapsed().as_secs_f64() * 1e3 / args.iterations as f64;
    for (i, (name, t)) in outputs.iter().enumerate() {
        println!("{name}: {}", summary(t));
        if let Some(dir) = &args.out {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let file = dir.join(format!("{i}.npy"));
            sinter_npy::write(&file, t).map_err(|e| e.to_string())?;
        }
    }
    println!("load {:.2} ms, inference {per_run_ms:.2} ms", load.as_secs_f64() * 1e3);
    Ok(())
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
