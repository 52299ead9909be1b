//! The runtime's `FusedElementwise` kernel (fused elementwise chains, run in pieces over
//! the context's threads) against the reference op of `sinter-ir`, bit for bit: ranks 1
//! to 4, every broadcast layout of the operands, pieces that start and end inside a
//! channel plane, and 1, 2 and 3 threads.

use sinter_builder::{build, BuildOptions};
use sinter_ir::ops::fused::{BinOp, Epilogue, Step};
use sinter_ir::{Attrs, DType, Dim, Fact, Graph, Node, Tensor, ValueInfo, View, ViewMut};
use sinter_runtime::{Engine, RuntimeOptions};

const OPSET: i64 = 17;

/// Deterministic values in [0.5, 2.5) (a 64-bit LCG), away from 0 for the Div steps.
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 + 0.5
        })
        .collect()
}

fn attrs(steps: &[Step]) -> Attrs {
    let mut a = Attrs::new();
    Epilogue { steps: steps.to_vec() }.write_attrs(&mut a);
    a
}

/// Input `x` of `shape` (values shifted to both signs) and one operand per shape.
fn inputs(shape: &[usize], operands: &[&[usize]]) -> Vec<(String, Tensor)> {
    let x: Vec<f32> = data(shape.iter().product(), 1).into_iter().map(|v| v - 1.5).collect();
    let mut v = vec![("x".to_string(), Tensor::from_vec(shape, x).expect("x"))];
    for (i, s) in operands.iter().enumerate() {
        v.push((format!("e{i}"), Tensor::from_vec(s, data(s.iter().product(), 10 + i as u64)).expect("operand")));
    }
    v
}

fn reference(steps: &[Step], inputs: &[(String, Tensor)]) -> Tensor {
    let op = sinter_ir::ops::build("FusedElementwise", &attrs(steps), OPSET).expect("op builds");
    let facts: Vec<Fact> = inputs.iter().map(|(_, t)| Fact::new(t.dtype(), t.shape().to_vec())).collect();
    let out = op.infer(&facts.iter().map(Some).collect::<Vec<_>>()).expect("infer");
    let mut y = Tensor::zeros(DType::F32, &out[0].shape);
    let views: Vec<Option<View>> = inputs.iter().map(|(_, t)| Some(t.view())).collect();
    let mut outs: Vec<ViewMut> = vec![y.view_mut()];
    op.eval(&views, &mut outs).expect("reference eval");
    y
}

fn runtime(steps: &[Step], inputs: &[(String, Tensor)], threads: usize) -> Tensor {
    let node = Node::new(
        "chain",
        "FusedElementwise",
        OPSET,
        attrs(steps),
        inputs.iter().map(|(n, _)| n.clone()).collect(),
        vec!["y".into()],
    )
    .expect("node builds");
    let graph = Graph {
        name: "chain".into(),
        inputs: inputs
            .iter()
            .map(|(n, t)| ValueInfo {
                name: n.clone(),
                dtype: DType::F32,
                dims: Some(t.shape().iter().map(|&d| Dim::Fixed(d)).collect()),
            })
            .collect(),
        outputs: vec![ValueInfo { name: "y".into(), dtype: DType::F32, dims: None }],
        initializers: Default::default(),
        nodes: vec![node],
        source_nodes: 1,
    };
    let opts = BuildOptions { no_optimize: true, ..Default::default() };
    let (plan, _) = build(&graph, &opts).expect("plan builds");
    let engine = Engine::with_options(plan, &RuntimeOptions { threads: Some(threads) }).expect("engine loads");
    let fed: Vec<(&str, &Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    engine.run(&fed).expect("runs").remove(0).1
}

fn check(shape: &[usize], steps: &[Step], operands: &[&[usize]]) {
    let inputs = inputs(shape, operands);
    let want = reference(steps, &inputs);
    for threads in [1, 2, 3] {
        let got = runtime(steps, &inputs, threads);
        let same = got.as_slice::<f32>().expect("f32").iter().zip(want.as_slice::<f32>().expect("f32"));
        let bad = same.enumerate().find(|(_, (g, w))| g.to_bits() != w.to_bits());
        assert!(bad.is_none(), "{shape:?} {steps:?} on {threads} threads: element {:?} differs", bad);
    }
}

const fn bin(op: BinOp, swapped: bool) -> Step {
    Step::Binary { op, swapped }
}

#[test]
fn squeeze_excitation_chain() {
    // PP-OCR det's `x · s + a + b` on a map cut into pieces inside channel planes.
    let steps = [bin(BinOp::Mul, false), bin(BinOp::Add, false), bin(BinOp::Add, true)];
    check(&[1, 3, 123, 457], &steps, &[&[1, 3, 1, 1], &[1, 3, 123, 457], &[1, 3, 123, 457]]);
}

#[test]
fn every_operand_layout_and_rank() {
    let steps = [bin(BinOp::Sub, true), Step::Relu, bin(BinOp::Div, false), Step::Sigmoid, bin(BinOp::Mul, false)];
    for (shape, ops) in [
        (vec![2, 3, 5, 7], vec![vec![1, 3, 1, 1], vec![3, 1, 1], vec![2, 3, 5, 7]]),
        (vec![2, 3, 5, 7], vec![vec![7], vec![5, 1], vec![1]]),
        (vec![4, 33, 1000], vec![vec![1000], vec![33, 1], vec![4, 33, 1000]]),
        (vec![70001], vec![vec![1], vec![70001], vec![70001]]),
        (vec![300, 301], vec![vec![300, 1], vec![301], vec![1, 1]]),
    ] {
        let ops: Vec<&[usize]> = ops.iter().map(Vec::as_slice).collect();
        check(&shape, &steps, &ops);
    }
}

#[test]
fn unary_only_and_scalar_shapes() {
    check(&[1], &[Step::Tanh], &[]);
    check(&[], &[Step::HardSwish, Step::Clip { min: -0.2, max: 0.4 }], &[]);
    check(&[3, 40000], &[Step::GeluErf, Step::LeakyRelu { alpha: 0.1 }], &[]);
}
