//! Graph-level behaviour: consistency checks, topological sorting, folding of
//! shape subgraphs during inference, and the reference interpreter.

use sinter_ir::{check, infer::infer_graph, interp, AttrValue, Attrs, DType, Fact, Graph, Node, Tensor, ValueInfo};
use std::collections::HashMap;
use std::sync::Arc;

fn node(name: &str, op: &str, attrs: Attrs, inputs: &[&str], outputs: &[&str]) -> Node {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Node::new(name, op, 17, attrs, strings(inputs), strings(outputs)).expect("op builds")
}

fn io(name: &str) -> ValueInfo {
    ValueInfo { name: name.into(), dtype: DType::F32, dims: None }
}

/// y = Reshape(Relu(x + b), Concat(Gather(Shape(x), 0), [-1]))
fn graph() -> Graph {
    let mut g = Graph { inputs: vec![io("x")], outputs: vec![io("y")], ..Default::default() };
    g.initializers.insert("b".into(), Arc::new(Tensor::from_vec(&[3], vec![1.0f32, -1.0, 0.5]).unwrap()));
    g.initializers.insert("zero".into(), Arc::new(Tensor::scalar(0i64)));
    g.initializers.insert("minus1".into(), Arc::new(Tensor::from_vec(&[1], vec![-1i64]).unwrap()));
    g.nodes = vec![
        node("add", "Add", Attrs::new(), &["x", "b"], &["s"]),
        node("relu", "Relu", Attrs::new(), &["s"], &["r"]),
        node("shape", "Shape", Attrs::new(), &["x"], &["sh"]),
        node("gather", "Gather", Attrs::new().with("axis", AttrValue::Int(0)), &["sh", "zero"], &["n"]),
        node("unsq", "Unsqueeze", Attrs::new(), &["n", "zero"], &["n1"]),
        node("concat", "Concat", Attrs::new().with("axis", AttrValue::Int(0)), &["n1", "minus1"], &["target"]),
        node("reshape", "Reshape", Attrs::new(), &["r", "target"], &["y"]),
    ];
    g
}

#[test]
fn shape_subgraph_folds_during_inference() {
    let g = graph();
    check::check(&g).unwrap();
    let inputs = HashMap::from([("x".to_string(), Fact::new(DType::F32, vec![2, 2, 3]))]);
    let facts = infer_graph(&g, &inputs).unwrap();
    let target = facts["target"].value.as_ref().expect("shape subgraph is constant");
    assert_eq!(target.as_slice::<i64>().unwrap(), &[2, -1]);
    assert_eq!(facts["y"].shape, vec![2, 6]);
    assert!(facts["y"].value.is_none(), "data-dependent values are not folded");
}

#[test]
fn interpreter_computes_the_graph() {
    let x = Tensor::from_vec(&[1, 2, 3], vec![-2.0f32, 0.0, 1.0, 3.0, 1.0, -1.0]).unwrap();
    let y = interp::run(&graph(), &[("x", x)]).unwrap().remove(0);
    // relu(x + [1, -1, 0.5]) flattened per batch: numpy gives [[0, 0, 1.5, 4, 0, 0]]
    assert_eq!(y.shape(), &[1, 6]);
    assert_eq!(y.as_slice::<f32>().unwrap(), &[0.0, 0.0, 1.5, 4.0, 0.0, 0.0]);
}

#[test]
fn toposort_orders_and_check_rejects_bad_graphs() {
    let mut g = graph();
    g.nodes.reverse();
    assert!(check::check(&g).is_err(), "reversed order reads values before they exist");
    check::toposort(&mut g).unwrap();
    check::check(&g).unwrap();

    let mut dangling = graph();
    dangling.nodes[1].inputs[0] = "ghost".into();
    let err = check::toposort(&mut dangling).unwrap_err().to_string();
    assert!(err.contains("relu") && err.contains("ghost"), "{err}");

    let mut twice = graph();
    twice.nodes[1].outputs[0] = "s".into();
    assert!(check::check(&twice).unwrap_err().to_string().contains("produced twice"));

    let mut cycle = graph();
    cycle.nodes[0].inputs[0] = "r".into();
    assert!(check::toposort(&mut cycle).unwrap_err().to_string().contains("cycle"));

    let mut no_output = graph();
    no_output.outputs[0].name = "nothing".into();
    assert!(check::check(&no_output).unwrap_err().to_string().contains("never produced"));
}
