//! `TensorProto` -> [`Tensor`]: every storage form (raw little-endian bytes, the typed
//! fields, external data files), with every size from the file checked before use.

use crate::proto::{data_location, data_type, TensorProto};
use crate::OnnxError;
use prost::Message;
use sinter_ir::half::f16;
use sinter_ir::tensor::checked_numel;
use sinter_ir::{DType, Tensor};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// Converts a `TensorProto` into a tensor. `base_dir` is the directory external data
/// locations are relative to (the model's directory); without it external data is an error.
pub fn tensor_from_proto(t: &TensorProto, base_dir: Option<&Path>) -> Result<Tensor, OnnxError> {
    let what = match t.name.as_deref() {
        Some(n) if !n.is_empty() => format!("tensor '{n}'"),
        _ => "tensor".to_string(),
    };
    decode(t, base_dir, &what)
}

/// Decodes a serialized `TensorProto` (such as the ONNX test data's `input_0.pb`) into its
/// name and value. External data is not allowed here, since there is no directory to resolve it in.
pub fn tensor_from_proto_bytes(bytes: &[u8]) -> Result<(String, Tensor), OnnxError> {
    let not_tensor = |detail: String| OnnxError::NotOnnx { what: "the input".into(), kind: "TensorProto", detail };
    if bytes.is_empty() {
        return Err(not_tensor("it is empty".into()));
    }
    let t = TensorProto::decode(bytes).map_err(|e| not_tensor(e.to_string()))?;
    if t.data_type.is_none() {
        return Err(not_tensor("it has no data_type".into()));
    }
    let tensor = tensor_from_proto(&t, None)?;
    Ok((t.name.unwrap_or_default(), tensor))
}

/// Decodes `t`; `what` names it in errors ("initializer 'w'").
pub(crate) fn decode(t: &TensorProto, base_dir: Option<&Path>, what: &str) -> Result<Tensor, OnnxError> {
    let err = |msg: String| OnnxError::Tensor { what: what.to_string(), msg };
    let code = t.data_type.unwrap_or(data_type::UNDEFINED);
    let dtype = match DType::from_onnx(code) {
        Some(d) => d,
        None if code == data_type::UNDEFINED => return Err(err("missing data_type".into())),
        None => return Err(unsupported_dtype(what, code)),
    };
    if t.segment.is_some() {
        return Err(err("segmented tensors are not supported".into()));
    }
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err(format!("invalid dimension {d} in dims {:?}", t.dims))))
        .collect::<Result<Vec<usize>, _>>()?;
    let numel = checked_numel(&shape).map_err(|_| err(format!("dims {:?} are too large", t.dims)))?;
    match t.data_location.unwrap_or(data_location::DEFAULT) {
        data_location::DEFAULT => {}
        data_location::EXTERNAL => return read_external(t, dtype, &shape, numel, base_dir, what),
        other => return Err(err(format!("unknown data_location {other}"))),
    }
    if let Some(raw) = &t.raw_data {
        return Tensor::from_bytes(dtype, &shape, raw).map_err(|e| err(e.to_string()));
    }
    let ints = &t.int32_data;
    let (field, found) = match dtype {
        DType::F32 => ("float_data", t.float_data.len()),
        DType::I64 => ("int64_data", t.int64_data.len()),
        // The narrower types sit one per int32_data entry (float16 as its bit pattern).
        DType::I32 | DType::I8 | DType::U8 | DType::Bool | DType::F16 => ("int32_data", ints.len()),
    };
    if found != numel {
        return Err(err(format!("{dtype} tensor of shape {shape:?} needs {numel} values in {field}, found {found}")));
    }
    // Like onnx's numpy_helper, narrowing keeps the low bits.
    let tensor = match dtype {
        DType::F32 => Tensor::from_slice(&shape, &t.float_data),
        DType::I64 => Tensor::from_slice(&shape, &t.int64_data),
        DType::I32 => Tensor::from_slice(&shape, ints),
        DType::I8 => Tensor::from_vec(&shape, ints.iter().map(|&v| v as i8).collect::<Vec<i8>>()),
        DType::U8 => Tensor::from_vec(&shape, ints.iter().map(|&v| v as u8).collect::<Vec<u8>>()),
        DType::Bool => {
            Tensor::from_bytes(DType::Bool, &shape, &ints.iter().map(|&v| u8::from(v != 0)).collect::<Vec<u8>>())
        }
        DType::F16 => Tensor::from_vec(&shape, ints.iter().map(|&v| f16::from_bits(v as u16)).collect::<Vec<f16>>()),
    };
    tensor.map_err(|e| err(e.to_string()))
}

pub(crate) fn unsupported_dtype(what: &str, code: i32) -> OnnxError {
    let dtype = match DType::onnx_name(code) {
        "unknown" => format!("unknown ({code})"),
        name => name.to_string(),
    };
    OnnxError::UnsupportedDType { what: what.to_string(), dtype }
}

/// Reads a tensor stored outside the model (`data_location = EXTERNAL`). The location must be
/// a relative path that stays inside `base_dir`, also after resolving symbolic links, so that a
/// model cannot make Sinter read arbitrary files.
fn read_external(
    t: &TensorProto,
    dtype: DType,
    shape: &[usize],
    numel: usize,
    base_dir: Option<&Path>,
    what: &str,
) -> Result<Tensor, OnnxError> {
    let mut location = None;
    let mut offset: Option<&str> = None;
    let mut length: Option<&str> = None;
    for e in &t.external_data {
        let value = e.value.as_deref().unwrap_or("");
        match e.key.as_deref().unwrap_or("") {
            "location" => location = Some(value),
            "offset" => offset = Some(value),
            "length" => length = Some(value),
            _ => {} // "checksum" and unknown keys carry nothing we need
        }
    }
    let location = match location {
        Some(l) if !l.is_empty() => l,
        _ => {
            return Err(OnnxError::Tensor {
                what: what.to_string(),
                msg: "data_location is EXTERNAL but external_data has no 'location'".into(),
            })
        }
    };
    let err = |msg: String| OnnxError::ExternalData { what: what.to_string(), location: location.to_string(), msg };
    let parse = |key: &str, v: Option<&str>| -> Result<Option<u64>, OnnxError> {
        v.map(|s| s.trim().parse::<u64>().map_err(|_| err(format!("'{key}' is '{s}', not a byte count")))).transpose()
    };
    let offset = parse("offset", offset)?.unwrap_or(0);
    let length = parse("length", length)?;

    let base = base_dir.ok_or_else(|| {
        err("the model was loaded from memory without a directory to resolve external data against".into())
    })?;
    for c in Path::new(location).components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(err("the path must not contain '..'".into())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(err("the path must be relative to the model's directory".into()))
            }
        }
    }
    let joined = base.join(location);
    let path = joined.canonicalize().map_err(|e| err(format!("cannot open '{}': {e}", joined.display())))?;
    let base_canon = base.canonicalize().map_err(|e| err(format!("cannot resolve '{}': {e}", base.display())))?;
    if !path.starts_with(&base_canon) {
        return Err(err(format!("'{}' resolves outside the model's directory", joined.display())));
    }
    let io = |path: &PathBuf, e: std::io::Error| err(format!("cannot read '{}': {e}", path.display()));
    let mut file = File::open(&path).map_err(|e| io(&path, e))?;
    let meta = file.metadata().map_err(|e| io(&path, e))?;
    if !meta.is_file() {
        return Err(err(format!("'{}' is not a regular file", path.display())));
    }
    let file_len = meta.len();
    if offset > file_len {
        return Err(err(format!("offset {offset} is past the end of the file ({file_len} bytes)")));
    }
    let length = length.unwrap_or(file_len - offset);
    let needed = numel.checked_mul(dtype.size()).ok_or_else(|| err(format!("shape {shape:?} is too large")))?;
    if u64::try_from(needed).ok() != Some(length) {
        return Err(err(format!("holds {length} bytes, but a {dtype} tensor of shape {shape:?} needs {needed}")));
    }
    if length > file_len - offset {
        return Err(err(format!(
            "bytes {offset}..{} lie past the end of the file ({file_len} bytes)",
            u128::from(offset) + u128::from(length)
        )));
    }
    // Read straight into the tensor's aligned buffer: external data is where the big weights are.
    let mut tensor = Tensor::zeros(dtype, shape);
    file.seek(SeekFrom::Start(offset)).map_err(|e| io(&path, e))?;
    file.read_exact(tensor.bytes_mut()).map_err(|e| io(&path, e))?;
    if dtype == DType::Bool {
        for b in tensor.bytes_mut() {
            *b = u8::from(*b != 0);
        }
    }
    Ok(tensor)
}
