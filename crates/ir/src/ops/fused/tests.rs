//! Tests of the tiled epilogue: every operand layout (same shape, scalar, per-channel,
//! general broadcast), runs crossing tile boundaries, and bit-identity with the separate
//! elementwise ops.

use super::{Epilogue, FusedElementwise};
use crate::ops::{build, Op};
use crate::{AttrValue, Attrs, DType, Tensor, View};
use rand::{Rng, SeedableRng};

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    // Away from zero so that divisions stay finite.
    let data = (0..n).map(|_| rng.gen_range(0.5f32..2.0) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 }).collect();
    Tensor::from_vec(shape, data).unwrap()
}

fn epilogue(steps: &[&str], params: &[f32]) -> Epilogue {
    let mut attrs = Attrs::new();
    attrs.insert(super::EPILOGUE, AttrValue::Strings(steps.iter().map(|s| s.to_string()).collect()));
    attrs.insert(super::EPILOGUE_PARAMS, AttrValue::Floats(params.to_vec()));
    Epilogue::from_attrs(&attrs).unwrap()
}

/// The element of `t` (broadcast to `out`) at output index `i`, by coordinates.
fn broadcast_at(t: &Tensor, out: &[usize], mut i: usize) -> f32 {
    let shape = t.shape();
    let data = t.as_slice::<f32>().unwrap();
    let lead = out.len() - shape.len();
    let (mut off, mut stride) = (0, 1);
    for d in (0..out.len()).rev() {
        let c = i % out[d];
        i /= out[d];
        if d >= lead {
            let s = shape[d - lead];
            if s != 1 {
                off += c * stride;
            }
            stride *= s;
        }
    }
    data[off]
}

/// Runs `FusedElementwise` with `steps` on `x` and `extras`.
fn fused(steps: &[&str], params: &[f32], x: &Tensor, extras: &[&Tensor]) -> Tensor {
    let op = FusedElementwise { epilogue: epilogue(steps, params) };
    let mut inputs: Vec<Option<View>> = vec![Some(x.view())];
    inputs.extend(extras.iter().map(|t| Some(t.view())));
    let mut y = Tensor::zeros(DType::F32, x.shape());
    op.eval(&inputs, &mut [y.view_mut()]).unwrap();
    y
}

#[test]
fn hand_computed_per_channel_and_swapped() {
    // x = [[1, 2], [3, 4]] (shape [2, 2]), s = [[10], [20]] (per row), c = 2.
    let x = Tensor::from_vec(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let s = Tensor::from_vec(&[2, 1], vec![10.0f32, 20.0]).unwrap();
    let c = Tensor::from_vec(&[1], vec![2.0f32]).unwrap();
    // ((x * s) - 50) then 2 / that, then relu: rows 10, 20 -> x*s = [10, 20, 60, 80]
    // -> [-40, -30, 10, 30] -> DivInto 2: [-0.05, -0.0666.., 0.2, 0.0666..] -> relu.
    let fifty = Tensor::from_vec(&[], vec![50.0f32]).unwrap();
    let y = fused(&["Mul", "Sub", "DivInto", "Relu"], &[], &x, &[&s, &fifty, &c]);
    let want = [0.0f32, 0.0, 2.0 / 10.0, 2.0 / 30.0];
    assert_eq!(y.as_slice::<f32>().unwrap(), &want);
    // SubFrom: v - x with a same-shape operand.
    let v = Tensor::from_vec(&[2, 2], vec![5.0f32, 5.0, 5.0, 5.0]).unwrap();
    let y = fused(&["SubFrom"], &[], &x, &[&v]);
    assert_eq!(y.as_slice::<f32>().unwrap(), &[4.0, 3.0, 2.0, 1.0]);
}

#[test]
fn every_broadcast_layout_matches_coordinates() {
    // 3 * 7 * 300 = 6300 elements: several tiles, with runs crossing tile boundaries.
    let out = [3usize, 7, 300];
    assert!(out.iter().product::<usize>() > 2 * super::epilogue::TILE);
    let x = random(&out, 1);
    let layouts: [&[usize]; 8] = [
        &[3, 7, 300], // same shape
        &[7, 300],    // leading axis broadcast: contiguous runs, outer stride 0
        &[1],         // scalar
        &[7, 1],      // per row: constant runs of 300
        &[3, 1, 300], // contiguous runs with the middle axis broadcast
        &[3, 7, 1],   // constant runs, merged outer axes
        &[3, 1, 1],   // constant runs of 2100
        &[1, 7, 300], // unit leading axis: same layout as the output
    ];
    for (k, shape) in layouts.iter().enumerate() {
        let v = random(shape, 10 + k as u64);
        for step in ["Add", "Mul", "Sub", "SubFrom", "Div", "DivInto"] {
            let y = fused(&[step, "Relu"], &[], &x, &[&v]);
            let xs = x.as_slice::<f32>().unwrap();
            for (i, &got) in y.as_slice::<f32>().unwrap().iter().enumerate() {
                let (a, b) = (xs[i], broadcast_at(&v, &out, i));
                let r = match step {
                    "Add" => a + b,
                    "Mul" => a * b,
                    "Sub" => a - b,
                    "SubFrom" => b - a,
                    "Div" => a / b,
                    _ => b / a,
                };
                let want = if r < 0.0 { 0.0 } else { r };
                assert_eq!(got.to_bits(), want.to_bits(), "{step} with {shape:?} at {i}");
            }
        }
    }
}

#[test]
fn bit_identical_to_the_separate_ops() {
    // An SE block tail and a learnable affine hard swish, as in PP-OCR:
    // x * s[c] + r, then Clip(0, 6), Mul, Div 6, Mul a, Add b.
    let out = [1usize, 16, 40, 40];
    let x = random(&out, 2);
    let s = random(&[1, 16, 1, 1], 3);
    let r = random(&out, 4);
    let six = Tensor::from_vec(&[], vec![6.0f32]).unwrap();
    let a = random(&[1], 5);
    let b = random(&[1], 6);
    let y = fused(&["Mul", "Add", "Clip", "Div", "Mul", "Add", "Sigmoid"], &[0.0, 6.0], &x, &[&s, &r, &six, &a, &b]);

    let run = |op_type: &str, attrs: &Attrs, ins: &[&Tensor]| -> Tensor {
        let op = build(op_type, attrs, 17).unwrap();
        let views: Vec<Option<View>> = ins.iter().map(|t| Some(t.view())).collect();
        let mut o = Tensor::zeros(DType::F32, &out);
        op.eval(&views, &mut [o.view_mut()]).unwrap();
        o
    };
    let none = Attrs::new();
    let t = run("Mul", &none, &[&x, &s]);
    let t = run("Add", &none, &[&t, &r]);
    let lo = Tensor::from_vec(&[], vec![0.0f32]).unwrap();
    let hi = Tensor::from_vec(&[], vec![6.0f32]).unwrap();
    let t = {
        let op = build("Clip", &none, 17).unwrap();
        let mut o = Tensor::zeros(DType::F32, &out);
        op.eval(&[Some(t.view()), Some(lo.view()), Some(hi.view())], &mut [o.view_mut()]).unwrap();
        o
    };
    let t = run("Div", &none, &[&t, &six]);
    let t = run("Mul", &none, &[&t, &a]);
    let t = run("Add", &none, &[&t, &b]);
    let t = {
        let op = build("Sigmoid", &none, 17).unwrap();
        let mut o = Tensor::zeros(DType::F32, &out);
        op.eval(&[Some(t.view())], &mut [o.view_mut()]).unwrap();
        o
    };
    let bits = |t: &Tensor| t.as_slice::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&y), bits(&t));
}

#[test]
fn apply_from_copies_without_steps_and_checks_sizes() {
    let e = Epilogue::default();
    let src = [1.0f32, 2.0, 3.0];
    let mut y = [0.0f32; 3];
    e.apply_from("t", &src, &mut y, &[3], &[]).unwrap();
    assert_eq!(y, src);
    let mut short = [0.0f32; 2];
    assert!(e.apply_from("t", &src, &mut short, &[2], &[]).is_err());
    // The shape must describe the buffer.
    let relu = epilogue(&["Relu"], &[]);
    assert!(relu.apply("t", &mut y, &[4], &[]).is_err());
    // A missing or mis-sized operand is an error, not a panic.
    let add = epilogue(&["Add"], &[]);
    assert!(add.apply("t", &mut y, &[3], &[]).is_err());
    assert!(add.apply("t", &mut y, &[3], &[None]).is_err());
    let bad = View { dtype: DType::F32, shape: &[3], data: &[0u8; 8] };
    assert!(add.apply("t", &mut y, &[3], &[Some(bad)]).is_err());
    let wide = Tensor::from_vec(&[2], vec![1.0f32, 2.0]).unwrap();
    assert!(add.apply("t", &mut y, &[3], &[Some(wide.view())]).is_err());
}
