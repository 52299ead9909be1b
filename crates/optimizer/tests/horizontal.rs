//! horizontal_conv: sibling convolutions on one input become one wider Conv and a Split.

mod common;

use common::*;
use sinter_ir::{AttrValue, Graph, Tensor};
use sinter_optimizer::rules::HorizontalConv;

fn ints(v: &[i64]) -> AttrValue {
    AttrValue::Ints(v.to_vec())
}

/// x[1,3,6,6] -> conv a (4 ch, bias), conv b (2 ch, no bias), conv c (5 ch, bias), all 3x3
/// pad 1 -> Relu on each; the graph outputs are a's and c's Relu and b itself.
fn siblings(b_attrs: sinter_ir::Attrs, b_weights: Tensor) -> Graph {
    let pad = attrs(&[("pads", ints(&[1, 1, 1, 1]))]);
    graph(
        &[("x", &[1, 3, 6, 6])],
        &["ra", "b", "rc"],
        vec![
            ("wa", rand_t(1, &[4, 3, 3, 3])),
            ("ba", rand_t(2, &[4])),
            ("wb", b_weights),
            ("wc", rand_t(4, &[5, 3, 3, 3])),
            ("bc", rand_t(5, &[5])),
        ],
        vec![
            node_with("conv_a", "Conv", pad.clone(), &["x", "wa", "ba"], &["a"]),
            node_with("conv_b", "Conv", b_attrs, &["x", "wb"], &["b"]),
            node_with("conv_c", "Conv", pad.clone().with("strides", ints(&[1, 1])), &["x", "wc", "bc"], &["c"]),
            node("relu_a", "Relu", &["a"], &["ra"]),
            node("relu_c", "Relu", &["c"], &["rc"]),
        ],
    )
}

fn pad1() -> sinter_ir::Attrs {
    attrs(&[("pads", ints(&[1, 1, 1, 1]))])
}

#[test]
fn merges_three_siblings_into_one_conv_and_a_split() {
    let g = siblings(pad1(), rand_t(3, &[2, 3, 3, 3]));
    let (out, report) = run_rule(&g, HorizontalConv);
    assert_eq!(report.count("horizontal_conv"), 1, "{report}");
    assert_eq!(op_types(&out), ["Conv", "Split", "Relu", "Relu"]);
    let conv = &out.nodes[0];
    let w = &out.initializers[&conv.inputs[1]];
    assert_eq!(w.shape(), [11, 3, 3, 3]);
    // Output channels in node order: a's 4, b's 2, c's 5; b's bias is zero.
    let wb = rand_t(3, &[2, 3, 3, 3]);
    assert_eq!(&w.as_slice::<f32>().unwrap()[4 * 27..6 * 27], wb.as_slice::<f32>().unwrap());
    let b = out.initializers[&conv.inputs[2]].as_slice::<f32>().unwrap().to_vec();
    let (ba, bc) = (rand_t(2, &[4]), rand_t(5, &[5]));
    assert_eq!(&b[..4], ba.as_slice::<f32>().unwrap());
    assert_eq!(&b[4..6], [0.0, 0.0]);
    assert_eq!(&b[6..], bc.as_slice::<f32>().unwrap());
    let split = &out.nodes[1];
    assert_eq!(split.outputs, ["a", "b", "c"]);
    assert_eq!(out.initializers[&split.inputs[1]].as_slice::<i64>().unwrap(), [4, 2, 5]);
    assert_eq!(conv.sources().len(), 3);
    assert_same_outputs(&g, &out, 11);
}

#[test]
fn old_opsets_get_the_split_attribute() {
    let pad = pad1();
    let g = graph(
        &[("x", &[2, 3, 5, 5])],
        &["a", "b"],
        vec![("wa", rand_t(1, &[4, 3, 1, 1])), ("wb", rand_t(2, &[3, 3, 1, 1])), ("bb", rand_t(3, &[3]))],
        vec![
            node_at("conv_a", "Conv", 11, pad.clone(), &["x", "wa"], &["a"]),
            node_at("conv_b", "Conv", 11, pad, &["x", "wb", "bb"], &["b"]),
        ],
    );
    let (out, report) = run_rule(&g, HorizontalConv);
    assert_eq!(report.count("horizontal_conv"), 1, "{report}");
    assert_eq!(op_types(&out), ["Conv", "Split"]);
    assert_eq!(out.nodes[1].attrs.ints("split").unwrap(), Some(&[4, 3][..]));
    assert_same_outputs(&g, &out, 12);
}

fn refused_with(g: &Graph, parts: &[&str]) {
    let (out, report) = run_rule(g, HorizontalConv);
    assert!(!op_types(&out).contains(&"Split"), "{report}");
    assert_refused(&report, "horizontal_conv", parts);
}

/// Two siblings only (a and b), b built with `b_attrs` and `wb`.
fn pair(b_attrs: sinter_ir::Attrs, wb: Tensor, bias: Option<&str>) -> Graph {
    let mut b_inputs = vec!["x", "wb"];
    b_inputs.extend(bias);
    graph(
        &[("x", &[1, 3, 6, 6]), ("dyn_b", &[2])],
        &["a", "b"],
        vec![("wa", rand_t(1, &[2, 3, 3, 3])), ("wb", wb)],
        vec![
            node_with("conv_a", "Conv", pad1(), &["x", "wa"], &["a"]),
            node_with("conv_b", "Conv", b_attrs, &b_inputs, &["b"]),
        ],
    )
}

#[test]
fn refuses_different_geometry() {
    refused_with(&pair(pad1().with("strides", ints(&[2, 2])), rand_t(3, &[2, 3, 3, 3]), None), &["conv_b", "strides"]);
    refused_with(&pair(Default::default(), rand_t(3, &[2, 3, 3, 3]), None), &["conv_b", "pads"]);
    refused_with(&pair(pad1().with("dilations", ints(&[2, 2])), rand_t(3, &[2, 3, 3, 3]), None), &["dilations"]);
    refused_with(&pair(pad1(), rand_t(3, &[2, 3, 1, 1]), None), &["conv_b", "kernel"]);
    let same_upper = attrs(&[("auto_pad", AttrValue::String("SAME_UPPER".into()))]);
    refused_with(&pair(same_upper.with("pads", ints(&[1, 1, 1, 1])), rand_t(3, &[2, 3, 3, 3]), None), &["auto_pad"]);
}

#[test]
fn refuses_groups_and_dynamic_operands() {
    let grouped = pad1().with("group", AttrValue::Int(3));
    refused_with(&pair(grouped, rand_t(3, &[3, 1, 3, 3]), None), &["conv_b", "group=3"]);
    refused_with(&pair(pad1(), rand_t(3, &[2, 3, 3, 3]), Some("dyn_b")), &["conv_b", "bias 'dyn_b'"]);

    // Weights computed at run time.
    let g = graph(
        &[("x", &[1, 3, 6, 6]), ("wdyn", &[2, 3, 3, 3])],
        &["a", "b"],
        vec![("wa", rand_t(1, &[2, 3, 3, 3]))],
        vec![
            node_with("conv_a", "Conv", pad1(), &["x", "wa"], &["a"]),
            node_with("conv_b", "Conv", pad1(), &["x", "wdyn"], &["b"]),
        ],
    );
    refused_with(&g, &["conv_b", "non-constant weights 'wdyn'"]);
}

#[test]
fn a_lone_conv_is_not_a_candidate() {
    let g = graph(
        &[("x", &[1, 3, 6, 6])],
        &["a"],
        vec![("wa", rand_t(1, &[2, 3, 3, 3]))],
        vec![node_with("conv_a", "Conv", pad1(), &["x", "wa"], &["a"])],
    );
    let (out, report) = run_rule(&g, HorizontalConv);
    assert_eq!(op_types(&out), ["Conv"]);
    assert!(report.refused.is_empty() && report.applied.is_empty());
}

#[test]
fn only_matching_siblings_merge() {
    // a and c match, b has a 1x1 kernel: a+c merge, b stays.
    let g = siblings(Default::default(), rand_t(3, &[2, 3, 1, 1]));
    let (out, report) = run_rule(&g, HorizontalConv);
    assert_eq!(report.count("horizontal_conv"), 1, "{report}");
    assert_eq!(op_types(&out).iter().filter(|o| **o == "Conv").count(), 2);
    assert_refused(&report, "horizontal_conv", &["conv_b", "kernel"]);
    assert_same_outputs(&g, &out, 13);
}

/// Runs EpilogueActivation, then HorizontalConv, as two passes (the default pipeline's order).
fn fuse_then_merge(g: &Graph) -> (Graph, sinter_optimizer::Report) {
    use sinter_optimizer::rules::EpilogueActivation;
    use sinter_optimizer::{Options, Pass};
    let passes = [
        Pass { name: "fuse", rules: vec![Box::new(EpilogueActivation)] },
        Pass { name: "horizontal", rules: vec![Box::new(HorizontalConv)] },
    ];
    run_passes(g, &passes, &Options::default())
}

#[test]
fn fused_convs_with_the_same_epilogue_merge() {
    let g = graph(
        &[("x", &[1, 3, 6, 6])],
        &["ra", "rb", "sc"],
        vec![("wa", rand_t(1, &[4, 3, 3, 3])), ("wb", rand_t(2, &[2, 3, 3, 3])), ("wc", rand_t(3, &[3, 3, 3, 3]))],
        vec![
            node_with("conv_a", "Conv", pad1(), &["x", "wa"], &["a"]),
            node_with("conv_b", "Conv", pad1(), &["x", "wb"], &["b"]),
            node_with("conv_c", "Conv", pad1(), &["x", "wc"], &["c"]),
            node("relu_a", "Relu", &["a"], &["ra"]),
            node("relu_b", "Relu", &["b"], &["rb"]),
            node("sig_c", "Sigmoid", &["c"], &["sc"]),
        ],
    );
    let (out, report) = fuse_then_merge(&g);
    assert_eq!(report.count("horizontal_conv"), 1, "{report}");
    let mut ops = op_types(&out);
    ops.sort_unstable();
    // a and b (both Relu) merge; c (Sigmoid) stays alone.
    assert_eq!(ops, ["FusedConv", "FusedConv", "Split"], "{report}");
    assert_refused(&report, "horizontal_conv", &["epilogue"]);
    assert_same_outputs(&g, &out, 14);
}

/// a[2,5,8] -> MatMul by q[8,6], k[8,6], v[8,4] -> three outputs.
fn qkv(v_shape: &[usize]) -> Graph {
    graph(
        &[("a", &[2, 5, 8])],
        &["q", "k", "v"],
        vec![("wq", rand_t(1, &[8, 6])), ("wk", rand_t(2, &[8, 6])), ("wv", rand_t(3, v_shape))],
        vec![
            node("mm_q", "MatMul", &["a", "wq"], &["q"]),
            node("mm_k", "MatMul", &["a", "wk"], &["k"]),
            node("mm_v", "MatMul", &["a", "wv"], &["v"]),
        ],
    )
}

#[test]
fn matmuls_sharing_a_merge_along_n() {
    use sinter_optimizer::rules::HorizontalMatMul;
    let g = qkv(&[8, 4]);
    let (out, report) = run_rule(&g, HorizontalMatMul);
    assert_eq!(report.count("horizontal_matmul"), 1, "{report}");
    assert_eq!(op_types(&out), ["MatMul", "Split"]);
    let b = &out.initializers[&out.nodes[0].inputs[1]];
    assert_eq!(b.shape(), [8, 16]);
    // Row 1 of the merged B is row 1 of wq, wk, wv side by side.
    let row = &b.as_slice::<f32>().unwrap()[16..32];
    let (wq, wv) = (rand_t(1, &[8, 6]), rand_t(3, &[8, 4]));
    assert_eq!(&row[..6], &wq.as_slice::<f32>().unwrap()[6..12]);
    assert_eq!(&row[12..], &wv.as_slice::<f32>().unwrap()[4..8]);
    assert_eq!(out.nodes[1].attrs.int("axis").unwrap(), Some(2));
    assert_same_outputs(&g, &out, 15);
}

#[test]
fn matmuls_with_different_k_or_dynamic_b_are_refused() {
    use sinter_optimizer::rules::HorizontalMatMul;
    // wv is a batched [2, 8, 4]: not a 2-D B.
    let (out, report) = run_rule(&qkv(&[2, 8, 4]), HorizontalMatMul);
    assert_eq!(report.count("horizontal_matmul"), 1, "q and k still merge: {report}");
    assert_eq!(op_types(&out).iter().filter(|o| **o == "MatMul").count(), 2);
    assert_refused(&report, "horizontal_matmul", &["mm_v", "2-D B"]);

    let g = graph(
        &[("a", &[2, 8]), ("bdyn", &[8, 3])],
        &["x", "y"],
        vec![("wx", rand_t(1, &[8, 3]))],
        vec![node("mm_x", "MatMul", &["a", "wx"], &["x"]), node("mm_y", "MatMul", &["a", "bdyn"], &["y"])],
    );
    let (out, report) = run_rule(&g, HorizontalMatMul);
    assert_eq!(op_types(&out), ["MatMul", "MatMul"]);
    assert_refused(&report, "horizontal_matmul", &["mm_y", "non-constant B 'bdyn'"]);
}

#[test]
fn default_pipeline_merges_fused_matmuls_with_bias() {
    use sinter_optimizer::{rules::default_passes, Options};
    let g = graph(
        &[("a", &[1, 4, 8])],
        &["rq", "rk"],
        vec![("wq", rand_t(1, &[8, 6])), ("bq", rand_t(2, &[6])), ("wk", rand_t(3, &[8, 5])), ("bk", rand_t(4, &[5]))],
        vec![
            node("mm_q", "MatMul", &["a", "wq"], &["q"]),
            node("add_q", "Add", &["q", "bq"], &["q1"]),
            node("relu_q", "Relu", &["q1"], &["rq"]),
            node("mm_k", "MatMul", &["a", "wk"], &["k"]),
            node("add_k", "Add", &["k", "bk"], &["k1"]),
            node("relu_k", "Relu", &["k1"], &["rk"]),
        ],
    );
    let (out, report) = run_passes(&g, &default_passes(), &Options::default());
    assert_eq!(report.count("horizontal_matmul"), 1, "{report}");
    assert_eq!(op_types(&out).iter().filter(|o| o.contains("MatMul")).count(), 1, "{report}");
    assert_same_outputs(&g, &out, 16);
}

/// a[3,8] -> Gemm(transB=1, alpha=0.5) by g1[6,8] (+ c1) and g2 = `g2_attrs` by g2[4,8].
fn gemms(g2_attrs: sinter_ir::Attrs) -> Graph {
    let at = attrs(&[("transB", AttrValue::Int(1)), ("alpha", AttrValue::Float(0.5))]);
    graph(
        &[("a", &[3, 8])],
        &["y1", "y2"],
        vec![("g1", rand_t(1, &[6, 8])), ("c1", rand_t(2, &[6])), ("g2", rand_t(3, &[4, 8]))],
        vec![
            node_with("gemm1", "Gemm", at, &["a", "g1", "c1"], &["y1"]),
            node_with("gemm2", "Gemm", g2_attrs, &["a", "g2"], &["y2"]),
        ],
    )
}

#[test]
fn gemms_with_transposed_b_merge_along_rows() {
    use sinter_optimizer::rules::HorizontalMatMul;
    let same = attrs(&[("transB", AttrValue::Int(1)), ("alpha", AttrValue::Float(0.5))]);
    let g = gemms(same);
    let (out, report) = run_rule(&g, HorizontalMatMul);
    assert_eq!(report.count("horizontal_matmul"), 1, "{report}");
    assert_eq!(op_types(&out), ["Gemm", "Split"]);
    assert_eq!(out.initializers[&out.nodes[0].inputs[1]].shape(), [10, 8]);
    let c = out.initializers[&out.nodes[0].inputs[2]].as_slice::<f32>().unwrap().to_vec();
    assert_eq!(&c[6..], [0.0; 4]);
    assert_same_outputs(&g, &out, 17);
}

#[test]
fn gemms_with_different_attributes_or_trans_a_are_refused() {
    use sinter_optimizer::rules::HorizontalMatMul;
    let other_alpha = attrs(&[("transB", AttrValue::Int(1)), ("alpha", AttrValue::Float(2.0))]);
    let (out, report) = run_rule(&gemms(other_alpha), HorizontalMatMul);
    assert_eq!(op_types(&out), ["Gemm", "Gemm"]);
    assert_refused(&report, "horizontal_matmul", &["gemm2", "attribute 'alpha'"]);

    let g = graph(
        &[("a", &[8, 3])],
        &["y1", "y2"],
        vec![("g1", rand_t(1, &[8, 6])), ("g2", rand_t(3, &[8, 4]))],
        vec![
            node_with("gemm1", "Gemm", attrs(&[("transA", AttrValue::Int(1))]), &["a", "g1"], &["y1"]),
            node_with("gemm2", "Gemm", attrs(&[("transA", AttrValue::Int(1))]), &["a", "g2"], &["y2"]),
        ],
    );
    let (out, report) = run_rule(&g, HorizontalMatMul);
    assert_eq!(op_types(&out), ["Gemm", "Gemm"]);
    assert_refused(&report, "horizontal_matmul", &["transA=1"]);
}
