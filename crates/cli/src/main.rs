//! `sinter`: build a plan from ONNX, run it, inspect it, benchmark it.

#![forbid(unsafe_code)]

mod bench;
mod build;
mod dot;
mod inputs;
mod inspect;
mod progress;
mod run;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sinter", version, about = "Sinter: build ONNX models into plans and run them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Optimize an ONNX model into a plan file.
    Build {
        #[arg(required_unless_present = "list_rules")]
        model: Option<PathBuf>,
        /// Output plan file.
        #[arg(short, long, required_unless_present = "list_rules")]
        output: Option<PathBuf>,
        /// Input shapes, e.g. `x:1x3x224x224,mask:1x16` (needed for symbolic dims).
        #[arg(long)]
        shapes: Option<String>,
        #[command(flatten)]
        optimizer: build::OptimizerArgs,
    },
    /// Run a plan on .npy inputs (random, seeded, where not given).
    Run {
        plan: PathBuf,
        /// `NAME=FILE.npy`, repeatable.
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// Write each output as DIR/<output name>.npy.
        #[arg(long)]
        output_dir: Option<PathBuf>,
        /// Seed for inputs not given.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Show a plan's header, inputs, outputs and kernels without loading its weights.
    Inspect {
        plan: PathBuf,
        #[arg(long)]
        json: bool,
        /// Write the graph before and after optimization as PLAN.before.dot / PLAN.after.dot.
        #[arg(long)]
        dot: bool,
        /// Also render them to SVG with Graphviz (`dot` on PATH).
        #[arg(long)]
        svg: bool,
    },
    /// Measure load time, first inference and steady-state latency.
    Bench {
        plan: PathBuf,
        /// Intra-op threads of each execution context (default: physical cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Execution contexts running concurrently (for throughput), each with its own threads.
        #[arg(long, default_value_t = 1)]
        contexts: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        #[arg(long, default_value_t = 50)]
        iterations: usize,
        #[arg(long)]
        json: bool,
        /// `NAME=FILE.npy`, repeatable (random where not given).
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build { model, output, shapes, optimizer } => build::run(model, output, shapes.as_deref(), &optimizer),
        Command::Run { plan, inputs, output_dir, seed } => run::run(&plan, &inputs, output_dir.as_deref(), seed),
        Command::Inspect { plan, json, dot, svg } => inspect::run(&plan, json, dot || svg, svg),
        Command::Bench { plan, threads, contexts, warmup, iterations, json, inputs } => {
            bench::run(&plan, &bench::Settings { threads, contexts, warmup, iterations, json }, &inputs)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
