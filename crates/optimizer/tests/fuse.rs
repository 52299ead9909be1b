//! Tests of the fusion rules: structure after the rewrite, numerics against the
//! reference interpreter, and one negative test per precondition.

mod common;

use common::*;
use sinter_ir::half::f16;
use sinter_ir::ops::fused::{BinOp, Fused, FusedElementwise, Step};
use sinter_ir::{interp, AttrValue, DType, Graph, Node, Tensor};
use sinter_optimizer::rules::{
    default_passes, ElementwiseChain, EpilogueActivation, EpilogueAdd, GeluErfPattern, GeluTanhPattern,
    HardSwishPattern, LayerNormPattern, MatMulBias, SiluPattern,
};
use sinter_optimizer::Options;

fn steps(n: &Node) -> Vec<Step> {
    let any = n.op.as_any();
    any.downcast_ref::<Fused>()
        .map(|f| f.epilogue.steps.clone())
        .or_else(|| any.downcast_ref::<FusedElementwise>().map(|f| f.epilogue.steps.clone()))
        .expect("a fused node")
}

fn fused_from(n: &Node) -> Vec<&str> {
    n.fused_from.iter().map(|(name, _)| name.as_str()).collect()
}

/// `y = Conv(x, w, b)` with 3x3 kernels and padding 1 on a [1, 2, 5, 5] input.
fn conv_inits() -> Vec<(&'static str, Tensor)> {
    vec![("w", rand_t(100, &[3, 2, 3, 3])), ("b", rand_t(101, &[3]))]
}

fn conv(out: &str) -> Node {
    node_with("conv", "Conv", attrs(&[("pads", AttrValue::Ints(vec![1, 1, 1, 1]))]), &["x", "w", "b"], &[out])
}

const X: (&str, &[usize]) = ("x", &[1, 2, 5, 5]);

/// Scales the input by 5 so activations see values beyond their bends.
fn widen(out: &str) -> Node {
    node("widen", "Mul", &["x", "five"], &[out])
}

fn five() -> (&'static str, Tensor) {
    ("five", t(&[], vec![5.0]))
}

// ---------- fused ops ----------

#[test]
fn fused_conv_round_trips_through_its_attributes() {
    let mut inits = conv_inits();
    inits.push(("r", rand_t(102, &[1, 3, 5, 5])));
    let g = graph(
        &[X],
        &["z"],
        inits,
        vec![conv("y"), node("add", "Add", &["y", "r"], &["s"]), node("clip", "Clip", &["s", "lo", "hi"], &["z"])],
    );
    let mut g = g;
    g.initializers.insert("lo".into(), std::sync::Arc::new(t(&[], vec![0.0])));
    g.initializers.insert("hi".into(), std::sync::Arc::new(t(&[], vec![0.5])));
    let (out, _) = run_rules(&g, vec![Box::new(EpilogueActivation), Box::new(EpilogueAdd)]);
    assert_eq!(op_types(&out), ["FusedConv"]);
    let f = &out.nodes[0];
    assert_eq!(steps(f), [Step::Binary { op: BinOp::Add, swapped: false }, Step::Clip { min: 0.0, max: 0.5 }]);
    assert_eq!(fused_from(f), ["conv", "add", "clip"]);
    // Rebuilt from its attributes alone, it computes the same values.
    let mut rebuilt = out.clone();
    rebuilt.nodes[0] =
        Node::new(f.name.clone(), &f.op_type, f.opset, f.attrs.clone(), f.inputs.clone(), f.outputs.clone())
            .expect("rebuilds from attributes");
    let x = rand_t(7, &[1, 2, 5, 5]);
    let a = interp::run(&out, &[("x", x.clone())]).unwrap();
    let b = interp::run(&rebuilt, &[("x", x)]).unwrap();
    assert_eq!(a[0].as_slice::<f32>().unwrap(), b[0].as_slice::<f32>().unwrap());
    assert_same_outputs(&g, &out, 3);
}

#[test]
fn fused_attributes_are_validated() {
    let build = |names: &[&str], params: &[f32]| {
        let a = attrs(&[
            ("epilogue", AttrValue::Strings(names.iter().map(|s| s.to_string()).collect())),
            ("epilogue_params", AttrValue::Floats(params.to_vec())),
        ]);
        sinter_ir::ops::build("FusedElementwise", &a, 17)
    };
    assert!(build(&["Relu", "Clip"], &[0.0, 6.0]).is_ok());
    assert!(build(&["Clip"], &[0.0]).is_err(), "missing parameter");
    assert!(build(&["Relu"], &[1.0]).is_err(), "left-over parameter");
    assert!(build(&["Swish"], &[]).is_err(), "unknown step");
}

#[test]
fn fused_elementwise_computes_known_values() {
    // relu(x) * 2 then 1 - v, then leaky(0.1): x = [-1, 0.5, 2] -> [1, 0, -3] -> [1, 0, -0.3]
    let a = attrs(&[
        ("epilogue", AttrValue::Strings(vec!["Relu".into(), "Mul".into(), "SubFrom".into(), "LeakyRelu".into()])),
        ("epilogue_params", AttrValue::Floats(vec![0.1])),
    ]);
    let g = graph(
        &[("x", &[3])],
        &["y"],
        vec![("two", t(&[], vec![2.0])), ("one", t(&[1], vec![1.0]))],
        vec![node_with("f", "FusedElementwise", a, &["x", "two", "one"], &["y"])],
    );
    let y = interp::run(&g, &[("x", t(&[3], vec![-1.0, 0.5, 2.0]))]).unwrap();
    let y = y[0].as_slice::<f32>().unwrap();
    for (a, b) in y.iter().zip([1.0, 0.0, -0.3]) {
        assert!((a - b).abs() < 1e-6, "{y:?}");
    }
}

// ---------- epilogue_activation ----------

#[test]
fn epilogue_activation_fuses_each_base_op() {
    let cases: Vec<(Graph, &str, Step)> = vec![
        (
            graph(&[X], &["z"], conv_inits(), vec![conv("y"), node("act", "Relu", &["y"], &["z"])]),
            "FusedConv",
            Step::Relu,
        ),
        (
            graph(
                &[("x", &[2, 4])],
                &["z"],
                vec![("w", rand_t(5, &[3, 4])), ("c", rand_t(6, &[3]))],
                vec![
                    node_with("gemm", "Gemm", attrs(&[("transB", AttrValue::Int(1))]), &["x", "w", "c"], &["y"]),
                    node_with("act", "LeakyRelu", attrs(&[("alpha", AttrValue::Float(0.2))]), &["y"], &["z"]),
                ],
            ),
            "FusedGemm",
            Step::LeakyRelu { alpha: 0.2 },
        ),
        (
            graph(
                &[("x", &[2, 3, 4])],
                &["z"],
                vec![("w", rand_t(5, &[4, 6]))],
                vec![node("mm", "MatMul", &["x", "w"], &["y"]), node("act", "Sigmoid", &["y"], &["z"])],
            ),
            "FusedMatMul",
            Step::Sigmoid,
        ),
        (
            graph(
                &[("x", &[1, 2, 3, 3])],
                &["z"],
                vec![("w", rand_t(5, &[2, 3, 2, 2]))],
                vec![
                    node_with(
                        "ct",
                        "ConvTranspose",
                        attrs(&[("strides", AttrValue::Ints(vec![2, 2]))]),
                        &["x", "w"],
                        &["y"],
                    ),
                    node("act", "Tanh", &["y"], &["z"]),
                ],
            ),
            "FusedConvTranspose",
            Step::Tanh,
        ),
    ];
    for (k, (g, op, step)) in cases.into_iter().enumerate() {
        let (out, report) = run_rule(&g, EpilogueActivation);
        assert_eq!(report.count("epilogue_activation"), 1, "case {k}");
        assert_eq!(op_types(&out), [op], "case {k}");
        assert_eq!(steps(&out.nodes[0]), [step], "case {k}");
        assert_eq!(out.nodes[0].fused_from.len(), 2, "case {k}");
        assert_same_outputs(&g, &out, 10 + k as u64);
    }
}

#[test]
fn epilogue_activation_absorbs_repeatedly_and_keeps_provenance() {
    let mut inits = conv_inits();
    inits.push(five());
    let g = graph(
        &[X],
        &["z"],
        inits,
        vec![
            conv("c"),
            node("widen", "Mul", &["c", "five"], &["y"]),
            node("relu6", "Clip", &["y", "zero", "six"], &["a"]),
            node("hs", "HardSwish", &["a"], &["z"]),
        ],
    );
    // Clip bounds from opset-11 inputs; the scaling Mul is not an activation.
    let mut g = g;
    g.initializers.insert("zero".into(), std::sync::Arc::new(t(&[], vec![0.0])));
    g.initializers.insert("six".into(), std::sync::Arc::new(t(&[], vec![6.0])));
    g.nodes.remove(1);
    g.nodes[1].inputs[0] = "c".into();
    let (out, report) = run_rule(&g, EpilogueActivation);
    assert_eq!(report.count("epilogue_activation"), 2);
    assert_eq!(op_types(&out), ["FusedConv"]);
    assert_eq!(steps(&out.nodes[0]), [Step::Clip { min: 0.0, max: 6.0 }, Step::HardSwish]);
    assert_eq!(fused_from(&out.nodes[0]), ["conv", "relu6", "hs"]);
    assert_same_outputs(&g, &out, 20);
}

#[test]
fn conv_absorbs_a_chain_with_operands() {
    // Conv -> Mul(per-channel scale) -> Add(residual) -> Relu: the chain forms first,
    // then epilogue_activation takes it with its operands.
    let mut inits = conv_inits();
    inits.push(("scale", rand_t(21, &[3, 1, 1])));
    let g = graph(
        &[X, ("r", &[1, 3, 5, 5])],
        &["z"],
        inits,
        vec![
            conv("y"),
            node("mul", "Mul", &["y", "scale"], &["a"]),
            node("add", "Add", &["r", "a"], &["s"]),
            node("relu", "Relu", &["s"], &["z"]),
        ],
    );
    let (out, report) = run_rules(&g, vec![Box::new(EpilogueActivation), Box::new(ElementwiseChain)]);
    assert_eq!(report.count("elementwise_chain"), 1, "{report}");
    assert_eq!(report.count("epilogue_activation"), 2, "{report}");
    assert_eq!(op_types(&out), ["FusedConv"]);
    assert_eq!(out.nodes[0].inputs, ["x", "w", "b", "scale", "r"]);
    assert_eq!(fused_from(&out.nodes[0]), ["conv", "mul", "add", "relu"]);
    assert_same_outputs(&g, &out, 22);
}

#[test]
fn epilogue_activation_refuses_shared_output() {
    let g = graph(
        &[X],
        &["z", "w2"],
        conv_inits(),
        vec![conv("y"), node("act", "Relu", &["y"], &["z"]), node("other", "Neg", &["y"], &["w2"])],
    );
    let (out, report) = run_rule(&g, EpilogueActivation);
    assert_eq!(op_types(&out), ["Conv", "Relu", "Neg"]);
    assert_refused(&report, "epilogue_activation", &["'y'", "also read by node 'other'"]);
}

#[test]
fn epilogue_activation_refuses_graph_output() {
    let g = graph(&[X], &["z", "y"], conv_inits(), vec![conv("y"), node("act", "Relu", &["y"], &["z"])]);
    let (out, report) = run_rule(&g, EpilogueActivation);
    assert_eq!(op_types(&out), ["Conv", "Relu"]);
    assert_refused(&report, "epilogue_activation", &["'y'", "graph output"]);
}

#[test]
fn epilogue_activation_refuses_non_constant_clip_bounds() {
    let g =
        graph(&[X, ("hi", &[])], &["z"], conv_inits(), vec![conv("y"), node("clip", "Clip", &["y", "", "hi"], &["z"])]);
    let (out, report) = run_rule(&g, EpilogueActivation);
    assert_eq!(op_types(&out), ["Conv", "Clip"]);
    assert_refused(&report, "epilogue_activation", &["bound 'hi'", "not an f32 constant"]);
}

/// `g` with every f32 input and initializer turned into f16.
fn to_f16(mut g: Graph) -> Graph {
    for vi in &mut g.inputs {
        vi.dtype = DType::F16;
    }
    for t in g.initializers.values_mut() {
        let v: Vec<f16> = t.as_slice::<f32>().unwrap().iter().map(|&v| f16::from_f32(v)).collect();
        *t = std::sync::Arc::new(Tensor::from_vec(t.shape(), v).unwrap());
    }
    g
}

#[test]
fn epilogue_activation_refuses_f16() {
    let g = to_f16(graph(&[X], &["z"], conv_inits(), vec![conv("y"), node("act", "Relu", &["y"], &["z"])]));
    let (out, report) = run_rule(&g, EpilogueActivation);
    assert_eq!(op_types(&out), ["Conv", "Relu"]);
    assert_refused(&report, "epilogue_activation", &["f16", "only f32"]);
}

// ---------- epilogue_add ----------

#[test]
fn epilogue_add_then_activation() {
    let g = graph(
        &[X, ("r", &[1, 3, 5, 5])],
        &["z"],
        conv_inits(),
        vec![conv("y"), node("add", "Add", &["r", "y"], &["s"]), node("act", "Relu", &["s"], &["z"])],
    );
    let (out, report) = run_rules(&g, vec![Box::new(EpilogueActivation), Box::new(EpilogueAdd)]);
    assert_eq!(report.count("epilogue_add"), 1);
    assert_eq!(op_types(&out), ["FusedConv"]);
    assert_eq!(steps(&out.nodes[0]), [Step::Binary { op: BinOp::Add, swapped: false }, Step::Relu]);
    assert_eq!(out.nodes[0].inputs, ["x", "w", "b", "r"]);
    assert_same_outputs(&g, &out, 30);
}

#[test]
fn epilogue_add_accepts_per_channel_operand() {
    let mut inits = conv_inits();
    inits.push(("pc", rand_t(31, &[3, 1, 1])));
    let g = graph(&[X], &["s"], inits, vec![conv("y"), node("add", "Add", &["y", "pc"], &["s"])]);
    let (out, _) = run_rule(&g, EpilogueAdd);
    assert_eq!(op_types(&out), ["FusedConv"]);
    assert_same_outputs(&g, &out, 32);
}

#[test]
fn epilogue_add_refuses_self_add_and_broadcast_up() {
    let g = graph(&[X], &["s"], conv_inits(), vec![conv("y"), node("add", "Add", &["y", "y"], &["s"])]);
    let (out, report) = run_rule(&g, EpilogueAdd);
    assert_eq!(op_types(&out), ["Conv", "Add"]);
    assert_refused(&report, "epilogue_add", &["adds 'y' to itself"]);

    let g = graph(
        &[X, ("r", &[2, 1, 3, 5, 5])],
        &["s"],
        conv_inits(),
        vec![conv("y"), node("add", "Add", &["y", "r"], &["s"])],
    );
    let (out, report) = run_rule(&g, EpilogueAdd);
    assert_eq!(op_types(&out), ["Conv", "Add"]);
    assert_refused(&report, "epilogue_add", &["broadcasts 'y'"]);
}

#[test]
fn epilogue_add_refuses_shared_output() {
    let g = graph(
        &[X, ("r", &[1, 3, 5, 5])],
        &["s", "n"],
        conv_inits(),
        vec![conv("y"), node("add", "Add", &["y", "r"], &["s"]), node("neg", "Neg", &["y"], &["n"])],
    );
    let (out, report) = run_rule(&g, EpilogueAdd);
    assert_eq!(op_types(&out), ["Conv", "Add", "Neg"]);
    assert_refused(&report, "epilogue_add", &["also read by node 'neg'"]);
}

// ---------- matmul_bias ----------

fn matmul_bias(bias: Tensor) -> Graph {
    graph(
        &[("x", &[2, 3, 4])],
        &["z"],
        vec![("w", rand_t(40, &[4, 5])), ("bias", bias)],
        vec![node("mm", "MatMul", &["x", "w"], &["y"]), node("add", "Add", &["bias", "y"], &["z"])],
    )
}

#[test]
fn matmul_bias_makes_a_bias() {
    let g = matmul_bias(rand_t(41, &[5]));
    let (out, report) = run_rule(&g, MatMulBias);
    assert_eq!(report.count("matmul_bias"), 1);
    assert_eq!(op_types(&out), ["FusedMatMul"]);
    assert_eq!(out.nodes[0].inputs, ["x", "w", "bias"]);
    assert!(steps(&out.nodes[0]).is_empty());
    assert_same_outputs(&g, &out, 42);

    // A [1, 5] vector becomes a new [5] initializer.
    let g = matmul_bias(rand_t(43, &[1, 5]));
    let (out, _) = run_rule(&g, MatMulBias);
    assert_eq!(op_types(&out), ["FusedMatMul"]);
    assert_eq!(out.initializers[&out.nodes[0].inputs[2]].shape(), [5]);
    assert_same_outputs(&g, &out, 44);
}

#[test]
fn matmul_bias_refuses_non_vectors_and_runtime_values() {
    let (out, report) = run_rule(&matmul_bias(rand_t(45, &[3, 5])), MatMulBias);
    assert_eq!(op_types(&out), ["MatMul", "Add"]);
    assert_refused(&report, "matmul_bias", &["'bias'", "not an f32 vector of the 5 output columns"]);

    let g = graph(
        &[("x", &[2, 4]), ("b", &[3])],
        &["z"],
        vec![("w", rand_t(46, &[4, 3]))],
        vec![node("mm", "MatMul", &["x", "w"], &["y"]), node("add", "Add", &["y", "b"], &["z"])],
    );
    let (out, report) = run_rule(&g, MatMulBias);
    assert_eq!(op_types(&out), ["MatMul", "Add"]);
    assert_refused(&report, "matmul_bias", &["'b' is not a constant"]);

    let mut g = matmul_bias(rand_t(47, &[5]));
    g.outputs.push(sinter_ir::ValueInfo { name: "y".into(), dtype: DType::F32, dims: None });
    let (out, report) = run_rule(&g, MatMulBias);
    assert_eq!(op_types(&out), ["MatMul", "Add"]);
    assert_refused(&report, "matmul_bias", &["graph output"]);
}

// ---------- hardswish_pattern ----------

/// x5 = 5x; a = x5 + 3; c = Clip(a, lo, hi); then the tail nodes.
fn hardswish_graph(lo: f32, hi: f32, add: f32, tail: Vec<Node>) -> Graph {
    graph(
        &[X],
        &["z"],
        vec![
            five(),
            ("three", t(&[], vec![add])),
            ("lo", t(&[], vec![lo])),
            ("hi", t(&[], vec![hi])),
            ("six", t(&[], vec![6.0])),
            ("sixth", t(&[], vec![1.0 / 6.0])),
        ],
        [
            vec![
                widen("x5"),
                node("add3", "Add", &["three", "x5"], &["a"]),
                node("clip", "Clip", &["a", "lo", "hi"], &["c"]),
            ],
            tail,
        ]
        .concat(),
    )
}

#[test]
fn hardswish_pattern_forms() {
    let tails = [
        vec![node("mul", "Mul", &["x5", "c"], &["m"]), node("div", "Div", &["m", "six"], &["z"])],
        vec![node("mul", "Mul", &["c", "x5"], &["m"]), node("sc", "Mul", &["sixth", "m"], &["z"])],
        vec![node("div", "Div", &["c", "six"], &["d"]), node("mul", "Mul", &["x5", "d"], &["z"])],
    ];
    for (k, tail) in tails.into_iter().enumerate() {
        let g = hardswish_graph(0.0, 6.0, 3.0, tail);
        let (out, report) = run_rule(&g, HardSwishPattern);
        assert_eq!(report.count("hardswish_pattern"), 1, "form {k}");
        assert_eq!(op_types(&out), ["Mul", "FusedElementwise"], "form {k}");
        assert_eq!(steps(&out.nodes[1]), [Step::HardSwish]);
        assert_eq!(out.nodes[1].fused_from.len(), 4);
        assert_same_outputs(&g, &out, 50 + k as u64);
    }
    // PaddlePaddle: x * HardSigmoid(x, 1/6, 0.5).
    let hs = |alpha: f32| {
        graph(
            &[X],
            &["z"],
            vec![five()],
            vec![
                widen("x5"),
                node_with(
                    "hsig",
                    "HardSigmoid",
                    attrs(&[("alpha", AttrValue::Float(alpha)), ("beta", AttrValue::Float(0.5))]),
                    &["x5"],
                    &["h"],
                ),
                node("mul", "Mul", &["h", "x5"], &["z"]),
            ],
        )
    };
    let g = hs(1.0 / 6.0);
    let (out, _) = run_rule(&g, HardSwishPattern);
    assert_eq!(op_types(&out), ["Mul", "FusedElementwise"]);
    assert_same_outputs(&g, &out, 55);
    let (out, report) = run_rule(&hs(0.2), HardSwishPattern);
    assert_eq!(op_types(&out), ["Mul", "HardSigmoid", "Mul"]);
    assert_refused(&report, "hardswish_pattern", &["alpha 0.2"]);
}

#[test]
fn hardswish_pattern_refuses_wrong_constants() {
    let tail = || vec![node("mul", "Mul", &["x5", "c"], &["m"]), node("div", "Div", &["m", "six"], &["z"])];
    let (out, report) = run_rule(&hardswish_graph(0.0, 5.0, 3.0, tail()), HardSwishPattern);
    assert_eq!(out.nodes.len(), 5);
    assert_refused(&report, "hardswish_pattern", &["clips to (0, 5), not (0, 6)"]);
    let (out, report) = run_rule(&hardswish_graph(0.0, 6.0, 2.5, tail()), HardSwishPattern);
    assert_eq!(out.nodes.len(), 5);
    assert_refused(&report, "hardswish_pattern", &["adds 2.5, not 3"]);
    let tail = vec![node("mul", "Mul", &["x5", "c"], &["m"]), node("div", "Div", &["m", "five"], &["z"])];
    let (out, report) = run_rule(&hardswish_graph(0.0, 6.0, 3.0, tail), HardSwishPattern);
    assert_eq!(out.nodes.len(), 5);
    assert_refused(&report, "hardswish_pattern", &["not 1/6"]);
}

#[test]
fn hardswish_pattern_refuses_shared_intermediate() {
    let tail = vec![node("mul", "Mul", &["x5", "c"], &["m"]), node("div", "Div", &["m", "six"], &["z"])];
    let mut g = hardswish_graph(0.0, 6.0, 3.0, tail);
    g.outputs.push(sinter_ir::ValueInfo { name: "c".into(), dtype: DType::F32, dims: None });
    let (out, report) = run_rule(&g, HardSwishPattern);
    assert_eq!(out.nodes.len(), 5);
    assert_refused(&report, "hardswish_pattern", &["'c'", "graph output"]);
}

// ---------- silu_pattern ----------

fn silu_graph(extra: bool) -> Graph {
    let mut nodes =
        vec![widen("x5"), node("sig", "Sigmoid", &["x5"], &["s"]), node("mul", "Mul", &["x5", "s"], &["z"])];
    if extra {
        nodes.push(node("neg", "Neg", &["s"], &["n"]));
    }
    graph(&[X], if extra { &["z", "n"] } else { &["z"] }, vec![five()], nodes)
}

#[test]
fn silu_pattern_fuses() {
    let g = silu_graph(false);
    let (out, report) = run_rule(&g, SiluPattern);
    assert_eq!(report.count("silu_pattern"), 1);
    assert_eq!(op_types(&out), ["Mul", "FusedElementwise"]);
    assert_eq!(steps(&out.nodes[1]), [Step::Silu]);
    assert_eq!(fused_from(&out.nodes[1]), ["sig", "mul"]);
    assert_same_outputs(&g, &out, 60);
}

#[test]
fn silu_pattern_refuses_shared_sigmoid_and_f16() {
    let (out, report) = run_rule(&silu_graph(true), SiluPattern);
    assert_eq!(op_types(&out), ["Mul", "Sigmoid", "Mul", "Neg"]);
    assert_refused(&report, "silu_pattern", &["'s'", "also read by node 'neg'"]);
    let (out, report) = run_rule(&to_f16(silu_graph(false)), SiluPattern);
    assert_eq!(out.nodes.len(), 3);
    assert_refused(&report, "silu_pattern", &["only f32"]);
}

// ---------- gelu patterns ----------

fn gelu_consts() -> Vec<(&'static str, Tensor)> {
    vec![
        five(),
        ("sqrt2", t(&[], vec![std::f32::consts::SQRT_2])),
        ("isqrt2", t(&[1], vec![std::f32::consts::FRAC_1_SQRT_2])),
        ("one", t(&[], vec![1.0])),
        ("half", t(&[], vec![0.5])),
        ("two", t(&[], vec![2.0])),
    ]
}

#[test]
fn gelu_erf_pattern_torch_and_other_orders() {
    // torch: Div(x, sqrt2) -> Erf -> Add 1 -> Mul(x, .) -> Mul(., 0.5)
    let torch = graph(
        &[X],
        &["z"],
        gelu_consts(),
        vec![
            widen("x5"),
            node("div", "Div", &["x5", "sqrt2"], &["d"]),
            node("erf", "Erf", &["d"], &["e"]),
            node("add", "Add", &["e", "one"], &["t"]),
            node("mul", "Mul", &["x5", "t"], &["m"]),
            node("half", "Mul", &["m", "half"], &["z"]),
        ],
    );
    // 0.5 * x first, scaling by 1/sqrt2 with a Mul, 1 + erf with the constant first.
    let other = graph(
        &[X],
        &["z"],
        gelu_consts(),
        vec![
            widen("x5"),
            node("hx", "Mul", &["half", "x5"], &["h"]),
            node("sc", "Mul", &["x5", "isqrt2"], &["d"]),
            node("erf", "Erf", &["d"], &["e"]),
            node("add", "Add", &["one", "e"], &["t"]),
            node("mul", "Mul", &["t", "h"], &["z"]),
        ],
    );
    for (k, g) in [torch, other].into_iter().enumerate() {
        let (out, report) = run_rule(&g, GeluErfPattern);
        assert_eq!(report.count("gelu_erf_pattern"), 1, "order {k}");
        assert_eq!(op_types(&out), ["Mul", "FusedElementwise"], "order {k}");
        assert_eq!(steps(&out.nodes[1]), [Step::GeluErf]);
        assert_eq!(out.nodes[1].fused_from.len(), 5);
        assert_same_outputs(&g, &out, 70 + k as u64);
    }
}

#[test]
fn gelu_erf_pattern_refuses_wrong_scale_and_shared_erf() {
    let build = |div_by: &str, share: bool| {
        let mut nodes = vec![
            widen("x5"),
            node("div", "Div", &["x5", div_by], &["d"]),
            node("erf", "Erf", &["d"], &["e"]),
            node("add", "Add", &["e", "one"], &["t"]),
            node("mul", "Mul", &["x5", "t"], &["m"]),
            node("half", "Mul", &["m", "half"], &["z"]),
        ];
        if share {
            nodes.push(node("neg", "Neg", &["e"], &["n"]));
        }
        graph(&[X], if share { &["z", "n"] } else { &["z"] }, gelu_consts(), nodes)
    };
    let (out, report) = run_rule(&build("two", false), GeluErfPattern);
    assert_eq!(out.nodes.len(), 6);
    assert_refused(&report, "gelu_erf_pattern", &["scales by 0.5, not 1/sqrt(2)"]);
    let (out, report) = run_rule(&build("sqrt2", true), GeluErfPattern);
    assert_eq!(out.nodes.len(), 7);
    assert_refused(&report, "gelu_erf_pattern", &["'e'", "also read by node 'neg'"]);
}

fn gelu_tanh_graph(c: f32, pow: bool) -> Graph {
    let mut inits = gelu_consts();
    inits.push(("k", t(&[], vec![(2.0 / std::f32::consts::PI).sqrt()])));
    inits.push(("c", t(&[], vec![c])));
    inits.push(("three", t(&[], vec![3.0])));
    let cube = if pow {
        vec![node("pow", "Pow", &["x5", "three"], &["cube"])]
    } else {
        vec![node("sq", "Mul", &["x5", "x5"], &["sq"]), node("cb", "Mul", &["sq", "x5"], &["cube"])]
    };
    let rest = vec![
        node("cc", "Mul", &["c", "cube"], &["cc"]),
        node("inner", "Add", &["x5", "cc"], &["w"]),
        node("scale", "Mul", &["w", "k"], &["u"]),
        node("tanh", "Tanh", &["u"], &["th"]),
        node("add1", "Add", &["th", "one"], &["t"]),
        node("hx", "Mul", &["x5", "half"], &["h"]),
        node("mul", "Mul", &["h", "t"], &["z"]),
    ];
    graph(&[X], &["z"], inits, [vec![widen("x5")], cube, rest].concat())
}

#[test]
fn gelu_tanh_pattern_fuses_both_cube_forms() {
    for (k, pow) in [true, false].into_iter().enumerate() {
        let g = gelu_tanh_graph(0.044715, pow);
        let (out, report) = run_rule(&g, GeluTanhPattern);
        assert_eq!(report.count("gelu_tanh_pattern"), 1, "pow {pow}");
        assert_eq!(op_types(&out), ["Mul", "FusedElementwise"]);
        assert_eq!(steps(&out.nodes[1]), [Step::GeluTanh]);
        assert_eq!(out.nodes[1].fused_from.len(), g.nodes.len() - 1);
        assert_same_outputs(&g, &out, 80 + k as u64);
    }
}

#[test]
fn gelu_tanh_pattern_refuses_wrong_coefficient() {
    let g = gelu_tanh_graph(0.05, true);
    let (out, report) = run_rule(&g, GeluTanhPattern);
    assert_eq!(out.nodes.len(), g.nodes.len());
    assert_refused(&report, "gelu_tanh_pattern", &["not sqrt(2/pi) and 0.044715"]);
}

// ---------- layernorm_pattern ----------

/// LayerNorm over the last axis of a [2, 3, 8] input, written out.
fn layernorm_graph(opset: i64, axis: i64, exponent: f32, expose_d: bool) -> Graph {
    let mean = |name: &str, i: &str, o: &str| {
        if opset >= 18 {
            node_at(name, "ReduceMean", opset, Default::default(), &[i, "axes"], &[o])
        } else {
            node_at(name, "ReduceMean", opset, attrs(&[("axes", AttrValue::Ints(vec![axis]))]), &[i], &[o])
        }
    };
    let op = |name: &str, ty: &str, i: &[&str], o: &str| node_at(name, ty, opset, Default::default(), i, &[o]);
    graph(
        &[("x", &[2, 3, 8])],
        if expose_d { &["z", "d"] } else { &["z"] },
        vec![
            ("axes", i64s(&[axis])),
            ("p", t(&[], vec![exponent])),
            ("eps", t(&[], vec![1e-5])),
            ("gamma", rand_t(90, &[8])),
            ("beta", rand_t(91, &[8])),
        ],
        vec![
            mean("m", "x", "mu"),
            op("sub", "Sub", &["x", "mu"], "d"),
            op("pow", "Pow", &["d", "p"], "d2"),
            mean("v", "d2", "var"),
            op("addeps", "Add", &["var", "eps"], "ve"),
            op("sqrt", "Sqrt", &["ve"], "sd"),
            op("div", "Div", &["d", "sd"], "n"),
            op("mul", "Mul", &["gamma", "n"], "y"),
            op("add", "Add", &["y", "beta"], "z"),
        ],
    )
}

#[test]
fn layernorm_pattern_fuses_with_axes_attribute_and_input() {
    for (opset, axis) in [(13, -1), (18, 2)] {
        let g = layernorm_graph(opset, axis, 2.0, false);
        let (out, report) = run_rule(&g, LayerNormPattern);
        assert_eq!(report.count("layernorm_pattern"), 1, "opset {opset}");
        assert_eq!(op_types(&out), ["LayerNormalization"]);
        assert_eq!(out.nodes[0].inputs, ["x", "gamma", "beta"]);
        assert_eq!(out.nodes[0].fused_from.len(), 9);
        assert_same_outputs(&g, &out, 90);
    }
}

#[test]
fn layernorm_pattern_refuses_wrong_axis_exponent_and_shared_value() {
    let (out, report) = run_rule(&layernorm_graph(13, 1, 2.0, false), LayerNormPattern);
    assert_eq!(out.nodes.len(), 9);
    assert_refused(&report, "layernorm_pattern", &["not a ReduceMean over the last axis"]);
    let (out, report) = run_rule(&layernorm_graph(13, -1, 3.0, false), LayerNormPattern);
    assert_eq!(out.nodes.len(), 9);
    assert_refused(&report, "layernorm_pattern", &["exponent 2"]);
    let (out, report) = run_rule(&layernorm_graph(13, -1, 2.0, true), LayerNormPattern);
    assert_eq!(out.nodes.len(), 9);
    assert_refused(&report, "layernorm_pattern", &["'d'", "graph output"]);
    // epsilon fed at run time
    let mut g = layernorm_graph(13, -1, 2.0, false);
    g.initializers.remove("eps");
    g.inputs.push(sinter_ir::ValueInfo { name: "eps".into(), dtype: DType::F32, dims: Some(vec![]) });
    let (out, report) = run_rule(&g, LayerNormPattern);
    assert_eq!(out.nodes.len(), 9);
    assert_refused(&report, "layernorm_pattern", &["epsilon 'eps' is not an f32 constant"]);
}

// ---------- elementwise_chain ----------

#[test]
fn elementwise_chain_merges_unary_and_binary_steps() {
    let g = graph(
        &[("x", &[2, 3]), ("r", &[3])],
        &["z"],
        vec![("two", t(&[], vec![2.0])), ("one", t(&[1], vec![1.0]))],
        vec![
            node("relu", "Relu", &["x"], &["a"]),
            node("mul", "Mul", &["two", "a"], &["b"]),
            node("sub", "Sub", &["one", "b"], &["c"]),
            node("add", "Add", &["c", "r"], &["d"]),
            node("sig", "Sigmoid", &["d"], &["z"]),
        ],
    );
    let (out, report) = run_rule(&g, ElementwiseChain);
    assert_eq!(report.count("elementwise_chain"), 4);
    assert_eq!(op_types(&out), ["FusedElementwise"]);
    let bin = |op, swapped| Step::Binary { op, swapped };
    assert_eq!(
        steps(&out.nodes[0]),
        [Step::Relu, bin(BinOp::Mul, false), bin(BinOp::Sub, true), bin(BinOp::Add, false), Step::Sigmoid]
    );
    assert_eq!(out.nodes[0].inputs, ["x", "two", "one", "r"]);
    assert_eq!(fused_from(&out.nodes[0]), ["relu", "mul", "sub", "add", "sig"]);
    assert_same_outputs(&g, &out, 100);
}

#[test]
fn elementwise_chain_squares_inputs_but_not_intermediates() {
    // relu(x * x): the first node may read x twice.
    let g = graph(
        &[("x", &[4])],
        &["z"],
        vec![],
        vec![node("sq", "Mul", &["x", "x"], &["a"]), node("relu", "Relu", &["a"], &["z"])],
    );
    let (out, _) = run_rule(&g, ElementwiseChain);
    assert_eq!(op_types(&out), ["FusedElementwise"]);
    assert_eq!(out.nodes[0].inputs, ["x", "x"]);
    assert_same_outputs(&g, &out, 101);
    // relu(x) * relu(x): the intermediate would vanish while still read.
    let g = graph(
        &[("x", &[4])],
        &["z"],
        vec![],
        vec![node("relu", "Relu", &["x"], &["a"]), node("sq", "Mul", &["a", "a"], &["z"])],
    );
    let (out, report) = run_rule(&g, ElementwiseChain);
    assert_eq!(op_types(&out), ["Relu", "Mul"]);
    assert_refused(&report, "elementwise_chain", &["reads 'a' twice"]);
}

#[test]
fn elementwise_chain_refuses_shared_values_and_broadcasting() {
    let g = graph(
        &[("x", &[2, 3])],
        &["z", "a"],
        vec![],
        vec![node("relu", "Relu", &["x"], &["a"]), node("sig", "Sigmoid", &["a"], &["z"])],
    );
    let (out, report) = run_rule(&g, ElementwiseChain);
    assert_eq!(op_types(&out), ["Relu", "Sigmoid"]);
    assert_refused(&report, "elementwise_chain", &["'a'", "graph output"]);

    let g = graph(
        &[("x", &[3]), ("r", &[2, 3])],
        &["z"],
        vec![],
        vec![node("relu", "Relu", &["x"], &["a"]), node("add", "Add", &["a", "r"], &["z"])],
    );
    let (out, report) = run_rule(&g, ElementwiseChain);
    assert_eq!(op_types(&out), ["Relu", "Add"]);
    assert_refused(&report, "elementwise_chain", &["broadcasts 'a'"]);

    let g = to_f16(graph(
        &[("x", &[3])],
        &["z"],
        vec![],
        vec![node("relu", "Relu", &["x"], &["a"]), node("sig", "Sigmoid", &["a"], &["z"])],
    ));
    let (out, report) = run_rule(&g, ElementwiseChain);
    assert_eq!(op_types(&out), ["Relu", "Sigmoid"]);
    assert_refused(&report, "elementwise_chain", &["only f32"]);
}

// ---------- the default pipeline ----------

#[test]
fn default_passes_fuse_a_transformer_block_tail() {
    // MatMul + bias + GELU (erf), then a residual-free chain: one FusedMatMul.
    let g = graph(
        &[("x", &[2, 3, 4])],
        &["z"],
        [
            vec![("w", rand_t(110, &[4, 6])), ("bias", rand_t(111, &[6]))],
            gelu_consts().into_iter().filter(|(n, _)| *n != "five").collect(),
        ]
        .concat(),
        vec![
            node("mm", "MatMul", &["x", "w"], &["y"]),
            node("badd", "Add", &["y", "bias"], &["x5"]),
            node("div", "Div", &["x5", "sqrt2"], &["d"]),
            node("erf", "Erf", &["d"], &["e"]),
            node("add", "Add", &["e", "one"], &["t"]),
            node("mul", "Mul", &["x5", "t"], &["m"]),
            node("half", "Mul", &["m", "half"], &["z"]),
        ],
    );
    let (out, report) = run_passes(&g, &default_passes(), &Options::default());
    assert_eq!(op_types(&out), ["FusedMatMul"], "{report}");
    assert_eq!(steps(&out.nodes[0]), [Step::GeluErf]);
    assert_eq!(out.nodes[0].fused_from.len(), 7);
    assert_same_outputs(&g, &out, 112);
}

fn epilogue_attrs(names: &[&str]) -> sinter_ir::Attrs {
    attrs(&[("epilogue", AttrValue::Strings(names.iter().map(|s| s.to_string()).collect()))])
}

#[test]
fn fused_matmul_bias_and_strided_operand_values() {
    // [1, 2] x [[1, 0, 2], [0, 1, 1]] = [1, 2, 4]; + bias [0.5, -3, 0] = [1.5, -1, 4];
    // relu -> [1.5, 0, 4]; then + column operand [[10], [20]] broadcast over two rows of
    // a [2, 3] product.
    let g = graph(
        &[("a", &[2, 2])],
        &["y"],
        vec![
            ("b", t(&[2, 3], vec![1.0, 0.0, 2.0, 0.0, 1.0, 1.0])),
            ("bias", t(&[3], vec![0.5, -3.0, 0.0])),
            ("col", t(&[2, 1], vec![10.0, 20.0])),
        ],
        vec![node_with("f", "FusedMatMul", epilogue_attrs(&["Relu", "Add"]), &["a", "b", "bias", "col"], &["y"])],
    );
    let y = interp::run(&g, &[("a", t(&[2, 2], vec![1.0, 2.0, 0.0, -1.0]))]).unwrap();
    // row 2: [0, -1, -1] + bias = [0.5, -4, -1] -> relu [0.5, 0, 0] -> + 20
    assert_eq!(y[0].as_slice::<f32>().unwrap(), [11.5, 10.0, 14.0, 20.5, 20.0, 20.0]);
}

#[test]
fn fused_ops_reject_inconsistent_inputs() {
    let infer = |op: &str, a: sinter_ir::Attrs, facts: &[Option<sinter_ir::Fact>]| {
        let op = sinter_ir::ops::build(op, &a, 17).unwrap();
        let refs: Vec<Option<&sinter_ir::Fact>> = facts.iter().map(|f| f.as_ref()).collect();
        op.infer(&refs)
    };
    let f = |shape: &[usize]| Some(sinter_ir::Fact::new(DType::F32, shape.to_vec()));
    // A bias that is not the output's last dimension.
    assert!(infer("FusedMatMul", Default::default(), &[f(&[2, 4]), f(&[4, 3]), f(&[4])]).is_err());
    assert!(infer("FusedMatMul", Default::default(), &[f(&[2, 4]), f(&[4, 3]), f(&[3])]).is_ok());
    // An Add step without its operand, and with one that does not broadcast.
    let conv = |extra: Option<sinter_ir::Fact>| {
        let mut facts = vec![f(&[1, 2, 4, 4]), f(&[3, 2, 1, 1]), None];
        facts.extend(extra.map(Some));
        infer("FusedConv", epilogue_attrs(&["Add"]), &facts)
    };
    assert!(conv(None).is_err());
    assert!(conv(f(&[2, 4, 4])).is_err());
    assert_eq!(conv(f(&[3, 1, 1])).unwrap()[0].shape, [1, 3, 4, 4]);
    // f16 is not fused.
    let h = Some(sinter_ir::Fact::new(DType::F16, vec![3]));
    assert!(infer("FusedElementwise", epilogue_attrs(&["Relu"]), &[h]).is_err());
}
