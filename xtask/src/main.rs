//! Project chores, so that CI is code a person can run too:
//! - `cargo xtask demo`: build, inspect, run and benchmark the bundled PP-OCR cls model.
//! - `cargo xtask test`: fetch test data and the onnxruntime oracle (cached), then run every test.
//! - `cargo xtask testdata`: only fetch and prepare the test data.
//! - `cargo xtask optable`: regenerate the README's operator table from the conformance manifest.
//! - `cargo xtask conformance`: run every ONNX node test and rewrite the conformance manifest
//!   (passing cases) and the excluded list (every other case, with its error as the reason).
//! - `cargo xtask ir-cases`: regenerate the IR's golden op cases (crates/ir/tests/data/ort_cases.json)
//!   from onnxruntime and the onnx reference evaluator with tools/gen_ir_cases.py.
//! - `cargo xtask compare MODEL.onnx --shapes ... --threads N` (or `--all`): time Sinter and
//!   onnxruntime on the same model and inputs in one run; print both latencies and their ratio.

#![forbid(unsafe_code)]

mod compare;
mod conformance;
mod optable;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The Python environment holding the oracle (onnxruntime) and the conformance data (onnx).
fn venv() -> Result<PathBuf> {
    let root = root();
    let venv = root.join(".cache/venv");
    let req = root.join("tools/requirements.txt");
    let stamp = venv.join(".sinter-stamp");
    let wanted = std::fs::read_to_string(&req).context("reading tools/requirements.txt")?;
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&req))?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(venv)
}

fn python_out(venv: &Path, code: &str) -> Result<String> {
    let out = Command::new(venv.join("bin/python")).args(["-c", code]).output()?;
    if !out.status.success() {
        bail!("python failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// Prepares models, inputs and onnxruntime outputs; returns (models dir, node tests dir).
fn testdata() -> Result<(PathBuf, PathBuf)> {
    let venv = venv()?;
    let out = root().join(".cache/testdata");
    // Its progress goes to stderr, so that stdout stays a command's result (`compare --json`).
    run(Command::new(venv.join("bin/python"))
        .arg(root().join("tools/prepare_testdata.py"))
        .arg(&out)
        .stdout(std::io::stderr()))?;
    let onnx_dir = python_out(&venv, "import onnx, os; print(os.path.dirname(onnx.__file__))")?;
    let node = Path::new(&onnx_dir).join("backend/test/data/node");
    if !node.is_dir() {
        bail!("{} is missing: the onnx wheel in tools/requirements.txt must ship the node test data", node.display());
    }
    Ok((out, node))
}

fn test() -> Result<()> {
    let (models, node) = testdata()?;
    run(cargo()
        .current_dir(root())
        .args(["test", "--workspace", "--release", "--no-fail-fast"])
        .env("SINTER_MODELS_DIR", &models)
        .env("SINTER_ONNX_NODE_DIR", &node)
        .env("SINTER_REQUIRE_TESTDATA", "1"))?;
    // The runtime and end-to-end tests once more on every other CPU tier this machine has
    // (the run above used the best one), forced through SINTER_CPU.
    let best = sinter_kernels::Isa::best();
    for isa in sinter_kernels::Isa::available().into_iter().filter(|&i| i != best) {
        eprintln!("== runtime and end-to-end tests with SINTER_CPU={isa}");
        run(cargo()
            .current_dir(root())
            .args(["test", "--release", "--no-fail-fast", "-p", "sinter-runtime", "-p", "sinter"])
            .env("SINTER_CPU", isa.name())
            .env("SINTER_MODELS_DIR", &models)
            .env("SINTER_ONNX_NODE_DIR", &node)
            .env("SINTER_REQUIRE_TESTDATA", "1"))?;
    }
    Ok(())
}

fn demo() -> Result<()> {
    let root = root();
    run(cargo().current_dir(&root).args(["build", "--release", "--quiet", "-p", "sinter-cli"]))?;
    let sinter = root.join("target/release/sinter");
    let model = root.join("models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let dir = root.join("target/demo");
    std::fs::create_dir_all(&dir)?;
    let plan = dir.join("ppocr_cls.plan");
    run(Command::new(&sinter).arg("build").arg(&model).arg("-o").arg(&plan).args(["--shapes", "x:1x3x48x192"]))?;
    run(Command::new(&sinter).arg("inspect").arg(&plan))?;
    run(Command::new(&sinter).arg("run").arg(&plan).arg("--output-dir").arg(dir.join("outputs")))?;
    run(Command::new(&sinter).arg("bench").arg(&plan).args(["--warmup", "5", "--iterations", "50"]))
}

fn compare() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let options = compare::parse(&args)?;
    let root = root();
    // Test data (and the venv with onnxruntime) only where needed: --all uses the prepared models.
    let models = match &options.target {
        compare::Target::All => Some(testdata()?.0),
        compare::Target::Model { path, .. } if !path.is_file() => bail!("{} is not a file", path.display()),
        compare::Target::Model { .. } => None,
    };
    let venv = venv()?;
    run(cargo().current_dir(&root).args(["build", "--release", "--quiet", "-p", "sinter-cli"]))?;
    let tools = compare::Tools {
        sinter: root.join("target/release/sinter"),
        python: venv.join("bin/python"),
        script: root.join("tools/ort_bench.py"),
        work: root.join("target/compare"),
    };
    compare::run(&options, &tools, models.as_deref())
}

/// Rewrites the IR's golden cases; the data is committed, so `cargo test` needs no Python.
fn ir_cases() -> Result<()> {
    let venv = venv()?;
    run(Command::new(venv.join("bin/python"))
        .arg(root().join("tools/gen_ir_cases.py"))
        .arg(root().join("crates/ir/tests/data/ort_cases.json")))
}

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "demo" => demo(),
        "test" => test(),
        "testdata" => {
            testdata().map(|(m, n)| println!("SINTER_MODELS_DIR={}\nSINTER_ONNX_NODE_DIR={}", m.display(), n.display()))
        }
        "optable" => optable::write(&root(), &testdata()?.1),
        "conformance" => {
            let (_, node) = testdata()?;
            conformance::update(&root(), &node)?;
            optable::write(&root(), &node)
        }
        "compare" => compare(),
        "ir-cases" => ir_cases(),
        _ => bail!("usage: cargo xtask <demo|test|testdata|optable|conformance|ir-cases|compare>"),
    }
}
