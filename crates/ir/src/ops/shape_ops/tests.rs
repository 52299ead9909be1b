//! Unit tests of the shape ops. Expected values were computed independently with numpy
//! (the expression is quoted next to each), not taken from this implementation.

use crate::ops::build;
use crate::{AttrValue, Attrs, DType, Elem, Fact, IrError, Result, Tensor};
use std::sync::Arc;

/// Builds `op_type`, infers with every input constant, evaluates, and checks that
/// inference and evaluation agree on the output dtypes and shapes.
fn run(op_type: &str, attrs: Attrs, opset: i64, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let op = build(op_type, &attrs, opset)?;
    let facts: Vec<Option<Fact>> = inputs.iter().map(|t| t.clone().map(|t| Fact::constant(Arc::new(t)))).collect();
    let refs: Vec<Option<&Fact>> = facts.iter().map(Option::as_ref).collect();
    let out_facts = op.infer(&refs)?;
    let views: Vec<_> = inputs.iter().map(|t| t.as_ref().map(Tensor::view)).collect();
    let mut outs: Vec<Tensor> = out_facts.iter().map(|f| Tensor::zeros(f.dtype, &f.shape)).collect();
    let mut out_views: Vec<_> = outs.iter_mut().map(Tensor::view_mut).collect();
    op.eval(&views, &mut out_views)?;
    for (f, t) in out_facts.iter().zip(&outs) {
        if let Some(v) = &f.value {
            assert_eq!(**v, *t, "{op_type}: value from inference differs from evaluation");
        }
    }
    Ok(outs)
}

fn run1(op_type: &str, attrs: Attrs, opset: i64, inputs: &[Option<Tensor>]) -> Tensor {
    run(op_type, attrs, opset, inputs).unwrap().remove(0)
}

fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_slice(shape, v).unwrap()
}
fn vec1(v: &[i64]) -> Option<Tensor> {
    Some(i64s(&[v.len()], v))
}
fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_slice(shape, v).unwrap()
}
fn arange(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    i64s(shape, &(0..n as i64).collect::<Vec<_>>())
}
/// The same values in another dtype (bool keeps nonzero as true).
fn cast(t: &Tensor, dtype: DType) -> Tensor {
    let v = t.to_f64_vec();
    crate::dispatch_dtype!(dtype, T => {
        let data: Vec<T> = v.iter().map(|&x| T::from_f64(if dtype == DType::Bool { (x != 0.0) as u8 as f64 } else { x })).collect();
        Tensor::from_bytes(dtype, t.shape(), bytemuck::cast_slice(&data)).unwrap()
    })
}
fn vals(t: &Tensor) -> Vec<i64> {
    t.to_f64_vec().into_iter().map(|v| v as i64).collect()
}
fn attrs(list: &[(&str, AttrValue)]) -> Attrs {
    let mut a = Attrs::new();
    for (k, v) in list {
        a.insert(k, v.clone());
    }
    a
}
fn ints(v: &[i64]) -> AttrValue {
    AttrValue::Ints(v.to_vec())
}

#[test]
fn reshape_zero_minus_one_and_allowzero() {
    let x = arange(&[2, 3, 4]);
    // np.reshape(x, (2, -1)) with 0 copying dim 0
    let y = run1("Reshape", Attrs::new(), 13, &[Some(x.clone()), vec1(&[0, -1])]);
    assert_eq!(y.shape(), &[2, 12]);
    assert_eq!(vals(&y), (0..24).collect::<Vec<_>>());
    let y = run1("Reshape", Attrs::new(), 13, &[Some(x.clone()), vec1(&[4, 0, -1])]);
    assert_eq!(y.shape(), &[4, 3, 2]);
    // allowzero: a literal 0 dim, valid only for an empty input
    let e = Tensor::zeros(DType::F32, &[0, 3]);
    let az = attrs(&[("allowzero", AttrValue::Int(1))]);
    assert_eq!(run1("Reshape", az.clone(), 14, &[Some(e.clone()), vec1(&[3, 0])]).shape(), &[3, 0]);
    // without allowzero the 0 copies dim 1 (3) and 0 elements cannot become 9
    assert!(run("Reshape", Attrs::new(), 14, &[Some(e.clone()), vec1(&[3, 0])]).is_err());
    assert!(run("Reshape", az, 14, &[Some(e), vec1(&[0, -1])]).is_err());
    assert!(run("Reshape", Attrs::new(), 13, &[Some(x.clone()), vec1(&[-1, -1])]).is_err());
    assert!(run("Reshape", Attrs::new(), 13, &[Some(x.clone()), vec1(&[5, -1])]).is_err());
    assert!(run("Reshape", Attrs::new(), 13, &[Some(x), vec1(&[2, -3, 4])]).is_err());
}

#[test]
fn reshape_needs_a_constant_shape() {
    let op = build("Reshape", &Attrs::new(), 13).unwrap();
    let x = Fact::new(DType::F32, vec![2, 3]);
    let s = Fact::new(DType::I64, vec![1]);
    match op.infer(&[Some(&x), Some(&s)]) {
        Err(IrError::NotConstant { op, index: 1, .. }) => assert_eq!(op, "Reshape"),
        other => panic!("expected NotConstant, got {other:?}"),
    }
    assert_eq!(op.const_inputs(), &[1]);
}

#[test]
fn slice_negative_steps_and_clamping() {
    let x = arange(&[4, 5]);
    // x[-1::-2, 10:1:-1] (end INT64_MIN means "through the start")
    let y = run1(
        "Slice",
        Attrs::new(),
        13,
        &[Some(x.clone()), vec1(&[-1, 10]), vec1(&[i64::MIN, 1]), vec1(&[0, 1]), vec1(&[-2, -1])],
    );
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(vals(&y), [19, 18, 17, 9, 8, 7]);
    // x[1::2, -100:3] with end INT64_MAX and negative axes
    let y = run1(
        "Slice",
        Attrs::new(),
        13,
        &[Some(x.clone()), vec1(&[1, -100]), vec1(&[i64::MAX, 3]), vec1(&[-2, -1]), vec1(&[2, 1])],
    );
    assert_eq!(vals(&y), [5, 6, 7, 15, 16, 17]);
    // x[:, 4:-7:-2] and an empty x[0:0]
    let y = run1("Slice", Attrs::new(), 13, &[Some(x.clone()), vec1(&[4]), vec1(&[-7]), vec1(&[1]), vec1(&[-2])]);
    assert_eq!(vals(&y), [4, 2, 0, 9, 7, 5, 14, 12, 10, 19, 17, 15]);
    let y = run1("Slice", Attrs::new(), 13, &[Some(x.clone()), vec1(&[0]), vec1(&[0]), None, None]);
    assert_eq!(y.shape(), &[0, 5]);
    // opset 1 attributes, axes omitted
    let a = attrs(&[("starts", ints(&[1, 1])), ("ends", ints(&[3, 1000]))]);
    assert_eq!(vals(&run1("Slice", a, 1, &[Some(x.clone())])), [6, 7, 8, 9, 11, 12, 13, 14]);
    // zero step and repeated axes are errors
    assert!(run("Slice", Attrs::new(), 13, &[Some(x.clone()), vec1(&[0]), vec1(&[2]), vec1(&[0]), vec1(&[0])]).is_err());
    assert!(run("Slice", Attrs::new(), 13, &[Some(x), vec1(&[0, 0]), vec1(&[1, 1]), vec1(&[1, -1]), None]).is_err());
}

#[test]
fn slice_moves_every_dtype() {
    for dtype in DType::ALL {
        let x = cast(&arange(&[4, 5]), dtype);
        let y = run1("Slice", Attrs::new(), 13, &[Some(x), vec1(&[3, 4]), vec1(&[0, 0]), None, vec1(&[-2, -3])]);
        assert_eq!(y.dtype(), dtype);
        // x[3:0:-2, 4:0:-3] = [[19, 16], [9, 6]]
        assert_eq!(y, cast(&i64s(&[2, 2], &[19, 16, 9, 6]), dtype), "{dtype}");
    }
}

#[test]
fn split_uneven_and_sizes() {
    let x = arange(&[7]);
    // opset 18 num_outputs=3: np.split(x, [3, 6])
    let parts = run("Split", attrs(&[("num_outputs", AttrValue::Int(3))]), 18, &[Some(x.clone())]).unwrap();
    let got: Vec<Vec<i64>> = parts.iter().map(vals).collect();
    assert_eq!(got, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    // sizes as an input (opset 13) and as an attribute (opset 11)
    let parts = run("Split", Attrs::new(), 13, &[Some(x.clone()), vec1(&[2, 5])]).unwrap();
    assert_eq!(parts.iter().map(vals).collect::<Vec<_>>(), vec![vec![0, 1], vec![2, 3, 4, 5, 6]]);
    let parts = run("Split", attrs(&[("split", ints(&[4, 0, 3]))]), 11, &[Some(x.clone())]).unwrap();
    assert_eq!(parts.iter().map(|p| p.shape()[0]).collect::<Vec<_>>(), [4, 0, 3]);
    assert!(run("Split", Attrs::new(), 13, &[Some(x.clone()), vec1(&[2, 4])]).is_err());
    // 2-D along the last axis: np.split(arange(10).reshape(2, 5), [3], axis=1)
    let parts = run(
        "Split",
        attrs(&[("axis", AttrValue::Int(-1)), ("num_outputs", AttrValue::Int(2))]),
        18,
        &[Some(cast(&arange(&[2, 5]), DType::F16))],
    )
    .unwrap();
    assert_eq!(vals(&parts[0]), [0, 1, 2, 5, 6, 7]);
    assert_eq!(vals(&parts[1]), [3, 4, 8, 9]);
}

#[test]
fn gather_negative_indices() {
    let d = arange(&[3, 2]);
    // d[[[-1, 0], [1, -3]]]
    let y = run1("Gather", Attrs::new(), 13, &[Some(d.clone()), Some(i64s(&[2, 2], &[-1, 0, 1, -3]))]);
    assert_eq!(y.shape(), &[2, 2, 2]);
    assert_eq!(vals(&y), [4, 5, 0, 1, 2, 3, 0, 1]);
    // np.take(d, [[-1], [0]], axis=1) with int32 indices
    let idx = Tensor::from_slice(&[2, 1], &[-1i32, 0]).unwrap();
    let y = run1("Gather", attrs(&[("axis", AttrValue::Int(1))]), 13, &[Some(d.clone()), Some(idx)]);
    assert_eq!(y.shape(), &[3, 2, 1]);
    assert_eq!(vals(&y), [1, 0, 3, 2, 5, 4]);
    // scalar index drops the axis
    let y = run1("Gather", Attrs::new(), 13, &[Some(d.clone()), Some(Tensor::scalar(-2i64))]);
    assert_eq!((y.shape(), vals(&y)), (&[2usize][..], vec![2, 3]));
    let bad = run("Gather", Attrs::new(), 13, &[Some(d), Some(i64s(&[1], &[3]))]);
    assert!(matches!(bad, Err(IrError::Data(_))), "{bad:?}");
}

#[test]
fn gather_elements_and_nd() {
    // np.take_along_axis(arange(9).reshape(3, 3), [[-1, 0, 1], [2, -2, 0]], axis=0)
    let y =
        run1("GatherElements", Attrs::new(), 13, &[Some(arange(&[3, 3])), Some(i64s(&[2, 3], &[-1, 0, 1, 2, -2, 0]))]);
    assert_eq!(vals(&y), [6, 1, 5, 6, 4, 2]);
    // batch_dims=1: [d[b][tuple(ind[b, 0])] for b in 0..2] = [7, 14]
    let y = run1(
        "GatherND",
        attrs(&[("batch_dims", AttrValue::Int(1))]),
        13,
        &[Some(arange(&[2, 3, 4])), Some(i64s(&[2, 1, 2], &[1, -1, 0, 2]))],
    );
    assert_eq!((y.shape(), vals(&y)), (&[2usize, 1][..], vec![7, 14]));
    // slices: d[[1], [0]] rows of arange(6).reshape(3, 2)
    let y = run1("GatherND", Attrs::new(), 13, &[Some(arange(&[3, 2])), Some(i64s(&[2, 1], &[1, 0]))]);
    assert_eq!((y.shape(), vals(&y)), (&[2usize, 2][..], vec![2, 3, 0, 1]));
}

#[test]
fn scatter_elements_and_nd() {
    // ONNX ScatterElements example with axis=1: data [[1,2,3,4,5]], indices [[1,3]], updates [[1.1,2.1]]
    let y = run1(
        "ScatterElements",
        attrs(&[("axis", AttrValue::Int(1))]),
        18,
        &[Some(f32s(&[1, 5], &[1., 2., 3., 4., 5.])), Some(i64s(&[1, 2], &[1, -2])), Some(f32s(&[1, 2], &[1.5, 2.5]))],
    );
    assert_eq!(y.as_slice::<f32>().unwrap(), &[1., 1.5, 3., 2.5, 5.]);
    // duplicates with add: index 1 twice
    let y = run1(
        "ScatterElements",
        attrs(&[("axis", AttrValue::Int(1)), ("reduction", AttrValue::String("add".into()))]),
        18,
        &[Some(f32s(&[1, 5], &[1., 2., 3., 4., 5.])), Some(i64s(&[1, 2], &[1, 1])), Some(f32s(&[1, 2], &[1.5, 2.5]))],
    );
    assert_eq!(y.as_slice::<f32>().unwrap(), &[1., 6., 3., 4., 5.]);
    // ScatterND add: r[[1]] += [10,20,30,40]; r[[0]] += 1; r[[1]] += 100
    let y = run1(
        "ScatterND",
        attrs(&[("reduction", AttrValue::String("add".into()))]),
        18,
        &[
            Some(arange(&[2, 4])),
            Some(i64s(&[3, 1], &[1, 0, 1])),
            Some(i64s(&[3, 4], &[10, 20, 30, 40, 1, 1, 1, 1, 100, 100, 100, 100])),
        ],
    );
    assert_eq!(vals(&y), [1, 2, 3, 4, 114, 125, 136, 147]);
    let bad = run(
        "ScatterND",
        Attrs::new(),
        13,
        &[Some(arange(&[2, 4])), Some(i64s(&[1, 1], &[2])), Some(i64s(&[1, 4], &[0; 4]))],
    );
    assert!(matches!(bad, Err(IrError::Data(_))), "{bad:?}");
}

#[test]
fn pad_reflect_edge_wrap_constant() {
    let p = i64s(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let mode = |m: &str| attrs(&[("mode", AttrValue::String(m.into()))]);
    // np.pad(p, ((1, 1), (2, 3)), 'reflect'): pad 3 exceeds dim - 1 and reflects again
    let y = run1("Pad", mode("reflect"), 13, &[Some(p.clone()), vec1(&[1, 2, 1, 3])]);
    assert_eq!(y.shape(), &[4, 8]);
    assert_eq!(
        vals(&y),
        [6, 5, 4, 5, 6, 5, 4, 5, 3, 2, 1, 2, 3, 2, 1, 2, 6, 5, 4, 5, 6, 5, 4, 5, 3, 2, 1, 2, 3, 2, 1, 2]
    );
    // np.pad(p, ((0, 1), (2, 1)), 'edge')
    let y = run1("Pad", mode("edge"), 13, &[Some(p.clone()), vec1(&[0, 2, 1, 1])]);
    assert_eq!(vals(&y), [1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6, 4, 4, 4, 5, 6, 6]);
    // np.pad(p, ((1, 0), (1, 4)), 'wrap')
    let y = run1("Pad", mode("wrap"), 19, &[Some(p.clone()), vec1(&[1, 1, 0, 4])]);
    assert_eq!(vals(&y), [6, 4, 5, 6, 4, 5, 6, 4, 3, 1, 2, 3, 1, 2, 3, 1, 6, 4, 5, 6, 4, 5, 6, 4]);
    // constant with a value input, axes (opset 18) and a negative (cropping) pad
    let y = run1("Pad", Attrs::new(), 18, &[Some(p.clone()), vec1(&[-1, 2]), Some(Tensor::scalar(9i64)), vec1(&[-1])]);
    assert_eq!(vals(&y), [2, 3, 9, 9, 5, 6, 9, 9]);
    // opset 2: pads and value attributes, f16 data
    let a = attrs(&[("pads", ints(&[1, 0, 0, 0])), ("value", AttrValue::Float(1.5))]);
    let y = run1("Pad", a, 2, &[Some(cast(&p, DType::F16))]);
    assert_eq!(y.to_f64_vec(), [1.5, 1.5, 1.5, 1., 2., 3., 4., 5., 6.]);
    assert!(run("Pad", Attrs::new(), 13, &[Some(p), vec1(&[0, -4, 0, 0])]).is_err());
}

#[test]
fn expand_is_bidirectional() {
    let x = i64s(&[3, 1], &[1, 2, 3]);
    // np.broadcast_to([[1], [2], [3]], (2, 3, 6)), requested as shape [2, 1, 6]
    let y = run1("Expand", Attrs::new(), 13, &[Some(x.clone()), vec1(&[2, 1, 6])]);
    assert_eq!(y.shape(), &[2, 3, 6]);
    let row = |v| vec![v; 6];
    let one: Vec<i64> = [row(1), row(2), row(3)].concat();
    assert_eq!(vals(&y), [one.clone(), one].concat());
    // a shorter shape keeps the input's rank
    assert_eq!(run1("Expand", Attrs::new(), 13, &[Some(x.clone()), vec1(&[1])]).shape(), &[3, 1]);
    assert!(run("Expand", Attrs::new(), 13, &[Some(x), vec1(&[2, 2])]).is_err());
}

#[test]
fn layout_ops_match_numpy() {
    let x = arange(&[2, 8, 2, 3]);
    // x.reshape(n, b, b, c/4, h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c/4, h*b, w*b)
    let dcr = [
        0, 12, 1, 13, 2, 14, 24, 36, 25, 37, 26, 38, 3, 15, 4, 16, 5, 17, 27, 39, 28, 40, 29, 41, 6, 18, 7, 19, 8, 20,
        30, 42, 31, 43, 32, 44, 9, 21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47, 48, 60, 49, 61, 50, 62, 72, 84, 73, 85,
        74, 86, 51, 63, 52, 64, 53, 65, 75, 87, 76, 88, 77, 89, 54, 66, 55, 67, 56, 68, 78, 90, 79, 91, 80, 92, 57, 69,
        58, 70, 59, 71, 81, 93, 82, 94, 83, 95,
    ];
    let y = run1("DepthToSpace", attrs(&[("blocksize", AttrValue::Int(2))]), 13, &[Some(x.clone())]);
    assert_eq!((y.shape(), vals(&y)), (&[2usize, 2, 4, 6][..], dcr.to_vec()));
    // CRD: x.reshape(n, c/4, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    let crd = [
        0, 6, 1, 7, 2, 8, 12, 18, 13, 19, 14, 20, 3, 9, 4, 10, 5, 11, 15, 21, 16, 22, 17, 23, 24, 30, 25, 31, 26, 32,
        36, 42, 37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47, 48, 54, 49, 55, 50, 56, 60, 66, 61, 67,
        62, 68, 51, 57, 52, 58, 53, 59, 63, 69, 64, 70, 65, 71, 72, 78, 73, 79, 74, 80, 84, 90, 85, 91, 86, 92, 75, 81,
        76, 82, 77, 83, 87, 93, 88, 94, 89, 95,
    ];
    let a = attrs(&[("blocksize", AttrValue::Int(2)), ("mode", AttrValue::String("CRD".into()))]);
    assert_eq!(vals(&run1("DepthToSpace", a, 13, &[Some(x)])), crd);
    // SpaceToDepth: s.reshape(n, c, h/b, b, w/b, b).transpose(0, 3, 5, 1, 2, 4)
    let s2d = [
        0, 2, 4, 12, 14, 16, 24, 26, 28, 36, 38, 40, 1, 3, 5, 13, 15, 17, 25, 27, 29, 37, 39, 41, 6, 8, 10, 18, 20, 22,
        30, 32, 34, 42, 44, 46, 7, 9, 11, 19, 21, 23, 31, 33, 35, 43, 45, 47,
    ];
    let y = run1(
        "SpaceToDepth",
        attrs(&[("blocksize", AttrValue::Int(2))]),
        13,
        &[Some(cast(&arange(&[1, 2, 4, 6]), DType::I32))],
    );
    assert_eq!((y.shape(), vals(&y)), (&[1usize, 8, 2, 3][..], s2d.to_vec()));
    // np.tile([[1, 2], [3, 4]], (2, 3)) on bools and bytes alike
    let t = run1("Tile", Attrs::new(), 13, &[Some(cast(&i64s(&[2, 2], &[1, 2, 3, 4]), DType::U8)), vec1(&[2, 3])]);
    assert_eq!(vals(&t), [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4]);
    // Transpose: default reverses, perm permutes (x.transpose(1, 0, 2) of arange(2, 2, 2))
    let y = run1("Transpose", Attrs::new(), 13, &[Some(arange(&[2, 3]))]);
    assert_eq!((y.shape(), vals(&y)), (&[3usize, 2][..], vec![0, 3, 1, 4, 2, 5]));
    let y = run1("Transpose", attrs(&[("perm", ints(&[1, 0, 2]))]), 13, &[Some(cast(&arange(&[2, 2, 2]), DType::F16))]);
    assert_eq!(vals(&y), [0, 1, 4, 5, 2, 3, 6, 7]);
    assert!(run("Transpose", attrs(&[("perm", ints(&[0, 0]))]), 13, &[Some(arange(&[2, 3]))]).is_err());
}

#[test]
fn concat_squeeze_unsqueeze_flatten() {
    let a = arange(&[2, 1]);
    let b = i64s(&[2, 2], &[7, 8, 9, 10]);
    let e = Tensor::zeros(DType::I64, &[2, 0]);
    // np.concatenate([a, e, b], axis=-1)
    let y = run1("Concat", attrs(&[("axis", AttrValue::Int(-1))]), 13, &[Some(a.clone()), Some(e), Some(b)]);
    assert_eq!((y.shape(), vals(&y)), (&[2usize, 3][..], vec![0, 7, 8, 1, 9, 10]));
    assert!(run("Concat", attrs(&[("axis", AttrValue::Int(0))]), 13, &[Some(a), Some(arange(&[2, 2]))]).is_err());

    let x = Tensor::zeros(DType::Bool, &[1, 3, 1, 2]);
    assert_eq!(run1("Squeeze", Attrs::new(), 13, &[Some(x.clone())]).shape(), &[3, 2]);
    assert_eq!(run1("Squeeze", Attrs::new(), 13, &[Some(x.clone()), vec1(&[-2])]).shape(), &[1, 3, 2]);
    assert_eq!(run1("Squeeze", attrs(&[("axes", ints(&[0]))]), 11, &[Some(x.clone())]).shape(), &[3, 1, 2]);
    // an empty axes list squeezes every unit axis, as onnxruntime does
    assert_eq!(run1("Squeeze", Attrs::new(), 13, &[Some(x.clone()), Some(i64s(&[0], &[]))]).shape(), &[3, 2]);
    assert!(run("Squeeze", Attrs::new(), 13, &[Some(x.clone()), vec1(&[1])]).is_err());
    // np.expand_dims(x3x2, (0, -1)) -> [1, 3, 2, 1]; unsorted axes [3, 0]
    let y = run1("Unsqueeze", Attrs::new(), 13, &[Some(arange(&[3, 2])), vec1(&[3, 0])]);
    assert_eq!((y.shape(), vals(&y)), (&[1usize, 3, 2, 1][..], (0..6).collect()));
    assert_eq!(run1("Unsqueeze", attrs(&[("axes", ints(&[-1]))]), 11, &[Some(arange(&[3]))]).shape(), &[3, 1]);
    assert!(run("Unsqueeze", Attrs::new(), 13, &[Some(arange(&[3])), vec1(&[0, 0])]).is_err());

    let x = arange(&[2, 3, 4]);
    for (axis, shape) in [(0, [1, 24]), (2, [6, 4]), (3, [24, 1]), (-1, [6, 4]), (-3, [1, 24])] {
        assert_eq!(run1("Flatten", attrs(&[("axis", AttrValue::Int(axis))]), 13, &[Some(x.clone())]).shape(), &shape);
    }
}

#[test]
fn shape_size_constant_range() {
    let x = Tensor::zeros(DType::F16, &[2, 3, 4, 5]);
    let shape = |a: Attrs| vals(&run1("Shape", a, 15, &[Some(x.clone())]));
    assert_eq!(shape(Attrs::new()), [2, 3, 4, 5]);
    assert_eq!(shape(attrs(&[("start", AttrValue::Int(-3)), ("end", AttrValue::Int(-1))])), [3, 4]);
    assert_eq!(shape(attrs(&[("start", AttrValue::Int(-10)), ("end", AttrValue::Int(10))])), [2, 3, 4, 5]);
    assert_eq!(shape(attrs(&[("start", AttrValue::Int(3)), ("end", AttrValue::Int(1))])), Vec::<i64>::new());
    // Shape of a non-constant input is still known at build time
    let op = build("Shape", &Attrs::new(), 13).unwrap();
    let f = op.infer(&[Some(&Fact::new(DType::F32, vec![7, 2]))]).unwrap();
    assert_eq!(vals(f[0].value.as_ref().unwrap()), [7, 2]);
    assert_eq!(vals(&run1("Size", Attrs::new(), 13, &[Some(x)])), [120]);

    let c = run1("Constant", attrs(&[("value_ints", ints(&[4, 5]))]), 13, &[]);
    assert_eq!((c.dtype(), vals(&c)), (DType::I64, vec![4, 5]));
    assert!(build("Constant", &attrs(&[("value_string", AttrValue::String("x".into()))]), 13).is_err());
    assert!(build("Constant", &Attrs::new(), 13).is_err());

    // np.arange(10, 4, -3) in int32; np.arange(1, 2, 0.25) in f32
    let s = |v: i32| Some(Tensor::scalar(v));
    let r = run1("Range", Attrs::new(), 11, &[s(10), s(4), s(-3)]);
    assert_eq!((r.dtype(), vals(&r)), (DType::I32, vec![10, 7]));
    let f = |v: f32| Some(Tensor::scalar(v));
    let r = run1("Range", Attrs::new(), 11, &[f(1.0), f(2.0), f(0.25)]);
    assert_eq!(r.as_slice::<f32>().unwrap(), &[1.0, 1.25, 1.5, 1.75]);
    assert!(run("Range", Attrs::new(), 11, &[s(0), s(4), s(0)]).is_err());
    let op = build("Range", &Attrs::new(), 11).unwrap();
    let (a, b) = (Fact::constant(Arc::new(Tensor::scalar(0i64))), Fact::new(DType::I64, vec![]));
    assert!(matches!(op.infer(&[Some(&a), Some(&b), Some(&a)]), Err(IrError::NotConstant { index: 1, .. })));

    // ConstantOfShape: default f32 zeros, int value, empty shape
    let z = run1("ConstantOfShape", Attrs::new(), 13, &[vec1(&[2, 3])]);
    assert_eq!((z.dtype(), z.shape(), z.to_f64_vec()), (DType::F32, &[2usize, 3][..], vec![0.0; 6]));
    let v = attrs(&[("value", AttrValue::Tensor(i64s(&[1], &[7])))]);
    let z = run1("ConstantOfShape", v, 13, &[vec1(&[3])]);
    assert_eq!((z.dtype(), vals(&z)), (DType::I64, vec![7, 7, 7]));
    let z = run1("ConstantOfShape", Attrs::new(), 13, &[vec1(&[0])]);
    assert_eq!(z.shape(), &[0]);
}

#[test]
fn trilu_eyelike_onehot_nonzero() {
    let x = arange(&[3, 4]);
    let k = |v: i64| Some(Tensor::scalar(v));
    // np.triu(x, 1) and np.tril(x, -1)
    assert_eq!(vals(&run1("Trilu", Attrs::new(), 14, &[Some(x.clone()), k(1)])), [0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11]);
    let lower = attrs(&[("upper", AttrValue::Int(0))]);
    assert_eq!(vals(&run1("Trilu", lower, 14, &[Some(x.clone()), k(-1)])), [0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0]);
    assert_eq!(
        vals(&run1("Trilu", Attrs::new(), 14, &[Some(x.clone()), None])),
        [0, 1, 2, 3, 0, 5, 6, 7, 0, 0, 10, 11]
    );

    // np.eye(3, 4, k=1, dtype=int32)
    let a = attrs(&[("k", AttrValue::Int(1)), ("dtype", AttrValue::Int(6))]);
    let e = run1("EyeLike", a, 9, &[Some(cast(&x, DType::F32))]);
    assert_eq!((e.dtype(), vals(&e)), (DType::I32, vec![0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]));

    // indices [-1, 0, 5] depth 3 axis 0 values [2, 7]: columns one-hot, 5 is out of range
    let y = run1(
        "OneHot",
        attrs(&[("axis", AttrValue::Int(0))]),
        11,
        &[Some(i64s(&[3], &[-1, 0, 5])), Some(Tensor::scalar(3.0f32)), Some(f32s(&[2], &[2., 7.]))],
    );
    assert_eq!(y.shape(), &[3, 3]);
    assert_eq!(y.to_f64_vec(), [2., 7., 2., 2., 2., 2., 7., 2., 2.]);

    // np.array(np.nonzero([[1, 0, 0], [0, 2, 3]]))
    let y = run1("NonZero", Attrs::new(), 13, &[Some(f32s(&[2, 3], &[1., 0., -0., 0., 2., 3.]))]);
    assert_eq!((y.shape(), vals(&y)), (&[2usize, 3][..], vec![0, 1, 1, 0, 1, 2]));
    let op = build("NonZero", &Attrs::new(), 13).unwrap();
    assert!(matches!(op.infer(&[Some(&Fact::new(DType::F32, vec![2]))]), Err(IrError::NotConstant { index: 0, .. })));
}

#[test]
fn cumsum_and_topk() {
    let c = i64s(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let ax = |v: i64| Some(Tensor::scalar(v));
    // exclusive + reverse along axis 1: np.cumsum(c[:, ::-1], 1)[:, ::-1] - c
    let a = attrs(&[("exclusive", AttrValue::Int(1)), ("reverse", AttrValue::Int(1))]);
    assert_eq!(vals(&run1("CumSum", a, 14, &[Some(c.clone()), ax(-1)])), [5, 3, 0, 11, 6, 0]);
    // np.cumsum(c, 0)
    assert_eq!(vals(&run1("CumSum", Attrs::new(), 14, &[Some(c.clone()), ax(0)])), [1, 2, 3, 5, 7, 9]);
    let h = run1("CumSum", Attrs::new(), 14, &[Some(cast(&c, DType::F16)), ax(1)]);
    assert_eq!(h.to_f64_vec(), [1., 3., 6., 4., 9., 15.]);

    // largest 2 of [[3, 1, 3, 2], [0, 5, 5, -1]]: ties keep the lower index first
    let x = f32s(&[2, 4], &[3., 1., 3., 2., 0., 5., 5., -1.]);
    let r = run("TopK", Attrs::new(), 11, &[Some(x.clone()), vec1(&[2])]).unwrap();
    assert_eq!(r[0].as_slice::<f32>().unwrap(), &[3., 3., 5., 5.]);
    assert_eq!(vals(&r[1]), [0, 2, 1, 2]);
    // smallest 1 along axis 0, k as an attribute (opset 1 has no `largest`, so use 11)
    let r =
        run("TopK", attrs(&[("largest", AttrValue::Int(0)), ("axis", AttrValue::Int(0))]), 11, &[Some(x), vec1(&[1])])
            .unwrap();
    assert_eq!(r[0].as_slice::<f32>().unwrap(), &[0., 1., 3., -1.]);
    assert_eq!(vals(&r[1]), [1, 0, 0, 1]);
    let r = run("TopK", attrs(&[("k", AttrValue::Int(3))]), 9, &[Some(i64s(&[4], &[4, 9, 1, 9]))]).unwrap();
    assert_eq!((vals(&r[0]), vals(&r[1])), (vec![9, 9, 4], vec![1, 3, 0]));
}

#[test]
fn every_op_type_is_registered() {
    let names = crate::ops::supported_ops();
    for op in [
        "Shape",
        "Size",
        "Reshape",
        "Flatten",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Concat",
        "Split",
        "Slice",
        "Gather",
        "GatherElements",
        "GatherND",
        "ScatterElements",
        "ScatterND",
        "Expand",
        "Tile",
        "ConstantOfShape",
        "Range",
        "Constant",
        "Pad",
        "DepthToSpace",
        "SpaceToDepth",
        "Trilu",
        "EyeLike",
        "OneHot",
        "CumSum",
        "TopK",
        "NonZero",
    ] {
        assert!(names.contains(&op), "{op} is not registered");
    }
}
