//! Real models against onnxruntime: PP-OCRv4 det and ppocr cls (pretrained, from the
//! rapidocr wheel), ResNet-50, MobileNetV2 and a BERT encoder (torch exports, seeded
//! random weights). `SINTER_MODELS_DIR` is prepared by `tools/prepare_testdata.py`
//! (`cargo xtask test`): per model a `model.json`, the ONNX file, and per case the
//! inputs and onnxruntime's outputs as `.npy`.

mod common;

use common::{compare, data_dir, ErrStats, Tol};
use serde_json::Value;
use sinter_builder::{build_onnx, BuildOptions};
use sinter_runtime::Engine;
use std::path::Path;

/// FP32 tolerance against onnxruntime: |ours − ort| ≤ 1e-4 + 1e-3·|ort|.
const TOL: Tol = Tol { atol: 1e-4, rtol: 1e-3 };

fn check_model(dir: &Path, no_optimize: bool) -> Result<ErrStats, String> {
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let shapes = spec["shapes"].as_object().ok_or("model.json: no shapes")?;
    let mut opts = BuildOptions { no_optimize, ..Default::default() };
    for (name, dims) in shapes {
        let dims: Vec<usize> =
            dims.as_array().ok_or("shape")?.iter().filter_map(|d| d.as_u64()).map(|d| d as usize).collect();
        opts.shapes.insert(name.clone(), dims);
    }
    let model = dir.join(spec["model"].as_str().ok_or("model.json: no model")?);
    let (plan, report) = build_onnx(&model, &opts).map_err(|e| format!("build: {e}"))?;
    println!(
        "  {} nodes -> {} kernels, weights {} B, arena {} B (activations {} B)",
        report.model_nodes, report.kernels, report.weights_bytes, report.arena_bytes, report.activations_bytes
    );
    // Every kernel records its implementation; convolutions all take the fast kernel.
    let mut by_impl = std::collections::BTreeMap::<&str, usize>::new();
    for k in &plan.meta().kernels {
        *by_impl.entry(k.implementation.as_str()).or_default() += 1;
        if matches!(k.op_type.as_str(), "Conv" | "FusedConv") && k.implementation != "cpu.conv2d" {
            return Err(format!("{} runs {}: {:?}", k.op_type, k.implementation, k.fallback_reason));
        }
    }
    println!("  kernels by implementation: {by_impl:?}");
    for f in &report.fallbacks {
        println!("  fallback: {} '{}': {}", f.op_type, f.node, f.reason);
    }
    // The saved plan must behave exactly like the in-memory one.
    let file = std::env::temp_dir().join(format!(
        "sinter-test-{}-{}.plan",
        std::process::id(),
        dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    plan.save(&file).map_err(|e| e.to_string())?;
    let loaded = Engine::load(&file).map_err(|e| format!("load: {e}"))?;
    let _ = std::fs::remove_file(&file);
    let in_memory = Engine::new(plan).map_err(|e| format!("prepare: {e}"))?;

    let mut total = ErrStats::default();
    for case in spec["cases"].as_array().ok_or("model.json: no cases")? {
        let case = case.as_str().ok_or("case")?;
        let mut inputs = Vec::new();
        for inp in spec["inputs"].as_array().ok_or("inputs")? {
            let name = inp["name"].as_str().ok_or("input name")?;
            let file = dir.join(case).join(inp["file"].as_str().ok_or("input file")?);
            inputs.push((name, sinter_npy::read(&file).map_err(|e| e.to_string())?));
        }
        let ours = loaded.run(&inputs).map_err(|e| format!("{case}: run: {e}"))?;
        let again = in_memory.run(&inputs).map_err(|e| format!("{case}: run: {e}"))?;
        for (o, spec_o) in spec["outputs"].as_array().ok_or("outputs")?.iter().enumerate() {
            let (name, t) = ours.get(o).ok_or("missing output")?;
            if again[o].1 != *t {
                return Err(format!("{case}: output '{name}' differs between saved and in-memory plans"));
            }
            let file = dir.join(case).join(spec_o["file"].as_str().ok_or("output file")?);
            let expected = sinter_npy::read(&file).map_err(|e| e.to_string())?;
            let s = compare(t, &expected, TOL).map_err(|e| format!("{case}: output '{name}': {e}"))?;
            println!("  {case} {name}: max abs {:.3e}, max rel {:.3e}", s.max_abs, s.max_rel);
            total.merge(s);
        }
    }
    Ok(total)
}

fn run_model(name: &str) {
    let Some(root) = data_dir("SINTER_MODELS_DIR", "real-model checks") else { return };
    let dir = root.join(name);
    // The optimized and the unoptimized plan must both match onnxruntime.
    for no_optimize in [false, true] {
        let pipeline = if no_optimize { "unoptimized" } else { "optimized" };
        println!("{name} ({pipeline}):");
        match check_model(&dir, no_optimize) {
            Ok(s) => println!(
                "{name} ({pipeline}): vs onnxruntime max abs error {:.3e}, max rel error {:.3e} ({:.3e} where |ort| >= 1e-3)",
                s.max_abs, s.max_rel, s.max_rel_significant
            ),
            Err(e) => panic!("{name} ({pipeline}): {e}"),
        }
    }
}

#[test]
fn ppocr_cls_matches_onnxruntime() {
    run_model("ppocr_cls");
}

#[test]
fn ppocr_det_matches_onnxruntime() {
    run_model("ppocr_det");
}

#[test]
fn resnet50_matches_onnxruntime() {
    run_model("resnet50");
}

#[test]
fn mobilenetv2_matches_onnxruntime() {
    run_model("mobilenetv2");
}

#[test]
fn bert_matches_onnxruntime() {
    run_model("bert");
}
