//! The arena plan on real models: tensors alive at the same time never share bytes unless
//! they belong to one alias group (a Concat's output and its inputs, a Split's input and
//! its parts), and reuse makes the arena much smaller than the sum of all activations.

use sinter_builder::{build_onnx, BuildOptions, BuildReport};
use sinter_plan::{Location, Plan};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Checks the arena invariants of `plan`; returns the number of arena tensors.
fn check_arena(plan: &Plan, report: &BuildReport) -> usize {
    let meta = plan.meta();
    let root: HashMap<u32, u32> = report.aliased.iter().copied().collect();
    let group = |id: usize| root.get(&(id as u32)).map_or(id, |&r| r as usize);

    // Lifetimes recomputed from the schedule: step 0 writes the inputs, kernel k runs at step k+1.
    let n = meta.tensors.len();
    let mut life: Vec<Option<(usize, usize)>> = vec![None; n];
    for b in &meta.inputs {
        life[b.tensor as usize] = Some((0, 0));
    }
    for (k, kd) in meta.kernels.iter().enumerate() {
        for &o in &kd.outputs {
            life[o as usize] = Some((k + 1, k + 1));
        }
        // A tensor read but never written by a kernel is an aliased buffer (or an input):
        // its members' writes start its life.
        for i in kd.inputs.iter().flatten() {
            let l = life[*i as usize].get_or_insert((k + 1, k + 1));
            l.1 = l.1.max(k + 1);
        }
    }
    for b in &meta.outputs {
        let end = meta.kernels.len() + 1;
        life[b.tensor as usize].get_or_insert((end, end)).1 = end;
    }
    // A group is alive whenever one of its members is.
    let mut group_life: HashMap<usize, (usize, usize)> = HashMap::new();
    for (i, l) in life.iter().enumerate() {
        if let Some((s, e)) = *l {
            let g = group_life.entry(group(i)).or_insert((s, e));
            *g = (g.0.min(s), g.1.max(e));
        }
    }
    let arena: Vec<(usize, u64, u64)> = meta
        .tensors
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t.location {
            Location::Arena { offset, bytes } if bytes > 0 => Some((i, offset, bytes)),
            _ => None,
        })
        .collect();
    for &(i, o, b) in &arena {
        let g = group(i);
        if g == i {
            assert_eq!(o % 64, 0, "group root {i} is not 64-byte aligned");
        } else {
            let t = &meta.tensors[i];
            assert_eq!(o % t.dtype.size() as u64, 0, "tensor {i} is not element-aligned");
            let r = meta.tensors[g].location;
            assert!(r.offset() <= o && o + b <= r.offset() + r.bytes(), "member {i} lies outside its root {g}");
        }
        assert!(o + b <= meta.arena_bytes);
    }
    for (a, &(ia, oa, ba)) in arena.iter().enumerate() {
        for &(ib, ob, bb) in &arena[a + 1..] {
            let (ga, gb) = (group(ia), group(ib));
            if ga == gb {
                continue;
            }
            let (Some(la), Some(lb)) = (group_life.get(&ga), group_life.get(&gb)) else { continue };
            let alive_together = la.0 <= lb.1 && lb.0 <= la.1;
            let share_bytes = oa < ob + bb && ob < oa + ba;
            assert!(!(alive_together && share_bytes), "tensors {ia} {la:?} and {ib} {lb:?} overlap in time and memory");
        }
    }
    arena.len()
}

#[test]
fn live_tensors_never_share_bytes() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let opts = BuildOptions { shapes: [("x".to_string(), vec![1, 3, 48, 192])].into(), ..Default::default() };
    let (plan, report) = build_onnx(&model, &opts).expect("build");
    // Fusion leaves well under one tensor per model node; still a real schedule.
    assert!(check_arena(&plan, &report) > 50);
    assert!(report.arena_bytes * 5 < report.activations_bytes, "{report:?}");
}

/// The same invariants on the real-model test data (skipped without `SINTER_MODELS_DIR`),
/// printing the numbers of each build.
#[test]
fn real_models_arena_invariants() {
    let Some(dir) = std::env::var_os("SINTER_MODELS_DIR").map(PathBuf::from) else { return };
    for name in ["ppocr_det", "ppocr_cls", "resnet50", "mobilenetv2", "bert"] {
        let Ok(json) = std::fs::read_to_string(dir.join(name).join("model.json")) else { continue };
        let shapes = parse_shapes_json(&json);
        let opts = BuildOptions { shapes, ..Default::default() };
        let (plan, report) = build_onnx(&dir.join(name).join("model.onnx"), &opts).expect("build");
        check_arena(&plan, &report);
        println!(
            "{name}: {} kernels, {} concats and {} splits eliminated, activations {} bytes, arena {} bytes",
            report.kernels,
            report.concats_eliminated,
            report.splits_eliminated,
            report.activations_bytes,
            report.arena_bytes
        );
        println!(
            "  horizontal_conv applied {} times, horizontal_matmul {} times",
            report.optimizer.count("horizontal_conv"),
            report.optimizer.count("horizontal_matmul")
        );
        for r in report.optimizer.refused.iter().filter(|r| r.rule.starts_with("horizontal")) {
            println!("  refused {}: {}", r.node, r.reason);
        }
        let concats = plan.meta().kernels.iter().filter(|k| k.op_type == "Concat" || k.op_type == "Split");
        for k in concats {
            let shapes: Vec<_> = k.outputs.iter().map(|&o| &plan.meta().tensors[o as usize].shape).collect();
            println!("  kept {} {:?} -> {shapes:?}", k.op_type, k.nodes.first().map(|n| &n.name));
        }
    }
}

/// The `"shapes": {"name": [dims]}` object of a test model's model.json (a tiny reader:
/// the builder has no JSON dependency).
fn parse_shapes_json(json: &str) -> HashMap<String, Vec<usize>> {
    let mut out = HashMap::new();
    let Some(start) = json.find("\"shapes\"") else { return out };
    let rest = &json[start + 8..];
    let Some(open) = rest.find('{') else { return out };
    let Some(close) = rest.find('}') else { return out };
    let body = &rest[open + 1..close];
    for entry in body.split(']') {
        let Some((name, dims)) = entry.split_once('[') else { continue };
        let name = name.trim_matches(|c: char| c == ',' || c == ':' || c.is_whitespace() || c == '"');
        let dims = dims.split(',').filter_map(|d| d.trim().parse().ok()).collect();
        out.insert(name.to_string(), dims);
    }
    out
}
