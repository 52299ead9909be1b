//! `ArgMax` and `ArgMin`.

use super::{check_len, check_out_shape, flag, split_at};
use crate::ops::util::{normalize_axis, req, req_view};
use crate::ops::Op;
use crate::{Attrs, DType, Elem, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Max,
    Min,
}

/// `ArgMax`/`ArgMin`: int64 indices of the extreme along `axis`; ties pick the first
/// occurrence, or the last with `select_last_index` (opset 12+).
#[derive(Clone, Debug)]
pub struct ArgExtreme {
    pub kind: ArgKind,
    pub axis: i64,
    pub keepdims: bool,
    pub select_last_index: bool,
}

fn build(kind: ArgKind, attrs: &Attrs) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(ArgExtreme {
        kind,
        axis: attrs.int_or("axis", 0)?,
        keepdims: flag(attrs, "keepdims", true)?,
        select_last_index: flag(attrs, "select_last_index", false)?,
    }))
}

pub(super) fn build_argmax(attrs: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
    build(ArgKind::Max, attrs)
}

pub(super) fn build_argmin(attrs: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
    build(ArgKind::Min, attrs)
}

impl ArgExtreme {
    fn name(&self) -> &'static str {
        match self.kind {
            ArgKind::Max => "ArgMax",
            ArgKind::Min => "ArgMin",
        }
    }

    /// The normalized axis and the output shape for an input shape.
    fn plan(&self, shape: &[usize]) -> Result<(usize, Vec<usize>)> {
        let axis =
            normalize_axis(self.axis, shape.len()).map_err(|e| IrError::Shape(format!("{}: {e}", self.name())))?;
        let mut out = shape.to_vec();
        if self.keepdims {
            out[axis] = 1;
        } else {
            out.remove(axis);
        }
        if shape[axis] == 0 && out.iter().all(|&d| d > 0) {
            return Err(IrError::Shape(format!("{}: axis {axis} of shape {shape:?} is empty", self.name())));
        }
        Ok((axis, out))
    }
}

impl Op for ArgExtreme {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, self.name())?;
        if x.dtype == DType::Bool {
            return Err(IrError::UnsupportedDType { op: self.name().to_string(), dtype: x.dtype });
        }
        let (_, out) = self.plan(&x.shape)?;
        Ok(vec![Fact::new(DType::I64, out)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, self.name())?;
        let (axis, out_shape) = self.plan(x.shape)?;
        let y = outputs.first_mut().ok_or_else(|| IrError::Graph(format!("{}: no output buffer", self.name())))?;
        check_out_shape(y.shape, &out_shape, self.name())?;
        let ys = y.as_slice_mut::<i64>()?;
        check_len(ys.len(), &out_shape, "output")?;
        let dims = split_at(x.shape, axis)?;
        match (x.dtype, self.kind) {
            (DType::F32, ArgKind::Max) => arg::<f32>(x, ys, dims, self.select_last_index, |a, b| a > b),
            (DType::F32, ArgKind::Min) => arg::<f32>(x, ys, dims, self.select_last_index, |a, b| a < b),
            (DType::F16, ArgKind::Max) => arg::<half::f16>(x, ys, dims, self.select_last_index, |a, b| a > b),
            (DType::F16, ArgKind::Min) => arg::<half::f16>(x, ys, dims, self.select_last_index, |a, b| a < b),
            (DType::I8, ArgKind::Max) => arg::<i8>(x, ys, dims, self.select_last_index, |a, b| a > b),
            (DType::I8, ArgKind::Min) => arg::<i8>(x, ys, dims, self.select_last_index, |a, b| a < b),
            (DType::U8, ArgKind::Max) => arg::<u8>(x, ys, dims, self.select_last_index, |a, b| a > b),
            (DType::U8, ArgKind::Min) => arg::<u8>(x, ys, dims, self.select_last_index, |a, b| a < b),
            (DType::I32, ArgKind::Max) => arg::<i32>(x, ys, dims, self.select_last_index, |a, b| a > b),
            (DType::I32, ArgKind::Min) => arg::<i32>(x, ys, dims, self.select_last_index, |a, b| a < b),
            (DType::I64, ArgKind::Max) => arg::<i64>(x, ys, dims, self.select_last_index, |a, b| a > b),
            (DType::I64, ArgKind::Min) => arg::<i64>(x, ys, dims, self.select_last_index, |a, b| a < b),
            (DType::Bool, _) => Err(IrError::UnsupportedDType { op: self.name().to_string(), dtype: x.dtype }),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// For every (outer, inner) position, the index along the axis of the element that
/// `better` prefers over all others. Rows along the axis are visited in order, so the
/// inner loop is contiguous; `best` holds the running extremes of one outer block.
/// NaNs never compare better, so they are skipped unless they come first (as in onnxruntime).
fn arg<T: Elem>(
    x: View,
    ys: &mut [i64],
    (outer, n, inner): (usize, usize, usize),
    last: bool,
    better: impl Fn(T, T) -> bool,
) -> Result<()> {
    let xs = x.as_slice::<T>()?;
    check_len(xs.len(), x.shape, "input")?;
    if n == 0 || inner == 0 || outer == 0 {
        return Ok(());
    }
    let mut best: Vec<T> = vec![T::default(); inner];
    for (block, idx) in xs.chunks_exact(n * inner).zip(ys.chunks_exact_mut(inner)).take(outer) {
        best.copy_from_slice(&block[..inner]);
        idx.fill(0);
        for (i, row) in block.chunks_exact(inner).enumerate().skip(1) {
            for ((b, k), &v) in best.iter_mut().zip(idx.iter_mut()).zip(row) {
                // With select_last_index, an equal value also moves the index.
                if better(v, *b) || (last && v == *b) {
                    *b = v;
                    *k = i as i64;
                }
            }
        }
    }
    Ok(())
}
