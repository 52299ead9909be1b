//! 2-D f32 MaxPool / AveragePool and GlobalAveragePool / GlobalMaxPool through the SIMD
//! kernels of `sinter-kernels`, threaded over channel planes.

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
    /// The kernel for an f32 4-D pool without an indices output, or `None`.
    pub(crate) fn new(op: &dyn Op, inputs: &[Option<Slot>], outputs: &[Slot]) -> Option<Pool2d> {
        let x = inputs.first()?.as_ref()?;
        let y = outputs.first()?;
        if outputs.len() != 1 || x.dtype != DType::F32 || y.dtype != DType::F32 || x.shape.len() != 4 {
            return None;
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let planes = n.checked_mul(c)?;
        let in_plane = h.checked_mul(w)?;
        if in_plane == 0 || planes == 0 {
            return None;
        }
        if let Some(g) = op.as_any().downcast_ref::<GlobalPool>() {
            let kind = match g.kind {
                PoolKind::Average { .. } => Kind::GlobalAverage,
                PoolKind::Max => Kind::GlobalMax,
                PoolKind::Lp { .. } => return None,
            };
            if y.shape != [n, c, 1, 1] {
                return None;
            }
            return Some(Pool2d { kind, planes, in_plane, out_plane: 1 });
        }
        let p = op.as_any().downcast_ref::<Pool>()?;
        let kind = match p.kind {
            PoolKind::Max => pooling::PoolKind::Max,
            PoolKind::Average { count_include_pad } => pooling::PoolKind::Avg { count_include_pad },
            PoolKind::Lp { .. } => return None,
        };
        let win = p.resolve_window(&x.shape).ok()?;
        let (oh, ow) = (*win.out.first()?, *win.out.get(1)?);
        if y.shape != [n, c, oh, ow] || p.kernel.len() != 2 {
            return None;
        }
        let pad = |v: i64| usize::try_from(v).ok();
        let pads = [pad(win.pad_begin[0])?, pad(win.pad_begin[1])?, pad(win.pad_end[0])?, pad(win.pad_end[1])?];
        let geom = PoolGeom::new(
            [h, w],
            [oh, ow],
            [p.kernel[0], p.kernel[1]],
            [win.strides[0], win.strides[1]],
            [win.dilations[0], win.dilations[1]],
            pads,
        )
        .ok()?;
        Some(Pool2d { kind: Kind::Window(kind, geom), planes, in_plane, out_plane: oh.checked_mul(ow)? })
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
        let (isa, kind, in_plane, out_plane) = (cx.isa, self.kind, self.in_plane, self.out_plane);
        let per_thread = self.workspace().per_thread;
        let (cx, ws) = cx.split();
        let done = cx.pool.par_chunks_scratch(y, out_plane, per_task, ws, per_thread, &|first, out, s| {
            for (p, yp) in (first..).zip(out.chunks_exact_mut(out_plane)) {
                let xp = &x[p * in_plane..][..in_plane];
                let r = match kind {
                    Kind::GlobalAverage => pooling::global_average_pool(isa, xp).map(|v| yp[0] = v),
                    Kind::GlobalMax => pooling::global_max_pool(isa, xp).map(|v| yp[0] = v),
                    Kind::Window(k, g) => pooling::pool2d(isa, k, &g, xp, yp, s),
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
