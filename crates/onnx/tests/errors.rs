//! Malformed and unsupported models built directly from the proto structs.

mod common;

use common::*;
use prost::Message;
use sinter_ir::{AttrValue, DType};
use sinter_onnx::proto::{attribute_type as at, AttributeProto, GraphProto, ModelProto, NodeProto};
use sinter_onnx::proto::{tensor_proto, SparseTensorProto, StringStringEntryProto, TensorProto, TypeProto};
use sinter_onnx::proto::{type_proto, ValueInfoProto};
use sinter_onnx::{load_model_bytes, tensor_from_proto, tensor_from_proto_bytes, OnnxError};
use std::path::Path;

fn load(m: &ModelProto) -> Result<sinter_onnx::Model, OnnxError> {
    load_model_bytes(&encode(m), Some(&fixtures()))
}

fn load_err(m: &ModelProto) -> String {
    match load(m) {
        Ok(_) => panic!("loaded a model that should fail"),
        Err(e) => e.to_string(),
    }
}

/// A graph with one f32 input `x` that is also its output.
fn passthrough() -> GraphProto {
    GraphProto {
        name: Some("g".into()),
        input: vec![tensor_vi("x", 1, &[2])],
        output: vec![tensor_vi("x", 1, &[2])],
        ..Default::default()
    }
}

fn node(op_type: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op_type.into()),
        name: (!name.is_empty()).then(|| name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn attr(name: &str) -> AttributeProto {
    AttributeProto { name: Some(name.into()), ..Default::default() }
}

#[test]
fn opset_range_and_domains() {
    let mut m = model(passthrough());
    for (v, ok) in [(6, false), (7, true), (21, true), (22, true), (23, false)] {
        m.opset_import = vec![opset("", v)];
        match load(&m) {
            Ok(model) => {
                assert!(ok, "opset {v} loaded");
                assert_eq!(model.opset, v);
            }
            Err(e) => {
                assert!(!ok, "opset {v}: {e}");
                assert_eq!(
                    e.to_string(),
                    format!("opset {v} of the default ONNX domain is not supported (Sinter supports opsets 7 to 22)")
                );
            }
        }
    }
    m.opset_import = vec![opset("ai.onnx.ml", 3), opset("ai.onnx", 17)];
    assert_eq!(load(&m).unwrap().opset, 17);
    m.opset_import = vec![opset("ai.onnx.ml", 3)];
    assert!(load_err(&m).contains("imports no opset of the default ONNX domain"));
    m.opset_import = vec![opset("", 13), opset("ai.onnx", 14)];
    assert!(load_err(&m).contains("as opsets 13 and 14"));
}

#[test]
fn generated_node_names_are_unique() {
    let nms = |name: &str| node("NonMaxSuppression", name, &["x", "x"], &[]);
    let mut g = passthrough();
    // Unnamed node 1 would be "NonMaxSuppression_1", which node 2 uses explicitly.
    g.node = vec![nms(""), nms(""), nms("NonMaxSuppression_1"), nms("dup"), nms("dup")];
    let e = load_err(&model(g));
    assert_eq!(
        e,
        "unsupported operators: NonMaxSuppression (nodes: NonMaxSuppression_0, NonMaxSuppression_1_1, \
         NonMaxSuppression_1, dup, dup_1)"
    );
}

#[test]
fn long_unsupported_lists_are_cut() {
    let mut g = passthrough();
    g.node = (0..15).map(|i| node("Loop", &format!("l{i}"), &[], &[])).collect();
    assert_eq!(load_err(&model(g)), "unsupported operators: Loop (nodes: l0, l1, l2, l3, l4 and 10 more)");
}

#[test]
fn node_without_op_type() {
    let mut g = passthrough();
    g.node = vec![node("", "n", &[], &[])];
    assert_eq!(load_err(&model(g)), "node 0 ('n') has no op_type");
}

#[test]
fn attributes_reach_the_op_and_errors_name_the_node() {
    let leaky = |a: AttributeProto| {
        let mut g = passthrough();
        let mut n = node("LeakyRelu", "lr", &["x"], &["y"]);
        n.attribute = vec![a];
        g.node = vec![n];
        g.output = vec![tensor_vi("y", 1, &[2])];
        model(g)
    };
    // An untyped attribute (old exporters) takes the type of the field that is set.
    let m = load(&leaky(AttributeProto { f: Some(0.2), ..attr("alpha") })).unwrap();
    let n = &m.graph.nodes[0];
    assert_eq!((n.name.as_str(), n.op_type.as_str(), n.opset), ("lr", "LeakyRelu", 13));
    assert_eq!(n.attrs.get("alpha"), Some(&AttrValue::Float(0.2)));
    assert_eq!((n.inputs.as_slice(), n.outputs.as_slice()), (&["x".to_string()][..], &["y".to_string()][..]));

    let e = load_err(&leaky(AttributeProto { r#type: Some(at::STRING), s: Some(b"big".to_vec()), ..attr("alpha") }));
    assert!(e.starts_with("node 'lr' (LeakyRelu): attribute 'alpha': "), "{e}");
    let e =
        load_err(&leaky(AttributeProto { r#type: Some(at::GRAPH), g: Some(GraphProto::default()), ..attr("body") }));
    assert_eq!(e, "node 'lr' (LeakyRelu): attribute 'body': has type GRAPH, which Sinter does not support");
    let e = load_err(&leaky(AttributeProto { r#type: Some(at::STRING), s: Some(vec![0xff, 0xfe]), ..attr("mode") }));
    assert_eq!(e, "node 'lr' (LeakyRelu): attribute 'mode': holds a string that is not UTF-8");
    let e = load_err(&leaky(AttributeProto { ref_attr_name: Some("a".into()), ..attr("alpha") }));
    assert!(e.contains("refers to function attribute 'a'"), "{e}");
}

#[test]
fn constant_variants() {
    let constant = |attrs: Vec<AttributeProto>| {
        let mut g = passthrough();
        let mut n = node("Constant", "c", &[], &["k"]);
        n.attribute = attrs;
        g.node = vec![n];
        g.output.push(tensor_vi("k", 1, &[]));
        model(g)
    };
    // Old exporters leave the attribute type unset.
    let m = load(&constant(vec![AttributeProto { f: Some(1.25), ..attr("value_float") }])).unwrap();
    assert_eq!(m.graph.initializers["k"].as_slice::<f32>().unwrap(), &[1.25]);
    assert_eq!(m.graph.initializers["k"].shape(), &[] as &[usize]);

    let m = load(&constant(vec![AttributeProto {
        r#type: Some(at::TENSOR),
        t: Some(f32_tensor("", &[2], &[3.0, 4.0])),
        ..attr("value")
    }]))
    .unwrap();
    assert_eq!(m.graph.initializers["k"].as_slice::<f32>().unwrap(), &[3.0, 4.0]);

    let e = load_err(&constant(vec![AttributeProto {
        r#type: Some(at::STRING),
        s: Some(b"hi".to_vec()),
        ..attr("value_string")
    }]));
    assert_eq!(e, "node 'c' (Constant): attribute 'value_string': string tensors are not supported");

    let two = vec![
        AttributeProto { r#type: Some(at::INT), i: Some(1), ..attr("value_int") },
        AttributeProto { r#type: Some(at::FLOAT), f: Some(1.0), ..attr("value_float") },
    ];
    assert!(load_err(&constant(two)).contains("needs exactly one value attribute"));
    assert!(load_err(&constant(vec![])).contains("needs exactly one value attribute"));

    let e = load_err(&constant(vec![AttributeProto { r#type: Some(at::INT), i: Some(1), ..attr("value_float") }]));
    assert!(e.contains("attribute 'value_float' has the wrong type"), "{e}");

    let sparse = AttributeProto {
        r#type: Some(at::SPARSE_TENSOR),
        sparse_tensor: Some(SparseTensorProto::default()),
        ..attr("sparse_value")
    };
    assert_eq!(
        load_err(&constant(vec![sparse])),
        "node 'c' (Constant): attribute 'sparse_value': has type SPARSE_TENSOR, which Sinter does not support"
    );

    let bad_tensor = AttributeProto {
        r#type: Some(at::TENSOR),
        t: Some(TensorProto { data_type: Some(11), ..Default::default() }),
        ..attr("value")
    };
    assert_eq!(
        load_err(&constant(vec![bad_tensor])),
        "node 'c' (Constant) attribute 'value' has dtype double, which Sinter does not support"
    );

    let dup = vec![
        AttributeProto { r#type: Some(at::INT), i: Some(1), ..attr("value_int") },
        AttributeProto { r#type: Some(at::INT), i: Some(2), ..attr("value_int") },
    ];
    assert_eq!(load_err(&constant(dup)), "node 'c' (Constant): attribute 'value_int': given twice");

    let untyped_empty = vec![attr("value_ints")];
    assert!(load_err(&constant(untyped_empty)).contains("has neither a type nor a value"));

    // A Constant may not shadow an initializer.
    let mut m = constant(vec![AttributeProto { r#type: Some(at::INT), i: Some(1), ..attr("value_int") }]);
    if let Some(g) = m.graph.as_mut() {
        g.initializer.push(f32_tensor("k", &[], &[0.0]));
    }
    assert!(load_err(&m).contains("defines 'k', which is already a graph input or initializer"));
}

#[test]
fn initializer_errors() {
    let with_init = |t: TensorProto| {
        let mut g = passthrough();
        g.initializer = vec![t];
        model(g)
    };
    assert_eq!(load_err(&with_init(f32_tensor("", &[1], &[1.0]))), "the graph has an initializer without a name");
    let mut m = with_init(f32_tensor("w", &[1], &[1.0]));
    if let Some(g) = m.graph.as_mut() {
        g.initializer.push(f32_tensor("w", &[1], &[2.0]));
    }
    assert_eq!(load_err(&m), "initializer 'w' is defined twice");
    assert_eq!(
        load_err(&with_init(f32_tensor("w", &[2, 2], &[1.0]))),
        "initializer 'w': f32 tensor of shape [2, 2] needs 4 values in float_data, found 1"
    );
    let mut g = passthrough();
    g.sparse_initializer = vec![SparseTensorProto::default()];
    assert!(load_err(&model(g)).contains("sparse initializers"));
}

#[test]
fn tensor_edge_cases() {
    let dec = |t: TensorProto| tensor_from_proto(&t, None).map_err(|e| e.to_string());
    let t = |dims: &[i64], dtype: i32| TensorProto {
        name: Some("t".into()),
        dims: dims.to_vec(),
        data_type: Some(dtype),
        ..Default::default()
    };
    // Sizes from the file are checked before anything is allocated.
    assert_eq!(
        dec(t(&[1 << 62, 1 << 62], 1)).unwrap_err(),
        "tensor 't': dims [4611686018427387904, 4611686018427387904] are too large"
    );
    assert!(dec(t(&[1 << 40, 1 << 20], 1))
        .unwrap_err()
        .contains("needs 1152921504606846976 values in float_data, found 0"));
    assert_eq!(dec(t(&[2, -1], 1)).unwrap_err(), "tensor 't': invalid dimension -1 in dims [2, -1]");
    assert_eq!(dec(t(&[1], 0)).unwrap_err(), "tensor 't': missing data_type");
    assert_eq!(dec(t(&[1], 8)).unwrap_err(), "tensor 't' has dtype string, which Sinter does not support");
    assert_eq!(dec(t(&[1], 99)).unwrap_err(), "tensor 't' has dtype unknown (99), which Sinter does not support");
    assert!(dec(TensorProto { raw_data: Some(vec![0; 7]), ..t(&[2], 1) })
        .unwrap_err()
        .contains("needs 8 bytes, got 7"));
    assert!(dec(TensorProto { segment: Some(tensor_proto::Segment::default()), ..t(&[1], 1) })
        .unwrap_err()
        .contains("segmented tensors are not supported"));
    assert!(dec(TensorProto { data_location: Some(5), ..t(&[1], 1) }).unwrap_err().contains("unknown data_location 5"));
    // An empty tensor needs no data; raw_data wins over typed fields; narrow ints keep the low bits.
    assert_eq!(dec(t(&[0, 5], 7)).unwrap().shape(), &[0, 5]);
    let le: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let x = dec(TensorProto { raw_data: Some(le), float_data: vec![9.0], ..t(&[2], 1) }).unwrap();
    assert_eq!(x.as_slice::<f32>().unwrap(), &[1.5, -2.0]);
    let x = dec(TensorProto { int32_data: vec![-1, 300, 127], ..t(&[3], 3) }).unwrap();
    assert_eq!(x.as_slice::<i8>().unwrap(), &[-1, 44, 127]);
    let x = dec(TensorProto { int32_data: vec![0, 5, -1], ..t(&[3], 9) }).unwrap();
    assert_eq!((x.dtype(), x.bytes()), (DType::Bool, &[0u8, 1, 1][..]));
    // 0x3C00 is 1.0 in float16, 0xC000 is -2.0.
    let x = dec(TensorProto { int32_data: vec![0x3C00, 0xC000], ..t(&[2], 10) }).unwrap();
    assert_eq!(x.to_f64_vec(), [1.0, -2.0]);
}

#[test]
fn tensor_proto_files() {
    let t = TensorProto { int64_data: vec![4, -5], ..f32_tensor("ids", &[2], &[]) };
    let t = TensorProto { data_type: Some(7), ..t };
    let (name, x) = tensor_from_proto_bytes(&t.encode_to_vec()).unwrap();
    assert_eq!(name, "ids");
    assert_eq!(x.as_slice::<i64>().unwrap(), &[4, -5]);
    for bad in [&b""[..], b"\xff\xff\xff"] {
        let e = tensor_from_proto_bytes(bad).unwrap_err();
        assert!(e.to_string().starts_with("the input is not an ONNX TensorProto: "), "{e}");
    }
    // Valid protobuf that is not a tensor (a model) has no data_type.
    let e = tensor_from_proto_bytes(&read_fixture("inputs.onnx")).unwrap_err();
    assert!(matches!(e, OnnxError::NotOnnx { .. }), "{e:?}");
}

#[test]
fn value_info_errors() {
    let with_input = |vi: ValueInfoProto| {
        let mut g = passthrough();
        g.input.push(vi);
        model(g)
    };
    assert_eq!(
        load_err(&with_input(tensor_vi("d", 11, &[1]))),
        "graph input 'd' has dtype double, which Sinter does not support"
    );
    let seq = ValueInfoProto {
        name: Some("s".into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::SequenceType(type_proto::Sequence::default())),
            denotation: None,
        }),
    };
    assert_eq!(
        load_err(&with_input(seq)),
        "graph input 's' is a sequence; Sinter supports only tensor graph inputs and outputs"
    );
    assert_eq!(
        load_err(&with_input(ValueInfoProto { name: Some("u".into()), r#type: None })),
        "graph input 'u' has no type"
    );
    assert_eq!(load_err(&with_input(tensor_vi("", 1, &[1]))), "the graph has a graph input without a name");
    // Declared twice, and an output nothing produces: the IR's graph check reports them.
    assert!(load_err(&with_input(tensor_vi("x", 1, &[2]))).contains("graph input 'x' is declared twice"));
    let mut g = passthrough();
    g.output.push(tensor_vi("nowhere", 1, &[1]));
    assert!(load_err(&model(g)).contains("graph output 'nowhere' is never produced"));
}

/// Model bytes whose initializer `w` (f32 [2, 2]) lives in external data with these keys.
fn external_model(keys: &[(&str, &str)]) -> ModelProto {
    let mut g = passthrough();
    g.initializer = vec![TensorProto {
        name: Some("w".into()),
        dims: vec![2, 2],
        data_type: Some(1),
        data_location: Some(1),
        external_data: keys
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: Some(k.to_string()), value: Some(v.to_string()) })
            .collect(),
        ..Default::default()
    }];
    model(g)
}

#[test]
fn external_data_keys_and_bounds() {
    // external.data (106 bytes) holds ext_a, f32 [[1, 2], [-3.5, 4.25]], at offset 0.
    let m = load(&external_model(&[("location", "external.data"), ("length", "16")])).unwrap();
    assert_eq!(m.graph.initializers["w"].as_slice::<f32>().unwrap(), &[1.0, 2.0, -3.5, 4.25]);
    let m = load(&external_model(&[("location", "./external.data"), ("offset", "0"), ("length", "16")])).unwrap();
    assert_eq!(m.graph.initializers["w"].as_slice::<f32>().unwrap(), &[1.0, 2.0, -3.5, 4.25]);

    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("location", "external.data")], "holds 106 bytes, but a f32 tensor of shape [2, 2] needs 16"),
        (&[("location", "external.data"), ("length", "15")], "holds 15 bytes"),
        (&[("location", "external.data"), ("offset", "200"), ("length", "16")], "offset 200 is past the end"),
        (&[("location", "external.data"), ("offset", "100"), ("length", "16")], "bytes 100..116 lie past the end"),
        (&[("location", "external.data"), ("offset", "-1")], "'offset' is '-1', not a byte count"),
        (&[("offset", "0")], "external_data has no 'location'"),
        (&[("location", "/etc/hostname")], "the path must be relative"),
        (&[("location", "a/../../x.data")], "must not contain '..'"),
        (&[("location", ".")], "is not a regular file"),
    ];
    for (keys, want) in cases {
        let e = load_err(&external_model(keys));
        assert!(e.contains(want), "{keys:?}: {e}");
        assert!(e.starts_with("initializer 'w'"), "{e}");
    }
}

#[cfg(unix)]
#[test]
fn external_data_symlink_out_of_the_model_directory() {
    let dir = std::env::temp_dir().join(format!("sinter-onnx-symlink-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(fixture("external.data"), dir.join("link.data")).unwrap();
    let bytes = encode(&external_model(&[("location", "link.data"), ("length", "16")]));
    let e = load_model_bytes(&bytes, Some(&dir)).unwrap_err().to_string();
    // The same data through a real file in the directory loads.
    std::fs::copy(fixture("external.data"), dir.join("real.data")).unwrap();
    let ok = load_model_bytes(&encode(&external_model(&[("location", "real.data"), ("length", "16")])), Some(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(e.contains("resolves outside the model's directory"), "{e}");
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn load_model_resolves_relative_paths() {
    // cargo runs integration tests in the package directory.
    let m = sinter_onnx::load_model(Path::new("tests/fixtures/external.onnx")).unwrap();
    assert_eq!(m.graph.initializers.len(), 4);
}
