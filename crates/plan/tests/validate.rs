//! Metas that decode fine but must not run: rejected both by `Plan::new` and when they
//! arrive in a file whose checksums are all correct.

mod common;

use common::*;
use sinter_ir::DType;
use sinter_plan::{Binding, Plan, PlanError, PlanMeta, FORMAT_VERSION, MAX_ARENA_BYTES};

/// Checks that `meta` is rejected with a message containing every part of `needles`.
fn rejects(meta: PlanMeta, weights: Vec<u8>, needles: &[&str]) {
    let file = assemble(&meta, &weights, FORMAT_VERSION, "generic");
    let from_file = Plan::from_bytes(&file).unwrap_err();
    let from_api = Plan::new(meta, weights).unwrap_err();
    assert!(matches!(from_api, PlanError::Invalid(_)), "{from_api:?}");
    assert_eq!(from_file.to_string(), from_api.to_string());
    let msg = from_api.to_string();
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} lacks {n:?}");
    }
}

#[test]
fn the_sample_is_valid() {
    let (meta, weights) = sample();
    Plan::new(meta.clone(), weights.clone()).unwrap();
    Plan::from_bytes(&assemble(&meta, &weights, FORMAT_VERSION, "generic")).unwrap();
}

#[test]
fn out_of_range_ids() {
    let (mut meta, w) = sample();
    meta.kernels[1].inputs[1] = Some(8);
    rejects(meta, w, &["kernel 1 (Add \"add_node\") input 1", "tensor id 8 is out of range", "8 tensors"]);

    let (mut meta, w) = sample();
    meta.kernels[0].outputs[0] = u32::MAX;
    rejects(meta, w, &["kernel 0 (MatMul \"matmul_node\") output 0", "tensor id 4294967295"]);

    let (mut meta, w) = sample();
    meta.inputs[0].tensor = 100;
    rejects(meta, w, &["graph input \"x\"", "tensor id 100"]);

    let (mut meta, w) = sample();
    meta.outputs[1].tensor = 8;
    rejects(meta, w, &["graph output \"u\"", "tensor id 8"]);
}

#[test]
fn misaligned_offsets() {
    let (mut meta, w) = sample();
    meta.tensors[3].location = arena(74, 8);
    rejects(meta, w, &["tensor 3 \"y\"", "arena offset 74 is not 4-byte aligned"]);

    // Arena tensors need only their element's alignment (aliased slices of a buffer).
    let (mut meta, w) = sample();
    meta.tensors[3].location = arena(72, 8);
    Plan::new(meta, w).unwrap();

    let (mut meta, w) = sample();
    meta.tensors[2].location = weights_at(32, 8);
    rejects(meta, w, &["tensor 2 \"b\"", "weights offset 32"]);
}

#[test]
fn locations_out_of_bounds() {
    // Arena is 192 bytes: 128 + 72 > 192.
    let (mut meta, w) = sample();
    meta.tensors[0] = tensor("x", DType::F32, &[18], arena(128, 72));
    rejects(meta, w, &["tensor 0 \"x\"", "outside the arena (192 bytes)"]);

    // Weight blob is 144 bytes.
    let (mut meta, w) = sample();
    meta.tensors[6].location = weights_at(192, 16);
    rejects(meta, w, &["tensor 6 \"shape\"", "outside the weights (144 bytes)"]);

    // offset + bytes overflows u64.
    let (mut meta, w) = sample();
    meta.tensors[6].location = weights_at(u64::MAX - 63, 16);
    rejects(meta, w, &["tensor 6 \"shape\"", "outside the weights"]);

    let (mut meta, w) = sample();
    meta.arena_bytes = MAX_ARENA_BYTES + 1;
    rejects(meta, w, &["arena of 68719476737 bytes"]);
}

#[test]
fn byte_sizes_must_match_shapes() {
    let (mut meta, w) = sample();
    meta.tensors[1].shape = vec![3, 3];
    rejects(meta, w, &["tensor 1 \"w\"", "needs 36 bytes but its location has 24"]);

    // numel * size overflows u64: an error, not a panic or a wrapped size.
    let (mut meta, w) = sample();
    meta.tensors[1].shape = vec![1 << 62, 4];
    rejects(meta, w, &["tensor 1 \"w\"", "too large"]);
    let (mut meta, w) = sample();
    meta.tensors[1].shape = vec![1 << 62];
    rejects(meta, w, &["tensor 1 \"w\"", "too large"]);
}

#[test]
fn inputs_live_in_the_arena_and_kernels_write_only_the_arena() {
    let (mut meta, w) = sample();
    meta.inputs.push(Binding { name: "w".into(), tensor: 1 });
    rejects(meta, w, &["graph input \"w\"", "tensor 1 \"w\"", "weights"]);

    let (mut meta, w) = sample();
    meta.kernels[1].outputs = vec![2];
    rejects(meta, w, &["kernel 1 (Add \"add_node\") output 0", "tensor 2 \"b\"", "read-only weights"]);
}

#[test]
fn nothing_writes_over_a_graph_input() {
    // u placed over x, which no kernel reads after the first: still rejected, since a
    // context runs again on the inputs it was given.
    let (mut meta, w) = sample();
    meta.tensors[7].location = arena(0, 4);
    rejects(meta, w, &["kernel 2 (Custom \"custom_node\")", "tensor 7 \"u\" over graph input \"x\"", "rebuild"]);
}

#[test]
fn kernel_outputs_must_not_alias_its_operands() {
    // Output z placed over input y.
    let (mut meta, w) = sample();
    meta.tensors[4].location = arena(64, 8);
    rejects(meta, w, &["kernel 1 (Add \"add_node\")", "writes tensor 4 \"z\" over tensor 3 \"y\""]);

    // Two outputs sharing bytes.
    let (mut meta, w) = sample();
    meta.tensors.push(tensor("v", DType::F32, &[1], arena(160, 4)));
    meta.kernels[2].outputs.push(8);
    rejects(meta, w, &["kernel 2 (Custom \"custom_node\")", "tensor 8 \"v\" over tensor 7 \"u\""]);

    // The same output twice.
    let (mut meta, w) = sample();
    meta.kernels[0].outputs = vec![3, 3];
    rejects(meta, w, &["kernel 0", "tensor 3 \"y\" over tensor 3 \"y\""]);

    // Empty tensors overlap nothing.
    let (mut meta, w) = sample();
    meta.tensors.push(tensor("nothing", DType::F32, &[0], arena(64, 0)));
    meta.kernels[0].outputs.push(8);
    Plan::new(meta, w).unwrap();
}

#[test]
fn binding_names_are_unique() {
    let (mut meta, w) = sample();
    meta.outputs[1].name = "z".into();
    rejects(meta, w, &["graph output name \"z\" appears twice"]);
}

#[test]
fn empty_plan_is_valid() {
    let meta = PlanMeta {
        model_name: String::new(),
        source_nodes: 0,
        inputs: vec![],
        outputs: vec![],
        tensors: vec![],
        kernels: vec![],
        arena_bytes: 0,
        optimizer: Default::default(),
        source_graph: Vec::new(),
    };
    let plan = Plan::new(meta.clone(), vec![]).unwrap();
    let bytes = plan.to_bytes();
    assert_eq!(bytes.len() as u64, plan.header().weights.offset);
    let back = Plan::from_bytes(&bytes).unwrap();
    assert_eq!(back.meta(), &meta);
    assert!(back.weights().is_empty());
    let path = temp_path("empty");
    plan.save(&path).unwrap();
    assert_eq!(Plan::load(&path).unwrap().meta(), &meta);
    std::fs::remove_file(&path).unwrap();
}
