//! The runtime's 2-D convolution kernels (plain `Conv` and `FusedConv` with every
//! epilogue step) against the reference ops of `sinter-ir`, on odd sizes: groups,
//! depthwise, strides, dilations, asymmetric pads, 1x1, with and without bias,
//! broadcast epilogue operands, and outputs wide enough to be split into column blocks.

use sinter_builder::{build, BuildOptions};
use sinter_ir::ops::fused::{BinOp, Epilogue, Step};
use sinter_ir::{AttrValue, Attrs, DType, Dim, Graph, Node, Tensor, ValueInfo, View, ViewMut};
use sinter_runtime::Engine;

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
    x: [usize; 4],
    /// Output channels and kernel size.
    m: usize,
    k: [usize; 2],
    group: usize,
    strides: [i64; 2],
    dilations: [i64; 2],
    /// ONNX order: begin of each axis, then end of each axis.
    pads: [i64; 4],
    bias: bool,
    steps: Vec<Step>,
    /// Shapes of the binary steps' extra inputs.
    operands: Vec<Vec<usize>>,
}

fn case(x: [usize; 4], m: usize, k: [usize; 2], group: usize) -> Case {
    Case {
        x,
        m,
        k,
        group,
        strides: [1, 1],
        dilations: [1, 1],
        pads: [0; 4],
        bias: false,
        steps: Vec::new(),
        operands: Vec::new(),
    }
}

impl Case {
    fn attrs(&self) -> Attrs {
        let mut a = Attrs::new();
        a.insert("group", AttrValue::Int(self.group as i64));
        a.insert("strides", AttrValue::Ints(self.strides.to_vec()));
        a.insert("dilations", AttrValue::Ints(self.dilations.to_vec()));
        a.insert("pads", AttrValue::Ints(self.pads.to_vec()));
        if !self.steps.is_empty() {
            Epilogue { steps: self.steps.clone() }.write_attrs(&mut a);
        }
        a
    }

    fn op_type(&self) -> &'static str {
        if self.steps.is_empty() {
            "Conv"
        } else {
            "FusedConv"
        }
    }

    /// Named inputs in node order ("" for an omitted bias).
    fn inputs(&self) -> Vec<(String, Option<Tensor>)> {
        let c = self.x[1];
        let w_shape = [self.m, c / self.group, self.k[0], self.k[1]];
        let tensor =
            |shape: &[usize], seed| Tensor::from_vec(shape, data(shape.iter().product(), seed)).expect("test tensor");
        let mut v = vec![
            ("x".to_string(), Some(tensor(&self.x, 1))),
            ("w".to_string(), Some(tensor(&w_shape, 2))),
            if self.bias { ("b".to_string(), Some(tensor(&[self.m], 3))) } else { (String::new(), None) },
        ];
        for (i, s) in self.operands.iter().enumerate() {
            // Keep divisors away from 0 so Div steps stay well conditioned.
            let vals = data(s.iter().product(), 10 + i as u64).into_iter().map(|v| v + 2.5).collect();
            v.push((format!("e{i}"), Some(Tensor::from_vec(s, vals).expect("operand"))));
        }
        if !self.bias && self.operands.is_empty() {
            v.pop();
        }
        v
    }

    /// The reference op's output.
    fn reference(&self, inputs: &[(String, Option<Tensor>)]) -> Tensor {
        let op = sinter_ir::ops::build(self.op_type(), &self.attrs(), OPSET).expect("op builds");
        let facts: Vec<Option<sinter_ir::Fact>> = inputs
            .iter()
            .map(|(_, t)| t.as_ref().map(|t| sinter_ir::Fact::new(t.dtype(), t.shape().to_vec())))
            .collect();
        let fact_refs: Vec<Option<&sinter_ir::Fact>> = facts.iter().map(Option::as_ref).collect();
        let out = op.infer(&fact_refs).expect("infer");
        let mut y = Tensor::zeros(DType::F32, &out[0].shape);
        let views: Vec<Option<View>> = inputs.iter().map(|(_, t)| t.as_ref().map(Tensor::view)).collect();
        let mut outs: Vec<ViewMut> = vec![y.view_mut()];
        op.eval(&views, &mut outs).expect("reference eval");
        y
    }

    /// The output of a one-kernel plan run by the runtime.
    fn runtime(&self, inputs: &[(String, Option<Tensor>)]) -> Tensor {
        let fed: Vec<(&str, &Tensor)> =
            inputs.iter().filter_map(|(n, t)| t.as_ref().map(|t| (n.as_str(), t))).collect();
        let node = Node::new(
            "conv",
            self.op_type(),
            OPSET,
            self.attrs(),
            inputs.iter().map(|(n, _)| n.clone()).collect(),
            vec!["y".into()],
        )
        .expect("node builds");
        let graph = Graph {
            name: "conv".into(),
            inputs: fed
                .iter()
                .map(|(n, t)| ValueInfo {
                    name: n.to_string(),
                    dtype: DType::F32,
                    dims: Some(t.shape().iter().map(|&d| Dim::Fixed(d)).collect()),
                })
                .collect(),
            outputs: vec![ValueInfo { name: "y".into(), dtype: DType::F32, dims: None }],
            initializers: Default::default(),
            nodes: vec![node],
            source_nodes: 1,
        };
        // Tactics by rule: the same kernels on every run of the test.
        let opts = BuildOptions { no_optimize: true, deterministic_tactics: true, ..Default::default() };
        let (plan, _) = build(&graph, &opts).expect("plan builds");
        let engine = Engine::new(plan).expect("engine loads");
        let mut out = engine.run(&fed).expect("runs");
        out.remove(0).1
    }

    fn check(&self) {
        let inputs = self.inputs();
        let want = self.reference(&inputs);
        let got = self.runtime(&inputs);
        assert_eq!(got.shape(), want.shape());
        let (g, w) = (got.as_slice::<f32>().expect("f32"), want.as_slice::<f32>().expect("f32"));
        for (i, (&g, &w)) in g.iter().zip(w).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                "{} {:?}: element {i}: runtime {g}, reference {w}",
                self.op_type(),
                self.steps
            );
        }
    }
}

#[test]
fn plain_3x3_with_bias() {
    Case { pads: [1, 1, 1, 1], bias: true, ..case([1, 3, 7, 9], 5, [3, 3], 1) }.check();
}

#[test]
fn groups_with_stride_2_and_batch() {
    Case { strides: [2, 2], pads: [1, 0, 1, 1], ..case([2, 4, 9, 8], 6, [3, 3], 2) }.check();
}

#[test]
fn depthwise() {
    Case { strides: [2, 2], pads: [1, 1, 1, 1], bias: true, ..case([2, 5, 11, 10], 5, [3, 3], 5) }.check();
    Case { pads: [2, 2, 2, 2], ..case([1, 6, 7, 5], 6, [5, 5], 6) }.check();
    Case { dilations: [2, 3], strides: [1, 2], pads: [0, 3, 1, 2], ..case([1, 4, 9, 13], 4, [3, 3], 4) }.check();
}

#[test]
fn depthwise_multiplier_is_grouped() {
    // Two output channels per group: the grouped GEMM path.
    Case { pads: [1, 1, 1, 1], bias: true, ..case([1, 3, 6, 7], 6, [3, 3], 3) }.check();
}

#[test]
fn dilations_and_asymmetric_pads() {
    Case { dilations: [2, 2], pads: [0, 1, 2, 3], bias: true, ..case([1, 3, 10, 11], 4, [3, 3], 1) }.check();
    Case { strides: [1, 2], dilations: [2, 1], pads: [3, 0, 0, 2], ..case([1, 2, 8, 9], 3, [2, 3], 1) }.check();
}

#[test]
fn pointwise() {
    Case { ..case([2, 8, 5, 7], 7, [1, 1], 1) }.check();
    Case { bias: true, ..case([1, 6, 3, 3], 4, [1, 1], 2) }.check();
    // Not pointwise in the im2col sense: strided, or padded.
    Case { strides: [2, 2], bias: true, ..case([1, 5, 9, 8], 3, [1, 1], 1) }.check();
    Case { pads: [1, 0, 0, 1], ..case([1, 5, 4, 4], 3, [1, 1], 1) }.check();
}

#[test]
fn wide_outputs_split_into_blocks() {
    // 64 output channels: blocks of 512 columns, so 900 columns split mid-row.
    let relu_add = vec![Step::Relu, Step::Binary { op: BinOp::Add, swapped: false }];
    Case { pads: [1, 1, 1, 1], bias: true, ..case([1, 3, 30, 30], 64, [3, 3], 1) }.check();
    Case {
        pads: [1, 1, 1, 1],
        bias: true,
        steps: relu_add.clone(),
        operands: vec![vec![1, 64, 30, 30]],
        ..case([1, 3, 30, 30], 64, [3, 3], 1)
    }
    .check();
    // Pointwise, 300 output channels (blocks of 109 columns), strided operand.
    Case {
        bias: true,
        steps: vec![Step::Binary { op: BinOp::Mul, swapped: false }],
        operands: vec![vec![1, 1, 23]],
        ..case([2, 16, 11, 23], 300, [1, 1], 1)
    }
    .check();
}

/// The padded, phase-split input copy: strides larger than the kernel (unread phases),
/// pads larger than the stride, a 1-wide output, and K and N both spanning several
/// GEMM blocks with output rows cut at panel boundaries.
#[test]
fn padded_phase_split_edges() {
    Case { strides: [3, 3], pads: [1, 2, 0, 1], ..case([1, 3, 17, 19], 5, [2, 2], 1) }.check();
    Case { strides: [2, 2], ..case([1, 2, 3, 3], 9, [3, 3], 1) }.check();
    Case { strides: [2, 3], dilations: [2, 1], pads: [3, 2, 1, 3], bias: true, ..case([2, 4, 13, 16], 6, [3, 4], 2) }
        .check();
    // kdim 12·25 = 300 (two K blocks), 35·18 = 630 columns in rows of 35.
    Case { strides: [2, 2], pads: [2, 2, 2, 2], bias: true, ..case([1, 12, 36, 70], 17, [5, 5], 1) }.check();
}

#[test]
fn every_unary_step() {
    let unary = [
        Step::Relu,
        Step::Clip { min: 0.0, max: 0.3 },
        Step::LeakyRelu { alpha: 0.1 },
        Step::Sigmoid,
        Step::HardSigmoid { alpha: 0.3, beta: 0.4 },
        Step::HardSwish,
        Step::Silu,
        Step::GeluErf,
        Step::GeluTanh,
        Step::Tanh,
    ];
    for step in unary {
        Case { pads: [1, 1, 1, 1], bias: true, steps: vec![step], ..case([1, 3, 6, 5], 4, [3, 3], 1) }.check();
        Case { strides: [2, 2], steps: vec![step, Step::Relu], ..case([1, 4, 7, 6], 4, [3, 3], 4) }.check();
    }
}

#[test]
fn every_binary_step_and_operand_layout() {
    let ops = [
        (BinOp::Add, false),
        (BinOp::Sub, false),
        (BinOp::Sub, true),
        (BinOp::Mul, false),
        (BinOp::Div, false),
        (BinOp::Div, true),
    ];
    // Output [2, 6, 4, 5].
    let layouts: [Vec<usize>; 6] =
        [vec![2, 6, 4, 5], vec![6, 1, 1], vec![1, 6, 1, 1], vec![2, 6, 1, 1], vec![1], vec![4, 1]];
    for (op, swapped) in ops {
        for layout in &layouts {
            let steps = vec![Step::Binary { op, swapped }, Step::HardSwish];
            Case {
                pads: [1, 1, 1, 1],
                bias: true,
                steps: steps.clone(),
                operands: vec![layout.clone()],
                ..case([2, 3, 4, 5], 6, [3, 3], 1)
            }
            .check();
            Case { pads: [1, 1, 1, 1], steps, operands: vec![layout.clone()], ..case([2, 6, 4, 5], 6, [3, 3], 6) }
                .check();
        }
    }
}

#[test]
fn residual_add_then_relu_with_two_operands() {
    let steps = vec![
        Step::Binary { op: BinOp::Mul, swapped: false },
        Step::Binary { op: BinOp::Add, swapped: false },
        Step::Relu,
    ];
    Case { bias: true, steps, operands: vec![vec![8, 1, 1], vec![1, 8, 6, 6]], ..case([1, 4, 6, 6], 8, [1, 1], 1) }
        .check();
}
