//! The `sinter` command as users and scripts see it: outputs, JSON contracts, and a
//! clear error with a non-zero exit (never a panic) for every kind of bad input.

use sinter_ir::{DType, Tensor};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn sinter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sinter")).args(args).output().expect("run sinter")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sinter-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

/// Asserts a clean failure: non-zero exit, one `error:` message containing `needle`, no panic.
fn fails_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.contains("error:"), "no error message: {err}");
    assert!(err.to_lowercase().contains(&needle.to_lowercase()), "'{needle}' not in: {err}");
}

/// The bundled model built once for all tests.
fn plan() -> &'static Path {
    static PLAN: OnceLock<PathBuf> = OnceLock::new();
    PLAN.get_or_init(|| {
        let p = tmp("cls.plan");
        let out = sinter(&["build", BUNDLED, "-o", p.to_str().unwrap(), "--shapes", "x:1x3x48x192"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for field in ["nodes in model", "kernels in plan", "weight bytes", "arena bytes", "build time"] {
            assert!(stdout.contains(field), "build summary lacks '{field}': {stdout}");
        }
        p
    })
}

fn corrupt(name: &str, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(plan()).unwrap();
    f(&mut bytes);
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn inspect_json_contract() {
    let out = sinter(&["inspect", plan().to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["inputs"][0]["name"], "x");
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 3, 48, 192]));
    assert_eq!(v["inputs"][0]["dtype"], "f32");
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([1, 2]));
    let kernels = v["kernels"].as_array().expect("kernels array");
    assert!(!kernels.is_empty());
    assert!(kernels
        .iter()
        .all(|k| k["nodes"].as_array().is_some_and(|n| !n.is_empty() && n[0]["op_type"].is_string())));
    assert!(v["weights_bytes"].as_u64().unwrap() > 400_000);
    assert!(v["arena_bytes"].as_u64().unwrap() > 0);
    // Dense convolutions carry weights packed at build time and name their tactic;
    // depthwise convolutions read theirs as they are.
    let tactic = |k: &serde_json::Value| k["tactic"].as_str().map(str::to_string);
    assert!(kernels.iter().any(|k| tactic(k).as_deref() == Some("gemm")));
    assert!(kernels.iter().filter(|k| k["op_type"] == "FusedConv").any(|k| tactic(k).is_none()));
    // Every kernel names its implementation and precision; this model's convolutions all
    // run the convolution kernel, and no node fell back to the reference evaluator.
    assert!(kernels.iter().all(|k| k["impl"].is_string() && k["precision"] == "f32"));
    let convs = kernels.iter().filter(|k| k["op_type"].as_str().is_some_and(|o| o.ends_with("Conv")));
    assert!(convs.clone().count() > 10 && convs.clone().all(|k| k["impl"] == "cpu.conv2d"));
    assert!(kernels.iter().all(|k| k["fallback_reason"].is_null()), "{kernels:?}");
}

#[test]
fn inspect_reads_no_weights() {
    // A plan cut inside its weights still inspects (header + schedule only) but does not run.
    let cut = corrupt("cut-weights.plan", |b| b.truncate(b.len() - 1000));
    let out = sinter(&["inspect", cut.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    fails_with(&sinter(&["run", cut.to_str().unwrap()]), "truncated");
}

#[test]
fn run_writes_sanitised_npy_outputs() {
    let dir = tmp("outs");
    let input = tmp("x.npy");
    let t = Tensor::from_vec(&[1, 3, 48, 192], vec![0.25f32; 3 * 48 * 192]).unwrap();
    sinter_npy::write(&input, &t).unwrap();
    let arg = format!("x={}", input.display());
    let out = sinter(&["run", plan().to_str().unwrap(), "--input", &arg, "--output-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = dir.join("save_infer_model_scale_0.tmp_1.npy");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&file.display().to_string()), "mapping not printed");
    let probs = sinter_npy::read(&file).unwrap();
    assert_eq!(probs.shape(), &[1, 2]);
    let p = probs.as_slice::<f32>().unwrap();
    assert!((p[0] + p[1] - 1.0).abs() < 1e-5, "softmax output sums to 1: {p:?}");
}

#[test]
fn bench_json_contract() {
    let bench = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["bench", plan().to_str().unwrap(), "--warmup", "1", "--iterations", "4", "--json"];
        args.extend_from_slice(extra);
        let out = sinter(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("one JSON object")
    };
    for threads in [1, 2, 3] {
        let v = bench(&["--threads", &threads.to_string()]);
        for key in ["load_ms", "first_run_ms", "first_inference_ms", "throughput_per_s"] {
            assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {v}");
        }
        // Time to first inference counts the plan load.
        assert!(v["first_inference_ms"].as_f64() >= v["load_ms"].as_f64(), "{v}");
        for key in ["min", "mean", "median", "p90", "p99", "max"] {
            assert!(v["latency_ms"][key].as_f64().is_some_and(|x| x > 0.0), "latency {key}: {v}");
        }
        assert!(v["latency_ms"]["min"].as_f64() <= v["latency_ms"]["median"].as_f64());
        assert!(v["latency_ms"]["median"].as_f64() <= v["latency_ms"]["max"].as_f64());
        assert_eq!(v["threads"], threads, "{v}");
        assert_eq!(v["contexts"], 1, "{v}");
        assert_eq!(v["iterations"], 4, "{v}");
        let isa = v["isa"].as_str().unwrap_or_default();
        assert!(["scalar", "avx2", "avx512", "neon"].contains(&isa), "isa: {v}");
    }
    // Two concurrent contexts share the iterations; the default thread count is positive.
    let v = bench(&["--contexts", "2"]);
    assert_eq!(v["contexts"], 2, "{v}");
    assert!(v["threads"].as_u64().is_some_and(|t| t >= 1), "{v}");
    assert_eq!(v["iterations"], 4, "{v}");
    // A forced tier is the one reported.
    let out = Command::new(env!("CARGO_BIN_EXE_sinter"))
        .args(["bench", plan().to_str().unwrap(), "--warmup", "0", "--iterations", "1", "--json"])
        .env("SINTER_CPU", "scalar")
        .output()
        .expect("run sinter");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["isa"], "scalar", "{v}");
}

#[test]
fn bench_rejects_zero_counts() {
    for flag in ["--threads", "--contexts", "--iterations"] {
        fails_with(&sinter(&["bench", plan().to_str().unwrap(), flag, "0"]), "at least 1");
    }
}

#[test]
fn bad_plans_are_clear_errors() {
    let len = std::fs::read(plan()).unwrap().len();
    for cut in [0, 7, 64, 127, 128, 200, len / 2, len - 1] {
        let p = corrupt(&format!("cut{cut}.plan"), |b| b.truncate(cut));
        let out = sinter(&["run", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(!out.status.success() && !err.contains("panicked"), "cut {cut}: {err}");
        assert!(err.contains("truncated") || err.contains("not a sinter plan"), "cut {cut}: {err}");
    }
    fails_with(&sinter(&["run", corrupt("magic.plan", |b| b[0] ^= 0xff).to_str().unwrap()]), "not a Sinter plan");
    fails_with(&sinter(&["run", corrupt("flip.plan", |b| *b.last_mut().unwrap() ^= 1).to_str().unwrap()]), "checksum");
    fails_with(
        &sinter(&[
            "inspect",
            corrupt("newer.plan", |b| b[8..12].copy_from_slice(&99u32.to_le_bytes())).to_str().unwrap(),
        ]),
        "newer",
    );
    fails_with(&sinter(&["inspect", tmp("does-not-exist.plan").to_str().unwrap()]), "does-not-exist.plan");
}

#[test]
fn bad_onnx_files_are_clear_errors() {
    let garbage = tmp("garbage.onnx");
    std::fs::write(&garbage, b"this is not protobuf \xff\xff\xff\xff").unwrap();
    let out_plan = tmp("never.plan");
    let o = out_plan.to_str().unwrap();
    fails_with(&sinter(&["build", garbage.to_str().unwrap(), "-o", o]), "not an ONNX model");
    fails_with(&sinter(&["build", &format!("{FIXTURES}/dangling.onnx"), "-o", o]), "ghost");
    let out = sinter(&["build", &format!("{FIXTURES}/unsupported.onnx"), "-o", o]);
    fails_with(&out, "NonMaxSuppression");
    fails_with(&out, "loop_0");
    fails_with(&sinter(&["build", BUNDLED, "-o", o]), "--shapes x:");
    fails_with(&sinter(&["build", BUNDLED, "-o", o, "--shapes", "y:1x3x48x192"]), "no input 'y'");
    fails_with(&sinter(&["build", BUNDLED, "-o", o, "--shapes", "x:1x4x48x192"]), "does not fit");
    assert!(!out_plan.exists(), "no plan is written on failure");
}

#[test]
fn bad_npy_inputs_are_clear_errors() {
    let p = plan().to_str().unwrap();
    let wrong_dtype = tmp("i32.npy");
    sinter_npy::write(&wrong_dtype, &Tensor::zeros(DType::I32, &[1, 3, 48, 192])).unwrap();
    fails_with(&sinter(&["run", p, "--input", &format!("x={}", wrong_dtype.display())]), "i32");
    let wrong_shape = tmp("shape.npy");
    sinter_npy::write(&wrong_shape, &Tensor::zeros(DType::F32, &[1, 3, 48, 190])).unwrap();
    fails_with(&sinter(&["run", p, "--input", &format!("x={}", wrong_shape.display())]), "[1, 3, 48, 190]");
    let f64_file = tmp("f64.npy");
    std::fs::write(&f64_file, b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }                                                                           \n\0\0\0\0\0\0\0\0").unwrap();
    fails_with(&sinter(&["run", p, "--input", &format!("x={}", f64_file.display())]), "<f8");
    let truncated = tmp("trunc.npy");
    std::fs::write(&truncated, &std::fs::read(&wrong_shape).unwrap()[..200]).unwrap();
    fails_with(&sinter(&["run", p, "--input", &format!("x={}", truncated.display())]), "trunc.npy");
    fails_with(&sinter(&["run", p, "--input", &format!("nope={}", wrong_shape.display())]), "no input 'nope'");
    fails_with(&sinter(&["run", p, "--input", "x"]), "NAME=FILE");
}

#[test]
fn optimizer_is_explained_and_controllable() {
    let p = plan().to_str().unwrap();
    let out = sinter(&["inspect", p, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let rewrites = v["rewrites"].as_array().expect("rewrites array");
    assert!(rewrites.iter().any(|r| r["rule"] == "epilogue_activation"), "no epilogue_activation rewrite");
    assert!(v["refusals"]
        .as_array()
        .is_some_and(|r| r.iter().all(|x| x["reason"].as_str().is_some_and(|s| !s.is_empty()))));
    let fused =
        v["kernels"].as_array().unwrap().iter().filter(|k| k["nodes"].as_array().is_some_and(|n| n.len() > 1)).count();
    assert!(fused > 10, "only {fused} kernels cover several model nodes");

    let out = sinter(&["inspect", p, "--dot"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = std::fs::read_to_string(plan().with_extension("before.dot")).unwrap();
    let after = std::fs::read_to_string(plan().with_extension("after.dot")).unwrap();
    assert!(before.starts_with("digraph") && after.starts_with("digraph"));
    assert!(after.contains("FusedConv\\n[Conv + "), "fused kernels are labelled with what they contain");
    assert!(before.matches("->").count() > after.matches("->").count());

    let out = sinter(&["build", "--list-rules"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rules = String::from_utf8_lossy(&out.stdout).to_string();
    for line in ["fold:", "  fold_constants", "simplify:", "  fold_mul_add_into_conv", "fuse:", "  matmul_bias"] {
        assert!(rules.lines().any(|l| l == line), "no line {line:?} in --list-rules:\n{rules}");
    }
    for rule in ["epilogue_activation", "epilogue_add", "elementwise_chain", "horizontal_matmul"] {
        assert!(rules.contains(rule), "{rule} missing from --list-rules:\n{rules}");
    }

    let o = tmp("opt.plan");
    let o = o.to_str().unwrap();
    fails_with(
        &sinter(&["build", BUNDLED, "-o", o, "--shapes", "x:1x3x48x192", "--disable-rule", "nope"]),
        "unknown rule 'nope'",
    );
    fails_with(&sinter(&["build", BUNDLED, "-o", o, "--shapes", "x:1x3x48x192", "--max-memory", "1000"]), "1000 bytes");
    let kernels = |args: &[&str]| {
        let mut a = vec!["build", BUNDLED, "-o", o, "--shapes", "x:1x3x48x192"];
        a.extend_from_slice(args);
        let out = sinter(&a);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line = text.lines().find(|l| l.contains("kernels in plan")).expect("summary").to_string();
        line.split_whitespace().last().unwrap().parse::<usize>().unwrap()
    };
    let (all, none, two) = (kernels(&[]), kernels(&["--no-optimize"]), kernels(&["--max-steps", "2"]));
    assert!(all < two && two <= none, "optimized {all}, 2 steps {two}, unoptimized {none}");
    assert!(kernels(&["--disable-rule", "epilogue_activation"]) > all);
}
