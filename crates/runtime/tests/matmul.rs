//! The runtime's MatMul of two activations (attention's `Q·Kᵀ`, `P·V`), plain and fused
//! with a bias and epilogue steps, against the reference ops of `sinter-ir`: batched,
//! broadcast single matrices, several ranks, on 1 to 3 threads.

mod common;

use common::*;
use sinter_ir::ops::fused::{BinOp, Epilogue, Step};
use sinter_ir::{Attrs, Tensor};

fn check(a: &[usize], b: &[usize], bias: Option<&[usize]>, steps: &[Step], operands: &[&[usize]]) {
    let op_type = if bias.is_none() && steps.is_empty() { "MatMul" } else { "FusedMatMul" };
    let mut attrs = Attrs::new();
    if op_type == "FusedMatMul" {
        Epilogue { steps: steps.to_vec() }.write_attrs(&mut attrs);
    }
    let mut inputs: Vec<(String, Option<Tensor>)> =
        vec![("a".into(), Some(tensor(a, 1, -1.0))), ("b".into(), Some(tensor(b, 2, -1.0)))];
    match bias {
        Some(c) => inputs.push(("c".into(), Some(tensor(c, 3, -1.0)))),
        None if !operands.is_empty() => inputs.push((String::new(), None)),
        None => {}
    }
    for (i, s) in operands.iter().enumerate() {
        inputs.push((format!("e{i}"), Some(tensor(s, 10 + i as u64, 0.5))));
    }
    let want = reference(op_type, &attrs, OPSET, &inputs);
    for threads in [1, 2, 3] {
        let got = runtime(op_type, &attrs, OPSET, &inputs, &[], threads);
        assert_close(&got, &want, 1e-5, 1e-4, &format!("{op_type} {a:?}·{b:?} {steps:?} on {threads} threads"));
    }
}

#[test]
fn batched_and_broadcast() {
    check(&[2, 3, 5, 7], &[2, 3, 7, 4], None, &[], &[]);
    check(&[2, 3, 5, 7], &[7, 4], None, &[], &[]);
    check(&[5, 7], &[6, 7, 9], None, &[], &[]);
    check(&[1, 40, 33], &[1, 33, 65], None, &[], &[]);
}

#[test]
fn attention_scores_with_scale_and_mask() {
    // BERT: Q·Kᵀ / sqrt(d) + mask, the mask broadcast over heads and query rows.
    let steps = [Step::Binary { op: BinOp::Div, swapped: false }, Step::Binary { op: BinOp::Add, swapped: false }];
    check(&[1, 2, 16, 8], &[1, 2, 8, 16], None, &steps, &[&[1], &[1, 1, 1, 16]]);
    // A bias, a per-row operand and unary steps on a rank-3 output.
    let steps = [Step::Binary { op: BinOp::Mul, swapped: false }, Step::GeluErf, Step::Relu];
    check(&[3, 6, 10], &[3, 10, 12], Some(&[12]), &steps, &[&[3, 6, 1]]);
    check(&[4, 9], &[9, 5], Some(&[5]), &[], &[]);
}
