//! Helpers shared by the integration tests.
#![allow(dead_code)]

use serde_json::Value;
use sinter_ir::half::f16;
use sinter_ir::{DType, Tensor};
use sinter_onnx::proto::{tensor_shape_proto, type_proto, TensorShapeProto, TypeProto};
use sinter_onnx::proto::{GraphProto, ModelProto, OperatorSetIdProto, TensorProto, ValueInfoProto};
use std::path::PathBuf;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// The `*.expected.json` written by make_fixtures.py: name -> {dtype, shape, values}.
pub fn expected(name: &str) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Object(m) => m,
        v => panic!("{name}: expected an object, found {v}"),
    }
}

fn numpy_dtype(name: &str) -> DType {
    match name {
        "float32" => DType::F32,
        "float16" => DType::F16,
        "int8" => DType::I8,
        "uint8" => DType::U8,
        "int32" => DType::I32,
        "int64" => DType::I64,
        "bool" => DType::Bool,
        other => panic!("no Sinter dtype for numpy {other}"),
    }
}

/// Asserts `t` has the dtype, shape and (exactly) the values numpy recorded.
pub fn assert_matches(what: &str, t: &Tensor, want: &Value) {
    let dtype = numpy_dtype(want["dtype"].as_str().unwrap());
    let shape: Vec<usize> = want["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let values: Vec<f64> = want["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(t.dtype(), dtype, "{what}: dtype");
    assert_eq!(t.shape(), shape.as_slice(), "{what}: shape");
    // JSON numbers parse to the nearest f64 only approximately; rounding to the tensor's
    // precision recovers the exact value numpy wrote.
    let values: Vec<f64> = match dtype {
        DType::F32 => values.iter().map(|&v| v as f32 as f64).collect(),
        DType::F16 => values.iter().map(|&v| f16::from_f64(v).to_f64()).collect(),
        _ => values,
    };
    assert_eq!(t.to_f64_vec(), values, "{what}: values");
}

pub fn opset(domain: &str, version: i64) -> OperatorSetIdProto {
    OperatorSetIdProto { domain: Some(domain.into()), version: Some(version) }
}

/// A model around `graph`, importing opset 13 of the default domain.
pub fn model(graph: GraphProto) -> ModelProto {
    ModelProto { ir_version: Some(8), opset_import: vec![opset("", 13)], graph: Some(graph), ..Default::default() }
}

pub fn encode(m: &ModelProto) -> Vec<u8> {
    prost::Message::encode_to_vec(m)
}

/// A tensor-typed value info; `None` dims for an unknown shape.
pub fn tensor_vi(name: &str, elem_type: i32, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
    }
}

pub fn f32_tensor(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(1),
        dims: dims.to_vec(),
        float_data: data.to_vec(),
        ..Default::default()
    }
}

/// Tiny deterministic PRNG (xorshift64*), so the fuzz-style tests need no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
