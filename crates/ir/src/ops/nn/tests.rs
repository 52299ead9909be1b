//! Hand-checked cases. The cases checked against onnxruntime or the onnx reference evaluator
//! are data (`crates/ir/tests/data/ort_cases.json`, run by `crates/ir/tests/ort_cases.rs`).

use crate::DType::{F16, F32, I32, I64, I8, U8};
use crate::{AttrValue, Attrs, DType, Fact, Result, Tensor};
use std::sync::Arc;

/// The deterministic test input `(i * 7 + seed * 3) % 11` mapped per dtype: floats to
/// `(v - 5) / 4`, u8 to `20 v`, signed integers to `v - 5`.
fn pat(dtype: DType, shape: &[usize], seed: usize) -> Option<Tensor> {
    let n: usize = shape.iter().product();
    let vals: Vec<f64> = (0..n)
        .map(|i| {
            let v = ((i * 7 + seed * 3) % 11) as f64;
            match dtype {
                F32 | F16 => (v - 5.0) * 0.25,
                U8 => v * 20.0,
                _ => v - 5.0,
            }
        })
        .collect();
    val(dtype, shape, &vals)
}

/// A tensor of `dtype` holding `vals`.
fn val(dtype: DType, shape: &[usize], vals: &[f64]) -> Option<Tensor> {
    Some(crate::dispatch_dtype!(dtype, T => {
        let v: Vec<T> = vals.iter().map(|&x| <T as crate::Elem>::from_f64(x)).collect();
        Tensor::from_vec(shape, v).unwrap()
    }))
}

/// Builds the op, infers (every input constant, as when folding) and evaluates it.
fn run(op: &str, opset: i64, attrs: &[(&str, AttrValue)], inputs: Vec<Option<Tensor>>) -> Result<Tensor> {
    run_limited(op, opset, attrs, inputs, usize::MAX)
}

/// [`run`], skipping evaluation (with an `Unsupported` error) when the inferred output
/// has more than `max_out` elements.
fn run_limited(
    op: &str,
    opset: i64,
    attrs: &[(&str, AttrValue)],
    inputs: Vec<Option<Tensor>>,
    max_out: usize,
) -> Result<Tensor> {
    let mut a = Attrs::new();
    for (k, v) in attrs {
        a.insert(k, v.clone());
    }
    let op = crate::ops::build(op, &a, opset)?;
    let facts: Vec<Option<Fact>> =
        inputs.iter().map(|t| t.as_ref().map(|t| Fact::constant(Arc::new(t.clone())))).collect();
    let refs: Vec<Option<&Fact>> = facts.iter().map(|f| f.as_ref()).collect();
    let out = op.infer(&refs)?;
    if out[0].numel() > max_out {
        return Err(crate::IrError::Unsupported("output too large for this test".into()));
    }
    // Garbage in the output buffer must not leak into results.
    let mut y = Tensor::zeros(out[0].dtype, &out[0].shape);
    y.bytes_mut().fill(0x7f);
    let views: Vec<_> = inputs.iter().map(|t| t.as_ref().map(|t| t.view())).collect();
    op.eval(&views, &mut [y.view_mut()])?;
    Ok(y)
}

/// Runs the op and compares with the expected shape and values (floats within a
/// relative and absolute 1e-5, or 2e-3 for f16 outputs; integers exactly).
#[track_caller]
fn check(
    op: &str,
    opset: i64,
    attrs: &[(&str, AttrValue)],
    inputs: Vec<Option<Tensor>>,
    shape: &[usize],
    want: &[f64],
) {
    let y = run(op, opset, attrs, inputs).unwrap();
    assert_eq!(y.shape(), shape, "{op}: output shape");
    let got = y.to_f64_vec();
    let tol = match y.dtype() {
        F32 => 1e-5,
        F16 => 2e-3,
        _ => 0.0,
    };
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{op}: element {i}: got {g}, want {w}\ngot  {got:?}\nwant {want:?}"
        );
    }
}

fn ints(v: &[i64]) -> AttrValue {
    AttrValue::Ints(v.to_vec())
}

fn f32s(shape: &[usize], v: &[f32]) -> Option<Tensor> {
    Some(Tensor::from_slice(shape, v).unwrap())
}

#[test]
fn conv_onnx_doc_example() {
    // The Conv example of the ONNX operator docs: 5x5 ramp, 3x3 ones kernel; each output
    // is the sum of the (zero padded) 3x3 neighbourhood.
    let x: Vec<f32> = (0..25).map(|v| v as f32).collect();
    let w = [1f32; 9];
    check(
        "Conv",
        11,
        &[("kernel_shape", ints(&[3, 3])), ("pads", ints(&[1, 1, 1, 1]))],
        vec![f32s(&[1, 1, 5, 5], &x), f32s(&[1, 1, 3, 3], &w)],
        &[1, 1, 5, 5],
        &[
            12., 21., 27., 33., 24., 33., 54., 63., 72., 51., 63., 99., 108., 117., 81., 93., 144., 153., 162., 111.,
            72., 111., 117., 123., 84.,
        ],
    );
    // Without padding, strides 2 and asymmetric padding (bottom 1) as in the same docs.
    check(
        "Conv",
        11,
        &[("strides", ints(&[2, 2])), ("pads", ints(&[1, 0, 1, 0]))],
        vec![f32s(&[1, 1, 7, 5], &(0..35).map(|v| v as f32).collect::<Vec<_>>()), f32s(&[1, 1, 3, 3], &w)],
        &[1, 1, 4, 2],
        &[21., 33., 99., 117., 189., 207., 171., 183.],
    );
}

#[test]
fn conv_by_hand_dilated_grouped_1d() {
    // Two groups of one channel, kernel [1, -1] dilated by 2: y[o] = x[o] - x[o + 2]
    // for group 0 and twice that for group 1 (weights [2, -2]); bias 10 and 20.
    let x = [1f32, 4., 9., 16., 25., /* ch 1 */ 0., 1., 0., 1., 0.];
    check(
        "Conv",
        13,
        &[("group", AttrValue::Int(2)), ("dilations", ints(&[2]))],
        vec![f32s(&[1, 2, 5], &x), f32s(&[2, 1, 2], &[1., -1., 2., -2.]), f32s(&[2], &[10., 20.])],
        &[1, 2, 3],
        &[10. - 8., 10. - 12., 10. - 16., 20., 20., 20.],
    );
}

#[test]
fn conv_same_pads_with_dilation_by_hand() {
    // SAME_UPPER with kernel 2 dilated by 3 (extent 4) on length 3: output 3, total pad
    // 3 split 1 before, 2 after; tap k of output o reads x[o - 1 + 3k]. With weights
    // [1, 10]: y = [x0... ] = [0 + 10*x2, x0 + 0, x1 + 0].
    check(
        "Conv",
        13,
        &[("auto_pad", AttrValue::String("SAME_UPPER".into())), ("dilations", ints(&[3]))],
        vec![f32s(&[1, 1, 3], &[1., 2., 3.]), f32s(&[1, 1, 2], &[1., 10.])],
        &[1, 1, 3],
        &[30., 1., 2.],
    );
}

#[test]
fn conv_transpose_by_hand() {
    // 1-D, stride 2, kernel [1, 2, 3]: each input scatters x * k to 2i + k; output
    // length 2 * (3 - 1) + 3 = 7, then output_padding adds one (zero + bias) element.
    check(
        "ConvTranspose",
        13,
        &[("strides", ints(&[2])), ("output_padding", ints(&[1]))],
        vec![f32s(&[1, 1, 3], &[1., 10., 100.]), f32s(&[1, 1, 3], &[1., 2., 3.]), f32s(&[1], &[0.5])],
        &[1, 1, 8],
        &[1.5, 2.5, 13.5, 20.5, 130.5, 200.5, 300.5, 0.5],
    );
    // Same with pads [1, 2]: the window [1, 5) of the full result.
    check(
        "ConvTranspose",
        13,
        &[("strides", ints(&[2])), ("pads", ints(&[1, 2]))],
        vec![f32s(&[1, 1, 3], &[1., 10., 100.]), f32s(&[1, 1, 3], &[1., 2., 3.])],
        &[1, 1, 4],
        &[2., 13., 20., 130.],
    );
}

#[test]
fn max_pool_ceil_mode_by_hand() {
    // 1x5 ramp, kernel 2, stride 2: floor gives 2 windows, ceil adds the partial [4].
    let x = f32s(&[1, 1, 5], &[1., 5., 2., 4., 3.]);
    check(
        "MaxPool",
        12,
        &[("kernel_shape", ints(&[2])), ("strides", ints(&[2]))],
        vec![x.clone()],
        &[1, 1, 2],
        &[5., 4.],
    );
    check(
        "MaxPool",
        12,
        &[("kernel_shape", ints(&[2])), ("strides", ints(&[2])), ("ceil_mode", AttrValue::Int(1))],
        vec![x],
        &[1, 1, 3],
        &[5., 4., 3.],
    );
    // A ceil-mode window that would start in the end padding is dropped: length 2,
    // kernel 1, stride 2 gives one output, not two.
    check(
        "MaxPool",
        12,
        &[("kernel_shape", ints(&[1])), ("strides", ints(&[2])), ("ceil_mode", AttrValue::Int(1))],
        vec![f32s(&[1, 1, 2], &[7., 8.])],
        &[1, 1, 1],
        &[7.],
    );
}

#[test]
fn average_pool_count_include_pad_by_hand() {
    // [1, 2, 3], kernel 2, pads 1 both sides: windows {pad,1}, {2,3}... stride 2:
    // windows [-1, 0], [1, 2]. Excluding pad: 1, 2.5; including: 0.5, 2.5.
    let x = f32s(&[1, 1, 3], &[1., 2., 3.]);
    let attrs = |cip| {
        vec![
            ("kernel_shape", ints(&[2])),
            ("strides", ints(&[2])),
            ("pads", ints(&[1, 1])),
            ("count_include_pad", AttrValue::Int(cip)),
        ]
    };
    check("AveragePool", 11, &attrs(0), vec![x.clone()], &[1, 1, 2], &[1., 2.5]);
    check("AveragePool", 11, &attrs(1), vec![x], &[1, 1, 2], &[0.5, 2.5]);
}

#[test]
fn gemm_integer_by_hand() {
    // A^T is [[1, 3, 5], [2, 4, 6]] (A stored [3, 2]); B = [[1, 0], [0, 1], [1, 1]];
    // A^T B = [[6, 8], [8, 10]]; alpha 1, beta 1, C = [100, 200] per column.
    check(
        "Gemm",
        13,
        &[("transA", AttrValue::Int(1))],
        vec![
            val(I64, &[3, 2], &[1., 2., 3., 4., 5., 6.]),
            val(I64, &[3, 2], &[1., 0., 0., 1., 1., 1.]),
            val(I64, &[2], &[100., 200.]),
        ],
        &[2, 2],
        &[106., 208., 108., 210.],
    );
    // i32 MatMul wraps on overflow instead of panicking: 2^30 * 4 = 2^32 = 0 (mod 2^32).
    check("MatMul", 13, &[], vec![val(I32, &[1, 1], &[1073741824.]), val(I32, &[1, 1], &[4.])], &[1, 1], &[0.]);
}

#[test]
fn matmul_integer_per_row_zero_point() {
    // numpy: a = [[-5, 2, -2], [5, 1, -3]], b = [[-2, 5], [1, -3], [4, 0]],
    // ((a - [[1], [-2]]) @ b).ravel() == [1, -33, -15, 26]
    check(
        "MatMulInteger",
        10,
        &[],
        vec![pat(I8, &[2, 3], 0), pat(I8, &[3, 2], 1), val(I8, &[2], &[1., -2.])],
        &[2, 2],
        &[1., -33., -15., 26.],
    );
}

#[test]
fn batch_norm_spatial_zero_per_activation() {
    // opset 7 with spatial = 0: parameters are [C, W]; y = (x - mean) / sqrt(var + eps) * s + b
    // with var + eps = 4 (eps 0 here): y = (x - m) / 2 * s + b elementwise over the batch.
    let p = |v: &[f32]| f32s(&[2, 2], v);
    check(
        "BatchNormalization",
        7,
        &[("spatial", AttrValue::Int(0)), ("epsilon", AttrValue::Float(0.0))],
        vec![
            f32s(&[2, 2, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]),
            p(&[1., 2., 3., 4.]),
            p(&[0., 1., 0., 1.]),
            p(&[1., 1., 1., 1.]),
            p(&[4., 4., 4., 4.]),
        ],
        &[2, 2, 2],
        &[0., 2., 3., 7., 2., 6., 9., 15.],
    );
}

#[test]
fn resize_nearest_legacy_and_negative_axes() {
    // Upsample / Resize-10 nearest: asymmetric coordinates, truncating when upsampling.
    let x = f32s(&[1, 3], &[1., 2., 3.]);
    check("Upsample", 9, &[], vec![x.clone(), f32s(&[2], &[1., 2.])], &[1, 6], &[1., 1., 2., 2., 3., 3.]);
    // ... and rounding up when downsampling: scale 0.5 on 3 gives 1 output from x[ceil(0)].
    check("Resize", 10, &[], vec![x.clone(), f32s(&[2], &[1., 0.5])], &[1, 1], &[1.]);
    // Negative axes name the same axes as positive ones.
    let sizes = |v: &[f64]| val(I64, &[1], v);
    let neg = run("Resize", 18, &[("axes", ints(&[-1]))], vec![x.clone(), None, None, sizes(&[5.])]).unwrap();
    let pos = run("Resize", 18, &[("axes", ints(&[1]))], vec![x, None, None, sizes(&[5.])]).unwrap();
    assert_eq!(neg, pos);
    assert_eq!(neg.shape(), &[1, 5]);
}

#[test]
fn rejects_bad_inputs() {
    let x = f32s(&[1, 2, 4, 4], &[0.; 32]);
    // Channel mismatch with the groups.
    assert!(run("Conv", 13, &[("group", AttrValue::Int(2))], vec![x.clone(), f32s(&[2, 2, 1, 1], &[0.; 4])]).is_err());
    // kernel_shape disagreeing with the weights.
    assert!(
        run("Conv", 13, &[("kernel_shape", ints(&[3, 3]))], vec![x.clone(), f32s(&[1, 2, 1, 1], &[0.; 2])]).is_err()
    );
    // A window larger than the padded input.
    assert!(run("MaxPool", 12, &[("kernel_shape", ints(&[5, 5]))], vec![x.clone()]).is_err());
    // Bad attribute values are reported at build time.
    assert!(run("Conv", 13, &[("strides", ints(&[0, 1]))], vec![x.clone(), f32s(&[1, 2, 1, 1], &[0.; 2])]).is_err());
    assert!(run("BatchNormalization", 15, &[("training_mode", AttrValue::Int(1))], vec![x.clone()]).is_err());
    assert!(run("Resize", 13, &[("mode", AttrValue::String("area".into()))], vec![x.clone()]).is_err());
    // Resize needs exactly one of scales and sizes.
    assert!(run("Resize", 13, &[], vec![x.clone(), None, None, None]).is_err());
    assert!(
        run("Resize", 13, &[], vec![x.clone(), None, f32s(&[4], &[1.; 4]), val(I64, &[4], &[1., 2., 4., 4.])]).is_err()
    );
    // MatMul inner dimension mismatch; Gemm with a C that does not broadcast.
    assert!(run("MatMul", 13, &[], vec![f32s(&[2, 3], &[0.; 6]), f32s(&[2, 3], &[0.; 6])]).is_err());
    assert!(run("Gemm", 13, &[], vec![f32s(&[2, 3], &[0.; 6]), f32s(&[3, 2], &[0.; 6]), f32s(&[3], &[0.; 3])]).is_err());
    // Integer convolution is not an ONNX Conv type.
    assert!(run("Conv", 13, &[], vec![val(I32, &[1, 1, 2], &[1., 2.]), val(I32, &[1, 1, 1], &[1.])]).is_err());
    // A huge output from untrusted attributes is an error, not an abort.
    let big = run("Resize", 13, &[], vec![x, None, f32s(&[4], &[1e9, 1e9, 1e9, 1e9])]);
    assert!(big.is_err());
}

#[test]
fn random_attributes_and_shapes_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let extremes = [0i64, 1, 2, 3, -1, 1 << 40, i64::MAX, i64::MIN];
    let mut ok = 0;
    // SINTER_FUZZ_ITERS raises the count for a longer local hunt.
    let iters = std::env::var("SINTER_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    for _ in 0..iters {
        let pick = |rng: &mut rand_chacha::ChaCha8Rng| -> i64 {
            if rng.gen_bool(0.2) {
                extremes[rng.gen_range(0..extremes.len())]
            } else {
                rng.gen_range(0..4)
            }
        };
        let rank = rng.gen_range(1..6);
        let shape: Vec<usize> = (0..rank).map(|_| rng.gen_range(0..5)).collect();
        let wshape: Vec<usize> = (0..rank).map(|_| rng.gen_range(0..4)).collect();
        let n = if rng.gen_bool(0.5) { rank - 2.min(rank) } else { rng.gen_range(0..4) };
        let list = |rng: &mut rand_chacha::ChaCha8Rng| AttrValue::Ints((0..n).map(|_| pick(rng)).collect());
        let attrs: Vec<(&str, AttrValue)> = [
            ("kernel_shape", list(&mut rng)),
            ("strides", list(&mut rng)),
            ("pads", AttrValue::Ints((0..2 * n).map(|_| pick(&mut rng)).collect())),
            ("dilations", list(&mut rng)),
            ("group", AttrValue::Int(pick(&mut rng))),
            ("ceil_mode", AttrValue::Int(pick(&mut rng))),
            ("output_padding", list(&mut rng)),
        ]
        .into_iter()
        .filter(|_| rng.gen_bool(0.5))
        .collect();
        let ops =
            ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalMaxPool", "MatMul", "Gemm", "LRN"];
        let op = ops[rng.gen_range(0..ops.len())];
        ok += run_limited(op, 13, &attrs, vec![pat(F32, &shape, 0), pat(F32, &wshape, 1)], 1 << 20).is_ok() as usize;
        // Resize with random scales / sizes.
        let scales: Vec<f64> =
            (0..rank).map(|_| [0.0, 0.3, 1.0, 2.5, 1e-30, 1e30, f64::NAN][rng.gen_range(0..7)]).collect();
        let sizes: Vec<f64> = (0..rank).map(|_| pick(&mut rng) as f64).collect();
        let modes = ["nearest", "linear", "cubic"];
        let coords = ["half_pixel", "align_corners", "tf_crop_and_resize", "asymmetric", "pytorch_half_pixel"];
        let rattrs = [
            ("mode", AttrValue::String(modes[rng.gen_range(0..3)].into())),
            ("coordinate_transformation_mode", AttrValue::String(coords[rng.gen_range(0..5)].into())),
            ("antialias", AttrValue::Int(rng.gen_range(0..2))),
            ("exclude_outside", AttrValue::Int(rng.gen_range(0..2))),
        ];
        let roi = val(
            F32,
            &[2 * rank],
            &(0..2 * rank).map(|i| [0.0, 1.0, -3.0, f64::NAN][(i + rank) % 4]).collect::<Vec<_>>(),
        );
        let (s, z) =
            if rng.gen_bool(0.5) { (val(F32, &[rank], &scales), None) } else { (None, val(I64, &[rank], &sizes)) };
        ok += run_limited("Resize", 18, &rattrs, vec![pat(F32, &shape, 0), roi, s, z], 1 << 20).is_ok() as usize;
    }
    // Enough draws are valid that evaluation is exercised too.
    assert!(ok > 300, "only {ok} valid draws");
}
