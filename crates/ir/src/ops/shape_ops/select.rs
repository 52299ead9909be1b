//! Ops that select or accumulate elements: Trilu, CumSum, TopK, NonZero.

use super::common::{check_view, fact, fact_i64s, out, req_view_i64s, total_cmp, view_i64s, Num};
use crate::ops::util::{normalize_axis, req, req_view};
use crate::tensor::checked_numel;
use crate::{Attrs, DType, Elem, Fact, IrError, Op, Result, Tensor, View, ViewMut};
use std::any::Any;
use std::cmp::Ordering;
use std::sync::Arc;

/// Reads the optional scalar `k`-style input, defaulting when omitted.
fn scalar_or(values: Option<Vec<i64>>, default: i64, op: &str, what: &str) -> Result<i64> {
    match values.as_deref() {
        None => Ok(default),
        Some([v]) => Ok(*v),
        Some(v) => Err(IrError::Shape(format!("{op} {what} must be a single value, got {v:?}"))),
    }
}

/// `Trilu`: keeps the upper (`upper = 1`) or lower triangle of the last two axes relative
/// to diagonal `k` (constant input 1, default 0) and zeroes the rest.
#[derive(Debug, Clone)]
pub struct Trilu {
    pub upper: bool,
}

impl Trilu {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Trilu { upper: a.int_or("upper", 1)? != 0 }))
    }
}

impl Op for Trilu {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Trilu")?;
        if x.rank() < 2 {
            return Err(IrError::Shape(format!("Trilu needs rank >= 2, got shape {:?}", x.shape)));
        }
        scalar_or(fact_i64s(inputs, 1, "Trilu", "the diagonal k")?, 0, "Trilu", "k")?;
        Ok(vec![fact(x.dtype, x.shape.clone())?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Trilu")?;
        check_view(&x, "Trilu")?;
        let k = scalar_or(view_i64s(inputs, 1)?, 0, "Trilu", "k")?;
        let o = out(outputs, 0, x.dtype, x.shape, "Trilu")?;
        let r = x.shape.len();
        if r < 2 {
            return Err(IrError::Shape(format!("Trilu needs rank >= 2, got shape {:?}", x.shape)));
        }
        let (rows, cols) = (x.shape[r - 2], x.shape[r - 1]);
        o.data.copy_from_slice(x.data);
        let row_bytes = cols * x.dtype.size();
        if row_bytes == 0 || rows == 0 {
            return Ok(());
        }
        let es = x.dtype.size();
        for (n, row) in o.data.chunks_exact_mut(row_bytes).enumerate() {
            // keep columns j with j - i >= k (upper) or j - i <= k (lower)
            let i = (n % rows) as i128;
            let edge = |v: i128| v.clamp(0, cols as i128) as usize;
            let zero = if self.upper { 0..edge(i + k as i128) } else { edge(i + k as i128 + 1)..cols };
            row[zero.start * es..zero.end * es].fill(0);
        }
        Ok(())
    }
    fn const_inputs(&self) -> &[usize] {
        &[1]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `CumSum`: running sums along the constant `axis` input, optionally `exclusive` (each
/// output excludes its own element) and `reverse` (summing from the end). f16 sums in f32.
#[derive(Debug, Clone)]
pub struct CumSum {
    pub exclusive: bool,
    pub reverse: bool,
}

impl CumSum {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(CumSum { exclusive: a.int_or("exclusive", 0)? != 0, reverse: a.int_or("reverse", 0)? != 0 }))
    }

    /// Runs the scan over each line of `n` elements spaced `inner` apart.
    fn scan<T: Copy>(&self, src: &[T], dst: &mut [T], n: usize, inner: usize, zero: T, add: impl Fn(T, T) -> T) {
        if n == 0 || inner == 0 {
            return;
        }
        for (s, d) in src.chunks_exact(n * inner).zip(dst.chunks_exact_mut(n * inner)) {
            for j in 0..inner {
                let mut acc = zero;
                for step in 0..n {
                    let i = if self.reverse { n - 1 - step } else { step };
                    let v = s[i * inner + j];
                    if self.exclusive {
                        d[i * inner + j] = acc;
                        acc = add(acc, v);
                    } else {
                        acc = add(acc, v);
                        d[i * inner + j] = acc;
                    }
                }
            }
        }
    }
}

fn cumsum_typed<T: Num>(op: &CumSum, x: &View, o: &mut ViewMut, n: usize, inner: usize) -> Result<()> {
    op.scan(x.as_slice::<T>()?, o.as_slice_mut::<T>()?, n, inner, T::from_f64(0.0), T::add);
    Ok(())
}

impl Op for CumSum {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "CumSum")?;
        if x.dtype == DType::Bool {
            return Err(IrError::UnsupportedDType { op: "CumSum".into(), dtype: x.dtype });
        }
        let axis = fact_i64s(inputs, 1, "CumSum", "the axis")?
            .ok_or_else(|| IrError::MissingInput { op: "CumSum".into(), index: 1 })?;
        normalize_axis(scalar_or(Some(axis), 0, "CumSum", "axis")?, x.rank())?;
        Ok(vec![fact(x.dtype, x.shape.clone())?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "CumSum")?;
        check_view(&x, "CumSum")?;
        let axis = scalar_or(Some(req_view_i64s(inputs, 1, "CumSum")?), 0, "CumSum", "axis")?;
        let axis = normalize_axis(axis, x.shape.len())?;
        let n = x.shape[axis];
        let inner = checked_numel(&x.shape[axis + 1..])?;
        let o = out(outputs, 0, x.dtype, x.shape, "CumSum")?;
        match x.dtype {
            DType::F16 => {
                let src: Vec<f32> = x.as_slice::<half::f16>()?.iter().map(|v| v.to_f32()).collect();
                let mut acc = vec![0f32; src.len()];
                self.scan(&src, &mut acc, n, inner, 0.0, |a, b| a + b);
                for (d, v) in o.as_slice_mut::<half::f16>()?.iter_mut().zip(acc) {
                    *d = half::f16::from_f32(v);
                }
                Ok(())
            }
            DType::F32 => cumsum_typed::<f32>(self, &x, o, n, inner),
            DType::I8 => cumsum_typed::<i8>(self, &x, o, n, inner),
            DType::U8 => cumsum_typed::<u8>(self, &x, o, n, inner),
            DType::I32 => cumsum_typed::<i32>(self, &x, o, n, inner),
            DType::I64 => cumsum_typed::<i64>(self, &x, o, n, inner),
            DType::Bool => Err(IrError::UnsupportedDType { op: "CumSum".into(), dtype: x.dtype }),
        }
    }
    fn const_inputs(&self) -> &[usize] {
        &[1]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `TopK`: the `k` largest (or smallest) elements along `axis` and their int64 indices,
/// sorted, ties broken by the lower index. `k` is an attribute before opset 10 and a
/// constant input after. NaN counts as larger than every number.
#[derive(Debug, Clone)]
pub struct TopK {
    pub axis: i64,
    pub largest: bool,
    /// The `k` attribute (before opset 10); `None` when k is input 1.
    pub k_attr: Option<i64>,
}

impl TopK {
    pub(crate) fn build(a: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
        let k_attr = if opset < 10 {
            Some(a.int("k")?.ok_or_else(|| Attrs::unsupported("k", "is required before opset 10"))?)
        } else {
            None
        };
        // `sorted = 0` allows any order; returning sorted output is a valid choice.
        Ok(Arc::new(TopK { axis: a.int_or("axis", -1)?, largest: a.int_or("largest", 1)? != 0, k_attr }))
    }

    fn out_shape(&self, shape: &[usize], k: i64) -> Result<(usize, usize, Vec<usize>)> {
        let axis = normalize_axis(self.axis, shape.len())?;
        let k = usize::try_from(k)
            .ok()
            .filter(|&k| k <= shape[axis])
            .ok_or_else(|| IrError::Shape(format!("TopK k = {k} out of range for axis {axis} of {shape:?}")))?;
        let mut out = shape.to_vec();
        out[axis] = k;
        Ok((axis, k, out))
    }

    fn k_from_views(&self, inputs: &[Option<View>]) -> Result<i64> {
        match self.k_attr {
            Some(k) => Ok(k),
            None => scalar_or(Some(req_view_i64s(inputs, 1, "TopK")?), 0, "TopK", "K"),
        }
    }
}

fn topk_typed<T: Elem>(
    x: &View,
    values: &mut [T],
    indices: &mut [i64],
    n: usize,
    k: usize,
    inner: usize,
    largest: bool,
) -> Result<()> {
    let src = x.as_slice::<T>()?;
    if n == 0 || inner == 0 || k == 0 {
        return Ok(());
    }
    let mut line: Vec<(T, usize)> = Vec::with_capacity(n);
    for (b, block) in src.chunks_exact(n * inner).enumerate() {
        for j in 0..inner {
            line.clear();
            line.extend((0..n).map(|i| (block[i * inner + j], i)));
            let order = |a: &(T, usize), b: &(T, usize)| -> Ordering {
                let by_value = if largest { total_cmp(&b.0, &a.0) } else { total_cmp(&a.0, &b.0) };
                by_value.then(a.1.cmp(&b.1))
            };
            if k < n {
                line.select_nth_unstable_by(k - 1, order);
                line.truncate(k);
            }
            line.sort_unstable_by(order);
            for (t, &(v, i)) in line.iter().enumerate() {
                let at = (b * k + t) * inner + j;
                values[at] = v;
                indices[at] = i as i64;
            }
        }
    }
    Ok(())
}

impl Op for TopK {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "TopK")?;
        if x.dtype == DType::Bool {
            return Err(IrError::UnsupportedDType { op: "TopK".into(), dtype: x.dtype });
        }
        let k = match self.k_attr {
            Some(k) => k,
            None => scalar_or(
                Some(
                    fact_i64s(inputs, 1, "TopK", "K")?
                        .ok_or_else(|| IrError::MissingInput { op: "TopK".into(), index: 1 })?,
                ),
                0,
                "TopK",
                "K",
            )?,
        };
        let (_, _, shape) = self.out_shape(&x.shape, k)?;
        Ok(vec![fact(x.dtype, shape.clone())?, fact(DType::I64, shape)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "TopK")?;
        check_view(&x, "TopK")?;
        let (axis, k, shape) = self.out_shape(x.shape, self.k_from_views(inputs)?)?;
        let n = x.shape[axis];
        let inner = checked_numel(&x.shape[axis + 1..])?;
        out(outputs, 0, x.dtype, &shape, "TopK")?;
        out(outputs, 1, DType::I64, &shape, "TopK")?;
        let [vo, io, ..] = outputs else {
            return Err(IrError::Graph("TopK: two output buffers are needed".into()));
        };
        let indices = io.as_slice_mut::<i64>()?;
        let dtype = x.dtype;
        crate::dispatch_dtype!(dtype, T => topk_typed::<T>(&x, vo.as_slice_mut::<T>()?, indices, n, k, inner, self.largest))
    }
    fn const_inputs(&self) -> &[usize] {
        if self.k_attr.is_some() {
            &[]
        } else {
            &[1]
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `NonZero`: the int64 coordinates (`[rank, count]`) of the non-zero elements, in
/// row-major order. The output shape depends on the data, so the input must be a
/// constant and the op folds at build time.
#[derive(Debug, Clone)]
pub struct NonZero;

impl NonZero {
    pub(crate) fn build(_a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(NonZero))
    }

    fn compute(x: &View) -> Result<Tensor> {
        check_view(x, "NonZero")?;
        // A scalar behaves as a 1-element vector (numpy's nonzero on 0-d arrays).
        let shape: &[usize] = if x.shape.is_empty() { &[1] } else { x.shape };
        let flags: Vec<bool> =
            crate::dispatch_dtype!(x.dtype, T => x.as_slice::<T>()?.iter().map(|v| v.is_nonzero()).collect());
        let count = flags.iter().filter(|&&f| f).count();
        let rank = shape.len();
        let mut coords = vec![0i64; rank * count];
        let st = crate::ops::util::strides(shape);
        for (c, flat) in flags.iter().enumerate().filter(|(_, &f)| f).map(|(i, _)| i).enumerate() {
            let mut rem = flat;
            for (d, &s) in st.iter().enumerate() {
                coords[d * count + c] = (rem / s) as i64;
                rem %= s;
            }
        }
        Tensor::from_vec(&[rank, count], coords)
    }
}

impl Op for NonZero {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "NonZero")?;
        let v = x.value.as_ref().ok_or_else(|| IrError::NotConstant {
            op: "NonZero".into(),
            index: 0,
            what: "the data; the output shape depends on its values".into(),
        })?;
        Ok(vec![Fact::constant(Arc::new(Self::compute(&v.view())?))])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let t = Self::compute(&req_view(inputs, 0, "NonZero")?)?;
        out(outputs, 0, DType::I64, t.shape(), "NonZero")?.data.copy_from_slice(t.bytes());
        Ok(())
    }
    fn const_inputs(&self) -> &[usize] {
        &[0]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
