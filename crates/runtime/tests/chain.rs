//! The runtime's `FusedElementwise` kernel (fused elementwise chains, run in pieces over
//! the context's threads) against the reference op of `sinter-ir` (bit for bit where no
//! step is transcendental): ranks 1 to 4, every broadcast layout of the operands, pieces
//! that start and end inside a channel plane, and 1, 2 and 3 threads.

mod common;

use common::*;
use sinter_ir::ops::fused::{BinOp, Epilogue, Step};
use sinter_ir::{Attrs, Tensor};

fn attrs(steps: &[Step]) -> Attrs {
    let mut a = Attrs::new();
    Epilogue { steps: steps.to_vec() }.write_attrs(&mut a);
    a
}

/// Input `x` of `shape` (both signs) and one operand per shape (in [0.5, 2.5): away from
/// 0 for the Div steps).
fn inputs(shape: &[usize], operands: &[&[usize]]) -> Vec<(String, Option<Tensor>)> {
    let mut v = vec![("x".to_string(), Some(tensor(shape, 1, -1.0)))];
    for (i, s) in operands.iter().enumerate() {
        v.push((format!("e{i}"), Some(tensor(s, 10 + i as u64, 0.5))));
    }
    v
}

/// Bit for bit, except that chains with transcendental steps (vectorized in the runtime,
/// one element at a time in f64 or libm in the reference) agree to a few ulp per step.
fn check(shape: &[usize], steps: &[Step], operands: &[&[usize]]) {
    let inputs = inputs(shape, operands);
    let want = reference("FusedElementwise", &attrs(steps), OPSET, &inputs);
    let transcendental =
        steps.iter().any(|s| matches!(s, Step::Sigmoid | Step::Silu | Step::Tanh | Step::GeluErf | Step::GeluTanh));
    for threads in [1, 2, 3] {
        let got = runtime("FusedElementwise", &attrs(steps), OPSET, &inputs, &[], threads);
        let what = format!("{shape:?} {steps:?} on {threads} threads");
        if transcendental {
            assert_close(&got, &want, 1e-7, 2e-6, &what);
        } else {
            assert_bits(&got, &want, &what);
        }
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

#[test]
fn every_step_kind_matches_the_reference() {
    // Each IR step once, through the kernels' epilogue (exact for all but the
    // transcendental ones, which `check` compares with a tolerance).
    let unary = [
        Step::Relu,
        Step::Clip { min: -0.5, max: 0.75 },
        Step::LeakyRelu { alpha: 0.3 },
        Step::HardSigmoid { alpha: 0.2, beta: 0.5 },
        Step::HardSwish,
    ];
    check(&[2, 3, 5, 7], &unary, &[]);
    for step in [Step::Sigmoid, Step::Silu, Step::Tanh, Step::GeluErf, Step::GeluTanh] {
        check(&[2, 3, 5, 7], &[step], &[]);
    }
    for op in [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div] {
        for swapped in [false, true] {
            check(&[2, 3, 5, 7], &[bin(op, swapped)], &[&[3, 1, 1]]);
            check(&[2, 3, 5, 7], &[bin(op, swapped)], &[&[2, 3, 5, 7]]);
        }
    }
}
