//! Expected values come from numpy / PyTorch (quoted per case) or from naive
//! index-by-index loops written here, never from the kernels under test.

use crate::ops::build;
use crate::{AttrValue, Attrs, DType, Fact, IrError, Result, Tensor, View, ViewMut};
use half::f16;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// Builds `op_type`, infers on constant facts, evaluates, and returns the outputs.
fn run(op_type: &str, attrs: Attrs, opset: i64, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let op = build(op_type, &attrs, opset)?;
    let facts: Vec<Option<Fact>> = inputs.iter().map(|t| t.map(|t| Fact::constant(Arc::new(t.clone())))).collect();
    let refs: Vec<Option<&Fact>> = facts.iter().map(|f| f.as_ref()).collect();
    let out_facts = op.infer(&refs)?;
    let mut outs: Vec<Tensor> = out_facts.iter().map(|f| Tensor::zeros(f.dtype, &f.shape)).collect();
    let views: Vec<Option<View>> = inputs.iter().map(|t| t.map(|t| t.view())).collect();
    let mut out_views: Vec<ViewMut> = outs.iter_mut().map(|t| t.view_mut()).collect();
    op.eval(&views, &mut out_views)?;
    Ok(outs)
}

fn run1(op_type: &str, inputs: &[&Tensor]) -> Tensor {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|&t| Some(t)).collect();
    run(op_type, Attrs::new(), 21, &ins).unwrap().remove(0)
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_slice(shape, v).unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol * (1.0 + w.abs());
        assert!(ok, "element {i}: got {g}, want {w}");
    }
}

/// Row-major multi-index of flat index `i`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

/// Flat index into `shape` of output multi-index `idx`, numpy broadcasting rules.
fn bcast_index(idx: &[usize], shape: &[usize]) -> usize {
    let off = idx.len() - shape.len();
    shape.iter().enumerate().fold(0, |acc, (d, &n)| acc * n + if n == 1 { 0 } else { idx[off + d] })
}

#[test]
fn add_broadcasts_like_numpy_on_random_shapes() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..300 {
        let rank = rng.gen_range(0..=4);
        let out: Vec<usize> = (0..rank).map(|_| rng.gen_range(1..=4)).collect();
        let pick = |rng: &mut rand_chacha::ChaCha8Rng| -> Vec<usize> {
            let r = rng.gen_range(0..=rank);
            out[rank - r..].iter().map(|&d| if rng.gen_bool(0.4) { 1 } else { d }).collect()
        };
        let (sa, sb) = (pick(&mut rng), pick(&mut rng));
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let a: Vec<i64> = (0..na as i64).collect();
        let b: Vec<i64> = (0..nb as i64).map(|v| v * 1000).collect();
        let ta = Tensor::from_slice(&sa, &a).unwrap();
        let tb = Tensor::from_slice(&sb, &b).unwrap();
        let got = run1("Sub", &[&ta, &tb]);
        let full = crate::ops::util::broadcast_shapes(&[&sa, &sb]).unwrap();
        assert_eq!(got.shape(), &full[..]);
        let n: usize = full.iter().product();
        let want: Vec<i64> = (0..n)
            .map(|i| {
                let idx = unravel(i, &full);
                a[bcast_index(&idx, &sa)] - b[bcast_index(&idx, &sb)]
            })
            .collect();
        assert_eq!(got.as_slice::<i64>().unwrap(), &want[..], "{sa:?} - {sb:?}");
    }
}

#[test]
fn per_channel_and_scalar_broadcast() {
    // x [1,2,2,2] + bias [2,1,1]: numpy gives x + [[[10]],[[20]]]
    let x = f32s(&[1, 2, 2, 2], &[0., 1., 2., 3., 4., 5., 6., 7.]);
    let bias = f32s(&[2, 1, 1], &[10., 20.]);
    let y = run1("Add", &[&x, &bias]);
    assert_eq!(y.shape(), &[1, 2, 2, 2]);
    assert_eq!(y.as_slice::<f32>().unwrap(), &[10., 11., 12., 13., 24., 25., 26., 27.]);
    let s = Tensor::scalar(2.0f32);
    assert_eq!(run1("Mul", &[&s, &x]).as_slice::<f32>().unwrap(), &[0., 2., 4., 6., 8., 10., 12., 14.]);
    // column [3,1] against row [4]: outer difference
    let c = f32s(&[3, 1], &[0., 10., 20.]);
    let r = f32s(&[4], &[1., 2., 3., 4.]);
    let d = run1("Sub", &[&c, &r]);
    assert_eq!(d.shape(), &[3, 4]);
    assert_eq!(d.as_slice::<f32>().unwrap(), &[-1., -2., -3., -4., 9., 8., 7., 6., 19., 18., 17., 16.]);
    // empty tensors broadcast to empty outputs
    let e = f32s(&[0, 4], &[]);
    assert_eq!(run1("Add", &[&e, &r]).shape(), &[0, 4]);
}

#[test]
fn incompatible_shapes_and_dtypes_are_errors() {
    let a = f32s(&[2], &[1., 2.]);
    let b = f32s(&[3], &[1., 2., 3.]);
    assert!(matches!(run("Add", Attrs::new(), 14, &[Some(&a), Some(&b)]), Err(IrError::Shape(_))));
    let i = Tensor::from_slice(&[2], &[1i64, 2]).unwrap();
    let err = run("Add", Attrs::new(), 14, &[Some(&a), Some(&i)]).unwrap_err().to_string();
    assert!(err.contains("f32") && err.contains("i64"), "{err}");
    assert!(run("Add", Attrs::new(), 14, &[Some(&a), None]).is_err());
    let bools = Tensor::from_bools(&[2], &[true, false]).unwrap();
    assert!(matches!(
        run("Add", Attrs::new(), 14, &[Some(&bools), Some(&bools)]),
        Err(IrError::UnsupportedDType { .. })
    ));
    assert!(matches!(run("Sigmoid", Attrs::new(), 13, &[Some(&i)]), Err(IrError::UnsupportedDType { .. })));
}

#[test]
fn round_is_half_to_even() {
    // np.round([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6, 0.0])
    let x = f32s(&[8], &[0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6, 0.0]);
    assert_eq!(run1("Round", &[&x]).as_slice::<f32>().unwrap(), &[0., 2., 2., -0., -2., 2., -3., 0.]);
    let h = Tensor::from_slice(&[2], &[f16::from_f32(2.5), f16::from_f32(3.5)]).unwrap();
    assert_eq!(run1("Round", &[&h]).as_slice::<f16>().unwrap(), &[f16::from_f32(2.0), f16::from_f32(4.0)]);
}

#[test]
fn integer_div_and_mod_signs() {
    let a = Tensor::from_slice(&[4], &[-7i32, 7, -7, 7]).unwrap();
    let b = Tensor::from_slice(&[4], &[2i32, -2, -2, 2]).unwrap();
    // np.trunc(a / b), np.mod(a, b), np.fmod(a, b)
    assert_eq!(run1("Div", &[&a, &b]).as_slice::<i32>().unwrap(), &[-3, -3, 3, 3]);
    let m = run("Mod", Attrs::new(), 13, &[Some(&a), Some(&b)]).unwrap().remove(0);
    assert_eq!(m.as_slice::<i32>().unwrap(), &[1, -1, -1, 1]);
    let fmod = Attrs::new().with("fmod", AttrValue::Int(1));
    let m = run("Mod", fmod.clone(), 13, &[Some(&a), Some(&b)]).unwrap().remove(0);
    assert_eq!(m.as_slice::<i32>().unwrap(), &[-1, 1, -1, 1]);
    // division by zero does not trap
    let z = Tensor::from_slice(&[4], &[0i32; 4]).unwrap();
    assert_eq!(run1("Div", &[&a, &z]).as_slice::<i32>().unwrap(), &[0; 4]);
    // float Mod needs fmod = 1; np.fmod([-4.5, 4.5], [2, -2]) = [-0.5, 0.5]
    let fa = f32s(&[2], &[-4.5, 4.5]);
    let fb = f32s(&[2], &[2., -2.]);
    assert!(run("Mod", Attrs::new(), 13, &[Some(&fa), Some(&fb)]).is_err());
    let m = run("Mod", fmod, 13, &[Some(&fa), Some(&fb)]).unwrap().remove(0);
    assert_eq!(m.as_slice::<f32>().unwrap(), &[-0.5, 0.5]);
}

#[test]
fn pow_with_mixed_dtypes() {
    // np.power(np.int32([2, 3, -2]), np.float32([0.5, 2.5, 3])).astype(np.int32) = [1, 15, -8]
    let b = Tensor::from_slice(&[3], &[2i32, 3, -2]).unwrap();
    let e = f32s(&[3], &[0.5, 2.5, 3.0]);
    assert_eq!(run1("Pow", &[&b, &e]).as_slice::<i32>().unwrap(), &[1, 15, -8]);
    // exact integer powers: 2**62, 3**3
    let b = Tensor::from_slice(&[2], &[2i64, 3]).unwrap();
    let e = Tensor::from_slice(&[2], &[62i64, 3]).unwrap();
    assert_eq!(run1("Pow", &[&b, &e]).as_slice::<i64>().unwrap(), &[4_611_686_018_427_387_904, 27]);
    // float base, int exponent, and the squared fast path
    let x = f32s(&[3], &[1.5, -2.0, 0.1]);
    let two = Tensor::scalar(2i64);
    let y = run1("Pow", &[&x, &two]);
    assert_eq!(y.dtype(), DType::F32);
    assert_eq!(y.as_slice::<f32>().unwrap(), &[2.25, 4.0, 0.1f32 * 0.1f32]);
    let half_ = Tensor::scalar(0.5f32);
    assert_close(
        run1("Pow", &[&f32s(&[2], &[4.0, 2.0]), &half_]).as_slice::<f32>().unwrap(),
        &[2.0, std::f32::consts::SQRT_2],
        1e-7,
    );
}

#[test]
fn cast_edge_cases() {
    let x = f32s(&[5], &[-1.7, 2.9, f32::NAN, 300.0, -0.0]);
    let cast = |t: &Tensor, to: DType| {
        let a = Attrs::new().with("to", AttrValue::Int(to.onnx_code() as i64));
        run("Cast", a, 21, &[Some(t)]).unwrap().remove(0)
    };
    // truncation toward zero; NaN -> 0 and out-of-range values saturate (undefined in ONNX)
    assert_eq!(cast(&x, DType::I32).as_slice::<i32>().unwrap(), &[-1, 2, 0, 300, 0]);
    assert_eq!(cast(&x, DType::U8).as_slice::<u8>().unwrap(), &[0, 2, 0, 255, 0]);
    // np.array([-1.7, 2.9, nan, 300, -0.0]).astype(bool) = [T, T, T, T, F]
    let b = cast(&x, DType::Bool);
    assert_eq!(b.dtype(), DType::Bool);
    assert_eq!(b.bytes(), &[1, 1, 1, 1, 0]);
    // integers wrap: np.array([300, -1]).astype(np.uint8) = [44, 255]
    let i = Tensor::from_slice(&[2], &[300i64, -1]).unwrap();
    assert_eq!(cast(&i, DType::U8).as_slice::<u8>().unwrap(), &[44, 255]);
    assert_eq!(cast(&i, DType::Bool).bytes(), &[1, 1]);
    // np.float32(2**53 + 1) = 9007199254740992
    let big = Tensor::from_slice(&[1], &[(1i64 << 53) + 1]).unwrap();
    assert_eq!(cast(&big, DType::F32).as_slice::<f32>().unwrap(), &[9_007_199_254_740_992.0]);
    // f16 rounding: [65520, 1+2^-10, 1+2^-11, 1+3·2^-11] -> [inf, 1.0009765625, 1.0, 1.001953125]
    let f = f32s(&[4], &[65520.0, 1.0 + 2f32.powi(-10), 1.0 + 2f32.powi(-11), 1.0 + 3.0 * 2f32.powi(-11)]);
    let h: Vec<f32> = cast(&f, DType::F16).as_slice::<f16>().unwrap().iter().map(|v| v.to_f32()).collect();
    assert_eq!(h, vec![f32::INFINITY, 1.000_976_6, 1.0, 1.001_953_1]);
    let bools = Tensor::from_bools(&[2], &[true, false]).unwrap();
    assert_eq!(cast(&bools, DType::F32).as_slice::<f32>().unwrap(), &[1.0, 0.0]);
    // CastLike takes the dtype of its second input
    let like = Tensor::scalar(0i8);
    let y = run1("CastLike", &[&f32s(&[2], &[-3.9, 127.5]), &like]);
    assert_eq!(y.as_slice::<i8>().unwrap(), &[-3, 127]);
    // unsupported target types are rejected when the node is built
    let dbl = Attrs::new().with("to", AttrValue::Int(11));
    let err = build("Cast", &dbl, 21).unwrap_err().to_string();
    assert!(err.contains("double"), "{err}");
}

#[test]
fn clip_bounds() {
    let x = f32s(&[5], &[-5.0, -1.0, 0.5, 2.0, f32::NAN]);
    // opset 13, no bounds: identity
    let y = run("Clip", Attrs::new(), 13, &[Some(&x)]).unwrap().remove(0);
    assert_close(y.as_slice::<f32>().unwrap(), &[-5.0, -1.0, 0.5, 2.0, f32::NAN], 0.0);
    // max only (min omitted as an empty input)
    let hi = Tensor::scalar(1.0f32);
    let y = run("Clip", Attrs::new(), 13, &[Some(&x), None, Some(&hi)]).unwrap().remove(0);
    assert_close(y.as_slice::<f32>().unwrap(), &[-5.0, -1.0, 0.5, 1.0, f32::NAN], 0.0);
    // min > max: np.clip gives max everywhere
    let lo = Tensor::scalar(3.0f32);
    let y = run("Clip", Attrs::new(), 13, &[Some(&x), Some(&lo), Some(&hi)]).unwrap().remove(0);
    assert_close(&y.as_slice::<f32>().unwrap()[..4], &[1.0; 4], 0.0);
    // opset 6 style attributes
    let a = Attrs::new().with("min", AttrValue::Float(-1.5)).with("max", AttrValue::Float(0.0));
    let y = run("Clip", a, 6, &[Some(&x)]).unwrap().remove(0);
    assert_close(&y.as_slice::<f32>().unwrap()[..4], &[-1.5, -1.0, 0.0, 0.0], 0.0);
    // integers, with a bound of the wrong dtype rejected
    let i = Tensor::from_slice(&[4], &[-128i8, -3, 5, 127]).unwrap();
    let (l, h) = (Tensor::scalar(-4i8), Tensor::scalar(4i8));
    let y = run("Clip", Attrs::new(), 13, &[Some(&i), Some(&l), Some(&h)]).unwrap().remove(0);
    assert_eq!(y.as_slice::<i8>().unwrap(), &[-4, -3, 4, 4]);
    assert!(run("Clip", Attrs::new(), 13, &[Some(&i), Some(&lo)]).is_err());
}

#[test]
fn activations_match_pytorch() {
    let x = f32s(&[7], &[-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]);
    let act = |op: &str, attrs: Attrs| run(op, attrs, 21, &[Some(&x)]).unwrap().remove(0);
    // torch.nn.functional.gelu(x, approximate="tanh")
    let tanh = Attrs::new().with("approximate", AttrValue::String("tanh".into()));
    let want = [-0.003_637_433, -0.158_808, -0.154_286, 0.0, 0.345_714, 0.841_192, 2.996_362_7];
    assert_close(act("Gelu", tanh).as_slice::<f32>().unwrap(), &want, 1e-6);
    // torch.nn.functional.gelu(x)
    let want = [-0.004_050_225, -0.158_655_26, -0.154_268_77, 0.0, 0.345_731_23, 0.841_344_7, 2.995_949_7];
    assert_close(act("Gelu", Attrs::new()).as_slice::<f32>().unwrap(), &want, 1e-6);
    // torch.nn.functional.selu(x) (ONNX's default alpha and gamma are the same constants)
    let want = [-1.670_568_7, -1.111_330_7, -0.691_758_16, 0.0, 0.525_350_5, 1.050_701, 3.152_103];
    assert_close(act("Selu", Attrs::new()).as_slice::<f32>().unwrap(), &want, 1e-6);
    // torch.nn.functional.mish(x)
    let want = [-0.145_647_47, -0.303_401_44, -0.220_743_76, 0.0, 0.375_245_24, 0.865_098_36, 2.986_535];
    assert_close(act("Mish", Attrs::new()).as_slice::<f32>().unwrap(), &want, 1e-6);
    // torch.nn.functional.celu(x, alpha=2)
    let a = Attrs::new().with("alpha", AttrValue::Float(2.0));
    let want = [-1.553_739_7, -0.786_938_7, -0.442_398_43, 0.0, 0.5, 1.0, 3.0];
    assert_close(act("Celu", a).as_slice::<f32>().unwrap(), &want, 1e-6);
    // torch.nn.functional.hardswish([-4, -3, -1, 0, 1, 3, 4])
    let h = f32s(&[7], &[-4.0, -3.0, -1.0, 0.0, 1.0, 3.0, 4.0]);
    let want = [0.0, 0.0, -0.333_333_34, 0.0, 0.666_666_7, 3.0, 4.0];
    assert_close(run1("HardSwish", &[&h]).as_slice::<f32>().unwrap(), &want, 1e-7);
    // softplus without overflow: log1p(exp(x)) at [-100, -1, 0, 1, 100]
    let s = f32s(&[5], &[-100.0, -1.0, 0.0, 1.0, 100.0]);
    // e^-100 rounds to the subnormal 27·2^-149
    let want = [f32::from_bits(27), 0.313_261_7, std::f32::consts::LN_2, 1.313_261_6, 100.0];
    assert_close(run1("Softplus", &[&s]).as_slice::<f32>().unwrap(), &want, 1e-6);
    // erf in f16 goes through f32
    let h = Tensor::from_slice(&[2], &[f16::from_f32(0.5), f16::from_f32(-1.0)]).unwrap();
    let y: Vec<f32> = run1("Erf", &[&h]).as_slice::<f16>().unwrap().iter().map(|v| v.to_f32()).collect();
    assert_eq!(
        y,
        vec![f16::from_f64(0.520_499_877_813_046_5).to_f32(), f16::from_f64(-0.842_700_792_949_714_9).to_f32()]
    );
}

#[test]
fn integer_unary_ops() {
    let x = Tensor::from_slice(&[4], &[-128i8, -3, 0, 5]).unwrap();
    assert_eq!(run1("Abs", &[&x]).as_slice::<i8>().unwrap(), &[-128, 3, 0, 5]); // np.abs wraps too
    assert_eq!(run1("Neg", &[&x]).as_slice::<i8>().unwrap(), &[-128, 3, 0, -5]);
    assert_eq!(run1("Sign", &[&x]).as_slice::<i8>().unwrap(), &[-1, -1, 0, 1]);
    assert_eq!(run1("Relu", &[&x]).as_slice::<i8>().unwrap(), &[0, 0, 0, 5]);
    assert_eq!(run1("BitwiseNot", &[&x]).as_slice::<i8>().unwrap(), &[127, 2, -1, -6]);
    let u = Tensor::from_slice(&[2], &[3u8, 250]).unwrap();
    assert!(run("Neg", Attrs::new(), 13, &[Some(&u)]).is_err());
    assert!(run("Relu", Attrs::new(), 14, &[Some(&u)]).is_err());
    let f = f32s(&[4], &[-2.0, -0.0, f32::NAN, 3.0]);
    let s = run1("Sign", &[&f]);
    assert_close(s.as_slice::<f32>().unwrap(), &[-1.0, 0.0, f32::NAN, 1.0], 0.0);
}

#[test]
fn comparisons_logic_and_bits() {
    let a = f32s(&[3], &[1.0, f32::NAN, 3.0]);
    let b = f32s(&[1], &[1.0]);
    let bytes = |op: &str, x: &Tensor, y: &Tensor| run1(op, &[x, y]).bytes().to_vec();
    assert_eq!(bytes("Equal", &a, &b), vec![1, 0, 0]);
    assert_eq!(bytes("Greater", &a, &b), vec![0, 0, 1]);
    assert_eq!(bytes("LessOrEqual", &a, &b), vec![1, 0, 0]);
    let p = Tensor::from_bools(&[4], &[true, true, false, false]).unwrap();
    let q = Tensor::from_bools(&[4], &[true, false, true, false]).unwrap();
    assert_eq!(bytes("And", &p, &q), vec![1, 0, 0, 0]);
    assert_eq!(bytes("Or", &p, &q), vec![1, 1, 1, 0]);
    assert_eq!(bytes("Xor", &p, &q), vec![0, 1, 1, 0]);
    assert_eq!(bytes("Equal", &p, &q), vec![1, 0, 0, 1]);
    assert_eq!(run1("Not", &[&p]).bytes(), &[0, 0, 1, 1]);
    // np.left_shift / np.right_shift on uint8
    let x = Tensor::from_slice(&[3], &[16u8, 1, 255]).unwrap();
    let s = Tensor::from_slice(&[3], &[1u8, 7, 8]).unwrap();
    let dir = |d: &str| Attrs::new().with("direction", AttrValue::String(d.into()));
    let l = run("BitShift", dir("LEFT"), 11, &[Some(&x), Some(&s)]).unwrap().remove(0);
    assert_eq!(l.as_slice::<u8>().unwrap(), &[32, 128, 0]);
    let r = run("BitShift", dir("RIGHT"), 11, &[Some(&x), Some(&s)]).unwrap().remove(0);
    assert_eq!(r.as_slice::<u8>().unwrap(), &[8, 0, 0]);
    let i = Tensor::from_slice(&[2], &[0b1100i32, -1]).unwrap();
    let j = Tensor::from_slice(&[2], &[0b1010i32, 5]).unwrap();
    assert_eq!(run1("BitwiseAnd", &[&i, &j]).as_slice::<i32>().unwrap(), &[0b1000, 5]);
    assert_eq!(run1("BitwiseXor", &[&i, &j]).as_slice::<i32>().unwrap(), &[0b0110, -6]);
}

#[test]
fn variadic_min_max_sum_mean() {
    let a = f32s(&[2, 1], &[1.0, 5.0]);
    let b = f32s(&[3], &[0.0, 3.0, f32::NAN]);
    let c = f32s(&[1], &[2.0]);
    // np.maximum(np.maximum(a, b), c)
    let m = run1("Max", &[&a, &b, &c]);
    assert_eq!(m.shape(), &[2, 3]);
    assert_close(m.as_slice::<f32>().unwrap(), &[2.0, 3.0, f32::NAN, 5.0, 5.0, f32::NAN], 0.0);
    let m = run1("Min", &[&a, &b, &c]);
    assert_close(m.as_slice::<f32>().unwrap(), &[0.0, 1.0, f32::NAN, 0.0, 2.0, f32::NAN], 0.0);
    let b = f32s(&[3], &[0.0, 3.0, 6.0]);
    let s = run1("Sum", &[&a, &b, &c]);
    assert_eq!(s.as_slice::<f32>().unwrap(), &[3.0, 6.0, 9.0, 7.0, 10.0, 13.0]);
    let m = run1("Mean", &[&a, &b, &c]);
    assert_close(m.as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0, 7.0 / 3.0, 10.0 / 3.0, 13.0 / 3.0], 1e-7);
    assert_eq!(run1("Max", &[&a]).as_slice::<f32>().unwrap(), &[1.0, 5.0]);
    let i = Tensor::from_slice(&[2], &[3i64, -9]).unwrap();
    let j = Tensor::from_slice(&[2], &[-4i64, 7]).unwrap();
    assert_eq!(run1("Max", &[&i, &j]).as_slice::<i64>().unwrap(), &[3, 7]);
    assert!(run("Sum", Attrs::new(), 13, &[Some(&i), Some(&j)]).is_err());
}

#[test]
fn prelu_and_where() {
    // per-channel slope [2,1,1] against [1,2,1,2]
    let x = f32s(&[1, 2, 1, 2], &[-1.0, 2.0, -3.0, 4.0]);
    let slope = f32s(&[2, 1, 1], &[0.5, 0.1]);
    assert_close(run1("PRelu", &[&x, &slope]).as_slice::<f32>().unwrap(), &[-0.5, 2.0, -0.3, 4.0], 1e-7);
    // a slope that would grow X is rejected (broadcast is unidirectional)
    let big = f32s(&[2, 2, 1, 2], &[0.0; 8]);
    assert!(run("PRelu", Attrs::new(), 16, &[Some(&x), Some(&big)]).is_err());
    // np.where([[T],[F]], [1, 2, 3], -1)
    let c = Tensor::from_bools(&[2, 1], &[true, false]).unwrap();
    let a = Tensor::from_slice(&[3], &[1i64, 2, 3]).unwrap();
    let b = Tensor::scalar(-1i64);
    let y = run1("Where", &[&c, &a, &b]);
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(y.as_slice::<i64>().unwrap(), &[1, 2, 3, -1, -1, -1]);
    let full_c = Tensor::from_bools(&[3], &[false, true, false]).unwrap();
    let b3 = Tensor::from_slice(&[3], &[7i64, 8, 9]).unwrap();
    assert_eq!(run1("Where", &[&full_c, &a, &b3]).as_slice::<i64>().unwrap(), &[7, 2, 9]);
}

#[test]
fn dropout_is_identity_at_inference() {
    let x = f32s(&[3], &[1.0, -2.0, 3.0]);
    let ratio = Tensor::scalar(0.3f32);
    let train = Tensor::from_bools(&[], &[false]).unwrap();
    let outs = run("Dropout", Attrs::new(), 13, &[Some(&x), Some(&ratio), Some(&train)]).unwrap();
    assert_eq!(outs[0], x);
    assert_eq!(outs[1].dtype(), DType::Bool);
    assert_eq!(outs[1].bytes(), &[1, 1, 1]);
    let outs = run("Dropout", Attrs::new(), 7, &[Some(&x)]).unwrap();
    assert_eq!(outs[1].as_slice::<f32>().unwrap(), &[1.0; 3]);
    // training mode is random unless the ratio is 0 (the default ratio is 0.5)
    let on = Tensor::from_bools(&[], &[true]).unwrap();
    let err = run("Dropout", Attrs::new(), 13, &[Some(&x), None, Some(&on)]).unwrap_err();
    assert!(matches!(err, IrError::Unsupported(_)), "{err}");
    assert!(run("Dropout", Attrs::new(), 13, &[Some(&x), Some(&ratio), Some(&on)]).is_err());
    let zero = Tensor::scalar(0.0f32);
    let outs = run("Dropout", Attrs::new(), 13, &[Some(&x), Some(&zero), Some(&on)]).unwrap();
    assert_eq!(outs[0], x);
    assert_eq!(outs[1].bytes(), &[1, 1, 1]);
}

#[test]
fn is_nan_and_is_inf() {
    let x = f32s(&[4], &[f32::NEG_INFINITY, 1.0, f32::NAN, f32::INFINITY]);
    assert_eq!(run1("IsNaN", &[&x]).bytes(), &[0, 0, 1, 0]);
    assert_eq!(run1("IsInf", &[&x]).bytes(), &[1, 0, 0, 1]);
    let neg_only = Attrs::new().with("detect_positive", AttrValue::Int(0));
    assert_eq!(run("IsInf", neg_only, 20, &[Some(&x)]).unwrap()[0].bytes(), &[1, 0, 0, 0]);
}

#[test]
fn bad_attributes_fail_at_build() {
    let a = Attrs::new().with("approximate", AttrValue::String("fast".into()));
    assert!(matches!(build("Gelu", &a, 20), Err(IrError::Attr { .. })));
    let a = Attrs::new().with("direction", AttrValue::String("UP".into()));
    assert!(matches!(build("BitShift", &a, 11), Err(IrError::Attr { .. })));
    assert!(build("BitShift", &Attrs::new(), 11).is_err());
    assert!(build("Cast", &Attrs::new(), 13).is_err());
    let a = Attrs::new().with("fmod", AttrValue::Int(2));
    assert!(build("Mod", &a, 13).is_err());
}

#[test]
fn f16_arithmetic_rounds_once() {
    // np.float16(1) + np.float16(2**-11) = 1.0 (tie to even); * 3 exact
    let a = Tensor::from_slice(&[2], &[f16::ONE, f16::from_f32(3.0)]).unwrap();
    let b = Tensor::from_slice(&[2], &[f16::from_f32(2f32.powi(-11)), f16::from_f32(3.0)]).unwrap();
    let s: Vec<f32> = run1("Add", &[&a, &b]).as_slice::<f16>().unwrap().iter().map(|v| v.to_f32()).collect();
    assert_eq!(s, vec![1.0, 6.0]);
}
