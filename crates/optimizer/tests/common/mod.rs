//! Helpers for optimizer tests: tiny hand-built graphs, running rules through the
//! driver, and comparing original and rewritten graphs on seeded random inputs.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_ir::{interp, AttrValue, Attrs, DType, Dim, Fact, Graph, Node, Tensor, ValueInfo};
use sinter_optimizer::{optimize, optimize_reference, Options, Pass, Report, Rule};
use std::collections::HashMap;
use std::sync::Arc;

pub const OPSET: i64 = 17;

/// An f32 tensor (panics on a length mismatch: test data only).
pub fn t(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_vec(shape, data).unwrap()
}

pub fn i64s(data: &[i64]) -> Tensor {
    Tensor::from_vec(&[data.len()], data.to_vec()).unwrap()
}

/// Uniform values in `[lo, hi)`, seeded.
pub fn rand_vec(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(lo..hi)).collect()
}

pub fn rand_t(seed: u64, shape: &[usize]) -> Tensor {
    t(shape, rand_vec(seed, shape.iter().product(), -1.0, 1.0))
}

pub fn attrs(list: &[(&str, AttrValue)]) -> Attrs {
    list.iter().fold(Attrs::new(), |a, (k, v)| a.with(k, v.clone()))
}

pub fn node_at(name: &str, op: &str, opset: i64, a: Attrs, inputs: &[&str], outputs: &[&str]) -> Node {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Node::new(name, op, opset, a, strings(inputs), strings(outputs)).unwrap()
}

pub fn node_with(name: &str, op: &str, a: Attrs, inputs: &[&str], outputs: &[&str]) -> Node {
    node_at(name, op, OPSET, a, inputs, outputs)
}

pub fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> Node {
    node_with(name, op, Attrs::new(), inputs, outputs)
}

/// A graph with f32 runtime inputs of fixed shapes.
pub fn graph(inputs: &[(&str, &[usize])], outputs: &[&str], inits: Vec<(&str, Tensor)>, nodes: Vec<Node>) -> Graph {
    Graph {
        name: "test".into(),
        inputs: inputs
            .iter()
            .map(|(n, s)| ValueInfo {
                name: n.to_string(),
                dtype: DType::F32,
                dims: Some(s.iter().map(|&d| Dim::Fixed(d)).collect()),
            })
            .collect(),
        outputs: outputs.iter().map(|n| ValueInfo { name: n.to_string(), dtype: DType::F32, dims: None }).collect(),
        initializers: inits.into_iter().map(|(n, t)| (n.to_string(), Arc::new(t))).collect(),
        source_nodes: nodes.len(),
        nodes,
    }
}

fn fixed_shape(vi: &ValueInfo) -> Vec<usize> {
    vi.dims
        .as_ref()
        .expect("test inputs have shapes")
        .iter()
        .map(|d| match d {
            Dim::Fixed(d) => *d,
            Dim::Sym(s) => panic!("symbolic dim {s} in a test input"),
        })
        .collect()
}

/// Facts of the runtime inputs, from their declared shapes.
pub fn input_facts(g: &Graph) -> HashMap<String, Fact> {
    g.runtime_inputs().map(|vi| (vi.name.clone(), Fact::new(vi.dtype, fixed_shape(vi)))).collect()
}

/// Runs the driver with one pass holding `rules` on a copy of `g` (checking that it
/// agrees with the reference driver).
pub fn run_rules(g: &Graph, rules: Vec<Box<dyn Rule>>) -> (Graph, Report) {
    run_passes(g, &[Pass { name: "test", rules }], &Options::default())
}

/// Runs `passes` on a copy of `g` with the driver, and asserts that the reference driver
/// (whole-graph inference and a restart after every rewrite) applies the same rewrites
/// and reaches the same graph.
pub fn run_passes(g: &Graph, passes: &[Pass], opts: &Options) -> (Graph, Report) {
    let mut out = g.clone();
    let report = optimize(&mut out, &input_facts(g), passes, opts).expect("optimize");
    let mut reference = g.clone();
    let expected = optimize_reference(&mut reference, &input_facts(g), passes, opts).expect("reference optimize");
    assert_same_graph(&out, &reference);
    assert_eq!(report.applied, expected.applied, "the driver and the reference applied different rewrites");
    assert_eq!(report.refused, expected.refused, "the driver and the reference refused differently");
    assert_eq!((report.steps, report.stopped_early), (expected.steps, expected.stopped_early));
    (out, report)
}

/// A node as comparable text: name, op type, opset, attributes, inputs, outputs, provenance.
pub fn node_key(n: &Node) -> String {
    format!(
        "{} {} opset {} {:?} {:?} -> {:?} from {:?}",
        n.name, n.op_type, n.opset, n.attrs, n.inputs, n.outputs, n.fused_from
    )
}

/// Asserts two graphs have the same nodes in the same order, initializers and outputs.
pub fn assert_same_graph(a: &Graph, b: &Graph) {
    let (na, nb): (Vec<_>, Vec<_>) = (a.nodes.iter().map(node_key).collect(), b.nodes.iter().map(node_key).collect());
    assert_eq!(na, nb, "nodes differ");
    assert_eq!(a.initializers, b.initializers, "initializers differ");
    assert_eq!(a.outputs, b.outputs, "outputs differ");
}

pub fn run_rule(g: &Graph, rule: impl Rule + 'static) -> (Graph, Report) {
    run_rules(g, vec![Box::new(rule)])
}

pub fn op_types(g: &Graph) -> Vec<&str> {
    g.nodes.iter().map(|n| n.op_type.as_str()).collect()
}

/// The refusal reasons `rule` gave.
pub fn refusals<'a>(report: &'a Report, rule: &str) -> Vec<&'a str> {
    report.refused.iter().filter(|r| r.rule == rule).map(|r| r.reason.as_str()).collect()
}

/// Asserts `rule` refused with a reason containing every one of `parts`.
pub fn assert_refused(report: &Report, rule: &str, parts: &[&str]) {
    let reasons = refusals(report, rule);
    assert!(
        reasons.iter().any(|r| parts.iter().all(|p| r.contains(p))),
        "expected a refusal of {rule} mentioning {parts:?}, got {reasons:?}"
    );
}

/// Asserts both graphs compute the same outputs (1e-5 abs + 1e-4 rel) on seeded
/// random inputs in [-1, 1).
pub fn assert_same_outputs(a: &Graph, b: &Graph, seed: u64) {
    let inputs: Vec<(String, Tensor)> = a
        .runtime_inputs()
        .enumerate()
        .map(|(k, vi)| (vi.name.clone(), rand_t(seed.wrapping_add(k as u64), &fixed_shape(vi))))
        .collect();
    let named: Vec<(&str, Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let ya = interp::run(a, &named).expect("original graph runs");
    let yb = interp::run(b, &named).expect("rewritten graph runs");
    assert_eq!(ya.len(), yb.len());
    for (k, (x, y)) in ya.iter().zip(&yb).enumerate() {
        assert_eq!(x.shape(), y.shape(), "output {k} shape");
        assert_eq!(x.dtype(), y.dtype(), "output {k} dtype");
        for (j, (p, q)) in x.to_f64_vec().iter().zip(y.to_f64_vec()).enumerate() {
            assert!((p - q).abs() <= 1e-5 + 1e-4 * p.abs(), "output {k} element {j}: {p} vs {q}");
        }
    }
}
