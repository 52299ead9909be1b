//! Expected values were computed with numpy (in float64); each test names the expression.

use crate::{AttrValue, Attrs, DType, Fact, IrError, Result, Tensor};
use std::sync::Arc;

/// Builds `op`, infers with every input constant, then evaluates into fresh outputs.
fn run(op: &str, attrs: Attrs, opset: i64, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let op = crate::ops::build(op, &attrs, opset)?;
    let facts: Vec<Option<Fact>> =
        inputs.iter().map(|t| t.as_ref().map(|t| Fact::constant(Arc::new(t.clone())))).collect();
    let refs: Vec<Option<&Fact>> = facts.iter().map(Option::as_ref).collect();
    let out_facts = op.infer(&refs)?;
    let views: Vec<_> = inputs.iter().map(|t| t.as_ref().map(Tensor::view)).collect();
    let mut outs: Vec<Tensor> = out_facts.iter().map(|f| Tensor::zeros(f.dtype, &f.shape)).collect();
    let mut out_views: Vec<_> = outs.iter_mut().map(Tensor::view_mut).collect();
    op.eval(&views, &mut out_views)?;
    Ok(outs)
}

fn run1(op: &str, attrs: Attrs, opset: i64, inputs: &[Option<Tensor>]) -> Tensor {
    run(op, attrs, opset, inputs).unwrap().remove(0)
}

#[track_caller]
fn assert_close(t: &Tensor, shape: &[usize], want: &[f64]) {
    assert_eq!(t.shape(), shape);
    let got = t.to_f64_vec();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_infinite() { g == w } else { (g - w).abs() <= 1e-6 + 1e-5 * w.abs() };
        assert!(ok, "element {i}: got {g}, want {w} (all: {got:?})");
    }
}

/// `x = (((np.arange(24) * 7) % 11) - 5).reshape(2, 3, 4) / 4`
fn x() -> Tensor {
    let v: Vec<f32> = (0..24).map(|i| (((i * 7) % 11) - 5) as f32 / 4.0).collect();
    Tensor::from_vec(&[2, 3, 4], v).unwrap()
}

fn ints(v: &[i64]) -> Option<Tensor> {
    Some(Tensor::from_slice(&[v.len()], v).unwrap())
}

fn attrs(list: &[(&str, AttrValue)]) -> Attrs {
    list.iter().fold(Attrs::new(), |a, (k, v)| a.with(k, v.clone()))
}

#[test]
fn reduce_sum_keepdims_attr_and_input_forms() {
    // x.sum(axis=1, keepdims=True)
    let want = [-2.0, 0.5, 0.25, 0.0, 0.5, 0.25, 0.0, -0.25];
    let y = run1("ReduceSum", attrs(&[("axes", AttrValue::Ints(vec![1]))]), 11, &[Some(x())]);
    assert_close(&y, &[2, 1, 4], &want);
    let y = run1("ReduceSum", Attrs::new(), 13, &[Some(x()), ints(&[1])]);
    assert_close(&y, &[2, 1, 4], &want);
}

#[test]
fn reduce_mean_negative_axis_no_keepdims() {
    // x.mean(axis=-1)
    let want = [0.0, 0.125, -0.4375, 0.375, -0.1875, -0.0625];
    let a = attrs(&[("keepdims", AttrValue::Int(0))]);
    assert_close(&run1("ReduceMean", a.clone(), 18, &[Some(x()), ints(&[-1])]), &[2, 3], &want);
    let a = a.with("axes", AttrValue::Ints(vec![-1]));
    assert_close(&run1("ReduceMean", a, 13, &[Some(x())]), &[2, 3], &want);
}

#[test]
fn empty_axes_reduce_all_or_nothing() {
    // x.max(keepdims=True) == 1.25
    assert_close(&run1("ReduceMax", Attrs::new(), 18, &[Some(x())]), &[1, 1, 1], &[1.25]);
    assert_close(&run1("ReduceMax", Attrs::new(), 18, &[Some(x()), ints(&[])]), &[1, 1, 1], &[1.25]);
    assert_close(&run1("ReduceMax", attrs(&[("keepdims", AttrValue::Int(0))]), 11, &[Some(x())]), &[], &[1.25]);
    let noop = attrs(&[("noop_with_empty_axes", AttrValue::Int(1))]);
    let y = run1("ReduceSum", noop.clone(), 13, &[Some(x()), ints(&[])]);
    assert_eq!(y, x());
    // With no axes, each element is reduced alone (onnxruntime): ReduceSumSquare gives
    // np.square(v) and ReduceL1 np.abs(v) for v = [-2, 0.5]; ReduceSum with no input is a copy.
    let v = Tensor::from_vec(&[2], vec![-2.0f32, 0.5]).unwrap();
    assert_close(&run1("ReduceSumSquare", noop.clone(), 18, &[Some(v.clone())]), &[2], &[4.0, 0.25]);
    assert_close(&run1("ReduceL1", noop.clone(), 18, &[Some(v.clone()), ints(&[])]), &[2], &[2.0, 0.5]);
    assert_eq!(run1("ReduceSum", noop, 13, &[Some(v.clone())]), v);
}

#[test]
fn non_contiguous_axes() {
    // x.sum(axis=(0, 2))
    let y = run1("ReduceSum", attrs(&[("keepdims", AttrValue::Int(0))]), 13, &[Some(x()), ints(&[0, -1])]);
    assert_close(&y, &[3], &[1.5, -0.25, -2.0]);
    // np.sqrt((x**2).sum(axis=(0, 2)))
    let y = run1(
        "ReduceL2",
        attrs(&[("axes", AttrValue::Ints(vec![2, 0])), ("keepdims", AttrValue::Int(0))]),
        11,
        &[Some(x())],
    );
    assert_close(&y, &[3], &[2.3979157616563596, 2.0463381929681126, 2.3717082451262845]);
    // np.log(np.exp(x).sum(axis=(0, 2), keepdims=True))
    let y = run1("ReduceLogSumExp", Attrs::new(), 18, &[Some(x()), ints(&[0, 2])]);
    assert_close(&y, &[1, 3, 1], &[2.5696858142040755, 2.3058997554516467, 2.1259925227680347]);
    // np.prod(x, axis=(0, 2))
    let y = run1("ReduceProd", attrs(&[("keepdims", AttrValue::Int(0))]), 18, &[Some(x()), ints(&[-3, -1])]);
    assert_close(&y, &[3], &[-0.030517578125, 0.0, -0.0274658203125]);
}

#[test]
fn other_reductions() {
    // np.abs(x).sum(axis=0)
    let y = run1(
        "ReduceL1",
        attrs(&[("axes", AttrValue::Ints(vec![0])), ("keepdims", AttrValue::Int(0))]),
        13,
        &[Some(x())],
    );
    assert_close(&y, &[3, 4], &[1.75, 1.0, 1.75, 1.5, 1.0, 1.75, 1.0, 1.0, 1.75, 1.0, 1.5, 1.75]);
    // (x**2).sum(axis=2, keepdims=True)
    let y = run1("ReduceSumSquare", Attrs::new(), 18, &[Some(x()), ints(&[2])]);
    assert_close(&y, &[2, 3, 1], &[3.625, 1.625, 3.1875, 2.125, 2.5625, 2.4375]);
    // np.log(x.sum(axis=1)) on x = np.abs(x) + 1
    let xa: Vec<f32> = x().as_slice::<f32>().unwrap().iter().map(|v| v.abs() + 1.0).collect();
    let xa = Tensor::from_vec(&[2, 3, 4], xa).unwrap();
    let y = run1("ReduceLogSum", attrs(&[("keepdims", AttrValue::Int(0))]), 18, &[Some(xa), ints(&[1])]);
    let want = [1.7047481536865234, 1.6094379425048828, 1.5581445693969727, 1.7047481536865234];
    assert_close(&y, &[2, 4], &[want[0], want[1], want[2], want[3], want[1], want[2], want[0], want[2]]);
    // f16 is computed in f32/f64 and rounded: x.astype(np.float16).min(axis=1)
    let xh =
        Tensor::from_vec(&[2, 3], [1.5f32, -2.25, 3.0, 0.5, 0.25, -0.125].map(half::f16::from_f32).to_vec()).unwrap();
    let y = run1("ReduceMin", attrs(&[("axes", AttrValue::Ints(vec![1]))]), 13, &[Some(xh)]);
    assert_eq!(y.dtype(), DType::F16);
    assert_close(&y, &[2, 1], &[-2.25, -0.125]);
}

#[test]
fn integer_reductions() {
    let xi = Tensor::from_vec(&[2, 3], vec![1i32, -2, 7, -3, -4, 2]).unwrap();
    // np.trunc(xi.mean(axis=1)) -> [2, -1]
    let y = run1(
        "ReduceMean",
        attrs(&[("axes", AttrValue::Ints(vec![1])), ("keepdims", AttrValue::Int(0))]),
        13,
        &[Some(xi.clone())],
    );
    assert_eq!(y.as_slice::<i32>().unwrap(), &[2, -1]);
    // xi.prod() == -336
    let y = run1("ReduceProd", attrs(&[("keepdims", AttrValue::Int(0))]), 13, &[Some(xi.clone())]);
    assert_eq!(y.as_slice::<i32>().unwrap(), &[-336]);
    // Sums wrap like int32 arithmetic: np.int32(2**31 - 1) + np.int32(1) == -2**31
    let big = Tensor::from_vec(&[2], vec![i32::MAX, 1]).unwrap();
    let y = run1("ReduceSum", attrs(&[("keepdims", AttrValue::Int(0))]), 11, &[Some(big)]);
    assert_eq!(y.as_slice::<i32>().unwrap(), &[i32::MIN]);
    // ReduceMax on int8 from opset 12; bool from opset 20 (False < True)
    let x8 = Tensor::from_vec(&[3], vec![-5i8, 7, 2]).unwrap();
    assert!(matches!(run("ReduceMax", Attrs::new(), 11, &[Some(x8.clone())]), Err(IrError::UnsupportedDType { .. })));
    assert_eq!(run1("ReduceMax", Attrs::new(), 12, &[Some(x8.clone())]).as_slice::<i8>().unwrap(), &[7]);
    assert!(matches!(run("ReduceSum", Attrs::new(), 13, &[Some(x8)]), Err(IrError::UnsupportedDType { .. })));
    let b = Tensor::from_bools(&[2, 2], &[true, false, true, true]).unwrap();
    let y = run1("ReduceMin", Attrs::new(), 20, &[Some(b.clone()), ints(&[1])]);
    assert_eq!((y.dtype(), y.bytes()), (DType::Bool, &[0u8, 1][..]));
    assert!(run("ReduceMin", Attrs::new(), 18, &[Some(b), ints(&[1])]).is_err());
    // int L2 is rounded toward zero: np.sqrt(3**2 + 4**2 + 1) = 5.099 -> 5
    let xi = Tensor::from_vec(&[3], vec![3i64, 4, 1]).unwrap();
    assert_eq!(run1("ReduceL2", Attrs::new(), 13, &[Some(xi)]).as_slice::<i64>().unwrap(), &[5]);
}

#[test]
fn empty_sets_yield_identities() {
    let e = Tensor::zeros(DType::F32, &[2, 0, 4]);
    for (op, v) in [
        ("ReduceSum", 0.0),
        ("ReduceProd", 1.0),
        ("ReduceMax", f64::NEG_INFINITY),
        ("ReduceMin", f64::INFINITY),
        ("ReduceL2", 0.0),
        ("ReduceLogSumExp", f64::NEG_INFINITY),
        ("ReduceLogSum", f64::NEG_INFINITY),
    ] {
        let y = run1(op, Attrs::new(), 18, &[Some(e.clone()), ints(&[1])]);
        assert_close(&y, &[2, 1, 4], &[v; 8]);
    }
    let y = run1("ReduceSum", Attrs::new(), 13, &[Some(e.clone()), ints(&[2])]);
    assert_eq!(y.shape(), &[2, 0, 1]);
    let ei = Tensor::zeros(DType::I32, &[2, 0]);
    let y = run1("ReduceMax", Attrs::new(), 18, &[Some(ei), ints(&[1])]);
    assert_eq!(y.as_slice::<i32>().unwrap(), &[i32::MIN, i32::MIN]);
}

#[test]
fn reduce_rejects_bad_axes() {
    assert!(matches!(run("ReduceSum", Attrs::new(), 13, &[Some(x()), ints(&[3])]), Err(IrError::Shape(_))));
    assert!(matches!(run("ReduceSum", Attrs::new(), 13, &[Some(x()), ints(&[1, -2])]), Err(IrError::Shape(_))));
    assert!(matches!(
        run("ReduceSum", attrs(&[("axes", AttrValue::Ints(vec![-4]))]), 11, &[Some(x())]),
        Err(IrError::Shape(_))
    ));
    assert!(matches!(
        crate::ops::build("ReduceMean", &attrs(&[("axes", AttrValue::Ints(vec![0]))]), 18),
        Err(IrError::Attr { .. })
    ));
    assert!(matches!(
        crate::ops::build("ReduceMean", &attrs(&[("keepdims", AttrValue::Int(2))]), 13),
        Err(IrError::Attr { .. })
    ));
    // Axes must be known at build time.
    let op = crate::ops::build("ReduceSum", &Attrs::new(), 13).unwrap();
    assert_eq!(op.const_inputs(), &[1]);
    let xf = Fact::new(DType::F32, vec![2, 3]);
    let af = Fact::new(DType::I64, vec![1]);
    assert!(matches!(op.infer(&[Some(&xf), Some(&af)]), Err(IrError::NotConstant { .. })));
}

#[test]
fn softmax_opset11_coerces_opset13_uses_one_axis() {
    let a = attrs(&[("axis", AttrValue::Int(1))]);
    // e = np.exp(x - x.max(axis=1, keepdims=True)); e / e.sum(axis=1, keepdims=True)
    let want13 = [
        0.14780404965619495,
        0.38902479913658233,
        0.14780404965619495,
        0.7306791292026887,
        0.6624117938958736,
        0.11145747105020276,
        0.6624117938958736,
        0.20934307548219694,
        0.18978415644793137,
        0.499517729813215,
        0.18978415644793137,
        0.05997779531511428,
        0.38902479913658233,
        0.14780404965619495,
        0.7306791292026887,
        0.38902479913658233,
        0.11145747105020276,
        0.6624117938958736,
        0.20934307548219694,
        0.11145747105020276,
        0.499517729813215,
        0.18978415644793137,
        0.05997779531511428,
        0.499517729813215,
    ];
    assert_close(&run1("Softmax", a.clone(), 13, &[Some(x())]), &[2, 3, 4], &want13);
    // The same softmax over x.reshape(2, 12) along axis 1.
    let want11 = [
        0.019028065759309324,
        0.10949895813773443,
        0.0402824155285649,
        0.23180929619665439,
        0.08527787434317056,
        0.03137197675765407,
        0.18053326140118567,
        0.0664144753171261,
        0.024432520065358898,
        0.14059944534967803,
        0.051723645384254294,
        0.019028065759309324,
        0.10041437960705796,
        0.03694038585542156,
        0.21257724329629313,
        0.07820279746960605,
        0.02876920143116216,
        0.16555532354231364,
        0.06090439990770367,
        0.02240547660292807,
        0.12893461561639363,
        0.04743239434061361,
        0.017449402723448422,
        0.10041437960705796,
    ];
    assert_close(&run1("Softmax", a.clone(), 11, &[Some(x())]), &[2, 3, 4], &want11);
    // Opset 11's default axis is 1 as well.
    assert_close(&run1("Softmax", Attrs::new(), 11, &[Some(x())]), &[2, 3, 4], &want11);
    assert!(matches!(run("Softmax", attrs(&[("axis", AttrValue::Int(3))]), 13, &[Some(x())]), Err(IrError::Shape(_))));
    // Large inputs do not overflow: softmax([1000, 1001]) = [0.2689414213699951, 0.7310585786300049]
    let big = Tensor::from_vec(&[2], vec![1000.0f32, 1001.0]).unwrap();
    assert_close(&run1("Softmax", Attrs::new(), 13, &[Some(big)]), &[2], &[0.2689414213699951, 0.7310585786300049]);
}

#[test]
fn log_softmax_and_hardmax() {
    // m = x.max(-1, keepdims=True); x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))
    let want = [
        -3.047095156552987,
        -1.2970951565529871,
        -2.297095156552987,
        -0.5470951565529871,
        -1.450132693633123,
        -2.450132693633123,
        -0.7001326936331228,
        -1.700132693633123,
        -2.266999725429153,
        -0.516999725429153,
        -1.516999725429153,
        -2.516999725429153,
        -1.450132693633123,
        -2.450132693633123,
        -0.7001326936331228,
        -1.700132693633123,
        -2.266999725429153,
        -0.516999725429153,
        -1.516999725429153,
        -2.516999725429153,
        -0.8250590469818512,
        -1.8250590469818513,
        -2.8250590469818513,
        -1.0750590469818513,
    ];
    assert_close(&run1("LogSoftmax", Attrs::new(), 13, &[Some(x())]), &[2, 3, 4], &want);
    let xa = Tensor::from_vec(&[3, 3], vec![1.0f32, 3.0, 3.0, 2.0, 2.0, 0.0, 5.0, -1.0, 5.0]).unwrap();
    let a0 = attrs(&[("axis", AttrValue::Int(0))]);
    // np.arange(3)[:, None] == np.argmax(xa, axis=0)[None, :]
    assert_close(&run1("Hardmax", a0.clone(), 13, &[Some(xa.clone())]), &[3, 3], &[0., 1., 0., 0., 0., 0., 1., 0., 1.]);
    // opset 11, axis 0: one-hot of np.argmax(xa.ravel()) (the first 5)
    assert_close(&run1("Hardmax", a0, 11, &[Some(xa)]), &[3, 3], &[0., 0., 0., 0., 0., 0., 1., 0., 0.]);
}

#[test]
fn argmax_argmin() {
    let xa = Tensor::from_vec(&[3, 3], vec![1.0f32, 3.0, 3.0, 2.0, 2.0, 0.0, 5.0, -1.0, 5.0]).unwrap();
    // np.argmax(xa, axis=1) -> [1, 0, 0]; last occurrence: 2 - np.argmax(np.flip(xa, 1), 1) -> [2, 1, 2]
    let a = attrs(&[("axis", AttrValue::Int(-1)), ("keepdims", AttrValue::Int(0))]);
    let y = run1("ArgMax", a.clone(), 13, &[Some(xa.clone())]);
    assert_eq!((y.shape(), y.as_slice::<i64>().unwrap()), (&[3][..], &[1i64, 0, 0][..]));
    let y = run1("ArgMax", a.with("select_last_index", AttrValue::Int(1)), 13, &[Some(xa.clone())]);
    assert_eq!(y.as_slice::<i64>().unwrap(), &[2, 1, 2]);
    // np.argmin(xa, axis=0, keepdims=True) -> [[0, 2, 1]]
    let y = run1("ArgMin", Attrs::new(), 13, &[Some(xa)]);
    assert_eq!((y.shape(), y.as_slice::<i64>().unwrap()), (&[1, 3][..], &[0i64, 2, 1][..]));
    // ties along axis 0 of [[0, 1], [0, 1]]: first [0, 0], last [1, 1]
    let t = Tensor::from_vec(&[2, 2], vec![0i32, 1, 0, 1]).unwrap();
    assert_eq!(run1("ArgMin", Attrs::new(), 13, &[Some(t.clone())]).as_slice::<i64>().unwrap(), &[0, 0]);
    let last = attrs(&[("select_last_index", AttrValue::Int(1))]);
    assert_eq!(run1("ArgMin", last, 13, &[Some(t)]).as_slice::<i64>().unwrap(), &[1, 1]);
    assert!(run("ArgMax", Attrs::new(), 13, &[Some(Tensor::zeros(DType::F32, &[0, 2]))]).is_err());
}

#[test]
fn layer_norm_with_stats() {
    // axes = (1, 2); m = x.mean(axes, keepdims=True); v = ((x - m)**2).mean(axes, keepdims=True)
    // inv = 1 / np.sqrt(v + 1e-5); y = (x - m) * inv * s + b
    let s = Tensor::from_vec(&[3, 4], vec![0.5f32, 1.0, 1.5, 2.0, 1.0, -1.0, 2.0, -2.0, 0.25, 0.5, 0.75, 1.0]).unwrap();
    let b = Tensor::from_vec(&[4], vec![0.1f32, 0.2, 0.3, 0.4]).unwrap();
    let out =
        run("LayerNormalization", attrs(&[("axis", AttrValue::Int(-2))]), 17, &[Some(x()), Some(s.clone()), Some(b)])
            .unwrap();
    let want = [
        -0.5885717697844701,
        0.9261302299545322,
        -0.41361074323117814,
        3.655066548072041,
        0.5256625485940362,
        0.9762081768479483,
        2.9541311853510486,
        0.14961026553291995,
        -0.16916896455211108,
        0.713298955657514,
        0.16854538940478297,
        -0.9771435395689402,
        0.3978391831266319,
        -0.5039835237538572,
        2.6556371756379065,
        0.9415257875029671,
        -0.9288989962556374,
        -1.0455093112568246,
        0.19169484249940658,
        3.1076289375148356,
        0.33014845968876105,
        0.010465974373961517,
        -0.9590474559443984,
        0.9956783662532638,
    ];
    assert_close(&out[0], &[2, 3, 4], &want);
    assert_close(&out[1], &[2, 1, 1], &[-0.10416666666666667, 0.041666666666666664]);
    assert_close(&out[2], &[2, 1, 1], &[1.2018707254419843, 1.299661890007121]);
    assert_eq!(out[1].dtype(), DType::F32);
    // Only Y requested: the stats outputs may be absent.
    let op = crate::ops::build("LayerNormalization", &Attrs::new(), 17).unwrap();
    let xt = x();
    let st = Tensor::from_vec(&[4], vec![1.0f32; 4]).unwrap();
    let mut y = Tensor::zeros(DType::F32, &[2, 3, 4]);
    op.eval(&[Some(xt.view()), Some(st.view()), None], &mut [y.view_mut()]).unwrap();
    assert!(y.as_slice::<f32>().unwrap().iter().all(|v| v.is_finite()));
    // Scale must broadcast to X.
    let bad = Tensor::from_vec(&[3], vec![1.0f32; 3]).unwrap();
    assert!(matches!(run("LayerNormalization", Attrs::new(), 17, &[Some(x()), Some(bad)]), Err(IrError::Shape(_))));
    assert!(matches!(
        crate::ops::build("LayerNormalization", &attrs(&[("stash_type", AttrValue::Int(11))]), 17),
        Err(IrError::Attr { .. })
    ));
}

#[test]
fn mvn_and_lp_norm() {
    // x4 = x.reshape(2, 3, 2, 2); ax = (0, 2, 3); m = x4.mean(ax, keepdims=True)
    // sd = np.sqrt(((x4 - m)**2).mean(ax, keepdims=True)); (x4 - m) / (sd + 1e-9)
    let x4 = x().reshaped(&[2, 3, 2, 2]).unwrap();
    let want = [
        -1.7386365737395881,
        0.3779644725520844,
        -0.8315218396145857,
        1.2850792066770869,
        0.38910393051208747,
        -0.994376711308668,
        1.4267144118776542,
        0.04323377005689861,
        -0.9370425701609048,
        1.249390093547873,
        0.0,
        -1.249390093547873,
        0.3779644725520844,
        -0.8315218396145857,
        1.2850792066770869,
        0.07559289451041688,
        -0.994376711308668,
        1.4267144118776542,
        0.04323377005689861,
        -1.340246871763857,
        1.249390093547873,
        0.0,
        -1.249390093547873,
        0.9370425701609048,
    ];
    assert_close(&run1("MeanVarianceNormalization", Attrs::new(), 13, &[Some(x4)]), &[2, 3, 2, 2], &want);
    // [[3, 4, 0], [0, 0, 0]]: L2 along axis 0 -> [[1, 1, 0], [0, 0, 0]] (zero norms give 0);
    // L1 along axis 1 -> [[3/7, 4/7, 0], [0, 0, 0]]
    let lp = Tensor::from_vec(&[2, 3], vec![3.0f32, 4.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
    let y = run1("LpNormalization", attrs(&[("axis", AttrValue::Int(0))]), 13, &[Some(lp.clone())]);
    assert_close(&y, &[2, 3], &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let y = run1("LpNormalization", attrs(&[("p", AttrValue::Int(1))]), 13, &[Some(lp)]);
    assert_close(&y, &[2, 3], &[3.0 / 7.0, 4.0 / 7.0, 0.0, 0.0, 0.0, 0.0]);
    assert!(crate::ops::build("LpNormalization", &attrs(&[("p", AttrValue::Int(3))]), 13).is_err());
}
