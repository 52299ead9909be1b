//! f32 `FusedElementwise`: a chain of elementwise ops the optimizer fused (unary steps,
//! and binary steps with broadcast operands such as PP-OCR's `x · s + a + b`), run over
//! the context's threads. The output is cut into contiguous pieces, and each piece, tile
//! by tile, is copied from the input and finished by the convolutions' per-row epilogue
//! ([`conv::finish_row`]: `sinter-ir`'s own step functions), so the values are exactly
//! the reference's, while the reference evaluation runs on one thread.

use super::conv::{self, epilogue_inputs, Operand, MAX_EPILOGUE_INPUTS};
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::fused::{FusedElementwise, Step};
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};

/// Fewest floats per task: below this, waking a thread costs more than it saves.
const MIN_TASK: usize = 16 * 1024;
/// Floats finished at a time: the copy and every step pass over them while they are in L1.
const TILE: usize = 2048;

#[derive(Debug)]
pub(crate) struct Chain {
    steps: Vec<Step>,
    operands: Vec<Operand>,
    /// The output shape left-padded to `[n, m, h, w]` (what the operands map onto).
    dims: [usize; 4],
    numel: usize,
}

impl Chain {
    /// The kernel for an f32 `FusedElementwise` of rank at most 4 whose operands all
    /// broadcast onto its output, or `None`.
    pub(crate) fn new(op: &dyn Op, inputs: &[Option<Slot>], outputs: &[Slot]) -> Option<Chain> {
        let f = op.as_any().downcast_ref::<FusedElementwise>()?;
        let (x, y) = (inputs.first()?.as_ref()?, outputs.first()?);
        if x.dtype != DType::F32 || y.dtype != DType::F32 || x.shape != y.shape {
            return None;
        }
        let dims = conv::dims4(&y.shape)?;
        let steps = f.epilogue.steps.clone();
        let operands = conv::epilogue_operands(&steps, inputs.get(1..).unwrap_or(&[]), &dims)?;
        let numel = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        Some(Chain { steps, operands, dims, numel })
    }
}

impl Exec for Chain {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        const NAME: &str = "FusedElementwise";
        let missing = |index| IrError::MissingInput { op: NAME.into(), index };
        let x = inputs.first().copied().flatten().ok_or_else(|| missing(0))?.as_slice::<f32>()?;
        let mut extras: [&[f32]; MAX_EPILOGUE_INPUTS] = [&[]; MAX_EPILOGUE_INPUTS];
        let count = epilogue_inputs(NAME, inputs, 1, &self.operands, &mut extras)?;
        let extras = &extras[..count];
        let y = outputs.first_mut().ok_or_else(|| missing(0))?.as_slice_mut::<f32>()?;
        if x.len() != self.numel || y.len() != self.numel {
            return Err(IrError::Data(format!("{NAME}: operand sizes do not match the plan")));
        }
        let [_, m, h, w] = self.dims;
        let plane = h * w;
        let per_task = self.numel.div_ceil(cx.pool.threads() * 4).max(MIN_TASK);
        let isa = cx.isa;
        cx.pool.par_chunks(y, 1, per_task, &|first, chunk| {
            // The piece in tiles that stay within one (image, channel) plane.
            let mut done = 0;
            while done < chunk.len() {
                let pos = first + done;
                let (p, j0) = (pos / plane, pos % plane);
                let len = (plane - j0).min(chunk.len() - done).min(TILE);
                let row = &mut chunk[done..done + len];
                row.copy_from_slice(&x[pos..pos + len]);
                conv::finish_row(isa, &self.steps, &self.operands, w, (p / m, p % m, j0), row, None, extras);
                done += len;
            }
        });
        Ok(())
    }
}
