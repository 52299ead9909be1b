//! Damaged files must give errors, never panics or runaway allocations.

mod common;

use common::*;
use sinter_onnx::{load_model_bytes, tensor_from_proto_bytes};

const MODELS: &[&str] = &["initializers.onnx", "external.onnx", "unsupported_ops.onnx", "inputs.onnx", "relu_add.onnx"];

#[test]
fn every_truncation_is_an_error() {
    for name in MODELS {
        let bytes = read_fixture(name);
        assert!(load_model_bytes(&bytes, Some(&fixtures())).is_ok() || *name == "unsupported_ops.onnx");
        for len in 0..bytes.len() {
            let r = load_model_bytes(&bytes[..len], Some(&fixtures()));
            assert!(r.is_err(), "{name} truncated to {len} of {} bytes loaded", bytes.len());
        }
    }
}

#[test]
fn random_bit_flips_never_panic() {
    let mut rng = Rng(0x5EED_0001);
    let mut outcomes = [0usize; 2];
    for name in MODELS {
        let bytes = read_fixture(name);
        for _ in 0..3000 {
            let mut b = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            if rng.below(4) == 0 {
                b.truncate(rng.below(b.len() + 1));
            }
            outcomes[load_model_bytes(&b, Some(&fixtures())).is_ok() as usize] += 1;
            let _ = tensor_from_proto_bytes(&b);
        }
    }
    // Both outcomes occur: the flips reach deep enough to leave some models loadable.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..5000 {
        let len = rng.below(64);
        let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(load_model_bytes(&b, None).is_err());
        let _ = tensor_from_proto_bytes(&b);
    }
}
