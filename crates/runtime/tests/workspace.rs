//! Declared workspaces: the plan header records what the prepared kernels declare, and
//! the runtime refuses a header that declares less.

use sinter_builder::{build, BuildOptions};
use sinter_ir::{AttrValue, Attrs, DType, Dim, Graph, Node, Tensor, ValueInfo};
use sinter_runtime::{workspace_of_plan, Engine, Plan, RuntimeError, RuntimeOptions};
use std::sync::Arc;

fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919 + seed * 104_729) % 2000) as f32 / 1000.0 - 1.0).collect()
}

/// A Winograd 3×3 convolution, a strided 3×3 convolution (padded input copy), a
/// ConvTranspose and a MatMul on constant weights.
fn graph() -> Graph {
    let mut nodes = Vec::new();
    let mut init = std::collections::BTreeMap::new();
    let mut add = |name: &str, op: &str, attrs: &[(&str, &[i64])], inputs: &[&str], w: (&str, &[usize])| {
        let t = Tensor::from_vec(w.1, values(w.1.iter().product(), nodes.len())).unwrap();
        init.insert(w.0.to_string(), Arc::new(t));
        let mut a = Attrs::new();
        for (k, v) in attrs {
            a.insert(k, AttrValue::Ints(v.to_vec()));
        }
        let ins = inputs.iter().map(|s| s.to_string()).chain([w.0.to_string()]).collect();
        nodes.push(Node::new(name, op, 17, a, ins, vec![name.to_string()]).unwrap());
    };
    add("a", "Conv", &[("pads", &[1, 1, 1, 1])], &["x"], ("wa", &[16, 16, 3, 3]));
    add("b", "Conv", &[("pads", &[1, 1, 1, 1]), ("strides", &[2, 2])], &["a"], ("wb", &[24, 16, 3, 3]));
    add("c", "ConvTranspose", &[("strides", &[2, 2])], &["b"], ("wc", &[24, 8, 2, 2]));
    add("d", "MatMul", &[], &["c"], ("wd", &[24, 5]));
    let info = |name: &str, dims: Option<&[usize]>| ValueInfo {
        name: name.into(),
        dtype: DType::F32,
        dims: dims.map(|d| d.iter().map(|&d| Dim::Fixed(d)).collect()),
    };
    Graph {
        name: "ws".into(),
        inputs: vec![info("x", Some(&[1, 16, 24, 24]))],
        outputs: vec![info("d", None)],
        initializers: init,
        nodes,
        source_nodes: 4,
    }
}

fn plan() -> Plan {
    let opts = BuildOptions { deterministic_tactics: true, no_optimize: true, ..Default::default() };
    build(&graph(), &opts).expect("builds").0
}

#[test]
fn header_records_what_the_kernels_declare() {
    let plan = plan();
    let ws = workspace_of_plan(&plan).unwrap();
    let h = plan.header();
    assert_eq!((h.workspace_bytes, h.workspace_per_thread_bytes), (ws.shared, ws.per_thread));
    assert!(ws.shared > 0 && ws.per_thread > 0, "{ws:?}");
    // 64-byte lines, so every part of a context's workspace starts aligned.
    assert_eq!((ws.shared % 64, ws.per_thread % 64), (0, 0));
    // Through a file, and on any thread count: the figures do not depend on it.
    let plan = Plan::from_bytes(&plan.to_bytes()).unwrap();
    for threads in [1, 3] {
        let engine = Engine::with_options(
            Plan::from_bytes(&plan.to_bytes()).unwrap(),
            &RuntimeOptions { threads: Some(threads) },
        )
        .unwrap();
        assert_eq!(engine.workspace(), ws);
        assert_eq!(engine.workspace().total(threads), ws.shared + threads as u64 * ws.per_thread);
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let plan = plan();
    let x = sinter_runtime::Tensor::from_vec(&[1, 16, 24, 24], values(16 * 24 * 24, 5)).unwrap();
    let run = |threads| {
        let engine = Engine::with_options(
            Plan::from_bytes(&plan.to_bytes()).unwrap(),
            &RuntimeOptions { threads: Some(threads) },
        )
        .unwrap();
        engine.run(&[("x", &x)]).unwrap().remove(0).1
    };
    let one = run(1);
    for threads in [2, 3] {
        assert_eq!(run(threads).bytes(), one.bytes(), "{threads} threads");
    }
}

#[test]
fn a_header_declaring_too_little_workspace_is_refused() {
    let plan = plan();
    let ws = workspace_of_plan(&plan).unwrap();
    for (shared, per_thread) in [(ws.shared - 1, ws.per_thread), (ws.shared, ws.per_thread - 4), (0, 0)] {
        let small = Plan::from_bytes(&plan.to_bytes()).unwrap().with_workspace(shared, per_thread).unwrap();
        let small = Plan::from_bytes(&small.to_bytes()).unwrap();
        let err = Engine::new(small).err().expect("refused");
        assert!(matches!(err, RuntimeError::WorkspaceTooSmall { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&ws.per_thread.to_string()) && msg.contains("rebuild"), "{msg}");
    }
    // More than needed is fine: the context allocates what the kernels declare.
    let big = Plan::from_bytes(&plan.to_bytes()).unwrap().with_workspace(ws.shared + 64, ws.per_thread * 2).unwrap();
    let engine = Engine::new(big).unwrap();
    assert_eq!(engine.workspace(), ws);
}
