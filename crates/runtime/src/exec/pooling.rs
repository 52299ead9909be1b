//! 2-D f32 MaxPool / AveragePool and GlobalAveragePool / GlobalMaxPool through the SIMD
//! kernels of `sinter-kernels`, threaded over channel planes.

use super::refusal::{need, Accept, Refusal, Why};
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::nn::{GlobalPool, Pool, PoolKind};
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};
use sinter_kernels::pooling::{self, PoolGeom};
use sinter_kernels::Scratch;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Window(pooling::PoolKind, PoolGeom),
    GlobalAverage,
    GlobalMax,
}

#[derive(Debug)]
pub(crate) struct Pool2d {
    kind: Kind,
    planes: usize,
    in_plane: usize,
    out_plane: usize,
}

impl Pool2d {
    /// The kernel for an f32 4-D pool without an indices output, or why not.
    pub(crate) fn new(op: &dyn Op, inputs: &[Option<Slot>], outputs: &[Slot]) -> Accept<Pool2d> {
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let y = outputs.first().why("no output")?;
        need(outputs.len() == 1, "MaxPool's Indices output runs the reference")?;
        need(x.dtype == DType::F32 && y.dtype == DType::F32, "not f32")?;
        need(x.shape.len() == 4, "only 2-D pooling (4-D input)")?;
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let planes = n.checked_mul(c).why("sizes overflow")?;
        let in_plane = h.checked_mul(w).why("sizes overflow")?;
        need(in_plane != 0 && planes != 0, "an empty dimension")?;
        if let Some(g) = op.as_any().downcast_ref::<GlobalPool>() {
            let kind = match g.kind {
                PoolKind::Average { .. } => Kind::GlobalAverage,
                PoolKind::Max => Kind::GlobalMax,
                PoolKind::Lp { .. } => return Err(Refusal::new("Lp pooling runs the reference")),
            };
            need(y.shape == [n, c, 1, 1], "the output is not (N, C, 1, 1)")?;
            return Ok(Pool2d { kind, planes, in_plane, out_plane: 1 });
        }
        let p = op.as_any().downcast_ref::<Pool>().why("the op is not a pooling op")?;
        let kind = match p.kind {
            PoolKind::Max => pooling::PoolKind::Max,
            PoolKind::Average { count_include_pad } => pooling::PoolKind::Avg { count_include_pad },
            PoolKind::Lp { .. } => return Err(Refusal::new("Lp pooling runs the reference")),
        };
        let win = p.resolve_window(&x.shape).why("window")?;
        let (oh, ow) = (*win.out.first().why("no output size")?, *win.out.get(1).why("no output size")?);
        need(y.shape == [n, c, oh, ow] && p.kernel.len() == 2, "the output shape does not match the window")?;
        let pad = |v: i64| usize::try_from(v).why("negative pads");
        let pads = [pad(win.pad_begin[0])?, pad(win.pad_begin[1])?, pad(win.pad_end[0])?, pad(win.pad_end[1])?];
        let geom = PoolGeom::new(
            [h, w],
            [oh, ow],
            [p.kernel[0], p.kernel[1]],
            [win.strides[0], win.strides[1]],
            [win.dilations[0], win.dilations[1]],
            pads,
        )
        .why("window")?;
        let out_plane = oh.checked_mul(ow).why("sizes overflow")?;
        Ok(Pool2d { kind: Kind::Window(kind, geom), planes, in_plane, out_plane })
    }
}

impl Exec for Pool2d {
    /// A windowed pool's padded plane and tap counts, per thread.
    fn workspace(&self) -> Scratch {
        match self.kind {
            Kind::Window(_, g) => Scratch::new(0, pooling::pool_scratch_floats(&g)),
            Kind::GlobalAverage | Kind::GlobalMax => Scratch::NONE,
        }
    }

    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        let missing = |index| IrError::MissingInput { op: "Pool".into(), index };
        let x = inputs.first().copied().flatten().ok_or_else(|| missing(0))?.as_slice::<f32>()?;
        let y = outputs.first_mut().ok_or_else(|| missing(0))?.as_slice_mut::<f32>()?;
        if x.len() != self.planes * self.in_plane || y.len() != self.planes * self.out_plane {
            return Err(IrError::Data("Pool: operand sizes do not match the plan".into()));
        }
        // Enough planes per task to amortize the dispatch on small feature maps.
        let per_task = (16384 / (self.in_plane + 1)).clamp(1, self.planes.div_ceil(cx.pool.threads()));
        let failed = AtomicBool::new(false);
        let (tier, kind, in_plane, out_plane) = (cx.tier, self.kind, self.in_plane, self.out_plane);
        let per_thread = self.workspace().per_thread;
        let (cx, ws) = cx.split();
        let done = cx.pool.par_chunks_scratch(y, out_plane, per_task, ws, per_thread, &|first, out, s| {
            for (p, yp) in (first..).zip(out.chunks_exact_mut(out_plane)) {
                let xp = &x[p * in_plane..][..in_plane];
                let r = match kind {
                    Kind::GlobalAverage => pooling::global_average_pool(tier, xp).map(|v| yp[0] = v),
                    Kind::GlobalMax => pooling::global_max_pool(tier, xp).map(|v| yp[0] = v),
                    Kind::Window(k, g) => pooling::pool2d(tier, k, &g, xp, yp, s),
                };
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        });
        done.map_err(|e| IrError::Data(format!("Pool: {e}")))?;
        if failed.into_inner() {
            return Err(IrError::Data("Pool: kernel refused its operands".into()));
        }
        Ok(())
    }
}
