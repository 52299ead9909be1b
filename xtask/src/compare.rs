//! `cargo xtask compare`: Sinter against onnxruntime on the same model, the same inputs and
//! the same thread count, in one run.
//!
//! The plan is built by the release `sinter` binary and timed by `sinter bench --json`;
//! onnxruntime is timed by `tools/ort_bench.py` in the project venv (ORT_ENABLE_ALL,
//! `intra_op_num_threads = N`, `inter_op_num_threads = 1`, sequential execution). Both read
//! the same seeded random inputs from `.npy` files. The two sides alternate over several
//! rounds (S O, O S, S O, ...) so that slow drift of the machine (clocks, neighbours)
//! hits both; each side's latency is the median of its per-round medians.

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use sinter_ir::{DType, Tensor};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const USAGE: &str = "usage: cargo xtask compare (MODEL.onnx [--shapes NAME:1x3x224x224,...] | --all)
       [--threads N[,N...]] [--iterations I] [--warmup W] [--rounds R] [--seed S] [--json]";

/// The models of issue 4's acceptance table (in `.cache/testdata`) and their input shapes.
pub const ALL_MODELS: [(&str, &str); 4] = [
    ("resnet50", "input:1x3x224x224"),
    ("mobilenetv2", "input:1x3x224x224"),
    ("ppocr_det", "x:1x3x640x640"),
    ("ppocr_cls", "x:1x3x48x192"),
];

/// What to compare.
#[derive(Debug, PartialEq)]
pub enum Target {
    /// The issue-4 models from the test data.
    All,
    Model {
        path: PathBuf,
        shapes: Option<String>,
    },
}

#[derive(Debug, PartialEq)]
pub struct Options {
    pub target: Target,
    pub threads: Vec<usize>,
    pub warmup: usize,
    pub iterations: usize,
    pub rounds: usize,
    pub seed: u64,
    pub json: bool,
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<&String>) -> Result<T> {
    let Some(v) = value else { bail!("{flag} needs a value\n{USAGE}") };
    v.parse().map_err(|_| anyhow::anyhow!("{flag} '{v}' is not a non-negative integer"))
}

/// Parses the arguments after `compare`.
pub fn parse(args: &[String]) -> Result<Options> {
    let (mut model, mut shapes, mut all) = (None, None, false);
    let mut o =
        Options { target: Target::All, threads: vec![1], warmup: 5, iterations: 30, rounds: 3, seed: 0, json: false };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--all" => all = true,
            "--json" => o.json = true,
            "--shapes" => shapes = Some(it.next().context("--shapes needs a value")?.clone()),
            "--threads" => {
                let v = it.next().context("--threads needs a value, e.g. 1,2")?;
                o.threads = v
                    .split(',')
                    .map(|t| match t.trim().parse::<usize>() {
                        Ok(n) if n > 0 => Ok(n),
                        _ => bail!("--threads '{v}': each count must be an integer of at least 1"),
                    })
                    .collect::<Result<_>>()?;
            }
            "--warmup" => o.warmup = number("--warmup", it.next())?,
            "--iterations" => o.iterations = number("--iterations", it.next())?,
            "--rounds" => o.rounds = number("--rounds", it.next())?,
            "--seed" => o.seed = number("--seed", it.next())?,
            flag if flag.starts_with('-') => bail!("unknown option '{flag}'\n{USAGE}"),
            path if model.is_none() => model = Some(PathBuf::from(path)),
            extra => bail!("unexpected argument '{extra}': compare takes one model\n{USAGE}"),
        }
    }
    if o.iterations == 0 || o.rounds == 0 {
        bail!("--iterations and --rounds must be at least 1");
    }
    o.target = match (model, all) {
        (Some(_), true) => bail!("give either a model or --all, not both\n{USAGE}"),
        (None, false) => bail!("no model given\n{USAGE}"),
        (None, true) if shapes.is_some() => bail!("--shapes is for one model; --all uses each model's own shapes"),
        (None, true) => Target::All,
        (Some(path), false) => Target::Model { path, shapes },
    };
    Ok(o)
}

/// One model at one thread count: per-round medians of both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub model: String,
    pub threads: usize,
    pub isa: String,
    pub sinter_ms: Vec<f64>,
    pub ort_ms: Vec<f64>,
}

/// Median of non-empty samples (mean of the middle two for an even count); NaN when empty.
pub fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

impl Row {
    pub fn sinter_median(&self) -> f64 {
        median(&self.sinter_ms)
    }

    pub fn ort_median(&self) -> f64 {
        median(&self.ort_ms)
    }

    /// Sinter latency over onnxruntime latency: below 1, Sinter is faster.
    pub fn ratio(&self) -> f64 {
        self.sinter_median() / self.ort_median()
    }
}

/// The human-readable table.
pub fn table(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.model.len()).max().unwrap_or(0).max("model".len());
    let mut s = format!(
        "{:<width$}  {:>7}  {:<6}  {:>10}  {:>10}  {:>10}\n",
        "model", "threads", "isa", "sinter ms", "ort ms", "sinter/ort"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<width$}  {:>7}  {:<6}  {:>10.3}  {:>10.3}  {:>10.2}",
            r.model,
            r.threads,
            r.isa,
            r.sinter_median(),
            r.ort_median(),
            r.ratio()
        );
    }
    s
}

/// The `--json` report.
pub fn report_json(rows: &[Row], o: &Options, ort_version: &str) -> Value {
    let results: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "model": r.model,
                "threads": r.threads,
                "isa": r.isa,
                "sinter_median_ms": r.sinter_median(),
                "ort_median_ms": r.ort_median(),
                "ratio": r.ratio(),
                "sinter_round_medians_ms": r.sinter_ms,
                "ort_round_medians_ms": r.ort_ms,
            })
        })
        .collect();
    json!({
        "onnxruntime": ort_version,
        "warmup": o.warmup,
        "iterations": o.iterations,
        "rounds": o.rounds,
        "seed": o.seed,
        "results": results,
    })
}

/// `python tools/ort_bench.py MODEL --input NAME=FILE ... --threads N --warmup W --iterations I`.
pub fn ort_command(
    python: &Path,
    script: &Path,
    model: &Path,
    inputs: &[(String, PathBuf)],
    threads: usize,
    o: &Options,
) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(model);
    for (name, file) in inputs {
        cmd.arg("--input").arg(format!("{name}={}", file.display()));
    }
    cmd.args(["--threads", &threads.to_string(), "--warmup", &o.warmup.to_string()]);
    cmd.args(["--iterations", &o.iterations.to_string()]);
    cmd
}

/// `sinter bench PLAN --input NAME=FILE ... --threads N --warmup W --iterations I --json`.
pub fn sinter_command(
    sinter: &Path,
    plan: &Path,
    inputs: &[(String, PathBuf)],
    threads: usize,
    o: &Options,
) -> Command {
    let mut cmd = Command::new(sinter);
    cmd.arg("bench").arg(plan);
    for (name, file) in inputs {
        cmd.arg("--input").arg(format!("{name}={}", file.display()));
    }
    cmd.args(["--threads", &threads.to_string(), "--warmup", &o.warmup.to_string()]);
    cmd.args(["--iterations", &o.iterations.to_string(), "--json"]);
    cmd
}

/// Runs a command that prints one JSON object; its stderr goes into the error on failure.
pub fn run_json(cmd: &mut Command) -> Result<Value> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed with {}:\n{}", out.status, String::from_utf8_lossy(&out.stderr).trim_end());
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!("{cmd:?} printed no JSON object:\n{}", String::from_utf8_lossy(&out.stdout).trim_end())
    })
}

/// The median latency (ms) from a `sinter bench --json` or `ort_bench.py` report.
pub fn median_ms(report: &Value) -> Result<f64> {
    match report["latency_ms"]["median"].as_f64() {
        Some(m) if m.is_finite() && m > 0.0 => Ok(m),
        _ => bail!("report has no positive latency_ms.median: {report}"),
    }
}

/// A file name from a tensor name: characters outside `[A-Za-z0-9._-]` become `_`,
/// prefixed with the input's index so that two names never collide.
fn file_name(index: usize, name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    format!("{index}_{safe}.npy")
}

/// A seeded random tensor, as `sinter run` makes them: standard-normal floats,
/// integers in 0..10 (valid as indices and masks).
fn random(dtype: DType, shape: &[usize], rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).context("input element count overflows")?;
    let mut normal = || {
        let (u, v): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let t = match dtype {
        DType::F32 => Tensor::from_vec(shape, (0..n).map(|_| normal() as f32).collect())?,
        DType::F16 => Tensor::from_vec(shape, (0..n).map(|_| sinter_ir::half::f16::from_f64(normal())).collect())?,
        DType::I64 => Tensor::from_vec(shape, (0..n).map(|_| rng.gen_range(0..10i64)).collect())?,
        DType::I32 => Tensor::from_vec(shape, (0..n).map(|_| rng.gen_range(0..10i32)).collect())?,
        DType::I8 => Tensor::from_vec(shape, (0..n).map(|_| rng.gen_range(0..10i8)).collect())?,
        DType::U8 => Tensor::from_vec(shape, (0..n).map(|_| rng.gen_range(0..10u8)).collect())?,
        DType::Bool => Tensor::from_bools(shape, &(0..n).map(|_| rng.gen_bool(0.5)).collect::<Vec<_>>())?,
    };
    Ok(t)
}

/// Writes one seeded random `.npy` per plan input (read from `sinter inspect --json`);
/// returns (input name, file).
fn write_inputs(sinter: &Path, plan: &Path, dir: &Path, seed: u64) -> Result<Vec<(String, PathBuf)>> {
    let info = run_json(Command::new(sinter).arg("inspect").arg(plan).arg("--json"))?;
    let Some(inputs) = info["inputs"].as_array() else { bail!("sinter inspect --json printed no inputs: {info}") };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let (Some(name), Some(dtype), Some(shape)) =
            (input["name"].as_str(), input["dtype"].as_str().and_then(DType::parse), input["shape"].as_array())
        else {
            bail!("sinter inspect --json: input {i} lacks a name, a known dtype or a shape: {input}");
        };
        let shape: Vec<usize> = shape
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .with_context(|| format!("input '{name}' has a bad shape: {input}"))?;
        let file = dir.join(file_name(i, name));
        sinter_npy::write(&file, &random(dtype, &shape, &mut rng)?)
            .with_context(|| format!("writing {}", file.display()))?;
        out.push((name.to_string(), file));
    }
    Ok(out)
}

/// A short name for a model file: its directory for `.../NAME/model.onnx`, else its stem.
fn model_name(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    match path.parent().and_then(|p| p.file_name()) {
        Some(dir) if stem == "model" => dir.to_string_lossy().into_owned(),
        _ => stem,
    }
}

/// Everything needed to time both sides.
pub struct Tools {
    pub sinter: PathBuf,
    pub python: PathBuf,
    pub script: PathBuf,
    pub work: PathBuf,
}

/// Builds one model's plan and inputs, then times both sides at each thread count.
fn compare_model(t: &Tools, name: &str, model: &Path, shapes: Option<&str>, o: &Options) -> Result<Vec<Row>> {
    let dir = t.work.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let plan = dir.join("model.plan");
    eprintln!("{name}: building {}", plan.display());
    let mut build = Command::new(&t.sinter);
    build.arg("build").arg(model).arg("-o").arg(&plan);
    if let Some(s) = shapes {
        build.args(["--shapes", s]);
    }
    let out = build.output().with_context(|| format!("starting {build:?}"))?;
    if !out.status.success() {
        bail!("building the plan for {} failed:\n{}", model.display(), String::from_utf8_lossy(&out.stderr).trim_end());
    }
    let inputs = write_inputs(&t.sinter, &plan, &dir.join("inputs"), o.seed)?;
    let mut rows = Vec::new();
    for &threads in &o.threads {
        let mut row = Row { model: name.to_string(), threads, isa: String::new(), sinter_ms: vec![], ort_ms: vec![] };
        for round in 0..o.rounds {
            // Alternate which side goes first so that drift does not favour one.
            let sides: [bool; 2] = if round % 2 == 0 { [true, false] } else { [false, true] };
            for sinter_side in sides {
                if sinter_side {
                    let r = run_json(&mut sinter_command(&t.sinter, &plan, &inputs, threads, o))?;
                    if r["threads"].as_u64() != Some(threads as u64) {
                        bail!("sinter bench ran {} threads, asked for {threads}", r["threads"]);
                    }
                    let isa = r["isa"].as_str().context("sinter bench --json has no isa")?;
                    if !row.isa.is_empty() && row.isa != isa {
                        bail!("the ISA tier changed between rounds: {} then {isa}", row.isa);
                    }
                    row.isa = isa.to_string();
                    row.sinter_ms.push(median_ms(&r)?);
                } else {
                    let r = run_json(&mut ort_command(&t.python, &t.script, model, &inputs, threads, o))?;
                    row.ort_ms.push(median_ms(&r)?);
                }
            }
            eprintln!(
                "{name}: threads {threads} round {}/{}: sinter {:.3} ms, onnxruntime {:.3} ms",
                round + 1,
                o.rounds,
                row.sinter_ms.last().copied().unwrap_or(f64::NAN),
                row.ort_ms.last().copied().unwrap_or(f64::NAN)
            );
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Runs the comparison; `models_dir` resolves `--all` (the prepared test data).
pub fn run(o: &Options, t: &Tools, models_dir: Option<&Path>) -> Result<()> {
    let models: Vec<(String, PathBuf, Option<String>)> = match (&o.target, models_dir) {
        (Target::Model { path, shapes }, _) => {
            if !path.is_file() {
                bail!("{} is not a file", path.display());
            }
            vec![(model_name(path), path.clone(), shapes.clone())]
        }
        (Target::All, Some(dir)) => ALL_MODELS
            .iter()
            .map(|(name, shapes)| (name.to_string(), dir.join(name).join("model.onnx"), Some(shapes.to_string())))
            .collect(),
        (Target::All, None) => bail!("--all needs the prepared test data"),
    };
    let version = {
        let out =
            Command::new(&t.python).args(["-c", "import onnxruntime; print(onnxruntime.__version__)"]).output()?;
        if !out.status.success() {
            bail!("onnxruntime is not importable in {}: {}", t.python.display(), String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let mut rows = Vec::new();
    for (name, path, shapes) in &models {
        rows.extend(compare_model(t, name, path, shapes.as_deref(), o)?);
    }
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report_json(&rows, o, &version))?);
    } else {
        print!("{}", table(&rows));
        println!(
            "sinter/ort below 1: Sinter is faster. Each latency is the median of {} per-round medians \
             ({} runs after {} warm-up runs each, sides alternating); onnxruntime {version}: ORT_ENABLE_ALL, \
             intra_op_num_threads = threads, inter_op_num_threads = 1, sequential",
            o.rounds, o.iterations, o.warmup
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn row(model: &str, threads: usize, sinter: &[f64], ort: &[f64]) -> Row {
        Row { model: model.into(), threads, isa: "avx512".into(), sinter_ms: sinter.to_vec(), ort_ms: ort.to_vec() }
    }

    #[test]
    fn parses_arguments() {
        let o = parse(&args("m.onnx --shapes x:1x3x8x8 --threads 1,2 --iterations 7 --warmup 0 --json")).unwrap();
        assert_eq!(o.target, Target::Model { path: "m.onnx".into(), shapes: Some("x:1x3x8x8".into()) });
        assert_eq!((o.threads, o.iterations, o.warmup, o.rounds, o.json), (vec![1, 2], 7, 0, 3, true));
        assert_eq!(parse(&args("--all --threads 2")).unwrap().target, Target::All);
        for (bad, needle) in [
            ("", "no model"),
            ("m.onnx --all", "not both"),
            ("--all --shapes x:1", "one model"),
            ("m.onnx --threads 0", "at least 1"),
            ("m.onnx --threads 1,x", "at least 1"),
            ("m.onnx --iterations", "needs a value"),
            ("m.onnx --iterations 0", "at least 1"),
            ("m.onnx --rounds -1", "not a non-negative integer"),
            ("m.onnx --bogus", "unknown option"),
            ("a.onnx b.onnx", "one model"),
        ] {
            let e = parse(&args(bad)).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad:?}: {e}");
        }
    }

    #[test]
    fn medians_and_ratio() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
        let r = row("resnet50", 1, &[40.0, 30.0, 50.0], &[20.0, 24.0, 22.0]);
        assert_eq!((r.sinter_median(), r.ort_median()), (40.0, 22.0));
        assert!((r.ratio() - 40.0 / 22.0).abs() < 1e-12);
    }

    #[test]
    fn table_lists_every_row() {
        let rows = [row("resnet50", 1, &[36.0], &[40.0]), row("ppocr_cls", 2, &[1.5, 0.5], &[0.5])];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        let cols = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(cols(lines[0]), ["model", "threads", "isa", "sinter", "ms", "ort", "ms", "sinter/ort"]);
        assert_eq!(cols(lines[1]), ["resnet50", "1", "avx512", "36.000", "40.000", "0.90"]);
        assert_eq!(cols(lines[2]), ["ppocr_cls", "2", "avx512", "1.000", "0.500", "2.00"]);
        // Columns line up: every row as wide as the header.
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{t}");
    }

    #[test]
    fn json_report_has_medians_and_ratio() {
        let o = parse(&args("--all")).unwrap();
        let v = report_json(&[row("mobilenetv2", 2, &[3.0, 5.0, 4.0], &[2.0, 2.0, 8.0])], &o, "1.32.0");
        let r = &v["results"][0];
        assert_eq!(r["model"], "mobilenetv2");
        assert_eq!(r["isa"], "avx512");
        assert_eq!((r["sinter_median_ms"].as_f64(), r["ort_median_ms"].as_f64()), (Some(4.0), Some(2.0)));
        assert_eq!(r["ratio"].as_f64(), Some(2.0));
        assert_eq!(r["sinter_round_medians_ms"], json!([3.0, 5.0, 4.0]));
        assert_eq!((v["onnxruntime"].as_str(), v["rounds"].as_u64()), (Some("1.32.0"), Some(3)));
    }

    #[test]
    fn commands_pass_the_same_inputs_and_settings() {
        let o = parse(&args("m.onnx --iterations 9 --warmup 2")).unwrap();
        let inputs = vec![("x".to_string(), PathBuf::from("/d/0_x.npy"))];
        let argv = |c: &Command| c.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>();
        let ort = ort_command(Path::new("py"), Path::new("tools/ort_bench.py"), Path::new("m.onnx"), &inputs, 2, &o);
        assert_eq!(
            argv(&ort),
            [
                "tools/ort_bench.py",
                "m.onnx",
                "--input",
                "x=/d/0_x.npy",
                "--threads",
                "2",
                "--warmup",
                "2",
                "--iterations",
                "9"
            ]
        );
        let s = sinter_command(Path::new("sinter"), Path::new("p.plan"), &inputs, 2, &o);
        assert_eq!(
            argv(&s),
            [
                "bench",
                "p.plan",
                "--input",
                "x=/d/0_x.npy",
                "--threads",
                "2",
                "--warmup",
                "2",
                "--iterations",
                "9",
                "--json"
            ]
        );
    }

    #[test]
    fn names_and_reports() {
        assert_eq!(model_name(Path::new(".cache/testdata/resnet50/model.onnx")), "resnet50");
        assert_eq!(model_name(Path::new("models/cls.onnx")), "cls");
        assert_eq!(file_name(3, "a/b:c"), "3_a_b_c.npy");
        assert_eq!(median_ms(&json!({"latency_ms": {"median": 1.5}})).unwrap(), 1.5);
        assert!(median_ms(&json!({"latency_ms": {}})).is_err());
        assert!(median_ms(&json!({"latency_ms": {"median": 0.0}})).is_err());
    }

    #[test]
    fn random_inputs_are_seeded() {
        let a = random(DType::F32, &[2, 3], &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        let b = random(DType::F32, &[2, 3], &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
        let i = random(DType::I64, &[100], &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        assert!(i.as_slice::<i64>().unwrap().iter().all(|v| (0..10).contains(v)));
    }

    /// The real onnxruntime side on the bundled model: the script runs in the project venv
    /// and prints the report `compare` reads. Skipped without the venv unless test data is
    /// required (`cargo xtask test`).
    #[test]
    fn ort_bench_script_runs_in_the_venv() {
        let root = crate::root();
        let python = root.join(".cache/venv/bin/python");
        if !python.is_file() {
            assert!(std::env::var_os("SINTER_REQUIRE_TESTDATA").is_none(), "{} is missing", python.display());
            eprintln!("skipped: no {} (run `cargo xtask testdata`)", python.display());
            return;
        }
        let dir = std::env::temp_dir().join(format!("sinter-xtask-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let x = dir.join("0_x.npy");
        let t = random(DType::F32, &[1, 3, 48, 192], &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        sinter_npy::write(&x, &t).unwrap();
        let model = root.join("models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
        let o = parse(&args("m.onnx --iterations 2 --warmup 1")).unwrap();
        let script = root.join("tools/ort_bench.py");
        let r = run_json(&mut ort_command(&python, &script, &model, &[("x".into(), x.clone())], 1, &o)).unwrap();
        assert!(median_ms(&r).is_ok(), "{r}");
        assert_eq!(
            (r["threads"].as_u64(), r["iterations"].as_u64(), r["warmup"].as_u64()),
            (Some(1), Some(2), Some(1))
        );
        // A wrong input name is a clear error from the script, surfaced by run_json.
        let e = run_json(&mut ort_command(&python, &script, &model, &[("y".into(), x)], 1, &o)).unwrap_err();
        assert!(format!("{e:#}").contains("has no input 'y'"), "{e:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
