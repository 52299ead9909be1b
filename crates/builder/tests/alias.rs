//! Concat and Split elimination: the plan has no copy kernel, producers write into their
//! slice of the Concat's buffer (Split parts are views of their input), and the results are
//! the same as the plan that copies.

use sinter_builder::{build, BuildError, BuildOptions, BuildReport};
use sinter_ir::{AttrValue, Attrs, DType, Dim, Graph, Node, Tensor, ValueInfo};
use sinter_plan::{Location, Plan};
use sinter_runtime::Engine;
use std::sync::Arc;

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(shape, values(shape.iter().product(), seed)).unwrap()
}

fn info(name: &str, shape: &[usize]) -> ValueInfo {
    ValueInfo { name: name.into(), dtype: DType::F32, dims: Some(shape.iter().map(|&d| Dim::Fixed(d)).collect()) }
}

fn node(name: &str, op: &str, attrs: Attrs, inputs: &[&str], outputs: &[&str]) -> Node {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    Node::new(name, op, 17, attrs, s(inputs), s(outputs)).unwrap()
}

fn axis(a: i64) -> Attrs {
    Attrs::default().with("axis", AttrValue::Int(a))
}

/// x[n,3,8,8] -> Conv 3x3 (4 ch) and Conv 1x1 (5 ch) -> Concat(channels) -> Relu -> y.
fn two_convs_concat(batch: usize) -> Graph {
    let mut g = Graph { name: "concat".into(), ..Default::default() };
    g.inputs.push(info("x", &[batch, 3, 8, 8]));
    g.outputs.push(info("y", &[batch, 9, 8, 8]));
    g.initializers.insert("wa".into(), Arc::new(tensor(&[4, 3, 3, 3], 1)));
    g.initializers.insert("ba".into(), Arc::new(tensor(&[4], 2)));
    g.initializers.insert("wb".into(), Arc::new(tensor(&[5, 3, 1, 1], 3)));
    let pads = Attrs::default().with("pads", AttrValue::Ints(vec![1, 1, 1, 1]));
    g.nodes.push(node("conv_a", "Conv", pads, &["x", "wa", "ba"], &["a"]));
    g.nodes.push(node("conv_b", "Conv", Attrs::default(), &["x", "wb"], &["b"]));
    g.nodes.push(node("concat", "Concat", axis(1), &["a", "b"], &["c"]));
    g.nodes.push(node("relu", "Relu", Attrs::default(), &["c"], &["y"]));
    g
}

/// Plans built twice are compared bit for bit: tactics by rule, not by timing.
fn opts(batch: usize, no_optimize: bool) -> BuildOptions {
    BuildOptions {
        shapes: [("x".to_string(), vec![batch, 3, 8, 8])].into(),
        no_optimize,
        deterministic_tactics: true,
        ..Default::default()
    }
}

fn ops(plan: &Plan) -> Vec<&str> {
    plan.meta().kernels.iter().map(|k| k.op_type.as_str()).collect()
}

fn arena(plan: &Plan, name: &str) -> (u64, u64) {
    let meta = plan.meta();
    let t = &meta.tensors[meta.tensor_id(name).unwrap() as usize];
    match t.location {
        Location::Arena { offset, bytes } => (offset, bytes),
        Location::Weights { .. } => panic!("{name} is a weight"),
    }
}

/// Runs `plan` and the copying plan of the same graph, and the reference interpreter.
fn same_results(g: &Graph, plan: Plan, inputs: &[(&str, Tensor)]) {
    let reference = sinter_ir::interp::run(g, inputs).unwrap();
    let shapes = inputs.iter().map(|(n, t)| (n.to_string(), t.shape().to_vec())).collect();
    let (copying, _) =
        build(g, &BuildOptions { shapes, no_optimize: true, deterministic_tactics: true, ..Default::default() })
            .unwrap();
    let got = Engine::new(plan).unwrap().run(inputs).unwrap();
    let want = Engine::new(copying).unwrap().run(inputs).unwrap();
    assert_eq!(got.len(), reference.len());
    for ((name, t), (_, w)) in got.iter().zip(&want) {
        assert_eq!(t, w, "output {name} differs from the copying plan");
    }
    for ((name, t), r) in got.iter().zip(&reference) {
        let (a, b) = (t.as_slice::<f32>().unwrap(), r.as_slice::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-6 + 1e-5 * y.abs(), "output {name}: {x} vs reference {y}");
        }
    }
}

#[test]
fn concat_of_two_convs_has_no_kernel() {
    let g = two_convs_concat(1);
    let (plan, report) = build(&g, &opts(1, false)).unwrap();
    assert!(!ops(&plan).contains(&"Concat"), "{:?}", ops(&plan));
    assert_eq!((report.concats_eliminated, report.splits_eliminated), (1, 0));
    // The convs write at the start of the concat buffer and right after a's 4*64 floats.
    let (c, a, b) = (arena(&plan, "c"), arena(&plan, "a"), arena(&plan, "b"));
    assert_eq!(a, (c.0, 4 * 64 * 4));
    assert_eq!(b, (c.0 + 4 * 64 * 4, 5 * 64 * 4));
    assert_eq!(c.1, 9 * 64 * 4);
    let (copying, copy_report) = build(&g, &opts(1, true)).unwrap();
    assert!(ops(&copying).contains(&"Concat"));
    assert_eq!(copy_report.concats_eliminated, 0);
    same_results(&g, plan, &[("x", tensor(&[1, 3, 8, 8], 7))]);
}

#[test]
fn concat_is_kept_where_inputs_are_not_contiguous_ranges() {
    // Batch 2: each input is two separate ranges of the output.
    let g = two_convs_concat(2);
    let (plan, report) = build(&g, &opts(2, false)).unwrap();
    assert!(ops(&plan).contains(&"Concat"));
    assert_eq!(report.concats_eliminated, 0);
    same_results(&g, plan, &[("x", tensor(&[2, 3, 8, 8], 8))]);
}

#[test]
fn concat_is_kept_for_graph_inputs_repeats_and_graph_outputs() {
    // A graph input is written by the caller, not a kernel of the plan.
    let mut g = two_convs_concat(1);
    g.nodes[2].inputs = vec!["a".into(), "x".into()];
    g.nodes[2] = node("concat", "Concat", axis(1), &["a", "x"], &["c"]);
    g.outputs[0] = info("y", &[1, 7, 8, 8]);
    let (plan, report) = build(&g, &opts(1, false)).unwrap();
    assert_eq!(report.concats_eliminated, 0, "{:?}", ops(&plan));
    same_results(&g, plan, &[("x", tensor(&[1, 3, 8, 8], 9))]);

    // The same tensor twice would need two places.
    let mut g = two_convs_concat(1);
    g.nodes[2] = node("concat", "Concat", axis(1), &["a", "a"], &["c"]);
    g.outputs[0] = info("y", &[1, 8, 8, 8]);
    let (plan, report) = build(&g, &opts(1, false)).unwrap();
    assert_eq!(report.concats_eliminated, 0, "{:?}", ops(&plan));
    same_results(&g, plan, &[("x", tensor(&[1, 3, 8, 8], 10))]);

    // An input that is a graph output keeps its own binding.
    let mut g = two_convs_concat(1);
    g.outputs.push(info("b", &[1, 5, 8, 8]));
    let (plan, report) = build(&g, &opts(1, false)).unwrap();
    assert_eq!(report.concats_eliminated, 0, "{:?}", ops(&plan));
    same_results(&g, plan, &[("x", tensor(&[1, 3, 8, 8], 11))]);
}

#[test]
fn nested_concats_share_one_buffer() {
    // c = concat(a, b); d = concat(c, e) with e = Sigmoid(x): all four live in d.
    let mut g = two_convs_concat(1);
    g.nodes.pop();
    g.nodes.push(node("sig", "Sigmoid", Attrs::default(), &["x"], &["e"]));
    g.nodes.push(node("concat2", "Concat", axis(-3), &["c", "e"], &["d"]));
    g.nodes.push(node("relu", "Relu", Attrs::default(), &["d"], &["y"]));
    g.outputs[0] = info("y", &[1, 12, 8, 8]);
    let (plan, report) = build(&g, &opts(1, false)).unwrap();
    assert_eq!(report.concats_eliminated, 2, "{:?}", ops(&plan));
    let d = arena(&plan, "d");
    assert_eq!(arena(&plan, "a").0, d.0);
    assert_eq!(arena(&plan, "e").0, d.0 + 9 * 64 * 4);
    same_results(&g, plan, &[("x", tensor(&[1, 3, 8, 8], 12))]);
}

/// x -> Relu -> r[1,6,4,4] -> Split(axis 1, [2, 4]) -> Sigmoid(p), Neg(q) -> outputs.
fn split_graph() -> Graph {
    let mut g = Graph { name: "split".into(), ..Default::default() };
    g.inputs.push(info("x", &[1, 6, 4, 4]));
    g.outputs.push(info("s", &[1, 2, 4, 4]));
    g.outputs.push(info("n", &[1, 4, 4, 4]));
    g.initializers.insert("sizes".into(), Arc::new(Tensor::from_vec(&[2], vec![2i64, 4]).unwrap()));
    g.nodes.push(node("relu", "Relu", Attrs::default(), &["x"], &["r"]));
    g.nodes.push(node("split", "Split", axis(1), &["r", "sizes"], &["p", "q"]));
    g.nodes.push(node("sig", "Sigmoid", Attrs::default(), &["p"], &["s"]));
    g.nodes.push(node("neg", "Neg", Attrs::default(), &["q"], &["n"]));
    g
}

#[test]
fn split_parts_are_views_of_the_input() {
    let g = split_graph();
    let o = BuildOptions {
        shapes: [("x".to_string(), vec![1, 6, 4, 4])].into(),
        deterministic_tactics: true,
        ..Default::default()
    };
    let (plan, report) = build(&g, &o).unwrap();
    assert!(!ops(&plan).contains(&"Split"), "{:?}", ops(&plan));
    assert_eq!((report.concats_eliminated, report.splits_eliminated), (0, 1));
    let (r, p, q) = (arena(&plan, "r"), arena(&plan, "p"), arena(&plan, "q"));
    assert_eq!(p, (r.0, 2 * 16 * 4));
    assert_eq!(q, (r.0 + 2 * 16 * 4, 4 * 16 * 4));
    same_results(&g, plan, &[("x", tensor(&[1, 6, 4, 4], 13))]);
}

#[test]
fn split_on_a_non_leading_axis_is_kept() {
    let mut g = split_graph();
    g.inputs[0] = info("x", &[1, 4, 6, 4]);
    g.outputs[0] = info("s", &[1, 4, 2, 4]);
    g.outputs[1] = info("n", &[1, 4, 4, 4]);
    g.nodes[1] = node("split", "Split", axis(2), &["r", "sizes"], &["p", "q"]);
    let o = BuildOptions {
        shapes: [("x".to_string(), vec![1, 4, 6, 4])].into(),
        deterministic_tactics: true,
        ..Default::default()
    };
    let (plan, report) = build(&g, &o).unwrap();
    assert!(ops(&plan).contains(&"Split"));
    assert_eq!(report.splits_eliminated, 0);
    same_results(&g, plan, &[("x", tensor(&[1, 4, 6, 4], 14))]);
}

/// `--max-memory` counts the whole context: arena, shared workspace and the
/// per-thread workspace of the assumed thread count. A limit the arena alone meets but
/// arena plus workspace does not is refused, with all three figures named.
#[test]
fn max_memory_limits_arena_and_workspace() {
    let g = two_convs_concat(1);
    let base = BuildOptions { threads: Some(2), ..opts(1, false) };
    let (plan, report): (Plan, BuildReport) = build(&g, &base).unwrap();
    assert!(report.workspace_per_thread_bytes > 0, "its convolutions declare GEMM scratch");
    let total = report.arena_bytes + report.workspace_bytes + 2 * report.workspace_per_thread_bytes;
    assert_eq!(plan.header().context_bytes(2), total);
    assert_eq!(plan.header().workspace_bytes, report.workspace_bytes);
    assert_eq!(plan.header().workspace_per_thread_bytes, report.workspace_per_thread_bytes);
    build(&g, &BuildOptions { max_memory: Some(total), ..base.clone() }).unwrap();
    for limit in [report.arena_bytes, total - 1] {
        let err = build(&g, &BuildOptions { max_memory: Some(limit), ..base.clone() }).unwrap_err();
        assert!(matches!(err, BuildError::MemoryTooLarge { threads: 2, .. }), "{err:?}");
        let msg = err.to_string();
        for figure in [report.arena_bytes, report.workspace_bytes, report.workspace_per_thread_bytes, limit, total] {
            assert!(msg.contains(&figure.to_string()), "{figure} missing from: {msg}");
        }
    }
    // On one thread the same context needs one per-thread part less.
    let one = BuildOptions { threads: Some(1), max_memory: Some(total - report.workspace_per_thread_bytes), ..base };
    build(&g, &one).unwrap();
}

/// x[1,6,4,4] -> Relu -> r -> Slice(starts, ends, axes, steps) -> Sigmoid -> s.
fn slice_graph(starts: i64, ends: i64, axis: i64, step: i64, out_shape: &[usize]) -> Graph {
    let mut g = Graph { name: "slice".into(), ..Default::default() };
    g.inputs.push(info("x", &[1, 6, 4, 4]));
    g.outputs.push(info("s", out_shape));
    for (name, v) in [("starts", starts), ("ends", ends), ("axes", axis), ("steps", step)] {
        g.initializers.insert(name.into(), Arc::new(Tensor::from_vec(&[1], vec![v]).unwrap()));
    }
    g.nodes.push(node("relu", "Relu", Attrs::default(), &["x"], &["r"]));
    g.nodes.push(node("slice", "Slice", Attrs::default(), &["r", "starts", "ends", "axes", "steps"], &["p"]));
    g.nodes.push(node("sig", "Sigmoid", Attrs::default(), &["p"], &["s"]));
    g
}

#[test]
fn contiguous_slice_is_a_view() {
    let g = slice_graph(2, 5, 1, 1, &[1, 3, 4, 4]);
    let o = BuildOptions {
        shapes: [("x".to_string(), vec![1, 6, 4, 4])].into(),
        deterministic_tactics: true,
        ..Default::default()
    };
    let (plan, report) = build(&g, &o).unwrap();
    assert!(!ops(&plan).contains(&"Slice"), "{:?}", ops(&plan));
    assert_eq!(report.splits_eliminated, 1);
    let (r, p) = (arena(&plan, "r"), arena(&plan, "p"));
    assert_eq!(p, (r.0 + 2 * 16 * 4, 3 * 16 * 4));
    same_results(&g, plan, &[("x", tensor(&[1, 6, 4, 4], 15))]);
}

#[test]
fn strided_or_inner_slices_are_kept() {
    let o = BuildOptions {
        shapes: [("x".to_string(), vec![1, 6, 4, 4])].into(),
        deterministic_tactics: true,
        ..Default::default()
    };
    for (g, what) in [
        (slice_graph(0, 6, 1, 2, &[1, 3, 4, 4]), "step 2"),
        (slice_graph(1, 3, 2, 1, &[1, 6, 2, 4]), "inner axis"),
        (slice_graph(-1, -7, 1, -1, &[1, 6, 4, 4]), "reversed"),
    ] {
        let (plan, report) = build(&g, &o).unwrap();
        assert!(ops(&plan).contains(&"Slice"), "{what}: {:?}", ops(&plan));
        assert_eq!(report.splits_eliminated, 0, "{what}");
        same_results(&g, plan, &[("x", tensor(&[1, 6, 4, 4], 16))]);
    }
}

#[test]
fn concat_output_may_be_a_graph_output() {
    let mut g = two_convs_concat(1);
    g.nodes.pop();
    g.nodes[2].outputs = vec!["y".into()];
    let (plan, report) = build(&g, &opts(1, false)).unwrap();
    assert_eq!(ops(&plan), ["Conv", "Conv"]);
    assert_eq!(report.concats_eliminated, 1);
    same_results(&g, plan, &[("x", tensor(&[1, 3, 8, 8], 17))]);
}

#[test]
fn horizontal_conv_split_becomes_views_at_batch_1() {
    // Two 3x3 pad-1 convs on x: merged by the optimizer, and the Split it adds is free.
    let mut g = two_convs_concat(1);
    g.initializers.insert("wb".into(), Arc::new(tensor(&[5, 3, 3, 3], 3)));
    let pads = Attrs::default().with("pads", AttrValue::Ints(vec![1, 1, 1, 1]));
    g.nodes[1] = node("conv_b", "Conv", pads, &["x", "wb"], &["b"]);
    g.nodes[2] = node("relu_a", "Relu", Attrs::default(), &["a"], &["ra"]);
    g.nodes[3] = node("relu_b", "Relu", Attrs::default(), &["b"], &["y"]);
    g.outputs[0] = info("y", &[1, 5, 8, 8]);
    g.outputs.push(info("ra", &[1, 4, 8, 8]));
    let (plan, report) = build(&g, &opts(1, false)).unwrap();
    assert_eq!(report.optimizer.count("horizontal_conv"), 1, "{}", report.optimizer);
    assert_eq!(report.splits_eliminated, 1);
    assert_eq!(ops(&plan).iter().filter(|o| o.contains("Conv")).count(), 1, "{:?}", ops(&plan));
    assert!(!ops(&plan).contains(&"Split"));
    same_results(&g, plan, &[("x", tensor(&[1, 3, 8, 8], 18))]);
}
