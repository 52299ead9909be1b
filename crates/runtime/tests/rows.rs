//! The runtime's row kernels (`Softmax` over the last axis, `LayerNormalization` with
//! per-element parameters), rows spread over threads, against the reference ops of
//! `sinter-ir`: odd row lengths, several normalized axes, opset-11 Softmax, large
//! offsets, and 1, 2 and 3 threads.

mod common;

use common::*;
use sinter_ir::{AttrValue, Attrs};

fn attrs(pairs: &[(&str, AttrValue)]) -> Attrs {
    let mut a = Attrs::new();
    for (k, v) in pairs {
        a.insert(k, v.clone());
    }
    a
}

#[test]
fn softmax_rows() {
    for (shape, axis, opset) in [
        (vec![2, 4, 128, 128], -1, 17),
        (vec![3, 37], 1, 13),
        (vec![1], 0, 17),
        (vec![5, 3, 7], 1, 11), // opset < 13: everything from axis 1 is one row
        (vec![700, 9], -1, 17),
    ] {
        let a = attrs(&[("axis", AttrValue::Int(axis))]);
        let x: Vec<f32> = data(shape.iter().product(), 1, -1.0).iter().map(|v| v * 20.0).collect();
        let inputs = vec![("x".to_string(), Some(sinter_ir::Tensor::from_vec(&shape, x).expect("x")))];
        let want = reference("Softmax", &a, opset, &inputs);
        for threads in [1, 2, 3] {
            let got = runtime("Softmax", &a, opset, &inputs, &[], threads);
            assert_close(&got, &want, 1e-7, 1e-5, &format!("Softmax {shape:?} axis {axis} on {threads} threads"));
        }
    }
}

#[test]
fn layer_norm_rows() {
    for (shape, axis, param, offset) in [
        (vec![1, 128, 768], -1, vec![768], 0.0),
        (vec![2, 16, 33], 2, vec![1, 33], 50.0),
        (vec![4, 6, 10], 1, vec![6, 10], 0.0),
        (vec![3, 1, 5], -2, vec![1, 5], 0.0),
        (vec![7], 0, vec![7], -3.0),
    ] {
        let a = attrs(&[("axis", AttrValue::Int(axis)), ("epsilon", AttrValue::Float(1e-3))]);
        let x: Vec<f32> = data(shape.iter().product(), 2, -1.0).iter().map(|v| v * 3.0 + offset).collect();
        let x = sinter_ir::Tensor::from_vec(&shape, x).expect("x");
        for bias in [true, false] {
            let mut inputs = vec![("x".to_string(), Some(x.clone())), ("s".to_string(), Some(tensor(&param, 3, 0.0)))];
            if bias {
                inputs.push(("b".to_string(), Some(tensor(&param, 4, -1.0))));
            }
            let want = reference("LayerNormalization", &a, OPSET, &inputs);
            for threads in [1, 2, 3] {
                for constants in [&["s", "b"][..], &[]] {
                    let got = runtime("LayerNormalization", &a, OPSET, &inputs, constants, threads);
                    let what = format!("LayerNormalization {shape:?} axis {axis} bias {bias} on {threads} threads");
                    assert_close(&got, &want, 1e-5, 1e-5, &what);
                }
            }
        }
    }
}

/// The optional `Mean` and `InvStdDev` outputs, one per row.
#[test]
fn layer_norm_statistics() {
    let a = attrs(&[("axis", AttrValue::Int(1))]);
    let x: Vec<f32> = data(5 * 3 * 41, 5, -1.0).iter().map(|v| v * 2.0 + 10.0).collect();
    let inputs = vec![
        ("x".to_string(), Some(sinter_ir::Tensor::from_vec(&[5, 3, 41], x).expect("x"))),
        ("s".to_string(), Some(tensor(&[3, 41], 6, 0.0))),
    ];
    let want = reference_outputs("LayerNormalization", &a, OPSET, &inputs, 3);
    for threads in [1, 2] {
        let got = runtime_outputs("LayerNormalization", &a, OPSET, &inputs, &["s"], threads, &["y", "mean", "inv"]);
        for (i, what) in ["y", "mean", "inv_std_dev"].iter().enumerate() {
            assert_close(&got[i], &want[i], 1e-5, 1e-5, &format!("LayerNormalization {what} on {threads} threads"));
        }
    }
}
