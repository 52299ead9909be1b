//! One-node plans for the kernel tests: the reference op of `sinter-ir` and the runtime
//! kernel the builder and runtime choose for the same node.

#![allow(dead_code)]

use sinter_builder::{build, BuildOptions};
use sinter_ir::{Attrs, DType, Dim, Fact, Graph, Node, Tensor, ValueInfo, View, ViewMut};
use sinter_runtime::{Engine, RuntimeOptions};
use std::sync::Arc;

pub const OPSET: i64 = 17;

/// Deterministic values in [lo, lo + 2) (a 64-bit LCG), so failures reproduce.
pub fn data(len: usize, seed: u64, lo: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 + lo
        })
        .collect()
}

/// A tensor of `shape` filled by [`data`].
pub fn tensor(shape: &[usize], seed: u64, lo: f32) -> Tensor {
    Tensor::from_vec(shape, data(shape.iter().product(), seed, lo)).expect("test tensor")
}

/// The reference op's first output for named inputs in node order (`None`: omitted).
pub fn reference(op_type: &str, attrs: &Attrs, opset: i64, inputs: &[(String, Option<Tensor>)]) -> Tensor {
    reference_outputs(op_type, attrs, opset, inputs, 1).remove(0)
}

/// The reference op's first `count` outputs.
pub fn reference_outputs(
    op_type: &str,
    attrs: &Attrs,
    opset: i64,
    inputs: &[(String, Option<Tensor>)],
    count: usize,
) -> Vec<Tensor> {
    let op = sinter_ir::ops::build(op_type, attrs, opset).expect("op builds");
    let facts: Vec<Option<Fact>> =
        inputs.iter().map(|(_, t)| t.as_ref().map(|t| Fact::new(t.dtype(), t.shape().to_vec()))).collect();
    let out = op.infer(&facts.iter().map(Option::as_ref).collect::<Vec<_>>()).expect("infer");
    let mut ys: Vec<Tensor> = out[..count].iter().map(|f| Tensor::zeros(f.dtype, &f.shape)).collect();
    let views: Vec<Option<View>> = inputs.iter().map(|(_, t)| t.as_ref().map(Tensor::view)).collect();
    let mut outs: Vec<ViewMut> = ys.iter_mut().map(Tensor::view_mut).collect();
    op.eval(&views, &mut outs).expect("reference eval");
    ys
}

/// The output of a one-node plan (unoptimized, tactics by rule) run on `threads`; the
/// inputs named in `constants` become initializers, the others are fed.
pub fn runtime(
    op_type: &str,
    attrs: &Attrs,
    opset: i64,
    inputs: &[(String, Option<Tensor>)],
    constants: &[&str],
    threads: usize,
) -> Tensor {
    runtime_outputs(op_type, attrs, opset, inputs, constants, threads, &["y"]).remove(0)
}

/// [`runtime`] with the node's outputs named `outputs`, all of them graph outputs.
pub fn runtime_outputs(
    op_type: &str,
    attrs: &Attrs,
    opset: i64,
    inputs: &[(String, Option<Tensor>)],
    constants: &[&str],
    threads: usize,
    outputs: &[&str],
) -> Vec<Tensor> {
    let node = Node::new(
        "node",
        op_type,
        opset,
        attrs.clone(),
        inputs.iter().map(|(n, _)| n.clone()).collect(),
        outputs.iter().map(|n| n.to_string()).collect(),
    )
    .expect("node builds");
    let present = inputs.iter().filter_map(|(n, t)| t.as_ref().map(|t| (n.as_str(), t)));
    let (consts, fed): (Vec<_>, Vec<_>) = present.partition(|(n, _)| constants.contains(n));
    let graph = Graph {
        name: op_type.into(),
        inputs: fed
            .iter()
            .map(|(n, t)| ValueInfo {
                name: n.to_string(),
                dtype: t.dtype(),
                dims: Some(t.shape().iter().map(|&d| Dim::Fixed(d)).collect()),
            })
            .collect(),
        outputs: outputs.iter().map(|n| ValueInfo { name: n.to_string(), dtype: DType::F32, dims: None }).collect(),
        initializers: consts.iter().map(|(n, t)| (n.to_string(), Arc::new((*t).clone()))).collect(),
        nodes: vec![node],
        source_nodes: 1,
    };
    let opts = BuildOptions { no_optimize: true, deterministic_tactics: true, ..Default::default() };
    let (plan, _) = build(&graph, &opts).expect("plan builds");
    let engine = Engine::with_options(plan, &RuntimeOptions { threads: Some(threads) }).expect("engine loads");
    engine.run(&fed).expect("runs").into_iter().map(|(_, t)| t).collect()
}

/// Asserts `|got − want| <= abs + rel·|want|` element-wise, naming the first failure.
pub fn assert_close(got: &Tensor, want: &Tensor, abs: f32, rel: f32, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.as_slice::<f32>().expect("f32"), want.as_slice::<f32>().expect("f32"));
    for (i, (&g, &w)) in g.iter().zip(w).enumerate() {
        let ok = (g - w).abs() <= abs + rel * w.abs() || (g.is_nan() && w.is_nan());
        assert!(ok, "{what}: element {i}: runtime {g}, reference {w}");
    }
}

/// Asserts bit-identical tensors, naming the first difference.
pub fn assert_bits(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.as_slice::<f32>().expect("f32"), want.as_slice::<f32>().expect("f32"));
    let bad = g.iter().zip(w).enumerate().find(|(_, (g, w))| g.to_bits() != w.to_bits());
    assert!(bad.is_none(), "{what}: element {bad:?} differs (runtime, reference)");
}
