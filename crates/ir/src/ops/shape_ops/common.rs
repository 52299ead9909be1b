//! Helpers shared by the shape ops: reading constant inputs back from views, checking
//! output buffers, and a small arithmetic trait for the ops that combine values.

use crate::tensor::checked_numel;
use crate::{DType, Elem, Fact, IrError, Result, View, ViewMut};

/// The values of an optional input read at evaluation time, as i64s; `None` when omitted.
pub(super) fn view_i64s(inputs: &[Option<View>], i: usize) -> Result<Option<Vec<i64>>> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(v) => {
            check_int_like(v.dtype, i)?;
            Ok(Some(v.to_i64_vec()?))
        }
    }
}

/// Like [`view_i64s`] for an input that must be present.
pub(super) fn req_view_i64s(inputs: &[Option<View>], i: usize, op: &str) -> Result<Vec<i64>> {
    view_i64s(inputs, i)?.ok_or_else(|| IrError::MissingInput { op: op.to_string(), index: i })
}

/// The build-time value of an optional constant input as i64s, checking it is integer.
pub(super) fn fact_i64s(inputs: &[Option<&Fact>], i: usize, op: &str, what: &str) -> Result<Option<Vec<i64>>> {
    if let Some(f) = inputs.get(i).copied().flatten() {
        check_int_like(f.dtype, i)?;
    }
    crate::ops::util::const_i64s(inputs, i, op, what)
}

/// Like [`fact_i64s`] for an input that must be present.
pub(super) fn req_fact_i64s(inputs: &[Option<&Fact>], i: usize, op: &str, what: &str) -> Result<Vec<i64>> {
    fact_i64s(inputs, i, op, what)?.ok_or_else(|| IrError::MissingInput { op: op.to_string(), index: i })
}

/// Shape-like inputs (shapes, axes, pads, indices) must be integers.
fn check_int_like(dtype: DType, index: usize) -> Result<()> {
    if dtype.is_float() || dtype == DType::Bool {
        return Err(IrError::DType { expected: format!("an integer tensor for input {index}"), found: dtype });
    }
    Ok(())
}

/// Fails unless `dtype` is an integer type (index tensors).
pub(super) fn check_index_dtype(dtype: DType, what: &str) -> Result<()> {
    if matches!(dtype, DType::I32 | DType::I64 | DType::I8 | DType::U8) {
        Ok(())
    } else {
        Err(IrError::DType { expected: format!("int32 or int64 {what}"), found: dtype })
    }
}

/// Converts shape values to dimensions, rejecting negative ones.
pub(super) fn to_dims(values: &[i64], what: &str) -> Result<Vec<usize>> {
    values
        .iter()
        .map(|&v| {
            usize::try_from(v).map_err(|_| IrError::Shape(format!("{what} has a negative entry {v}: {values:?}")))
        })
        .collect()
}

/// Element count of a shape whose byte size must also fit in memory addressing.
pub(super) fn checked_len(shape: &[usize], dtype: DType) -> Result<usize> {
    let n = checked_numel(shape)?;
    n.checked_mul(dtype.size())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| IrError::Shape(format!("a {dtype} tensor of shape {shape:?} is too large")))?;
    Ok(n)
}

/// A fact for an output of `dtype` and `shape`, checking that its size is addressable.
pub(super) fn fact(dtype: DType, shape: Vec<usize>) -> Result<Fact> {
    checked_len(&shape, dtype)?;
    Ok(Fact::new(dtype, shape))
}

/// The `i`th output buffer, checked against the dtype and shape the op computed.
pub(super) fn out<'a, 'b>(
    outputs: &'a mut [ViewMut<'b>],
    i: usize,
    dtype: DType,
    shape: &[usize],
    op: &str,
) -> Result<&'a mut ViewMut<'b>> {
    let o = outputs.get_mut(i).ok_or_else(|| IrError::Graph(format!("{op}: output buffer {i} was not provided")))?;
    check_buffer(o.dtype, o.shape, o.data.len(), dtype, shape, op)?;
    Ok(o)
}

/// Fails unless a buffer has the dtype and shape the op computed from its inputs.
pub(super) fn check_buffer(
    have_dtype: DType,
    have_shape: &[usize],
    bytes: usize,
    dtype: DType,
    shape: &[usize],
    op: &str,
) -> Result<()> {
    if have_dtype != dtype {
        return Err(IrError::DType { expected: format!("{dtype} output of {op}"), found: have_dtype });
    }
    let n = checked_numel(shape)?;
    if have_shape != shape || n.checked_mul(dtype.size()) != Some(bytes) {
        return Err(IrError::Shape(format!(
            "{op}: output buffer has shape {have_shape:?} ({bytes} bytes) but the inputs give {shape:?}"
        )));
    }
    Ok(())
}

/// Fails unless an input view's byte length matches its dtype and shape.
pub(super) fn check_view(v: &View, op: &str) -> Result<()> {
    let n = checked_numel(v.shape)?;
    if n.checked_mul(v.dtype.size()) != Some(v.data.len()) {
        return Err(IrError::Data(format!(
            "{op}: input of shape {:?} has {} bytes, expected {n} {} elements",
            v.shape,
            v.data.len(),
            v.dtype
        )));
    }
    Ok(())
}

/// Requires two dtypes to agree (inputs of one type variable in the ONNX schema).
pub(super) fn same_dtype(expected: DType, found: DType, what: &str) -> Result<()> {
    if expected != found {
        return Err(IrError::DType { expected: format!("{expected} {what}"), found });
    }
    Ok(())
}

/// Maps an index that may count from the end into `0..n`, or `None` if out of range.
pub(super) fn wrap_index(i: i64, n: usize) -> Option<usize> {
    let n = i64::try_from(n).ok()?;
    let j = if i < 0 { i.checked_add(n)? } else { i };
    if (0..n).contains(&j) {
        Some(j as usize)
    } else {
        None
    }
}

/// An error for a data-dependent index out of range.
pub(super) fn index_err(op: &str, index: i64, dim: usize) -> IrError {
    IrError::Data(format!("{op}: index {index} is out of range for a dimension of size {dim}"))
}

/// Normalizes axes, rejecting duplicates.
pub(super) fn unique_axes(axes: &[i64], rank: usize, op: &str) -> Result<Vec<usize>> {
    let mut seen = vec![false; rank];
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = crate::ops::util::normalize_axis(a, rank)?;
        if std::mem::replace(&mut seen[n], true) {
            return Err(IrError::Shape(format!("{op}: axis {a} appears more than once in {axes:?}")));
        }
        out.push(n);
    }
    Ok(out)
}

/// Arithmetic for the ops that combine values. Integers wrap (no overflow panics);
/// f16 computes in f32 and rounds.
pub(super) trait Num: Elem {
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn is_nonzero(self) -> bool;
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn is_nonzero(self) -> bool {
                self != 0
            }
        }
    )*};
}
int_num!(i8, u8, i32, i64);

impl Num for f32 {
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn mul(self, o: Self) -> Self {
        self * o
    }
    fn is_nonzero(self) -> bool {
        self != 0.0
    }
}

impl Num for half::f16 {
    fn add(self, o: Self) -> Self {
        half::f16::from_f32(self.to_f32() + o.to_f32())
    }
    fn mul(self, o: Self) -> Self {
        half::f16::from_f32(self.to_f32() * o.to_f32())
    }
    fn is_nonzero(self) -> bool {
        self.to_f32() != 0.0
    }
}

/// The larger of two values, propagating NaN like numpy's `maximum`.
pub(super) fn max_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    #[allow(clippy::eq_op)]
    if a != a || a >= b {
        a
    } else {
        b
    }
}

/// The smaller of two values, propagating NaN like numpy's `minimum`.
pub(super) fn min_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    #[allow(clippy::eq_op)]
    if a != a || a <= b {
        a
    } else {
        b
    }
}

/// A total order for sorting: NaN sorts above every number (numpy's convention).
pub(super) fn total_cmp<T: PartialOrd>(a: &T, b: &T) -> std::cmp::Ordering {
    a.partial_cmp(b).unwrap_or_else(|| {
        #[allow(clippy::eq_op)]
        let (an, bn) = (a != a, b != b);
        an.cmp(&bn)
    })
}
