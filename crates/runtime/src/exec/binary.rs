//! f32 `Add` / `Sub` / `Mul` / `Div` whose second-largest operand broadcasts in a simple
//! way (same shape, a scalar, or one value per channel-like axis: SE blocks' `x · s`),
//! with the broadcast resolved once instead of per call, and `sinter-ir`'s own slice
//! functions so the values are exactly the reference's.

use super::refusal::{need, Accept, Refusal, Why};
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::elementwise::{Binary, BinaryKind};
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};
use sinter_kernels::epilogue::{apply_scalar, apply_slice, BinOp};

/// How the smaller operand maps onto the output.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pattern {
    Same,
    Scalar,
    /// Constant over runs of `inner` elements, cycling through `len` values.
    PerRun {
        inner: usize,
        len: usize,
    },
}

#[derive(Debug)]
pub(crate) struct FastBinary {
    op: BinOp,
    /// The full-shaped operand is input 1 (so the op is applied swapped).
    swapped: bool,
    pattern: Pattern,
    numel: usize,
}

impl FastBinary {
    pub(crate) fn new(op: &dyn Op, inputs: &[Option<Slot>], outputs: &[Slot]) -> Accept<FastBinary> {
        let b = op.as_any().downcast_ref::<Binary>().why("the op is not a binary op")?;
        let bin = match b.kind {
            BinaryKind::Add => BinOp::Add,
            BinaryKind::Sub => BinOp::Sub,
            BinaryKind::Mul => BinOp::Mul,
            BinaryKind::Div => BinOp::Div,
            _ => return Err(Refusal::new("not Add, Sub, Mul or Div")),
        };
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let w = inputs.get(1).and_then(Option::as_ref).why("no input 1")?;
        let y = outputs.first().why("no output")?;
        need([x.dtype, w.dtype, y.dtype] == [DType::F32; 3], "not f32")?;
        let (full, small, swapped) = if x.shape == y.shape {
            (x, w, false)
        } else if w.shape == y.shape {
            (w, x, true)
        } else {
            return Err(Refusal::new("both inputs are broadcast"));
        };
        let numel = full.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).why("sizes overflow")?;
        let pattern = pattern(&small.shape, &full.shape)
            .why("the smaller input broadcasts other than as a scalar, a trailing block or a per-row value")?;
        Ok(FastBinary { op: bin, swapped, pattern, numel })
    }
}

/// The broadcast of `small` onto `full`, when it is one of the simple patterns.
fn pattern(small: &[usize], full: &[usize]) -> Option<Pattern> {
    if small == full {
        return Some(Pattern::Same);
    }
    if small.len() > full.len() {
        return None;
    }
    let mut dims = vec![1usize; full.len() - small.len()];
    dims.extend_from_slice(small);
    if dims.iter().all(|&d| d == 1) {
        return Some(Pattern::Scalar);
    }
    // The non-1 dims must be one contiguous range of axes matching `full`.
    let first = dims.iter().position(|&d| d != 1)?;
    let last = dims.iter().rposition(|&d| d != 1)?;
    if (first..=last).any(|i| dims[i] != full[i]) {
        return None;
    }
    let inner = full[last + 1..].iter().product();
    let len = full[first..=last].iter().product();
    Some(Pattern::PerRun { inner, len })
}

impl Exec for FastBinary {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        let missing = |index| IrError::MissingInput { op: "Binary".into(), index };
        let a = inputs.first().copied().flatten().ok_or_else(|| missing(0))?.as_slice::<f32>()?;
        let b = inputs.get(1).copied().flatten().ok_or_else(|| missing(1))?.as_slice::<f32>()?;
        let y = outputs.first_mut().ok_or_else(|| missing(0))?.as_slice_mut::<f32>()?;
        let (full, small) = if self.swapped { (b, a) } else { (a, b) };
        let want_small = match self.pattern {
            Pattern::Same => self.numel,
            Pattern::Scalar => 1,
            Pattern::PerRun { len, .. } => len,
        };
        if full.len() != self.numel || y.len() != self.numel || small.len() != want_small {
            return Err(IrError::Data("Binary: operand sizes do not match the plan".into()));
        }
        y.copy_from_slice(full);
        // `op.apply_*(swapped, x, v)` computes `x op v`, or `v op x` when swapped: here
        // x is the full operand, so the roles flip when the full operand is input 1.
        let sw = self.swapped;
        match self.pattern {
            Pattern::Same => apply_slice(cx.tier, self.op, sw, y, small),
            Pattern::Scalar => apply_scalar(cx.tier, self.op, sw, y, small[0]),
            Pattern::PerRun { inner, len } => {
                for (i, run) in y.chunks_exact_mut(inner.max(1)).enumerate() {
                    apply_scalar(cx.tier, self.op, sw, run, small[i % len]);
                }
            }
        }
        Ok(())
    }
}
