//! The runtime's fully connected kernel (`Gemm` / `MatMul` / `FusedGemm` / `FusedMatMul`
//! with constant weights, as packed GEMM, or GEMV for one row) against the reference ops
//! of `sinter-ir`: transposed and plain weights, alpha/beta, batch-1 and multi-row inputs
//! of rank 2 to 4, bias and Relu/Clip in registers, and epilogues that run per row
//! (GELU, a residual Add, broadcast operands), on 1 and 2 threads.

mod common;

use common::*;
use sinter_ir::ops::fused::{BinOp, Epilogue, Step};
use sinter_ir::{AttrValue, Attrs, Tensor};

struct Case {
    op_type: &'static str,
    attrs: Attrs,
    x: Vec<usize>,
    w: Vec<usize>,
    /// Gemm's C or FusedMatMul's bias (input 2).
    c: Option<Vec<usize>>,
    steps: Vec<Step>,
    operands: Vec<Vec<usize>>,
}

fn case(op_type: &'static str, x: &[usize], w: &[usize]) -> Case {
    Case { op_type, attrs: Attrs::new(), x: x.to_vec(), w: w.to_vec(), c: None, steps: vec![], operands: vec![] }
}

impl Case {
    fn with_steps(mut self, steps: &[Step], operands: &[&[usize]]) -> Case {
        self.op_type =
            if self.op_type.starts_with("Gemm") || self.op_type == "FusedGemm" { "FusedGemm" } else { "FusedMatMul" };
        self.steps = steps.to_vec();
        self.operands = operands.iter().map(|o| o.to_vec()).collect();
        Epilogue { steps: self.steps.clone() }.write_attrs(&mut self.attrs);
        self
    }

    /// Named inputs in node order ("" for an omitted input 2); the weight is `w`.
    fn inputs(&self) -> Vec<(String, Option<Tensor>)> {
        let mut v =
            vec![("x".to_string(), Some(tensor(&self.x, 1, -1.0))), ("w".to_string(), Some(tensor(&self.w, 2, -1.0)))];
        match &self.c {
            Some(c) => v.push(("c".to_string(), Some(tensor(c, 3, -1.0)))),
            None if !self.operands.is_empty() => v.push((String::new(), None)),
            None => {}
        }
        for (i, s) in self.operands.iter().enumerate() {
            v.push((format!("e{i}"), Some(tensor(s, 10 + i as u64, -1.0))));
        }
        v
    }

    /// Against the reference, with `w` a constant (so the packed kernel takes it), on 1 and 2 threads.
    fn check(&self) {
        let inputs = self.inputs();
        let want = reference(self.op_type, &self.attrs, OPSET, &inputs);
        for threads in [1, 2] {
            let got = runtime(self.op_type, &self.attrs, OPSET, &inputs, &["w"], threads);
            let what = format!("{} {:?} x {:?} on {threads} threads", self.op_type, self.steps, self.x);
            assert_close(&got, &want, 1e-5, 1e-4, &what);
        }
    }
}

#[test]
fn gemm_with_alpha_beta_and_transposed_weights() {
    let mut a = Attrs::new();
    a.insert("alpha", AttrValue::Float(0.75));
    a.insert("beta", AttrValue::Float(-1.5));
    a.insert("transB", AttrValue::Int(1));
    for m in [1, 5, 67] {
        Case { attrs: a.clone(), c: Some(vec![19]), ..case("Gemm", &[m, 33], &[19, 33]) }.check();
        Case { attrs: a.clone(), c: Some(vec![1, 19]), ..case("Gemm", &[m, 33], &[19, 33]) }.check();
    }
    Case { c: None, ..case("Gemm", &[9, 40], &[40, 17]) }.check();
}

#[test]
fn matmul_of_every_rank() {
    case("MatMul", &[1, 64], &[64, 10]).check();
    case("MatMul", &[2, 7, 33], &[33, 19]).check();
    case("MatMul", &[2, 3, 5, 29], &[29, 50]).check();
}

#[test]
fn epilogues_in_registers() {
    let relu = [Step::Binary { op: BinOp::Add, swapped: false }, Step::Relu];
    Case { ..case("MatMul", &[6, 31], &[31, 20]) }.with_steps(&relu, &[&[20]]).check();
    Case { ..case("MatMul", &[1, 31], &[31, 20]) }.with_steps(&[Step::Clip { min: -0.1, max: 0.2 }], &[]).check();
    Case { c: Some(vec![20]), ..case("MatMul", &[3, 4, 31], &[31, 20]) }.with_steps(&[Step::Relu], &[]).check();
}

#[test]
fn epilogues_per_row() {
    // BERT's feed-forward: bias then GELU; its output projection: bias then a residual.
    let gelu = [Step::GeluErf];
    Case { c: Some(vec![64]), ..case("MatMul", &[1, 16, 32], &[32, 64]) }.with_steps(&gelu, &[]).check();
    let residual = [Step::Binary { op: BinOp::Add, swapped: false }];
    Case { c: Some(vec![32]), ..case("MatMul", &[1, 16, 64], &[64, 32]) }
        .with_steps(&residual, &[&[1, 16, 32]])
        .check();
    // Broadcast operands of every layout, a swapped Sub, unary steps between them, one row (GEMV).
    let steps = [
        Step::Binary { op: BinOp::Mul, swapped: false },
        Step::Sigmoid,
        Step::Binary { op: BinOp::Sub, swapped: true },
        Step::Tanh,
        Step::Binary { op: BinOp::Add, swapped: false },
    ];
    for x in [vec![1, 23], vec![2, 5, 23], vec![2, 3, 5, 23]] {
        let full: Vec<usize> = x[..x.len() - 1].iter().copied().chain([17]).collect();
        let column: Vec<usize> = x[..x.len() - 1].iter().copied().chain([1]).collect();
        Case { ..case("MatMul", &x, &[23, 17]) }.with_steps(&steps, &[&[17], &column, &full]).check();
    }
    // FusedGemm: C and beta in registers, the rest per row.
    let mut a = Attrs::new();
    a.insert("beta", AttrValue::Float(0.5));
    let c = Case { attrs: a, c: Some(vec![12]), ..case("Gemm", &[7, 9], &[9, 12]) };
    c.with_steps(&[Step::GeluTanh, Step::Binary { op: BinOp::Div, swapped: false }], &[&[7, 1]]).check();
}
