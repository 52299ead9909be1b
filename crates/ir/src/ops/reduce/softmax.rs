//! `Softmax`, `LogSoftmax` and `Hardmax`.

use super::{check_len, check_out_shape, split_at};
use crate::ops::util::{normalize_axis, req, req_view};
use crate::ops::Op;
use crate::{Attrs, DType, Elem, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxKind {
    Softmax,
    LogSoftmax,
    Hardmax,
}

/// The softmax family. Before opset 13 the input is coerced to 2-D at `axis`
/// (default 1) and normalized over the whole trailing block; from opset 13 it is
/// normalized along `axis` alone (default -1).
#[derive(Clone, Debug)]
pub struct Softmax {
    pub kind: SoftmaxKind,
    pub axis: i64,
    pub coerce_2d: bool,
}

fn build(kind: SoftmaxKind, attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    let coerce_2d = opset < 13;
    let axis = attrs.int_or("axis", if coerce_2d { 1 } else { -1 })?;
    Ok(Arc::new(Softmax { kind, axis, coerce_2d }))
}

pub(super) fn build_softmax(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    build(SoftmaxKind::Softmax, attrs, opset)
}

pub(super) fn build_log_softmax(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    build(SoftmaxKind::LogSoftmax, attrs, opset)
}

pub(super) fn build_hardmax(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    build(SoftmaxKind::Hardmax, attrs, opset)
}

impl Softmax {
    fn name(&self) -> &'static str {
        match self.kind {
            SoftmaxKind::Softmax => "Softmax",
            SoftmaxKind::LogSoftmax => "LogSoftmax",
            SoftmaxKind::Hardmax => "Hardmax",
        }
    }

    /// `(outer, n, inner)`: each of the `outer * inner` vectors of `n` elements, `inner`
    /// apart, is normalized on its own.
    fn split(&self, shape: &[usize]) -> Result<(usize, usize, usize)> {
        let axis =
            normalize_axis(self.axis, shape.len()).map_err(|e| IrError::Shape(format!("{}: {e}", self.name())))?;
        let (outer, n, inner) = split_at(shape, axis)?;
        Ok(if self.coerce_2d { (outer, n * inner, 1) } else { (outer, n, inner) })
    }
}

impl Op for Softmax {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, self.name())?;
        if !x.dtype.is_float() {
            return Err(IrError::UnsupportedDType { op: self.name().to_string(), dtype: x.dtype });
        }
        self.split(&x.shape)?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, self.name())?;
        let dims = self.split(x.shape)?;
        let y = outputs.first_mut().ok_or_else(|| IrError::Graph(format!("{}: no output buffer", self.name())))?;
        check_out_shape(y.shape, x.shape, self.name())?;
        match x.dtype {
            DType::F32 => run::<f32>(self.kind, x, y, dims),
            DType::F16 => run::<half::f16>(self.kind, x, y, dims),
            dtype => Err(IrError::UnsupportedDType { op: self.name().to_string(), dtype }),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Computes in f64 with the maximum subtracted, so large inputs neither overflow nor
/// lose precision. Rows of `inner` elements are visited in order so the inner loops
/// are contiguous; `max`, `sum` (and `exps` for Softmax) are reused across blocks.
fn run<T: Elem>(kind: SoftmaxKind, x: View, y: &mut ViewMut, (outer, n, inner): (usize, usize, usize)) -> Result<()> {
    let xs = x.as_slice::<T>()?;
    check_len(xs.len(), x.shape, "input")?;
    let ys = y.as_slice_mut::<T>()?;
    check_len(ys.len(), x.shape, "output")?;
    let block = n * inner;
    if outer == 0 || block == 0 {
        return Ok(());
    }
    let mut max = vec![0.0f64; inner];
    let mut sum = vec![0.0f64; inner];
    let mut exps = if kind == SoftmaxKind::Softmax { vec![0.0f64; block] } else { Vec::new() };
    let mut arg = if kind == SoftmaxKind::Hardmax { vec![0usize; inner] } else { Vec::new() };
    for (xb, yb) in xs.chunks_exact(block).zip(ys.chunks_exact_mut(block)) {
        // Hardmax keeps the first maximum, so it starts from row 0 and compares strictly.
        for (m, v) in max.iter_mut().zip(&xb[..inner]) {
            *m = v.to_f64();
        }
        arg.fill(0);
        for (i, row) in xb.chunks_exact(inner).enumerate().skip(1) {
            for (j, (m, v)) in max.iter_mut().zip(row).enumerate() {
                let v = v.to_f64();
                if v > *m || m.is_nan() {
                    *m = v;
                    if let Some(a) = arg.get_mut(j) {
                        *a = i;
                    }
                }
            }
        }
        match kind {
            SoftmaxKind::Hardmax => {
                yb.fill(T::from_f64(0.0));
                for (j, &i) in arg.iter().enumerate() {
                    yb[i * inner + j] = T::from_f64(1.0);
                }
            }
            SoftmaxKind::Softmax => {
                sum.fill(0.0);
                for (row, erow) in xb.chunks_exact(inner).zip(exps.chunks_exact_mut(inner)) {
                    for (((e, v), m), s) in erow.iter_mut().zip(row).zip(&max).zip(sum.iter_mut()) {
                        *e = (v.to_f64() - m).exp();
                        *s += *e;
                    }
                }
                for (erow, yrow) in exps.chunks_exact(inner).zip(yb.chunks_exact_mut(inner)) {
                    for ((d, e), s) in yrow.iter_mut().zip(erow).zip(&sum) {
                        *d = T::from_f64(e / s);
                    }
                }
            }
            SoftmaxKind::LogSoftmax => {
                sum.fill(0.0);
                for row in xb.chunks_exact(inner) {
                    for ((v, m), s) in row.iter().zip(&max).zip(sum.iter_mut()) {
                        *s += (v.to_f64() - m).exp();
                    }
                }
                // log(softmax) = x - (max + log(sum)).
                for (s, m) in sum.iter_mut().zip(&max) {
                    *s = m + s.ln();
                }
                for (xrow, yrow) in xb.chunks_exact(inner).zip(yb.chunks_exact_mut(inner)) {
                    for ((d, v), l) in yrow.iter_mut().zip(xrow).zip(&sum) {
                        *d = T::from_f64(v.to_f64() - l);
                    }
                }
            }
        }
    }
    Ok(())
}
