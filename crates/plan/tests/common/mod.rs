//! Test helpers: a small plan using every attribute kind, and an encoder written
//! independently from the crate (straight from the table in docs/plan-format.md).
#![allow(dead_code)]

use sinter_ir::{AttrValue, Attrs, DType, Tensor};
use sinter_plan::{Binding, KernelDesc, Location, PlanMeta, SourceNode, TensorDesc};
use xxhash_rust::xxh3::xxh3_64;

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn tensor(name: &str, dtype: DType, shape: &[u64], location: Location) -> TensorDesc {
    TensorDesc { name: name.into(), dtype, shape: shape.to_vec(), location }
}

pub fn kernel(op: &str, inputs: &[Option<u32>], outputs: &[u32], attrs: Attrs) -> KernelDesc {
    KernelDesc {
        op_type: op.into(),
        opset: 13,
        attrs,
        inputs: inputs.to_vec(),
        outputs: outputs.to_vec(),
        nodes: vec![SourceNode { name: format!("{}_node", op.to_lowercase()), op_type: op.into() }],
        packing: None,
        implementation: "reference".into(),
        precision: DType::F32,
        fallback_reason: None,
    }
}

pub fn arena(offset: u64, bytes: u64) -> Location {
    Location::Arena { offset, bytes }
}

pub fn weights_at(offset: u64, bytes: u64) -> Location {
    Location::Weights { offset, bytes }
}

/// The weight blob of [`sample`], laid out by hand: w at 0 (24 bytes), b at 64 (8),
/// an empty tensor at 128 and an i64 shape at 128 (16 bytes).
pub fn sample_weights() -> Vec<u8> {
    let mut blob = vec![0u8; 144];
    blob[0..24].copy_from_slice(&f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    blob[64..72].copy_from_slice(&f32_bytes(&[0.5, -0.5]));
    blob[128..136].copy_from_slice(&1i64.to_le_bytes());
    blob[136..144].copy_from_slice(&2i64.to_le_bytes());
    blob
}

/// x[1,3] @ w[3,2] -> y, y + b -> z, Custom(y, <omitted>) -> u.
pub fn sample() -> (PlanMeta, Vec<u8>) {
    let all_kinds = Attrs::new()
        .with("i", AttrValue::Int(-3))
        .with("f", AttrValue::Float(0.25))
        .with("s", AttrValue::String("NOTSET".into()))
        .with("is", AttrValue::Ints(vec![1, 2, 3]))
        .with("fs", AttrValue::Floats(vec![1.5, -2.0]))
        .with("ss", AttrValue::Strings(vec!["a".into(), "bc".into()]))
        .with("t", AttrValue::Tensor(Tensor::from_slice(&[2], &[7i32, -8]).unwrap()));
    let meta = PlanMeta {
        model_name: "tiny".into(),
        source_nodes: 3,
        inputs: vec![Binding { name: "x".into(), tensor: 0 }],
        outputs: vec![Binding { name: "z".into(), tensor: 4 }, Binding { name: "u".into(), tensor: 7 }],
        tensors: vec![
            tensor("x", DType::F32, &[1, 3], arena(0, 12)),
            tensor("w", DType::F32, &[3, 2], weights_at(0, 24)),
            tensor("b", DType::F32, &[2], weights_at(64, 8)),
            tensor("y", DType::F32, &[1, 2], arena(64, 8)),
            tensor("z", DType::F32, &[1, 2], arena(128, 8)),
            tensor("empty", DType::Bool, &[0, 5], weights_at(128, 0)),
            tensor("shape", DType::I64, &[2], weights_at(128, 16)),
            tensor("u", DType::F16, &[1, 2], arena(160, 4)),
        ],
        kernels: vec![
            kernel("MatMul", &[Some(0), Some(1)], &[3], Attrs::new()),
            kernel("Add", &[Some(3), Some(2)], &[4], Attrs::new()),
            kernel("Custom", &[Some(3), None, Some(6)], &[7], all_kinds),
        ],
        arena_bytes: 192,
        optimizer: Default::default(),
        source_graph: Vec::new(),
    };
    (meta, sample_weights())
}

/// A zero-padded string field of `N` bytes.
fn fixed<const N: usize>(out: &mut Vec<u8>, s: &str) {
    let mut field = [0u8; N];
    field[..s.len()].copy_from_slice(s.as_bytes());
    out.extend_from_slice(&field);
}

/// A complete plan file for `meta` and `weights`, with correct checksums, whatever the
/// meta says (so tests can hand invalid metas to the loader).
pub fn assemble(meta: &PlanMeta, weights: &[u8], version: u32, target: &str) -> Vec<u8> {
    assemble_with_workspace(meta, weights, version, target, (0, 0))
}

/// [`assemble`] with the header's workspace fields (shared, per thread).
pub fn assemble_with_workspace(
    meta: &PlanMeta,
    weights: &[u8],
    version: u32,
    target: &str,
    (shared, per_thread): (u64, u64),
) -> Vec<u8> {
    let meta_bytes = postcard::to_allocvec(meta).unwrap();
    let meta_end = 144 + meta_bytes.len() as u64;
    let weights_offset = meta_end.div_ceil(64) * 64;
    let file_len = weights_offset + weights.len() as u64;
    let mut h = Vec::new();
    h.extend_from_slice(b"SINTPLAN");
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&144u32.to_le_bytes());
    fixed::<16>(&mut h, env!("CARGO_PKG_VERSION"));
    fixed::<24>(&mut h, target);
    assert_eq!(h.len(), 56);
    for v in [144, meta_bytes.len() as u64, xxh3_64(&meta_bytes)] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    for v in [weights_offset, weights.len() as u64, xxh3_64(weights), file_len, meta.arena_bytes, shared, per_thread] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(h.len(), 136);
    let sum = xxh3_64(&h);
    h.extend_from_slice(&sum.to_le_bytes());
    assert_eq!(h.len(), 144);
    h.extend_from_slice(&meta_bytes);
    h.resize(weights_offset as usize, 0);
    h.extend_from_slice(weights);
    h
}

/// Rewrites the header checksum after a test edited header bytes.
pub fn reseal_header(file: &mut [u8]) {
    let sum = xxh3_64(&file[..136]);
    file[136..144].copy_from_slice(&sum.to_le_bytes());
}

/// A fresh path under cargo's per-target temp dir.
pub fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sinter-plan-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}.plan", std::process::id()))
}
