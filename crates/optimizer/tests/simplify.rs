//! Tests of the simplify rules: structure after the rewrite, numerics against the
//! reference interpreter, and one negative test per precondition.

mod common;

use common::*;
use sinter_ir::AttrValue;
use sinter_optimizer::rules::{
    default_passes, BatchNormToScaleShift, Cse, DeadNodes, FoldBatchNorm, FoldConstants, FoldMulAddIntoConv,
    ReshapeChain,
};
use sinter_optimizer::Options;

// ---------- fold_constants ----------

#[test]
fn fold_constants_replaces_node_by_initializer() {
    let a = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = vec![0.5, -1.0, 2.0, 0.0, -3.0, 1.5];
    let g = graph(
        &[("x", &[2, 3])],
        &["y"],
        vec![("a", t(&[2, 3], a)), ("b", t(&[2, 3], b))],
        vec![node("add", "Add", &["a", "b"], &["c"]), node("mul", "Mul", &["x", "c"], &["y"])],
    );
    let (out, report) = run_rule(&g, FoldConstants);
    assert_eq!(report.count("fold_constants"), 1);
    assert_eq!(op_types(&out), ["Mul"]);
    let c = out.initializers.get("c").expect("c became an initializer");
    assert_eq!(c.as_slice::<f32>().unwrap(), [1.5, 1.0, 5.0, 4.0, 2.0, 7.5]);
    assert_same_outputs(&g, &out, 1);
}

#[test]
fn fold_constants_folds_shape_subgraph() {
    // y = Reshape(Flatten(x), Shape(x)): Shape(x) is known at build time.
    let g = graph(
        &[("x", &[2, 3, 4])],
        &["y"],
        vec![],
        vec![
            node("shape", "Shape", &["x"], &["s"]),
            node("flat", "Flatten", &["x"], &["f"]),
            node("reshape", "Reshape", &["f", "s"], &["y"]),
        ],
    );
    let (out, report) = run_rule(&g, FoldConstants);
    assert_eq!(report.count("fold_constants"), 1);
    assert_eq!(op_types(&out), ["Flatten", "Reshape"]);
    assert_eq!(out.initializers["s"].to_i64_vec().unwrap(), [2, 3, 4]);
    assert_same_outputs(&g, &out, 2);
}

#[test]
fn fold_constants_refuses_graph_output_and_ignores_runtime_values() {
    let g = graph(
        &[("x", &[2])],
        &["c", "y"],
        vec![("a", t(&[2], vec![1.0, 2.0]))],
        vec![node("neg", "Neg", &["a"], &["c"]), node("relu", "Relu", &["x"], &["y"])],
    );
    let (out, report) = run_rule(&g, FoldConstants);
    assert_eq!(report.count("fold_constants"), 0);
    assert_eq!(op_types(&out), ["Neg", "Relu"]);
    assert_refused(&report, "fold_constants", &["'c'", "graph output"]);
    // Relu reads a runtime input: not a candidate, so no refusal for it.
    assert!(report.refused.iter().all(|r| r.node != "relu"));
}

#[test]
fn fold_constants_folds_every_output_and_skips_dead_nodes() {
    let g = graph(
        &[("x", &[2])],
        &["y"],
        vec![("a", t(&[4], vec![1.0, 2.0, 3.0, 4.0]))],
        vec![
            node_at("split", "Split", 18, attrs(&[("num_outputs", AttrValue::Int(2))]), &["a"], &["s0", "s1"]),
            node("sub", "Sub", &["s0", "s1"], &["d"]),
            node("mul", "Mul", &["x", "d"], &["y"]),
            node("unread", "Neg", &["a"], &["n"]),
        ],
    );
    let (out, report) = run_rule(&g, FoldConstants);
    // Split, then Sub (whose inputs became initializers); the unread Neg is left alone.
    assert_eq!(report.count("fold_constants"), 2);
    assert_eq!(op_types(&out), ["Mul", "Neg"]);
    assert_eq!(out.initializers["s0"].as_slice::<f32>().unwrap(), [1.0, 2.0]);
    assert_eq!(out.initializers["s1"].as_slice::<f32>().unwrap(), [3.0, 4.0]);
    assert_eq!(out.initializers["d"].as_slice::<f32>().unwrap(), [-2.0, -2.0]);
    assert_same_outputs(&g, &out, 22);
}

// ---------- dead_nodes ----------

#[test]
fn dead_nodes_removes_unread_chains() {
    let g = graph(
        &[("x", &[3])],
        &["y"],
        vec![],
        vec![
            node("relu", "Relu", &["x"], &["y"]),
            node("neg", "Neg", &["x"], &["d1"]),
            node("abs", "Abs", &["d1"], &["d2"]),
        ],
    );
    let (out, report) = run_rule(&g, DeadNodes);
    assert_eq!(report.count("dead_nodes"), 2);
    assert_eq!(op_types(&out), ["Relu"]);
    assert_same_outputs(&g, &out, 3);
}

#[test]
fn dead_nodes_keeps_outputs_and_partly_read_nodes() {
    // "n" is an unread graph output; Split's second output is unread but its first is read.
    let g = graph(
        &[("x", &[4])],
        &["n", "y"],
        vec![],
        vec![
            node("neg", "Neg", &["x"], &["n"]),
            node_at("split", "Split", 18, attrs(&[("num_outputs", AttrValue::Int(2))]), &["x"], &["s0", "s1"]),
            node("relu", "Relu", &["s0"], &["y"]),
        ],
    );
    let (out, report) = run_rule(&g, DeadNodes);
    assert_eq!(report.count("dead_nodes"), 0);
    assert_eq!(op_types(&out), ["Neg", "Split", "Relu"]);
}

// ---------- reshape_chain ----------

#[test]
fn reshape_chain_merges_flatten_unsqueeze() {
    let g = graph(
        &[("x", &[2, 3, 4])],
        &["y"],
        vec![("axes", i64s(&[1]))],
        vec![node("flat", "Flatten", &["x"], &["f"]), node("unsq", "Unsqueeze", &["f", "axes"], &["y"])],
    );
    let (out, report) = run_rule(&g, ReshapeChain);
    assert_eq!(report.count("reshape_chain"), 1);
    assert_eq!(op_types(&out), ["Reshape"]);
    let r = &out.nodes[0];
    assert_eq!(r.inputs[0], "x");
    assert_eq!(out.initializers[&r.inputs[1]].to_i64_vec().unwrap(), [2, 1, 12]);
    let names: Vec<&str> = r.fused_from.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["flat", "unsq"]);
    assert_same_outputs(&g, &out, 4);
}

#[test]
fn reshape_chain_merges_three_and_keeps_graph_output_name() {
    let g = graph(
        &[("x", &[2, 1, 6])],
        &["y"],
        vec![("s", i64s(&[3, 1, 4])), ("ax0", i64s(&[1])), ("ax1", i64s(&[0]))],
        vec![
            node("r", "Reshape", &["x", "s"], &["a"]),
            node("sq", "Squeeze", &["a", "ax0"], &["b"]),
            node("us", "Unsqueeze", &["b", "ax1"], &["y"]),
        ],
    );
    let (out, report) = run_rule(&g, ReshapeChain);
    assert_eq!(report.count("reshape_chain"), 2);
    assert_eq!(op_types(&out), ["Reshape"]);
    assert_eq!(out.nodes[0].outputs, ["y"]);
    assert_eq!(out.initializers[&out.nodes[0].inputs[1]].to_i64_vec().unwrap(), [1, 3, 4]);
    assert_same_outputs(&g, &out, 5);
}

#[test]
fn reshape_chain_removes_noop_reshape() {
    // The no-op Reshape writes a graph output: Relu takes over the name.
    let g = graph(
        &[("x", &[2, 3])],
        &["y"],
        vec![("s", i64s(&[2, -1]))],
        vec![node("relu", "Relu", &["x"], &["r"]), node("reshape", "Reshape", &["r", "s"], &["y"])],
    );
    let (out, report) = run_rule(&g, ReshapeChain);
    assert_eq!(report.count("reshape_chain"), 1);
    assert_eq!(op_types(&out), ["Relu"]);
    assert_eq!(out.nodes[0].outputs, ["y"]);
    assert_same_outputs(&g, &out, 6);
}

#[test]
fn reshape_chain_refuses_noop_from_graph_input_to_graph_output() {
    let g = graph(&[("x", &[2, 3])], &["y"], vec![], vec![node("flat", "Flatten", &["x"], &["y"])]);
    let (_, report) = run_rule(&g, ReshapeChain);
    assert_eq!(report.count("reshape_chain"), 0);
    assert_refused(&report, "reshape_chain", &["graph output"]);
}

#[test]
fn reshape_chain_refuses_when_first_output_read_elsewhere() {
    let g = graph(
        &[("x", &[2, 3, 4])],
        &["y", "z"],
        vec![("axes", i64s(&[0]))],
        vec![
            node("flat", "Flatten", &["x"], &["f"]),
            node("unsq", "Unsqueeze", &["f", "axes"], &["y"]),
            node("other", "Relu", &["f"], &["z"]),
        ],
    );
    let (out, report) = run_rule(&g, ReshapeChain);
    assert_eq!(report.count("reshape_chain"), 0);
    assert_eq!(op_types(&out), ["Flatten", "Unsqueeze", "Relu"]);
    assert_refused(&report, "reshape_chain", &["'flat'", "'other'"]);
}

#[test]
fn reshape_chain_refuses_when_first_output_is_graph_output() {
    let g = graph(
        &[("x", &[2, 3, 4])],
        &["f", "y"],
        vec![("axes", i64s(&[0]))],
        vec![node("flat", "Flatten", &["x"], &["f"]), node("unsq", "Unsqueeze", &["f", "axes"], &["y"])],
    );
    let (_, report) = run_rule(&g, ReshapeChain);
    assert_eq!(report.count("reshape_chain"), 0);
    assert_refused(&report, "reshape_chain", &["'f'", "graph output"]);
}

#[test]
fn reshape_chain_refuses_zero_dims() {
    let g = graph(
        &[("x", &[2, 0, 3])],
        &["y"],
        vec![("axes", i64s(&[1]))],
        vec![node("flat", "Flatten", &["x"], &["f"]), node("unsq", "Unsqueeze", &["f", "axes"], &["y"])],
    );
    let (_, report) = run_rule(&g, ReshapeChain);
    assert_eq!(report.count("reshape_chain"), 0);
    assert_refused(&report, "reshape_chain", &["0 dim"]);
}

#[test]
fn reshape_chain_refuses_before_opset_5() {
    let ax = |v: i64| attrs(&[("axes", AttrValue::Ints(vec![v]))]);
    let g = graph(
        &[("x", &[2, 1, 3])],
        &["y"],
        vec![],
        vec![node_at("sq", "Squeeze", 4, ax(1), &["x"], &["s"]), node_at("us", "Unsqueeze", 4, ax(0), &["s"], &["y"])],
    );
    let (_, report) = run_rule(&g, ReshapeChain);
    assert_eq!(report.count("reshape_chain"), 0);
    assert_refused(&report, "reshape_chain", &["opset 4"]);
}

#[test]
fn reshape_chain_ignores_other_producers() {
    let g = graph(
        &[("x", &[2, 3])],
        &["y"],
        vec![],
        vec![node("relu", "Relu", &["x"], &["r"]), node("flat", "Flatten", &["r"], &["y"])],
    );
    // [2, 3] flattened at axis 1 is [2, 3]: a no-op, removed; build one that is not.
    let (out, _) = run_rule(&g, ReshapeChain);
    assert_eq!(op_types(&out), ["Relu"]);
    let g = graph(
        &[("x", &[2, 3, 2])],
        &["y"],
        vec![],
        vec![node("relu", "Relu", &["x"], &["r"]), node("flat", "Flatten", &["r"], &["y"])],
    );
    let (out, report) = run_rule(&g, ReshapeChain);
    assert_eq!(report.count("reshape_chain"), 0);
    assert!(report.refused.is_empty());
    assert_eq!(op_types(&out), ["Relu", "Flatten"]);
}

// ---------- cse ----------

#[test]
fn cse_merges_identical_nodes() {
    let g = graph(
        &[("x", &[2, 3])],
        &["y"],
        vec![],
        vec![
            node("r1", "Relu", &["x"], &["a"]),
            node("r2", "Relu", &["x"], &["b"]),
            node("add", "Add", &["a", "b"], &["y"]),
        ],
    );
    let (out, report) = run_rule(&g, Cse);
    assert_eq!(report.count("cse"), 1);
    assert_eq!(op_types(&out), ["Relu", "Add"]);
    assert_eq!(out.nodes[1].inputs, ["a", "a"]);
    assert_same_outputs(&g, &out, 7);
}

#[test]
fn cse_merges_nodes_reading_equal_constants() {
    let c = vec![0.5, 2.0, -1.0];
    let g = graph(
        &[("x", &[2, 3])],
        &["y"],
        vec![("c1", t(&[3], c.clone())), ("c2", t(&[3], c))],
        vec![
            node("m1", "Mul", &["x", "c1"], &["a"]),
            node("m2", "Mul", &["x", "c2"], &["b"]),
            node("sub", "Sub", &["a", "b"], &["y"]),
        ],
    );
    let (out, report) = run_rule(&g, Cse);
    assert_eq!(report.count("cse"), 1);
    assert_eq!(op_types(&out), ["Mul", "Sub"]);
    assert_same_outputs(&g, &out, 8);
}

#[test]
fn cse_renames_kept_node_for_duplicate_graph_output() {
    let g = graph(
        &[("x", &[4])],
        &["n", "b"],
        vec![],
        vec![
            node("r1", "Relu", &["x"], &["a"]),
            node("neg", "Neg", &["a"], &["n"]),
            node("r2", "Relu", &["x"], &["b"]),
        ],
    );
    let (out, report) = run_rule(&g, Cse);
    assert_eq!(report.count("cse"), 1);
    assert_eq!(op_types(&out), ["Relu", "Neg"]);
    assert_same_outputs(&g, &out, 9);
}

#[test]
fn cse_keeps_different_attrs_and_constants() {
    let g = graph(
        &[("x", &[3])],
        &["y", "z"],
        vec![("c1", t(&[3], vec![1.0, 2.0, 3.0])), ("c2", t(&[3], vec![1.0, 2.0, 4.0]))],
        vec![
            node_with("l1", "LeakyRelu", attrs(&[("alpha", AttrValue::Float(0.1))]), &["x"], &["a"]),
            node_with("l2", "LeakyRelu", attrs(&[("alpha", AttrValue::Float(0.2))]), &["x"], &["b"]),
            node("add", "Add", &["a", "b"], &["y"]),
            node("m1", "Mul", &["x", "c1"], &["p"]),
            node("m2", "Mul", &["x", "c2"], &["q"]),
            node("sub", "Sub", &["p", "q"], &["z"]),
        ],
    );
    let (out, report) = run_rule(&g, Cse);
    assert_eq!(report.count("cse"), 0);
    assert_eq!(out.nodes.len(), 6);
    // Same op on different opsets is not merged either.
    let g = graph(
        &[("x", &[3])],
        &["y"],
        vec![],
        vec![
            node_at("r1", "Relu", 13, Default::default(), &["x"], &["a"]),
            node_at("r2", "Relu", 14, Default::default(), &["x"], &["b"]),
            node("add", "Add", &["a", "b"], &["y"]),
        ],
    );
    assert_eq!(run_rule(&g, Cse).1.count("cse"), 0);
}

#[test]
fn cse_refuses_when_both_are_graph_outputs() {
    let g = graph(
        &[("x", &[3])],
        &["a", "b"],
        vec![],
        vec![node("r1", "Relu", &["x"], &["a"]), node("r2", "Relu", &["x"], &["b"])],
    );
    let (out, report) = run_rule(&g, Cse);
    assert_eq!(report.count("cse"), 0);
    assert_eq!(out.nodes.len(), 2);
    assert_refused(&report, "cse", &["both graph outputs"]);
}

// ---------- fold_batchnorm ----------

const C: usize = 4;

/// BatchNormalization parameters (scale, bias, mean, variance) with positive variance.
fn bn_params(seed: u64) -> Vec<(&'static str, sinter_ir::Tensor)> {
    vec![
        ("bn_s", t(&[C], rand_vec(seed, C, 0.5, 1.5))),
        ("bn_b", t(&[C], rand_vec(seed + 1, C, -1.0, 1.0))),
        ("bn_m", t(&[C], rand_vec(seed + 2, C, -0.5, 0.5))),
        ("bn_v", t(&[C], rand_vec(seed + 3, C, 0.1, 2.0))),
    ]
}

fn bn(input: &str, output: &str) -> sinter_ir::Node {
    node_with(
        "bn",
        "BatchNormalization",
        attrs(&[("epsilon", AttrValue::Float(1e-3))]),
        &[input, "bn_s", "bn_b", "bn_m", "bn_v"],
        &[output],
    )
}

fn pads1() -> sinter_ir::Attrs {
    attrs(&[("pads", AttrValue::Ints(vec![1, 1, 1, 1]))])
}

/// x [1, 3, 5, 5] -> Conv (W [4, 3, 3, 3], optional bias) -> BN -> y, plus `extra` nodes.
fn conv_bn(with_bias: bool, outputs: &[&str], extra: Vec<sinter_ir::Node>) -> sinter_ir::Graph {
    let mut inits = bn_params(10);
    inits.push(("w", rand_t(20, &[C, 3, 3, 3])));
    let mut conv_in = vec!["x", "w"];
    if with_bias {
        inits.push(("b", rand_t(21, &[C])));
        conv_in.push("b");
    }
    let mut nodes = vec![node_with("conv", "Conv", pads1(), &conv_in, &["c"]), bn("c", "y")];
    nodes.extend(extra);
    graph(&[("x", &[1, 3, 5, 5])], outputs, inits, nodes)
}

#[test]
fn fold_batchnorm_into_conv() {
    for with_bias in [true, false] {
        let g = conv_bn(with_bias, &["y"], vec![]);
        let (out, report) = run_rule(&g, FoldBatchNorm);
        assert_eq!(report.count("fold_batchnorm"), 1);
        assert_eq!(op_types(&out), ["Conv"]);
        assert_eq!(out.nodes[0].inputs.len(), 3, "a bias is created");
        assert_eq!(out.nodes[0].outputs, ["y"]);
        assert_eq!(out.nodes[0].fused_from.len(), 2);
        assert_same_outputs(&g, &out, 11);
    }
}

#[test]
fn fold_batchnorm_into_grouped_conv() {
    let mut inits = bn_params(30);
    inits.push(("w", rand_t(31, &[C, 2, 3, 3])));
    let g = graph(
        &[("x", &[2, 4, 6, 6])],
        &["y"],
        inits,
        vec![node_with("conv", "Conv", attrs(&[("group", AttrValue::Int(2))]), &["x", "w"], &["c"]), bn("c", "y")],
    );
    let (out, report) = run_rule(&g, FoldBatchNorm);
    assert_eq!(report.count("fold_batchnorm"), 1);
    assert_eq!(op_types(&out), ["Conv"]);
    assert_same_outputs(&g, &out, 12);
}

#[test]
fn fold_batchnorm_into_gemm() {
    for trans_b in [0, 1] {
        for c_shape in [None, Some(vec![C]), Some(vec![1, C]), Some(vec![])] {
            let mut inits = bn_params(40);
            let b_shape = if trans_b == 1 { [C, 5] } else { [5, C] };
            inits.push(("B", rand_t(41, &b_shape)));
            let mut ins = vec!["a", "B"];
            if let Some(s) = &c_shape {
                inits.push(("C", rand_t(42, s)));
                ins.push("C");
            }
            let a = attrs(&[
                ("transB", AttrValue::Int(trans_b)),
                ("alpha", AttrValue::Float(0.5)),
                ("beta", AttrValue::Float(2.0)),
            ]);
            let g =
                graph(&[("a", &[3, 5])], &["y"], inits, vec![node_with("gemm", "Gemm", a, &ins, &["g"]), bn("g", "y")]);
            let (out, report) = run_rule(&g, FoldBatchNorm);
            assert_eq!(report.count("fold_batchnorm"), 1, "transB={trans_b} C={c_shape:?}");
            assert_eq!(op_types(&out), ["Gemm"]);
            assert_same_outputs(&g, &out, 13);
        }
    }
}

#[test]
fn fold_batchnorm_refuses_gemm_bias_varying_by_row() {
    let mut inits = bn_params(40);
    inits.push(("B", rand_t(41, &[5, C])));
    inits.push(("C", rand_t(42, &[3, C])));
    let g = graph(&[("a", &[3, 5])], &["y"], inits, vec![node("gemm", "Gemm", &["a", "B", "C"], &["g"]), bn("g", "y")]);
    let (out, report) = run_rule(&g, FoldBatchNorm);
    assert_eq!(report.count("fold_batchnorm"), 0);
    assert_eq!(op_types(&out), ["Gemm", "BatchNormalization"]);
    assert_refused(&report, "fold_batchnorm", &["'gemm'", "varies along the rows"]);
}

#[test]
fn fold_batchnorm_refuses_other_reader() {
    let g = conv_bn(true, &["y", "z"], vec![node("other", "Relu", &["c"], &["z"])]);
    let (out, report) = run_rule(&g, FoldBatchNorm);
    assert_eq!(report.count("fold_batchnorm"), 0);
    assert_eq!(op_types(&out), ["Conv", "BatchNormalization", "Relu"]);
    assert_refused(&report, "fold_batchnorm", &["'conv'", "also read by node 'other'"]);
}

#[test]
fn fold_batchnorm_refuses_conv_graph_output() {
    let g = conv_bn(true, &["y", "c"], vec![]);
    let (_, report) = run_rule(&g, FoldBatchNorm);
    assert_eq!(report.count("fold_batchnorm"), 0);
    assert_refused(&report, "fold_batchnorm", &["'c'", "graph output"]);
}

#[test]
fn fold_batchnorm_refuses_runtime_weights_and_params() {
    // Weights fed at run time.
    let g = graph(
        &[("x", &[1, 3, 5, 5]), ("w", &[C, 3, 3, 3])],
        &["y"],
        bn_params(10),
        vec![node("conv", "Conv", &["x", "w"], &["c"]), bn("c", "y")],
    );
    let (_, report) = run_rule(&g, FoldBatchNorm);
    assert_eq!(report.count("fold_batchnorm"), 0);
    assert_refused(&report, "fold_batchnorm", &["weights of 'conv'", "'w'", "not a constant"]);
    // BN mean fed at run time.
    let mut inits = bn_params(10);
    inits.retain(|(n, _)| *n != "bn_m");
    inits.push(("w", rand_t(20, &[C, 3, 3, 3])));
    let g = graph(
        &[("x", &[1, 3, 5, 5]), ("bn_m", &[C])],
        &["y"],
        inits,
        vec![node("conv", "Conv", &["x", "w"], &["c"]), bn("c", "y")],
    );
    let (_, report) = run_rule(&g, FoldBatchNorm);
    assert_eq!(report.count("fold_batchnorm"), 0);
    assert_refused(&report, "fold_batchnorm", &["mean 'bn_m'", "not a constant"]);
}

#[test]
fn fold_batchnorm_refuses_non_finite_scale() {
    let mut g = conv_bn(true, &["y"], vec![]);
    // variance -1 + epsilon 1e-3 < 0: the square root is NaN.
    g.initializers.insert("bn_v".into(), std::sync::Arc::new(t(&[C], vec![1.0, -1.0, 1.0, 1.0])));
    let (_, report) = run_rule(&g, FoldBatchNorm);
    assert_eq!(report.count("fold_batchnorm"), 0);
    assert_refused(&report, "fold_batchnorm", &["entry 1", "non-finite"]);
}

#[test]
fn fold_batchnorm_ignores_other_producers() {
    let g =
        graph(&[("x", &[1, C, 3, 3])], &["y"], bn_params(10), vec![node("relu", "Relu", &["x"], &["r"]), bn("r", "y")]);
    let (_, report) = run_rule(&g, FoldBatchNorm);
    assert_eq!(report.count("fold_batchnorm"), 0);
    assert!(report.refused.is_empty());
}

// ---------- batchnorm_to_scale_shift ----------

#[test]
fn batchnorm_to_scale_shift_after_relu() {
    let g =
        graph(&[("x", &[2, C, 3, 3])], &["y"], bn_params(50), vec![node("relu", "Relu", &["x"], &["r"]), bn("r", "y")]);
    let (out, report) = run_rule(&g, BatchNormToScaleShift);
    assert_eq!(report.count("batchnorm_to_scale_shift"), 1);
    assert_eq!(op_types(&out), ["Relu", "Mul", "Add"]);
    assert_eq!(out.initializers[&out.nodes[1].inputs[1]].shape(), [C, 1, 1]);
    assert_eq!(out.nodes[2].outputs, ["y"]);
    assert_same_outputs(&g, &out, 14);
}

#[test]
fn batchnorm_to_scale_shift_rank2_and_per_activation() {
    let g = graph(&[("x", &[3, C])], &["y"], bn_params(60), vec![bn("x", "y")]);
    let (out, report) = run_rule(&g, BatchNormToScaleShift);
    assert_eq!(report.count("batchnorm_to_scale_shift"), 1);
    assert_eq!(out.initializers[&out.nodes[0].inputs[1]].shape(), [C]);
    assert_same_outputs(&g, &out, 15);

    // spatial=0 (opset 7): one parameter per activation, shape [C, 2].
    let p = |seed, lo, hi| t(&[C, 2], rand_vec(seed, C * 2, lo, hi));
    let inits = vec![
        ("bn_s", p(70, 0.5, 1.5)),
        ("bn_b", p(71, -1.0, 1.0)),
        ("bn_m", p(72, -0.5, 0.5)),
        ("bn_v", p(73, 0.1, 2.0)),
    ];
    let bn7 = node_at(
        "bn",
        "BatchNormalization",
        7,
        attrs(&[("spatial", AttrValue::Int(0))]),
        &["x", "bn_s", "bn_b", "bn_m", "bn_v"],
        &["y"],
    );
    let g = graph(&[("x", &[3, C, 2])], &["y"], inits, vec![bn7]);
    let (out, report) = run_rule(&g, BatchNormToScaleShift);
    assert_eq!(report.count("batchnorm_to_scale_shift"), 1);
    assert_eq!(out.initializers[&out.nodes[0].inputs[1]].shape(), [C, 2]);
    assert_same_outputs(&g, &out, 16);
}

#[test]
fn batchnorm_to_scale_shift_leaves_foldable_bn() {
    let g = conv_bn(true, &["y"], vec![]);
    let (out, report) = run_rule(&g, BatchNormToScaleShift);
    assert_eq!(report.count("batchnorm_to_scale_shift"), 0);
    assert_eq!(op_types(&out), ["Conv", "BatchNormalization"]);
    assert_refused(&report, "batchnorm_to_scale_shift", &["fold_batchnorm"]);
    // With the Conv output read elsewhere it is not foldable: split instead.
    let g = conv_bn(true, &["y", "z"], vec![node("other", "Relu", &["c"], &["z"])]);
    let (out, report) = run_rule(&g, BatchNormToScaleShift);
    assert_eq!(report.count("batchnorm_to_scale_shift"), 1);
    assert_same_outputs(&g, &out, 17);
}

#[test]
fn batchnorm_to_scale_shift_refuses_runtime_params() {
    let mut inits = bn_params(10);
    inits.retain(|(n, _)| *n != "bn_v");
    let g = graph(&[("x", &[2, C]), ("bn_v", &[C])], &["y"], inits, vec![bn("x", "y")]);
    let (out, report) = run_rule(&g, BatchNormToScaleShift);
    assert_eq!(report.count("batchnorm_to_scale_shift"), 0);
    assert_eq!(op_types(&out), ["BatchNormalization"]);
    assert_refused(&report, "batchnorm_to_scale_shift", &["variance 'bn_v'", "not a constant"]);
}

#[test]
fn batchnorm_rules_refuse_non_f32_and_old_opsets() {
    // An f16 input (parameters f32): neither rule rewrites it.
    let mut g = graph(&[("x", &[2, C])], &["y"], bn_params(10), vec![bn("x", "y")]);
    g.inputs[0].dtype = sinter_ir::DType::F16;
    g.outputs[0].dtype = sinter_ir::DType::F16;
    let (_, report) = run_rules(&g, vec![Box::new(FoldBatchNorm), Box::new(BatchNormToScaleShift)]);
    assert_eq!(report.steps, 0);
    assert_refused(&report, "batchnorm_to_scale_shift", &["f16", "only f32"]);
    // Opset 6 has no broadcasting Mul and Add.
    let bn6 = node_at(
        "bn",
        "BatchNormalization",
        6,
        attrs(&[("is_test", AttrValue::Int(1))]),
        &["x", "bn_s", "bn_b", "bn_m", "bn_v"],
        &["y"],
    );
    let g = graph(&[("x", &[2, C])], &["y"], bn_params(10), vec![bn6]);
    let (_, report) = run_rule(&g, BatchNormToScaleShift);
    assert_eq!(report.count("batchnorm_to_scale_shift"), 0);
    assert_refused(&report, "batchnorm_to_scale_shift", &["opset 6"]);
}

// ---------- fold_mul_add_into_conv ----------

/// x [1, 3, 5, 5] -> Conv -> c, then `tail` nodes.
fn conv_then(
    with_bias: bool,
    inputs: &[(&str, &[usize])],
    outputs: &[&str],
    extra: Vec<(&'static str, sinter_ir::Tensor)>,
    tail: Vec<sinter_ir::Node>,
) -> sinter_ir::Graph {
    let mut inits = vec![("w", rand_t(80, &[C, 3, 3, 3]))];
    let mut conv_in = vec!["x", "w"];
    if with_bias {
        inits.push(("b", rand_t(81, &[C])));
        conv_in.push("b");
    }
    inits.extend(extra);
    let mut nodes = vec![node_with("conv", "Conv", pads1(), &conv_in, &["c"])];
    nodes.extend(tail);
    let mut ins = vec![("x", &[1usize, 3, 5, 5][..])];
    ins.extend_from_slice(inputs);
    graph(&ins, outputs, inits, nodes)
}

#[test]
fn fold_mul_add_into_conv_per_channel() {
    for with_bias in [true, false] {
        let g = conv_then(
            with_bias,
            &[],
            &["y"],
            vec![("s", t(&[C, 1, 1], rand_vec(82, C, 0.5, 2.0))), ("o", rand_t(83, &[C, 1, 1]))],
            vec![node("mul", "Mul", &["c", "s"], &["m"]), node("add", "Add", &["o", "m"], &["y"])],
        );
        let (out, report) = run_rule(&g, FoldMulAddIntoConv);
        assert_eq!(report.count("fold_mul_add_into_conv"), 2);
        assert_eq!(op_types(&out), ["Conv"]);
        assert_eq!(out.nodes[0].outputs, ["y"]);
        let names: Vec<&str> = out.nodes[0].fused_from.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["conv", "mul", "add"]);
        assert_same_outputs(&g, &out, 18);
    }
}

#[test]
fn fold_mul_add_into_conv_scalar_and_4d_constants() {
    let g = conv_then(
        false,
        &[],
        &["y"],
        vec![("s", t(&[], vec![-1.5])), ("o", rand_t(84, &[1, C, 1, 1]))],
        vec![node("mul", "Mul", &["s", "c"], &["m"]), node("add", "Add", &["m", "o"], &["y"])],
    );
    let (out, report) = run_rule(&g, FoldMulAddIntoConv);
    assert_eq!(report.count("fold_mul_add_into_conv"), 2);
    assert_eq!(op_types(&out), ["Conv"]);
    assert_same_outputs(&g, &out, 19);
}

#[test]
fn fold_mul_add_into_conv_keeps_weights_for_add() {
    let g = conv_then(
        true,
        &[],
        &["y"],
        vec![("o", rand_t(85, &[C, 1, 1]))],
        vec![node("add", "Add", &["c", "o"], &["y"])],
    );
    let (out, report) = run_rule(&g, FoldMulAddIntoConv);
    assert_eq!(report.count("fold_mul_add_into_conv"), 1);
    assert_eq!(out.nodes[0].inputs[1], "w", "an Add leaves the weights as they are");
    assert_same_outputs(&g, &out, 20);
}

#[test]
fn fold_mul_add_into_conv_refuses_other_reader_and_graph_output() {
    let g = conv_then(
        true,
        &[],
        &["y", "z"],
        vec![("s", rand_t(86, &[C, 1, 1]))],
        vec![node("mul", "Mul", &["c", "s"], &["y"]), node("other", "Relu", &["c"], &["z"])],
    );
    let (out, report) = run_rule(&g, FoldMulAddIntoConv);
    assert_eq!(report.count("fold_mul_add_into_conv"), 0);
    assert_eq!(op_types(&out), ["Conv", "Mul", "Relu"]);
    assert_refused(&report, "fold_mul_add_into_conv", &["'conv'", "also read by node 'other'"]);

    let g = conv_then(
        true,
        &[],
        &["y", "c"],
        vec![("s", rand_t(86, &[C, 1, 1]))],
        vec![node("mul", "Mul", &["c", "s"], &["y"])],
    );
    let (_, report) = run_rule(&g, FoldMulAddIntoConv);
    assert_eq!(report.count("fold_mul_add_into_conv"), 0);
    assert_refused(&report, "fold_mul_add_into_conv", &["'c'", "graph output"]);
}

#[test]
fn fold_mul_add_into_conv_ignores_runtime_scale() {
    let g = conv_then(true, &[("s", &[C, 1, 1])], &["y"], vec![], vec![node("mul", "Mul", &["c", "s"], &["y"])]);
    let (out, report) = run_rule(&g, FoldMulAddIntoConv);
    assert_eq!(report.count("fold_mul_add_into_conv"), 0);
    assert_eq!(op_types(&out), ["Conv", "Mul"]);
    assert!(report.refused.is_empty(), "a runtime operand is not a candidate: {:?}", report.refused);
}

#[test]
fn fold_mul_add_into_conv_refuses_non_channel_constants() {
    // Varies over a spatial axis.
    let g = conv_then(
        true,
        &[],
        &["y"],
        vec![("s", rand_t(87, &[1, 1, 5]))],
        vec![node("mul", "Mul", &["c", "s"], &["y"])],
    );
    let (_, report) = run_rule(&g, FoldMulAddIntoConv);
    assert_eq!(report.count("fold_mul_add_into_conv"), 0);
    assert_refused(&report, "fold_mul_add_into_conv", &["not per channel"]);
    // Broadcasts the batch: [2, C, 1, 1] against [1, C, 5, 5] grows the output.
    let g = conv_then(
        true,
        &[],
        &["y"],
        vec![("s", rand_t(88, &[2, C, 1, 1]))],
        vec![node("mul", "Mul", &["c", "s"], &["y"])],
    );
    let (_, report) = run_rule(&g, FoldMulAddIntoConv);
    assert_eq!(report.count("fold_mul_add_into_conv"), 0);
    assert_refused(&report, "fold_mul_add_into_conv", &["broadcasts"]);
    // A non-finite scale would turn 0 * inf into NaN inside the Conv.
    let g = conv_then(
        true,
        &[],
        &["y"],
        vec![("s", t(&[C, 1, 1], vec![1.0, f32::INFINITY, 1.0, 1.0]))],
        vec![node("mul", "Mul", &["c", "s"], &["y"])],
    );
    let (_, report) = run_rule(&g, FoldMulAddIntoConv);
    assert_eq!(report.count("fold_mul_add_into_conv"), 0);
    assert_refused(&report, "fold_mul_add_into_conv", &["not finite at channel 1"]);
}

// ---------- the default pipeline ----------

#[test]
fn default_passes_fold_conv_bn_and_split_lone_bn() {
    let mut inits = bn_params(90);
    inits.push(("w", rand_t(91, &[C, 3, 3, 3])));
    inits.push(("axes", i64s(&[0])));
    let g = graph(
        &[("x", &[1, 3, 5, 5])],
        &["y"],
        inits,
        vec![
            node_with("conv", "Conv", pads1(), &["x", "w"], &["c"]),
            node("id", "Identity", &["c"], &["c2"]),
            bn("c2", "b"),
            node("relu", "Relu", &["b"], &["r"]),
            node("sq", "Unsqueeze", &["r", "axes"], &["u"]),
            node("sq2", "Squeeze", &["u", "axes"], &["y"]),
            node("dead", "Neg", &["r"], &["unused"]),
        ],
    );
    let (out, report) = run_passes(&g, &default_passes(), &Options::default());
    assert_eq!(report.count("fold_batchnorm"), 1);
    assert!(!op_types(&out).contains(&"BatchNormalization"));
    assert!(!op_types(&out).contains(&"Neg"));
    assert!(!op_types(&out).contains(&"Identity"));
    assert!(!op_types(&out).contains(&"Unsqueeze"));
    assert_same_outputs(&g, &out, 21);
}
