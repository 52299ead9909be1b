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
use sinter_ir::{Result, View, ViewMut};
use sinter_kernels::{KernelTable, ThreadPool};
use sinter_plan::PackLayout;
use std::sync::Arc;

/// What a kernel runs with: the CPU tier's kernel table and the context's thread pool.
pub(crate) struct RunCtx<'a> {
    pub tier: &'static KernelTable,
    pub pool: &'a ThreadPool,
}

/// A ready-to-run kernel.
pub(crate) trait Exec: Send + Sync {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()>;
}

/// A pointer to disjoint parts of one output, shared by the tasks of a parallel loop.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);

// SAFETY: tasks write pairwise disjoint ranges behind the pointer (see `par_chunks`),
// and the parallel loop returns only after every task has finished.
unsafe impl Send for SyncPtr {}
// SAFETY: as above.
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// A method (not `.0`) so closures capture the whole `Sync` wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// [`par_chunks`] over three outputs split in step: each task gets the same items
/// `first..first + per_task` of each output (`item_lens[i]` floats per item of output
/// `i`; an output with item length 0 takes part with empty chunks). The item count is the
/// smallest over the outputs with nonzero item lengths.
pub(crate) fn par_chunks3(
    pool: &ThreadPool,
    outs: [&mut [f32]; 3],
    item_lens: [usize; 3],
    per_task: usize,
    fill: &(dyn Fn(usize, [&mut [f32]; 3]) + Sync),
) {
    let items = outs.iter().zip(item_lens).filter_map(|(o, l)| o.len().checked_div(l)).min().unwrap_or(0);
    let per_task = per_task.max(1);
    let ptrs = outs.map(|o| SyncPtr(o.as_mut_ptr()));
    pool.parallel_for(items.div_ceil(per_task), &|t| {
        let (first, end) = (t * per_task, ((t + 1) * per_task).min(items));
        let chunk = |i: usize| {
            // SAFETY: items `first..end` of output `i` (`item_lens[i]` floats each, inside
            // it since `end <= items <= len / item_len`) belong to task `t` alone, and the
            // outputs stay borrowed until `parallel_for` has returned.
            unsafe {
                std::slice::from_raw_parts_mut(ptrs[i].get().add(first * item_lens[i]), (end - first) * item_lens[i])
            }
        };
        fill(first, [chunk(0), chunk(1), chunk(2)]);
    });
}

/// Runs `fill(first, chunk)` on `pool` for consecutive groups of `per_task` items of
/// `out` (`item_len` floats each; a last partial item is not handed out): `chunk` is
/// items `first..first + per_task` (fewer in the last task), written by that task only.
pub(crate) fn par_chunks(
    pool: &ThreadPool,
    out: &mut [f32],
    item_len: usize,
    per_task: usize,
    fill: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    let items = out.len().checked_div(item_len).unwrap_or(0);
    let per_task = per_task.max(1);
    let op = SyncPtr(out.as_mut_ptr());
    pool.parallel_for(items.div_ceil(per_task), &|t| {
        let (first, end) = (t * per_task, ((t + 1) * per_task).min(items));
        // SAFETY: items `first..end` (`item_len` floats each, inside `out` since
        // `end <= items = out.len() / item_len`) belong to task `t` alone, and `out`
        // stays borrowed until `parallel_for` has returned.
        let chunk = unsafe { std::slice::from_raw_parts_mut(op.get().add(first * item_len), (end - first) * item_len) };
        fill(first, chunk);
    });
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
