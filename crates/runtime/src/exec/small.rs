//! Shape-only ops (`Reshape` and friends), which would otherwise go through their
//! `sinter-ir` definitions and allocate on every run: one copy.

use super::refusal::{need, Accept, Why};
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::{IrError, Result, View, ViewMut};

/// `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`, `Identity`: the output holds the input's
/// bytes under another shape.
#[derive(Debug)]
pub(crate) struct ByteCopy {
    bytes: usize,
}

impl ByteCopy {
    pub(crate) fn new(inputs: &[Option<Slot>], outputs: &[Slot]) -> Accept<ByteCopy> {
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let y = outputs.first().why("no output")?;
        let bytes = |s: &Slot| s.shape.iter().try_fold(s.dtype.size(), |a, &d| a.checked_mul(d)).why("sizes overflow");
        let (bx, by) = (bytes(x)?, bytes(y)?);
        need(outputs.len() == 1 && x.dtype == y.dtype && bx == by, "the output is not the input's bytes")?;
        Ok(ByteCopy { bytes: by })
    }
}

impl Exec for ByteCopy {
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
