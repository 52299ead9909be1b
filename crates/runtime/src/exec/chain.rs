//! f32 `FusedElementwise`: a chain of elementwise ops the optimizer fused (unary steps,
//! and binary steps with broadcast operands such as PP-OCR's `x · s + a + b`), run over
//! the context's threads. The output is cut into contiguous pieces, and each piece, tile
//! by tile, is copied from the input and finished by the fused kernels' per-row
//! epilogue ([`PostOps::apply_row`]: the reference's formulas), so the values are the
//! reference's, while the reference evaluation runs on one thread.

use super::epilogue::{dims4, epilogue_inputs, post_ops, MAX_EPILOGUE_INPUTS};
use super::refusal::{need, Accept, Why};
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::fused::FusedElementwise;
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};
use sinter_kernels::epilogue::PostOps;

/// Fewest floats per task: below this, waking a thread costs more than it saves.
const MIN_TASK: usize = 16 * 1024;
/// Floats finished at a time: the copy and every step pass over them while they are in L1.
const TILE: usize = 2048;

#[derive(Debug)]
pub(crate) struct Chain {
    post: PostOps,
    /// The output shape left-padded to `[n, m, h, w]` (what the operands map onto).
    dims: [usize; 4],
    numel: usize,
}

impl Chain {
    /// The kernel for an f32 `FusedElementwise` of rank at most 4 whose operands all
    /// broadcast onto its output, or why not.
    pub(crate) fn new(op: &dyn Op, inputs: &[Option<Slot>], outputs: &[Slot]) -> Accept<Chain> {
        let f = op.as_any().downcast_ref::<FusedElementwise>().why("the op is not a FusedElementwise")?;
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let y = outputs.first().why("no output")?;
        need(x.dtype == DType::F32 && y.dtype == DType::F32, "not f32")?;
        need(x.shape == y.shape, "input 0 is broadcast to the output")?;
        let dims = dims4(&y.shape)?;
        let post = post_ops(&f.epilogue.steps, inputs.get(1..).unwrap_or(&[]), &dims)?;
        let numel = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).why("sizes overflow")?;
        Ok(Chain { post, dims, numel })
    }
}

impl Exec for Chain {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        const NAME: &str = "FusedElementwise";
        let missing = |index| IrError::MissingInput { op: NAME.into(), index };
        let x = inputs.first().copied().flatten().ok_or_else(|| missing(0))?.as_slice::<f32>()?;
        let mut extras: [&[f32]; MAX_EPILOGUE_INPUTS] = [&[]; MAX_EPILOGUE_INPUTS];
        let count = epilogue_inputs(NAME, inputs, 1, &self.post, &mut extras)?;
        let extras = &extras[..count];
        let y = outputs.first_mut().ok_or_else(|| missing(0))?.as_slice_mut::<f32>()?;
        if x.len() != self.numel || y.len() != self.numel {
            return Err(IrError::Data(format!("{NAME}: operand sizes do not match the plan")));
        }
        let [_, m, h, w] = self.dims;
        let plane = h * w;
        let per_task = self.numel.div_ceil(cx.pool.threads() * 4).max(MIN_TASK);
        let tier = cx.tier;
        cx.pool.par_chunks(y, 1, per_task, &|first, chunk| {
            // The piece in tiles that stay within one (image, channel) plane.
            let mut done = 0;
            while done < chunk.len() {
                let pos = first + done;
                let (p, j0) = (pos / plane, pos % plane);
                let len = (plane - j0).min(chunk.len() - done).min(TILE);
                let row = &mut chunk[done..done + len];
                row.copy_from_slice(&x[pos..pos + len]);
                self.post.apply_row(tier, w, (p / m, p % m, j0), row, extras);
                done += len;
            }
        });
        Ok(())
    }
}
