//! The arena plan on a real model: tensors alive at the same time never share bytes,
//! and reuse makes the arena much smaller than the sum of all activations.

use sinter_builder::{build_onnx, BuildOptions};
use sinter_plan::Location;
use std::path::Path;

#[test]
fn live_tensors_never_share_bytes() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let opts = BuildOptions { shapes: [("x".to_string(), vec![1, 3, 48, 192])].into(), ..Default::default() };
    let (plan, report) = build_onnx(&model, &opts).expect("build");
    let meta = plan.meta();

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
        for i in kd.inputs.iter().flatten() {
            if let Some(l) = &mut life[*i as usize] {
                l.1 = l.1.max(k + 1);
            }
        }
    }
    for b in &meta.outputs {
        if let Some(l) = &mut life[b.tensor as usize] {
            l.1 = meta.kernels.len() + 1;
        }
    }
    let arena: Vec<(usize, u64, u64, (usize, usize))> = meta
        .tensors
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t.location {
            Location::Arena { offset, bytes } if bytes > 0 => Some((i, offset, bytes, life[i]?)),
            _ => None,
        })
        .collect();
    assert!(arena.len() > 100);
    for (a, &(ia, oa, ba, la)) in arena.iter().enumerate() {
        assert_eq!(oa % 64, 0, "tensor {ia} is not 64-byte aligned");
        assert!(oa + ba <= meta.arena_bytes);
        for &(ib, ob, bb, lb) in &arena[a + 1..] {
            let alive_together = la.0 <= lb.1 && lb.0 <= la.1;
            let share_bytes = oa < ob + bb && ob < oa + ba;
            assert!(!(alive_together && share_bytes), "tensors {ia} {la:?} and {ib} {lb:?} overlap in time and memory");
        }
    }
    assert!(report.arena_bytes * 5 < report.activations_bytes, "{report:?}");
}
