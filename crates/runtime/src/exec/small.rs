//! Shape-only ops (`Reshape` and friends), which would otherwise go through their
//! `sinter-ir` definitions and allocate on every run: one copy.

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
    pub(crate) fn new(inputs: &[Option<Slot>], outputs: &[Slot]) -> Option<ByteCopy> {
        let (x, y) = (inputs.first()?.as_ref()?, outputs.first()?);
        let bytes = |s: &Slot| s.shape.iter().try_fold(s.dtype.size(), |a, &d| a.checked_mul(d));
        (outputs.len() == 1 && x.dtype == y.dtype && bytes(x)? == bytes(y)?)
            .then(|| ByteCopy { bytes: bytes(y).unwrap_or(0) })
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
