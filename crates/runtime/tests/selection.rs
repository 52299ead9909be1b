//! Kernel selection through the backend's factory table: the chosen implementation and
//! precision are recorded per kernel in the plan, a node every fast kernel refuses runs
//! the reference evaluator with the refusals on record (and still computes what the
//! reference op computes), and a plan naming a kernel that does not exist or does not
//! take its node is refused at load.

mod common;

use common::*;
use sinter_builder::{build, BuildOptions, BuildReport};
use sinter_ir::{AttrValue, Attrs, DType, Dim, Graph, Node, Tensor, ValueInfo};
use sinter_plan::Plan;
use sinter_runtime::{Engine, RuntimeError, REFERENCE};
use std::sync::Arc;

/// A one-node plan: inputs `x` (fed) and, when given, `w` (a constant).
fn one_node(op_type: &str, attrs: Attrs, opset: i64, x: &Tensor, w: Option<&Tensor>) -> (Plan, BuildReport) {
    let mut inputs = vec!["x".to_string()];
    let mut initializers = std::collections::BTreeMap::new();
    if let Some(w) = w {
        inputs.push("w".into());
        initializers.insert("w".to_string(), Arc::new(w.clone()));
    }
    let node = Node::new("n", op_type, opset, attrs, inputs, vec!["y".into()]).expect("node");
    let graph = Graph {
        name: op_type.into(),
        inputs: vec![ValueInfo {
            name: "x".into(),
            dtype: x.dtype(),
            dims: Some(x.shape().iter().map(|&d| Dim::Fixed(d)).collect()),
        }],
        outputs: vec![ValueInfo { name: "y".into(), dtype: x.dtype(), dims: None }],
        initializers: initializers.into_iter().collect(),
        nodes: vec![node],
        source_nodes: 1,
    };
    build(&graph, &BuildOptions { no_optimize: true, deterministic_tactics: true, ..Default::default() })
        .expect("plan builds")
}

fn axis(a: i64) -> Attrs {
    let mut attrs = Attrs::new();
    attrs.insert("axis", AttrValue::Int(a));
    attrs
}

#[test]
fn the_chosen_kernel_is_recorded() {
    let x = tensor(&[3, 5, 7], 1, -1.0);
    let (plan, report) = one_node("Softmax", axis(-1), 13, &x, None);
    let k = &plan.meta().kernels[0];
    assert_eq!((k.implementation.as_str(), k.precision), ("cpu.softmax_rows", DType::F32));
    assert_eq!(k.fallback_reason, None);
    assert!(report.fallbacks.is_empty());

    let w = tensor(&[4, 5, 3, 3], 2, -1.0);
    let (plan, _) = one_node("Conv", Attrs::new(), 13, &tensor(&[1, 5, 9, 9], 3, -1.0), Some(&w));
    assert_eq!(plan.meta().kernels[0].implementation, "cpu.conv2d");
}

#[test]
fn a_refused_node_runs_the_reference_with_the_reason_recorded() {
    // Softmax over a middle axis: the row kernel takes only the last axis.
    let x = tensor(&[3, 5, 7], 4, -1.0);
    let (plan, report) = one_node("Softmax", axis(1), 13, &x, None);
    let k = &plan.meta().kernels[0];
    assert_eq!(k.implementation, REFERENCE);
    let reason = k.fallback_reason.as_deref().expect("the refusal is recorded");
    assert_eq!(reason, "cpu.softmax_rows: the softmax axis is not the last");
    assert_eq!(report.fallbacks.len(), 1);
    assert_eq!((report.fallbacks[0].node.as_str(), report.fallbacks[0].reason.as_str()), ("n", reason));
    // It still computes what the reference op computes.
    let engine = Engine::new(plan).expect("loads");
    let got = engine.run(&[("x", &x)]).expect("runs").remove(0).1;
    let want = reference("Softmax", &axis(1), 13, &[("x".into(), Some(x))]);
    assert_bits(&got, &want, "Softmax axis 1");

    // A 3-D convolution: the convolution kernel is 2-D only.
    let w = tensor(&[2, 3, 3, 3, 3], 5, -1.0);
    let (plan, _) = one_node("Conv", Attrs::new(), 13, &tensor(&[1, 3, 5, 5, 5], 6, -1.0), Some(&w));
    let k = &plan.meta().kernels[0];
    assert_eq!(k.implementation, REFERENCE);
    assert_eq!(k.fallback_reason.as_deref(), Some("cpu.conv2d: only 2-D convolutions (4-D weights)"));
}

#[test]
fn other_precisions_are_refused_by_dtype() {
    let x = Tensor::from_vec(&[2, 8], vec![half::f16::from_f32(0.5); 16]).expect("f16");
    let (plan, _) = one_node("Softmax", axis(-1), 13, &x, None);
    let k = &plan.meta().kernels[0];
    assert_eq!((k.implementation.as_str(), k.precision), (REFERENCE, DType::F16));
    assert_eq!(k.fallback_reason.as_deref(), Some("cpu.softmax_rows: an operand is f16; this kernel computes in f32"));
    // Ops no fast kernel handles at all are not fallbacks.
    let (plan, report) = one_node("Neg", Attrs::new(), 13, &tensor(&[4], 7, -1.0), None);
    assert_eq!(plan.meta().kernels[0].implementation, REFERENCE);
    assert_eq!(plan.meta().kernels[0].fallback_reason, None);
    assert!(report.fallbacks.is_empty());
}

/// The plan with its only kernel's implementation replaced.
fn renamed(plan: &Plan, implementation: &str) -> Plan {
    let mut meta = plan.meta().clone();
    meta.kernels[0].implementation = implementation.into();
    let plan = Plan::new(meta, plan.weights().to_vec()).expect("still a valid plan");
    Plan::from_bytes(&plan.to_bytes()).expect("round trip")
}

fn load_error(plan: Plan) -> String {
    match Engine::new(plan) {
        Err(e @ RuntimeError::InvalidKernel { .. }) => e.to_string(),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("the plan loaded"),
    }
}

#[test]
fn plans_naming_a_wrong_kernel_are_refused_at_load() {
    let x = tensor(&[3, 5, 7], 8, -1.0);
    let (plan, _) = one_node("Softmax", axis(-1), 13, &x, None);
    let msg = load_error(renamed(&plan, "cpu.fancy_softmax"));
    assert!(msg.contains("unknown kernel 'cpu.fancy_softmax'") && msg.contains("cpu.softmax_rows"), "{msg}");
    let msg = load_error(renamed(&plan, "cpu.conv2d"));
    assert!(msg.contains("kernel 'cpu.conv2d' does not run Softmax"), "{msg}");
    // The row kernel named for a node it refuses.
    let (plan, _) = one_node("Softmax", axis(1), 13, &x, None);
    let msg = load_error(renamed(&plan, "cpu.softmax_rows"));
    assert!(msg.contains("refuses it: the softmax axis is not the last"), "{msg}");
    // The reference evaluator runs any node a plan gives it.
    let (plan, _) = one_node("Softmax", axis(-1), 13, &x, None);
    let engine = Engine::new(renamed(&plan, REFERENCE)).expect("loads");
    let got = engine.run(&[("x", &x)]).expect("runs").remove(0).1;
    assert_bits(&got, &reference("Softmax", &axis(-1), 13, &[("x".into(), Some(x))]), "reference Softmax");
}
