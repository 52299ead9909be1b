//! The runtime's fully connected kernel (`Gemm` / `MatMul` / `FusedGemm` / `FusedMatMul`
//! with constant weights, as packed GEMM, or GEMV for one row) against the reference ops
//! of `sinter-ir`: transposed and plain weights, alpha/beta, batch-1 and multi-row inputs
//! of rank 2 to 4, bias and Relu/Clip in registers, and epilogues that run per row
//! (GELU, a residual Add, broadcast operands), on 1 and 2 threads.

use sinter_builder::{build, BuildOptions};
use sinter_ir::ops::fused::{BinOp, Epilogue, Step};
use sinter_ir::{AttrValue, Attrs, DType, Dim, Fact, Graph, Node, Tensor, ValueInfo, View, ViewMut};
use sinter_runtime::{Engine, RuntimeOptions};
use std::sync::Arc;

const OPSET: i64 = 17;

/// Deterministic values in [-1, 1) (a 64-bit LCG), so failures reproduce.
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

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
        let t = |shape: &[usize], seed| Tensor::from_vec(shape, data(shape.iter().product(), seed)).expect("tensor");
        let mut v = vec![("x".to_string(), Some(t(&self.x, 1))), ("w".to_string(), Some(t(&self.w, 2)))];
        match &self.c {
            Some(c) => v.push(("c".to_string(), Some(t(c, 3)))),
            None if !self.operands.is_empty() => v.push((String::new(), None)),
            None => {}
        }
        for (i, s) in self.operands.iter().enumerate() {
            v.push((format!("e{i}"), Some(t(s, 10 + i as u64))));
        }
        v
    }

    fn reference(&self, inputs: &[(String, Option<Tensor>)]) -> Tensor {
        let op = sinter_ir::ops::build(self.op_type, &self.attrs, OPSET).expect("op builds");
        let facts: Vec<Option<Fact>> =
            inputs.iter().map(|(_, t)| t.as_ref().map(|t| Fact::new(t.dtype(), t.shape().to_vec()))).collect();
        let out = op.infer(&facts.iter().map(Option::as_ref).collect::<Vec<_>>()).expect("infer");
        let mut y = Tensor::zeros(DType::F32, &out[0].shape);
        let views: Vec<Option<View>> = inputs.iter().map(|(_, t)| t.as_ref().map(Tensor::view)).collect();
        let mut outs: Vec<ViewMut> = vec![y.view_mut()];
        op.eval(&views, &mut outs).expect("reference eval");
        y
    }

    /// A one-node plan with `w` as a constant (so the packed kernel takes it), run on `threads`.
    fn runtime(&self, inputs: &[(String, Option<Tensor>)], threads: usize) -> Tensor {
        let node = Node::new(
            "dense",
            self.op_type,
            OPSET,
            self.attrs.clone(),
            inputs.iter().map(|(n, _)| n.clone()).collect(),
            vec!["y".into()],
        )
        .expect("node builds");
        let fed: Vec<(&str, &Tensor)> =
            inputs.iter().filter(|(n, _)| n != "w").filter_map(|(n, t)| t.as_ref().map(|t| (n.as_str(), t))).collect();
        let weight = inputs.iter().find(|(n, _)| n == "w").and_then(|(_, t)| t.clone()).expect("weight");
        let graph = Graph {
            name: "dense".into(),
            inputs: fed
                .iter()
                .map(|(n, t)| ValueInfo {
                    name: n.to_string(),
                    dtype: DType::F32,
                    dims: Some(t.shape().iter().map(|&d| Dim::Fixed(d)).collect()),
                })
                .collect(),
            outputs: vec![ValueInfo { name: "y".into(), dtype: DType::F32, dims: None }],
            initializers: [("w".to_string(), Arc::new(weight))].into(),
            nodes: vec![node],
            source_nodes: 1,
        };
        let opts = BuildOptions { no_optimize: true, ..Default::default() };
        let (plan, _) = build(&graph, &opts).expect("plan builds");
        let engine = Engine::with_options(plan, &RuntimeOptions { threads: Some(threads) }).expect("engine loads");
        engine.run(&fed).expect("runs").remove(0).1
    }

    fn check(&self) {
        let inputs = self.inputs();
        let want = self.reference(&inputs);
        for threads in [1, 2] {
            let got = self.runtime(&inputs, threads);
            assert_eq!(got.shape(), want.shape());
            let (g, w) = (got.as_slice::<f32>().expect("f32"), want.as_slice::<f32>().expect("f32"));
            for (i, (&g, &w)) in g.iter().zip(w).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                    "{} {:?} x {:?} on {threads} threads: element {i}: runtime {g}, reference {w}",
                    self.op_type,
                    self.steps,
                    self.x
                );
            }
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
