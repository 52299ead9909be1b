//! The CPU kernels the runtime runs: a fast path on `sinter-kernels` where one exists
//! (convolutions, ConvTranspose and fully connected layers as packed GEMM / Winograd /
//! direct depthwise, pooling, nearest Resize, simple broadcast arithmetic, fused
//! elementwise chains, Softmax, LayerNormalization, reshapes), otherwise the op's own
//! straightforward evaluation in `sinter-ir`. [`registry`] lists them as factories.

mod binary;
mod chain;
pub(crate) mod conv;
pub(crate) mod conv_transpose;
pub(crate) mod dense;
mod epilogue;
mod matmul;
mod pooling;
pub(crate) mod refusal;
pub(crate) mod registry;
pub(crate) mod request;
mod resize;
mod rows;
mod small;

use refusal::{Accept, Why};
use sinter_ir::ops::fused::{BaseKind, Fused, Step};
use sinter_ir::ops::Op;
use sinter_ir::{IrError, Result, View, ViewMut};
use sinter_kernels::{KernelTable, Scratch, ThreadPool};
use sinter_plan::PackLayout;
use std::sync::Arc;

/// What a kernel runs with: the CPU tier's kernel table, the context's thread pool, and
/// the context's workspace (at least [`Exec::workspace`]`.total(pool.threads())` floats,
/// 64-byte aligned, contents unspecified).
pub(crate) struct RunCtx<'a> {
    pub tier: &'static KernelTable,
    pub pool: &'a ThreadPool,
    pub ws: &'a mut [f32],
}

impl RunCtx<'_> {
    /// The tier and pool (with an empty workspace) beside the workspace itself, so a
    /// kernel can hand both to helpers.
    pub fn split(&mut self) -> (RunCtx<'_>, &mut [f32]) {
        (RunCtx { tier: self.tier, pool: self.pool, ws: &mut [] }, &mut *self.ws)
    }
}

/// A ready-to-run kernel.
pub(crate) trait Exec: Send + Sync {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()>;

    /// The scratch (floats) its runs need from the context's workspace, fixed when it
    /// is prepared and the same for every thread count and tier; none by default.
    fn workspace(&self) -> Scratch {
        Scratch::NONE
    }
}

/// The first `floats` (rounded up to whole cache lines) of `ws`, and the rest: one part
/// of a kernel's workspace, laid out as its `workspace()` adds them up.
pub(crate) fn take_ws<'w>(name: &str, ws: &'w mut [f32], floats: usize) -> Result<(&'w mut [f32], &'w mut [f32])> {
    let len = sinter_kernels::scratch::round_floats(floats);
    if ws.len() < len {
        return Err(IrError::Data(format!("{name}: workspace holds {} floats, needs {len}", ws.len())));
    }
    let (part, rest) = ws.split_at_mut(len);
    Ok((&mut part[..floats], rest))
}

/// Evaluates through the op's definition in `sinter-ir` (the `reference` kernel).
pub(crate) struct Generic(pub Arc<dyn Op>);

impl Exec for Generic {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], _: &mut RunCtx) -> Result<()> {
        self.0.eval(inputs, outputs)
    }
}

/// A kernel input the builder stored pre-packed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PackedInput {
    pub input: usize,
    pub layout: PackLayout,
    /// Length of the packed data.
    pub bytes: u64,
}

/// For `op_type` = `kind`'s base op (e.g. `Conv`) or its fused form (`FusedConv`): the
/// base op as `T`, the fused epilogue steps (none for the plain op), and the op type.
pub(crate) fn base_op<'a, T: 'static>(
    op: &'a dyn Op,
    op_type: &str,
    kind: BaseKind,
) -> Accept<(&'a T, Vec<Step>, &'static str)> {
    const MISMATCH: &str = "the op is not of the type its node names";
    if op_type == kind.base_op_type() {
        return Ok((op.as_any().downcast_ref::<T>().why(MISMATCH)?, Vec::new(), kind.base_op_type()));
    }
    let f = op.as_any().downcast_ref::<Fused>().filter(|f| op_type == kind.fused_op_type() && f.kind == kind);
    let f = f.why(MISMATCH)?;
    Ok((f.base.as_any().downcast_ref::<T>().why(MISMATCH)?, f.epilogue.steps.clone(), kind.fused_op_type()))
}
