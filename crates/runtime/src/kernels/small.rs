//! Small ops that would otherwise go through their `sinter-ir` definitions and allocate
//! on every run: shape-only ops as one copy, and Softmax over the last axis computed
//! exactly as the reference does (f64 accumulation), without its scratch buffers.

use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::reduce::{Softmax, SoftmaxKind};
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};

/// `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`, `Identity`: the output holds the input's
/// bytes under another shape.
#[derive(Debug)]
pub(crate) struct Copy {
    bytes: usize,
}

impl Copy {
    pub(crate) fn new(inputs: &[Option<Slot>], outputs: &[Slot]) -> Option<Copy> {
        let (x, y) = (inputs.first()?.as_ref()?, outputs.first()?);
        let bytes = |s: &Slot| s.shape.iter().try_fold(s.dtype.size(), |a, &d| a.checked_mul(d));
        (outputs.len() == 1 && x.dtype == y.dtype && bytes(x)? == bytes(y)?)
            .then(|| Copy { bytes: bytes(y).unwrap_or(0) })
    }
}

impl Exec for Copy {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], _: &mut RunCtx) -> Result<()> {
        let x = inputs
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| IrError::MissingInput { op: "Reshape".into(), index: 0 })?;
        let y = outputs.first_mut().ok_or_else(|| IrError::MissingInput { op: "Reshape".into(), index: 0 })?;
        if x.data.len() != self.bytes || y.data.len() != self.bytes {
            return Err(IrError::Data("Reshape: operand sizes do not match the plan".into()));
        }
        y.data.copy_from_slice(x.data);
        Ok(())
    }
}

/// f32 `Softmax` over the innermost axis.
#[derive(Debug)]
pub(crate) struct LastAxisSoftmax {
    rows: usize,
    n: usize,
}

impl LastAxisSoftmax {
    pub(crate) fn new(op: &dyn Op, inputs: &[Option<Slot>], outputs: &[Slot]) -> Option<LastAxisSoftmax> {
        let s = op.as_any().downcast_ref::<Softmax>()?;
        let (x, y) = (inputs.first()?.as_ref()?, outputs.first()?);
        if s.kind != SoftmaxKind::Softmax || x.dtype != DType::F32 || y.shape != x.shape || x.shape.is_empty() {
            return None;
        }
        let rank = x.shape.len() as i64;
        let axis = if s.axis < 0 { s.axis + rank } else { s.axis };
        if !(0..rank).contains(&axis) {
            return None;
        }
        let axis = axis as usize;
        // Opset < 13 flattens everything from `axis` on into one row.
        let last = if s.coerce_2d { true } else { axis + 1 == x.shape.len() };
        if !last {
            return None;
        }
        let n: usize = x.shape[axis..].iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        let rows: usize = x.shape[..axis].iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        (n > 0).then_some(LastAxisSoftmax { rows, n })
    }
}

impl Exec for LastAxisSoftmax {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], _: &mut RunCtx) -> Result<()> {
        let missing = || IrError::MissingInput { op: "Softmax".into(), index: 0 };
        let x = inputs.first().copied().flatten().ok_or_else(missing)?.as_slice::<f32>()?;
        let y = outputs.first_mut().ok_or_else(missing)?.as_slice_mut::<f32>()?;
        if x.len() != self.rows * self.n || y.len() != x.len() {
            return Err(IrError::Data("Softmax: operand sizes do not match the plan".into()));
        }
        for (xr, yr) in x.chunks_exact(self.n).zip(y.chunks_exact_mut(self.n)) {
            // As the reference: the max starts at the first element and a NaN takes over.
            let mut max = xr[0] as f64;
            for &v in &xr[1..] {
                let v = v as f64;
                if v > max || max.is_nan() {
                    max = v;
                }
            }
            let sum: f64 = xr.iter().map(|&v| (v as f64 - max).exp()).sum();
            for (d, &v) in yr.iter_mut().zip(xr) {
                *d = ((v as f64 - max).exp() / sum) as f32;
            }
        }
        Ok(())
    }
}
