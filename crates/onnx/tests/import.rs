//! Import of the fixtures written by `tests/fixtures/make_fixtures.py` (the official onnx
//! serializer), with values checked against numpy's.

mod common;

use common::*;
use sinter_ir::{DType, Dim};
use sinter_onnx::{load_model, load_model_bytes, tensor_from_proto_bytes, OnnxError, UnsupportedOp};
use std::path::Path;

fn sym(s: &str) -> Dim {
    Dim::Sym(s.to_string())
}

#[test]
fn initializers_in_every_storage_form_and_constants() {
    let m = load_model(&fixture("initializers.onnx")).unwrap();
    assert_eq!(m.opset, 13);
    assert_eq!(m.ir_version, 10);
    assert_eq!(m.producer, "sinter-fixtures 1");
    let g = &m.graph;
    assert_eq!(g.name, "initializers");
    // Constant nodes became initializers.
    assert!(g.nodes.is_empty(), "{:?}", g.nodes);
    let want = expected("initializers.expected.json");
    let mut names: Vec<&String> = g.initializers.keys().collect();
    names.sort();
    let mut want_names: Vec<&String> = want.keys().collect();
    want_names.sort();
    assert_eq!(names, want_names);
    for (name, w) in &want {
        assert_matches(name, &g.initializers[name], w);
    }
    // Inputs are kept as declared; the initializer among them is not a runtime input.
    let inputs: Vec<&str> = g.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(inputs, ["x", "w_f32"]);
    assert_eq!(g.inputs[0].dtype, DType::F32);
    assert_eq!(g.inputs[0].dims, Some(vec![sym("N"), Dim::Fixed(3), sym("")]));
    let runtime: Vec<&str> = g.runtime_inputs().map(|i| i.name.as_str()).collect();
    assert_eq!(runtime, ["x"]);
    let outputs: Vec<(&str, DType)> = g.outputs.iter().map(|o| (o.name.as_str(), o.dtype)).collect();
    assert_eq!(outputs, [("x", DType::F32), ("c_tensor", DType::I32)]);
}

#[test]
fn input_dims_fixed_symbolic_unknown_and_undeclared() {
    let m = load_model(&fixture("inputs.onnx")).unwrap();
    assert_eq!(m.opset, 21);
    let i = &m.graph.inputs;
    assert_eq!(i.len(), 4);
    assert_eq!((i[0].name.as_str(), i[0].dtype), ("image", DType::F16));
    assert_eq!(i[0].dims, Some(vec![sym("batch"), Dim::Fixed(3), Dim::Fixed(224), sym("")]));
    assert_eq!((i[1].name.as_str(), i[1].dtype, &i[1].dims), ("ids", DType::I64, &None));
    assert_eq!((i[2].name.as_str(), i[2].dtype, &i[2].dims), ("flag", DType::Bool, &Some(vec![])));
    // -1 (written by some exporters for a dynamic dim) reads as unknown.
    assert_eq!((i[3].name.as_str(), i[3].dtype), ("q", DType::U8));
    assert_eq!(i[3].dims, Some(vec![sym(""), Dim::Fixed(4)]));
}

#[test]
fn external_data_with_offsets_and_implicit_length() {
    let want = expected("external.expected.json");
    let check = |m: sinter_onnx::Model| {
        for (name, w) in &want {
            assert_matches(name, &m.graph.initializers[name], w);
        }
        assert_eq!(m.graph.initializers.len(), 4);
    };
    check(load_model(&fixture("external.onnx")).unwrap());
    // From bytes, external data resolves against the directory given.
    let bytes = read_fixture("external.onnx");
    check(load_model_bytes(&bytes, Some(&fixtures())).unwrap());
    let e = load_model_bytes(&bytes, None).unwrap_err();
    assert!(e.to_string().contains("without a directory"), "{e}");
}

#[test]
fn external_data_missing_file() {
    let e = load_model(&fixture("external_missing.onnx")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, OnnxError::ExternalData { .. }), "{e:?}");
    assert!(msg.contains("initializer 'ext_a'") && msg.contains("missing.data"), "{msg}");
}

#[test]
fn external_data_must_stay_in_the_model_directory() {
    let e = load_model(&fixture("external_escape.onnx")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "initializer 'ext_a': external data '../fixtures/external.data': the path must not contain '..'"
    );
}

#[test]
fn unsupported_ops_are_listed_together() {
    let e = load_model(&fixture("unsupported_ops.onnx")).unwrap_err();
    let OnnxError::UnsupportedOps(ops) = &e else { panic!("{e:?}") };
    let op = |domain: &str, op_type: &str, nodes: &[&str]| UnsupportedOp {
        domain: domain.into(),
        op_type: op_type.into(),
        nodes: nodes.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        ops,
        &[
            op("", "NonMaxSuppression", &["nms_1", "nms_2"]),
            op("", "Loop", &["loop_0"]),
            op("com.example", "MyOp", &["MyOp_4"]),
            op("ai.onnx.ml", "TreeEnsembleClassifier", &["tree"]),
        ]
    );
    assert_eq!(
        e.to_string(),
        "unsupported operators: NonMaxSuppression (nodes: nms_1, nms_2); Loop (nodes: loop_0); \
         com.example::MyOp (nodes: MyOp_4); ai.onnx.ml::TreeEnsembleClassifier (nodes: tree)"
    );
}

#[test]
fn unsupported_dtype_names_the_initializer() {
    let e = load_model(&fixture("double_init.onnx")).unwrap_err();
    assert_eq!(e.to_string(), "initializer 'w' has dtype double, which Sinter does not support");
}

#[test]
fn dangling_input_names_node_and_value() {
    let e = load_model(&fixture("dangling.onnx")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("'relu_1'") && msg.contains("'ghost'"), "{msg}");
}

#[test]
fn nodes_are_sorted_and_named() {
    let m = load_model(&fixture("relu_add.onnx")).unwrap();
    let g = &m.graph;
    let nodes: Vec<(&str, &str)> = g.nodes.iter().map(|n| (n.name.as_str(), n.op_type.as_str())).collect();
    // Stored as [Add, Relu]; Add reads Relu's output.
    assert_eq!(nodes, [("Relu_1", "Relu"), ("Add_0", "Add")]);
    assert_eq!(g.nodes[1].inputs, ["r", "b"]);
    assert!(g.nodes.iter().all(|n| n.opset == 14));
    let runtime: Vec<&str> = g.runtime_inputs().map(|i| i.name.as_str()).collect();
    assert_eq!(runtime, ["x"]);
}

#[test]
fn not_an_onnx_model() {
    for bytes in [&b""[..], b"hello, this is not protobuf at all", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"\x08\x07"] {
        let e = load_model_bytes(bytes, None).unwrap_err();
        assert!(matches!(e, OnnxError::NotOnnx { .. }), "{bytes:?}: {e:?}");
        assert!(e.to_string().starts_with("the input is not an ONNX model: "), "{e}");
    }
    let e = load_model(&fixture("make_fixtures.py")).unwrap_err();
    assert!(e.to_string().contains("make_fixtures.py' is not an ONNX model"), "{e}");
    let e = load_model(Path::new("/nonexistent/model.onnx")).unwrap_err();
    assert!(matches!(e, OnnxError::Io { .. }), "{e:?}");
}

#[test]
fn conformance_tensor_files() {
    let root = Path::new("/work/py/venv/lib/python3.11/site-packages/onnx/backend/test/data/node");
    if !root.is_dir() {
        println!("skipped: ONNX backend test data not found at {}", root.display());
        return;
    }
    let want = expected("conformance.expected.json");
    assert!(!want.is_empty());
    for (rel, w) in &want {
        let bytes = std::fs::read(root.join(rel)).unwrap();
        let (name, t) = tensor_from_proto_bytes(&bytes).unwrap();
        assert_eq!(name, w["name"].as_str().unwrap(), "{rel}");
        assert_matches(rel, &t, w);
    }
}
