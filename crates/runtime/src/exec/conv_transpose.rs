//! 2-D NCHW f32 transposed convolution, plain or fused with an epilogue.
//!
//! Per image and group: `col = W_gᵀ · X_g` (`M_g·kh·kw × H·W`) by the packed GEMM, in
//! column blocks sized for L2, each block scattered and added into the output (col2im)
//! right away; then bias and epilogue per output plane. `W_gᵀ` is packed once (at build
//! time when the plan carries it).

use super::conv::{valid_range, ConvGeom, RunOperands, Weights};
use super::refusal::{need, Accept, Why};
use super::{take_ws, Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::fused::BaseKind;
use sinter_ir::ops::nn::ConvTranspose;
use sinter_ir::ops::Op;
use sinter_ir::{IrError, Result, View, ViewMut};
use sinter_kernels::epilogue::{apply_scalar, BinOp};
use sinter_kernels::scratch::round_floats;
use sinter_kernels::{sgemm_scratch_upto, Epilogue, Matrix, PackedA, Scratch};

/// Floats of one column block (`M_g·kh·kw × len`), kept in L2 between GEMM and col2im.
const BLOCK_FLOATS: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct ConvT2d {
    g: ConvGeom,
    /// Input columns per GEMM block.
    chunk: usize,
    weights: Weights,
}

impl ConvT2d {
    /// The kernel for a 2-D f32 `ConvTranspose` / `FusedConvTranspose`, or why not.
    pub(crate) fn new(
        op: &dyn Op,
        op_type: &str,
        inputs: &[Option<Slot>],
        outputs: &[Slot],
        weights: Weights,
    ) -> Accept<ConvT2d> {
        let (ct, steps, name) = super::base_op::<ConvTranspose>(op, op_type, BaseKind::ConvTranspose)?;
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let wt = inputs.get(1).and_then(Option::as_ref).why("no weights")?;
        need(wt.shape.len() == 4 && x.shape.len() == 4, "only 2-D transposed convolutions")?;
        need(wt.shape[0] == x.shape[1], "weights do not match the input channels")?;
        let win = ct.resolve_window(&x.shape, &wt.shape).why("window")?;
        let m = wt.shape[1].checked_mul(ct.group).why("sizes overflow")?;
        let fused = op_type == "FusedConvTranspose";
        let g = ConvGeom::new(name, steps, fused, inputs, outputs, (m, ct.group), [wt.shape[2], wt.shape[3]], &win)?;
        let rows = g.mg().checked_mul(g.kh).and_then(|v| v.checked_mul(g.kw)).why("sizes overflow")?;
        let in_size = g.h * g.w;
        sinter_kernels::packed_a_len(rows, g.cg()).checked_mul(g.groups).why("sizes overflow")?;
        let chunk = (BLOCK_FLOATS / rows.max(1)).clamp(16, in_size.max(16));
        Ok(ConvT2d { g, chunk, weights })
    }

    fn cg(&self) -> usize {
        self.g.cg()
    }
    fn mg(&self) -> usize {
        self.g.mg()
    }
    /// Rows of `W_gᵀ`: one per output channel and kernel tap.
    fn rows(&self) -> usize {
        self.mg() * self.g.kh * self.g.kw
    }

    pub(crate) fn packed_len(&self) -> usize {
        sinter_kernels::packed_a_len(self.rows(), self.cg()) * self.g.groups
    }

    /// Packs `W` (`[c, m_g, kh, kw]`) as `groups` matrices `W_gᵀ` (`m_g·kh·kw × c_g`).
    pub(crate) fn pack(&self, wt: &[f32], out: &mut [f32]) -> Result<()> {
        let (rows, cg) = (self.rows(), self.cg());
        let plen = sinter_kernels::packed_a_len(rows, cg);
        if wt.len() != self.g.c * rows || out.len() != plen * self.g.groups {
            return Err(IrError::Data(format!("{}: weights of {} floats do not fit", self.g.name, wt.len())));
        }
        let mut t = vec![0.0; rows * cg];
        for (g, dst) in out.chunks_exact_mut(plen.max(1)).enumerate().take(self.g.groups) {
            for ci in 0..cg {
                for r in 0..rows {
                    t[r * cg + ci] = wt[(g * cg + ci) * rows + r];
                }
            }
            sinter_kernels::pack_a(rows, cg, &t, cg, dst)
                .map_err(|e| IrError::Data(format!("{}: {e}", self.g.name)))?;
        }
        Ok(())
    }

    pub(crate) fn load_weights(&mut self, wt: &[f32]) -> Result<()> {
        let mut packed = vec![0.0; self.packed_len()];
        self.pack(wt, &mut packed)?;
        self.weights = Weights::Loaded(packed);
        Ok(())
    }

    /// Adds column block `col` (`rows × len`, input positions `j0..j0 + len`) into the
    /// output planes `yg` (`[m_g, oh·ow]`).
    fn col2im_add(&self, col: &[f32], j0: usize, len: usize, yg: &mut [f32]) {
        let plane = self.g.oh * self.g.ow;
        let taps = self.g.kh * self.g.kw;
        for (r, crow) in col.chunks_exact(len).enumerate().take(self.rows()) {
            let (mc, tap) = (r / taps, r % taps);
            let (ky, kx) = (tap / self.g.kw, tap % self.g.kw);
            let yp = &mut yg[mc * plane..][..plane];
            let off = (kx * self.g.dw) as i64 - self.g.pw;
            // Input columns ix whose output column ix * sw + off lies in 0..ow.
            let (lo, hi) = valid_range(off, self.g.sw, self.g.ow, self.g.w);
            let mut pos = 0;
            while pos < len {
                let j = j0 + pos;
                let (iy, ix0) = (j / self.g.w, j % self.g.w);
                let seg = (self.g.w - ix0).min(len - pos);
                let src = &crow[pos..pos + seg];
                pos += seg;
                let oy = (iy * self.g.sh + ky * self.g.dh) as i64 - self.g.ph;
                if oy < 0 || oy >= self.g.oh as i64 {
                    continue;
                }
                let (a, b) = (lo.clamp(ix0, ix0 + seg), hi.clamp(ix0, ix0 + seg));
                if a >= b {
                    continue;
                }
                let yrow = &mut yp[oy as usize * self.g.ow..][..self.g.ow];
                // a * sw + off >= 0 and (b - 1) * sw + off < ow by the valid range.
                let start = (a as i64 * self.g.sw as i64 + off) as usize;
                for (v, d) in src[a - ix0..b - ix0].iter().zip(yrow[start..].iter_mut().step_by(self.g.sw)) {
                    *d += v;
                }
            }
        }
    }
}

impl Exec for ConvT2d {
    /// Shared: weights packed per run (non-constant weights), then one column block.
    /// Per thread: the GEMM's packed B block for any block width.
    fn workspace(&self) -> Scratch {
        let chunk = self.chunk.min(self.g.h * self.g.w);
        let pack = self.weights.workspace(self.packed_len());
        let col = round_floats(self.rows().saturating_mul(chunk));
        Scratch::new(pack.saturating_add(col), sgemm_scratch_upto(self.rows(), chunk, self.cg()).per_thread)
    }

    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        let RunOperands { x, wt, bias, extras, count, y } = self.g.operands(inputs, outputs)?;
        let extras = &extras[..count];
        let (in_size, plane, cg, mg, rows) =
            (self.g.h * self.g.w, self.g.oh * self.g.ow, self.cg(), self.mg(), self.rows());
        let plen = sinter_kernels::packed_a_len(rows, cg);
        let kerr = |e: sinter_kernels::KernelError| IrError::Data(format!("{}: {e}", self.g.name));
        let (cx, ws) = cx.split();
        let run = |packed: &[f32], ws: &mut [f32]| -> Result<()> {
            if packed.len() != plen * self.g.groups {
                return Err(IrError::Data(format!("{}: packed weights hold {} floats", self.g.name, packed.len())));
            }
            let chunk = self.chunk.min(in_size);
            let (col, ws) = take_ws(self.g.name, ws, rows * chunk)?;
            for img in 0..self.g.n {
                for g in 0..self.g.groups {
                    let xg = &x[(img * self.g.c + g * cg) * in_size..][..cg * in_size];
                    let a = PackedA::new(&packed[g * plen..][..plen], rows, cg).map_err(kerr)?;
                    let yg = &mut y[(img * self.g.m + g * mg) * plane..][..mg * plane];
                    yg.fill(0.0);
                    let mut j0 = 0;
                    while j0 < in_size {
                        let len = chunk.min(in_size - j0);
                        let b = Matrix::new(&xg[j0..], cg, len, in_size).map_err(kerr)?;
                        let col = &mut col[..rows * len];
                        sinter_kernels::sgemm(cx.tier, &a, &b, col, len, &Epilogue::default(), cx.pool, ws)
                            .map_err(kerr)?;
                        self.col2im_add(col, j0, len, yg);
                        j0 += len;
                    }
                    for (r, yp) in yg.chunks_exact_mut(plane).enumerate() {
                        if let Some(b) = bias {
                            apply_scalar(cx.tier, BinOp::Add, false, yp, b[g * mg + r]);
                        }
                        self.g.post.apply_row(cx.tier, self.g.ow, (img, g * mg + r, 0), yp, extras);
                    }
                }
            }
            Ok(())
        };
        self.weights.with_packed(self.g.name, wt, self.packed_len(), ws, |w, out| self.pack(w, out), run)
    }
}
