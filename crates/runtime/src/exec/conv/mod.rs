//! 2-D NCHW f32 convolution, plain or fused with an epilogue.
//!
//! Per image and group, the convolution is one GEMM of the packed weights (`M_g × K`,
//! packed once into `MR`-row panels, at build time when the plan carries them) by the
//! implicit im2col matrix of the input (`K × OH·OW`, packed block by block straight from
//! the input by [`im2col::ConvB`]; a 1×1 stride-1 convolution reads its input as B
//! directly). Bias, a residual Add and Relu/Clip are applied in registers by the GEMM;
//! any other epilogue steps run on each finished row segment while it is in cache.
//! Depthwise convolutions (one input and one output channel per group) use a direct
//! kernel instead, since their GEMMs would be 1×k, threaded over channel planes.

mod geom;
mod im2col;

pub(crate) use geom::{valid_range, ConvGeom, RunOperands};

use super::refusal::{need, Accept, Refusal, Why};
use super::request::{gemm_panels, packed_bytes_match, Request};
use super::{take_ws, Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::fused::BaseKind;
use sinter_ir::ops::nn::Conv;
use sinter_ir::ops::Op;
use sinter_ir::{IrError, Result, View, ViewMut};
use sinter_kernels::epilogue::{InRegisters, PostOps};
use sinter_kernels::scratch::round_floats;
use sinter_kernels::winograd::{WinogradConv, WinogradTile};
use sinter_kernels::{sgemm_scratch, Activation, Epilogue, KernelTable, Matrix, PackedA, Scratch};
use sinter_plan::PackLayout;

/// A convolution with resolved geometry (see the module docs).
#[derive(Debug)]
pub(crate) struct Conv2d {
    g: ConvGeom,
    /// How much of the epilogue the GEMM applies in registers.
    fused: InRegisters,
    /// Where the packed weights come from.
    weights: Weights,
    /// The window of a depthwise convolution, for the direct SIMD kernel.
    dw_geom: Option<sinter_kernels::depthwise::DwGeom>,
    /// Set when this 3×3 stride-1 convolution runs by Winograd instead of packed GEMM.
    winograd: Option<WinogradConv>,
    /// For kernels larger than 1×1: the padded, phase-split input copy its GEMM packs
    /// im2col from.
    padded: Option<im2col::Padded>,
}

/// Packed GEMM weights (`groups` matrices of `M_g × K` in `MR`-row panels).
#[derive(Debug)]
pub(crate) enum Weights {
    /// Packed at build time: input 1 holds the panels.
    Plan,
    /// Packed when the plan was loaded (a plan without packed weights).
    Loaded(Vec<f32>),
    /// Weights computed at run time (not a constant): packed on every run.
    Runtime,
}

impl Weights {
    /// Workspace floats [`Weights::with_packed`] takes for `len` floats of packed
    /// weights (whole cache lines): only weights packed on every run need any.
    pub(crate) fn workspace(&self, len: usize) -> usize {
        match self {
            Weights::Runtime => round_floats(len),
            Weights::Plan | Weights::Loaded(_) => 0,
        }
    }

    /// Runs `run(packed, rest)` on the packed weights: the plan's (`wt` itself), those
    /// packed at load, or `wt` packed now by `pack` into the first `len` floats of the
    /// kernel's workspace `ws`; `rest` is the workspace after what this took.
    pub(crate) fn with_packed<R>(
        &self,
        name: &str,
        wt: &[f32],
        len: usize,
        ws: &mut [f32],
        pack: impl FnOnce(&[f32], &mut [f32]) -> Result<()>,
        run: impl FnOnce(&[f32], &mut [f32]) -> Result<R>,
    ) -> Result<R> {
        match self {
            Weights::Plan => run(wt, ws),
            Weights::Loaded(p) => run(p, ws),
            Weights::Runtime => {
                let (p, rest) = take_ws(name, ws, len)?;
                pack(wt, p)?;
                run(p, rest)
            }
        }
    }
}

impl Conv2d {
    /// The kernel for a `Conv` or `FusedConv` (f32 already checked by the caller), or
    /// why not where the shapes or steps fall outside what it handles. `weights` says
    /// where the packed weights come from; a plan's packed input 1 is checked here.
    pub(crate) fn new(
        op: &dyn Op,
        op_type: &str,
        inputs: &[Option<Slot>],
        outputs: &[Slot],
        weights: Weights,
    ) -> Accept<Conv2d> {
        let (conv, steps, name) = super::base_op::<Conv>(op, op_type, BaseKind::Conv)?;
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let wt = inputs.get(1).and_then(Option::as_ref).why("no weights")?;
        need(wt.shape.len() == 4, "only 2-D convolutions (4-D weights)")?;
        let win = conv.resolve_window(&x.shape, &wt.shape).why("window")?;
        let (m, kernel) = (wt.shape[0], [wt.shape[2], wt.shape[3]]);
        let g = ConvGeom::new(name, steps, name == "FusedConv", inputs, outputs, (m, conv.group), kernel, &win)?;
        // Sizes the run loops rely on, checked once here.
        let kdim = g.cg().checked_mul(g.kh).and_then(|v| v.checked_mul(g.kw)).why("sizes overflow")?;
        g.w.checked_add(g.sw).and_then(|v| g.h.checked_mul(v)).why("sizes overflow")?;
        sinter_kernels::packed_a_len(g.mg(), kdim).checked_mul(g.groups).why("sizes overflow")?;
        let fused = g.post.split(&[g.n, g.m, g.oh, g.ow]);
        let mut conv2d = Conv2d { g, fused, weights, dw_geom: None, winograd: None, padded: None };
        if conv2d.g.kh * conv2d.g.kw > 1 {
            conv2d.padded = Some(im2col::Padded::new(&conv2d.g).why("the padded input copy would overflow")?);
        }
        let g = &conv2d.g;
        if conv2d.depthwise() && g.ph >= 0 && g.pw >= 0 {
            conv2d.dw_geom = sinter_kernels::depthwise::DwGeom::new(
                [g.h, g.w],
                [g.oh, g.ow],
                [g.kh, g.kw],
                [g.sh, g.sw],
                [g.dh, g.dw],
                [g.ph as usize, g.pw as usize],
            )
            .ok();
        }
        Ok(conv2d)
    }

    fn cg(&self) -> usize {
        self.g.cg()
    }
    fn mg(&self) -> usize {
        self.g.mg()
    }
    fn kdim(&self) -> usize {
        self.g.kdim()
    }
    fn cols(&self) -> usize {
        self.g.cols()
    }
    pub(crate) fn depthwise(&self) -> bool {
        self.cg() == 1 && self.mg() == 1
    }
    /// A 1x1 kernel with unit strides and no padding: the input is its own im2col matrix.
    fn pointwise(&self) -> bool {
        self.g.kh == 1 && self.g.kw == 1 && self.g.sh == 1 && self.g.sw == 1 && self.g.ph == 0 && self.g.pw == 0
    }

    /// The same convolution run by Winograd with output tiles of `tile`, or `None`
    /// when it is not a single-group 3×3 stride-1 dilation-1 convolution.
    pub(crate) fn with_winograd(mut self, tile: WinogradTile) -> Option<Conv2d> {
        let plain = self.g.groups == 1
            && (self.g.kh, self.g.kw, self.g.sh, self.g.sw, self.g.dh, self.g.dw) == (3, 3, 1, 1, 1, 1);
        if !plain || self.g.ph < 0 || self.g.pw < 0 {
            return None;
        }
        let (ph, pw) = (self.g.ph as usize, self.g.pw as usize);
        // Bottom / right padding follow from the output size.
        let pb = (self.g.oh + 2).checked_sub(self.g.h + ph)?;
        let pr = (self.g.ow + 2).checked_sub(self.g.w + pw)?;
        let wc = WinogradConv::new(tile, self.g.c, self.g.h, self.g.w, self.g.m, [ph, pw, pb, pr]).ok()?;
        if wc.out_size() != (self.g.oh, self.g.ow) {
            return None;
        }
        self.winograd = Some(wc);
        Some(self)
    }

    /// Input channels, output channels, output height and width.
    pub(crate) fn dims(&self) -> (usize, usize, usize, usize) {
        (self.g.c, self.g.m, self.g.oh, self.g.ow)
    }

    /// The shapes of input 0 and of the output.
    pub(crate) fn io_shapes(&self) -> ([usize; 4], [usize; 4]) {
        ([self.g.n, self.g.c, self.g.h, self.g.w], [self.g.n, self.g.m, self.g.oh, self.g.ow])
    }

    /// A copy without epilogue steps (for timing tactics on the convolution alone).
    pub(crate) fn plain(&self) -> Conv2d {
        Conv2d {
            g: ConvGeom { post: PostOps::default(), has_bias: false, ..self.g.clone() },
            fused: InRegisters { act: Activation::None, residual: false, post: false },
            weights: Weights::Plan,
            dw_geom: self.dw_geom,
            winograd: self.winograd,
            padded: self.padded,
        }
    }

    /// Floats of the packed weights of all groups.
    pub(crate) fn packed_len(&self) -> usize {
        match &self.winograd {
            Some(wc) => wc.packed_weights_len(),
            None => sinter_kernels::packed_a_len(self.mg(), self.kdim()) * self.g.groups,
        }
    }

    /// Packs `[m, cg, kh, kw]` weights for the kernel's tactic: `groups` GEMM A
    /// matrices, or the Winograd-transformed weights.
    pub(crate) fn pack(&self, wt: &[f32], out: &mut [f32]) -> Result<()> {
        if let Some(wc) = &self.winograd {
            self.check_len("weights", wt, self.g.m * self.kdim())?;
            return sinter_kernels::winograd::pack_weights(wc.tile(), self.g.m, self.g.c, wt, out)
                .map_err(|e| IrError::Data(format!("{}: {e}", self.g.name)));
        }
        let (mg, kdim) = (self.mg(), self.kdim());
        let plen = sinter_kernels::packed_a_len(mg, kdim);
        self.check_len("weights", wt, self.g.m * kdim)?;
        self.check_len("packed weights", out, plen * self.g.groups)?;
        for (g, dst) in out.chunks_exact_mut(plen.max(1)).enumerate().take(self.g.groups) {
            sinter_kernels::pack_a(mg, kdim, &wt[g * mg * kdim..][..mg * kdim], kdim, dst)
                .map_err(|e| IrError::Data(format!("{}: {e}", self.g.name)))?;
        }
        Ok(())
    }

    /// Packs the weights at load time (for plans that do not carry them packed).
    pub(crate) fn load_weights(&mut self, wt: &[f32]) -> Result<()> {
        if self.depthwise() {
            self.weights = Weights::Runtime; // the direct kernel reads them as they are
            return Ok(());
        }
        let mut packed = vec![0.0; self.packed_len()];
        self.pack(wt, &mut packed)?;
        self.weights = Weights::Loaded(packed);
        Ok(())
    }

    /// Runs the epilogue on output row segment `row`: channel `mc` of image `img`,
    /// columns `j0..`.
    fn finish_row(&self, tier: &KernelTable, img: usize, mc: usize, j0: usize, row: &mut [f32], extras: &[&[f32]]) {
        self.g.post.apply_row(tier, self.g.ow, (img, mc, j0), row, extras);
    }

    /// Input elements per row phase of a depthwise plane: with stride `sw`, each input
    /// row is split into `sw` phases (elements `p, p + sw, ...`) so that every kernel tap
    /// reads contiguous memory.
    pub(super) fn phase_len(&self) -> usize {
        self.g.w.div_ceil(self.g.sw)
    }

    /// Floats of the phase-split copy of one input plane (none at unit stride).
    fn depthwise_scratch(&self) -> usize {
        if self.g.sw == 1 {
            0
        } else {
            self.g.h * self.g.sw * self.phase_len()
        }
    }

    /// Direct depthwise convolution of one channel plane `xc` into `yc`, bias included.
    /// `split` holds `depthwise_scratch()` floats for the phase-split input.
    fn depthwise_plane(&self, xc: &[f32], wc: &[f32], bias: f32, yc: &mut [f32], split: &mut [f32]) {
        let (sw, pl) = (self.g.sw, self.phase_len());
        let src: &[f32] = if sw == 1 {
            xc
        } else {
            for (xrow, phases) in xc.chunks_exact(self.g.w).zip(split.chunks_exact_mut(sw * pl)) {
                for (p, dst) in phases.chunks_exact_mut(pl).enumerate() {
                    for (t, d) in dst.iter_mut().enumerate() {
                        *d = xrow.get(p + t * sw).copied().unwrap_or(0.0);
                    }
                }
            }
            split
        };
        yc.fill(bias);
        for ky in 0..self.g.kh {
            for kx in 0..self.g.kw {
                let wv = wc[ky * self.g.kw + kx];
                let off = (kx * self.g.dw) as i64 - self.g.pw;
                let (lo, hi) = valid_range(off, sw, self.g.w, self.g.ow);
                if lo >= hi {
                    continue;
                }
                // Input column of output `lo`: >= 0 by construction of the valid range.
                let start = (lo as i64 * sw as i64 + off) as usize;
                let (phase, base) = (start % sw, start / sw);
                for (oy, yrow) in yc.chunks_exact_mut(self.g.ow).enumerate() {
                    let iy = (oy * self.g.sh + ky * self.g.dh) as i64 - self.g.ph;
                    if iy < 0 || iy >= self.g.h as i64 {
                        continue;
                    }
                    let xrow = &src[(iy as usize * sw + phase) * pl..][..pl];
                    for (d, &s) in yrow[lo..hi].iter_mut().zip(&xrow[base..]) {
                        *d += wv * s;
                    }
                }
            }
        }
    }

    fn check_len(&self, what: &str, data: &[f32], want: usize) -> Result<()> {
        if data.len() == want {
            Ok(())
        } else {
            Err(IrError::Data(format!("{}: {what} holds {} floats, expected {want}", self.g.name, data.len())))
        }
    }

    /// Floats of per-thread scratch the depthwise path needs.
    fn depthwise_need(&self) -> usize {
        match &self.dw_geom {
            Some(g) => sinter_kernels::depthwise::scratch_floats(g),
            None => self.depthwise_scratch(),
        }
    }

    /// Whether a 1×1 strided or padded convolution writes its whole im2col matrix out
    /// first (see [`MATERIALIZE_COLS`]).
    fn materialize(&self) -> bool {
        self.cols() <= MATERIALIZE_COLS && self.kdim().saturating_mul(self.cols()) <= MATERIALIZE_FLOATS
    }

    #[allow(clippy::too_many_arguments)]
    fn run_depthwise(
        &self,
        x: &[f32],
        wt: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        extras: &[&[f32]],
        cx: &RunCtx,
        ws: &mut [f32],
    ) -> Result<()> {
        let (plane, cols, kdim) = (self.g.h * self.g.w, self.cols(), self.kdim());
        self.check_len("weights", wt, self.g.m * kdim)?;
        let planes = self.g.n * self.g.m;
        let per_task = planes.div_ceil(cx.pool.threads() * 4).max(1);
        // Relu/Clip run in the kernel's registers when they are the whole epilogue.
        let act = if self.fused.post || self.fused.residual { Activation::None } else { self.fused.act };
        let in_register = !self.fused.post && !self.fused.residual;
        let failed = std::sync::atomic::AtomicBool::new(false);
        let need = self.depthwise_need();
        let per_thread = self.workspace().per_thread;
        let done = cx.pool.par_chunks_scratch(y, cols, per_task, ws, per_thread, &|first, ys, s| {
            {
                let end = first + ys.len() / cols;
                if let Some(g) = &self.dw_geom {
                    // One call per run of consecutive channels of one image.
                    let mut i0 = first;
                    while i0 < end {
                        let (img, mc0) = (i0 / self.g.m, i0 % self.g.m);
                        let i1 = end.min((img + 1) * self.g.m);
                        let c = i1 - i0;
                        let yc = &mut ys[(i0 - first) * cols..(i1 - first) * cols];
                        let xc = &x[i0 * plane..][..c * plane];
                        let wc = &wt[mc0 * kdim..][..c * kdim];
                        let bc = bias.map(|b| &b[mc0..mc0 + c]);
                        let r =
                            sinter_kernels::depthwise::depthwise_conv2d_channels(cx.tier, g, c, xc, wc, bc, act, yc, s);
                        if r.is_err() {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                        if !in_register {
                            for (k, yp) in yc.chunks_exact_mut(cols).enumerate() {
                                self.finish_row(cx.tier, img, mc0 + k, 0, yp, extras);
                            }
                        }
                        i0 = i1;
                    }
                    return;
                }
                for (i, yc) in (first..end).zip(ys.chunks_exact_mut(cols)) {
                    let mc = i % self.g.m;
                    let xc = &x[i * plane..][..plane];
                    let (wc, b) = (&wt[mc * kdim..][..kdim], bias.map_or(0.0, |b| b[mc]));
                    self.depthwise_plane(xc, wc, b, yc, &mut s[..need]);
                    self.finish_row(cx.tier, i / self.g.m, mc, 0, yc, extras);
                }
            }
        });
        done.map_err(|e| IrError::Data(format!("{}: {e}", self.g.name)))?;
        if failed.into_inner() {
            return Err(IrError::Data(format!("{}: depthwise kernel refused its operands", self.g.name)));
        }
        Ok(())
    }
}

/// Output positions up to which a 1×1 strided or padded convolution's im2col matrix is
/// written out once (in parallel) before its GEMM, instead of packed per cache block:
/// small feature maps, where per-block packing repeats per task and its short strided
/// rows make it expensive.
const MATERIALIZE_COLS: usize = 1024;
/// Largest im2col matrix written out (floats).
const MATERIALIZE_FLOATS: usize = 4 << 20;

impl Conv2d {
    /// One group's GEMM with the implicit im2col of `xg` as B. Kernels larger than 1×1
    /// first copy the input padded and phase-split (in parallel over channels), so
    /// packing B is straight copies; a strided or padded 1×1 kernel reads each input
    /// float at most once, so it packs from the input itself.
    /// `ws` is the kernel's workspace after the packed weights: the padded input (or
    /// the im2col matrix) first, then the GEMM's.
    fn gemm_im2col(
        &self,
        xg: &[f32],
        a: &PackedA,
        yg: &mut [f32],
        epi: &Epilogue,
        cx: &RunCtx,
        ws: &mut [f32],
    ) -> Result<()> {
        let cols = self.cols();
        let kerr = |e: sinter_kernels::KernelError| IrError::Data(format!("{}: {e}", self.g.name));
        let Some(padded) = self.padded else {
            return self.gemm_plain(xg, a, yg, epi, cx, ws);
        };
        let (buf, ws) = take_ws(self.g.name, ws, self.cg() * padded.plane())?;
        let plane = self.g.h * self.g.w;
        let per_task = self.cg().div_ceil(cx.pool.threads() * 4);
        cx.pool.par_chunks(buf, padded.plane(), per_task, &|c0, out| {
            let c1 = c0 + out.len() / padded.plane();
            im2col::pad_split(&self.g, &padded, &xg[c0 * plane..c1 * plane], out);
        });
        let b = im2col::ConvB { g: &self.g, x: buf, layout: im2col::Layout::Padded(padded) };
        sinter_kernels::sgemm(cx.tier, a, &b, yg, cols, epi, cx.pool, ws).map_err(kerr)
    }

    /// [`Self::gemm_im2col`] for a 1×1 kernel with strides or padding.
    fn gemm_plain(
        &self,
        xg: &[f32],
        a: &PackedA,
        yg: &mut [f32],
        epi: &Epilogue,
        cx: &RunCtx,
        ws: &mut [f32],
    ) -> Result<()> {
        let (cols, kdim) = (self.cols(), self.kdim());
        let kerr = |e: sinter_kernels::KernelError| IrError::Data(format!("{}: {e}", self.g.name));
        let b = im2col::ConvB { g: &self.g, x: xg, layout: im2col::Layout::Plain };
        if !self.materialize() {
            return sinter_kernels::sgemm(cx.tier, a, &b, yg, cols, epi, cx.pool, ws).map_err(kerr);
        }
        let (buf, ws) = take_ws(self.g.name, ws, kdim * cols)?;
        cx.pool.par_chunks(buf, cols, kdim.div_ceil(cx.pool.threads() * 4), &|k0, rows| {
            for (kk, row) in (k0..).zip(rows.chunks_exact_mut(cols)) {
                b.fill_row(kk, 0, row);
            }
        });
        let m = Matrix::new(buf, kdim, cols, cols).map_err(kerr)?;
        sinter_kernels::sgemm(cx.tier, a, &m, yg, cols, epi, cx.pool, ws).map_err(kerr)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_winograd(
        &self,
        wc: &WinogradConv,
        packed: &[f32],
        x: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        extras: &[&[f32]],
        cx: &RunCtx,
        ws: &mut [f32],
    ) -> Result<()> {
        let (plane, cols) = (self.g.h * self.g.w, self.cols());
        let kerr = |e: sinter_kernels::KernelError| IrError::Data(format!("{}: {e}", self.g.name));
        for img in 0..self.g.n {
            let xi = &x[img * self.g.c * plane..][..self.g.c * plane];
            let yi = &mut y[img * self.g.m * cols..][..self.g.m * cols];
            let post = |mc: usize, j0: usize, row: &mut [f32]| {
                self.finish_row(cx.tier, img, mc, j0, row, extras);
            };
            let residual = if self.fused.residual {
                let o = self.g.post.operands()[0];
                Some(Matrix::new(&extras[0][img * o.sn..], self.g.m, cols, cols).map_err(kerr)?)
            } else {
                None
            };
            let epi = Epilogue {
                bias,
                residual,
                act: self.fused.act,
                post: if self.fused.post { Some(&post) } else { None },
            };
            wc.run(cx.tier, packed, xi, yi, &epi, cx.pool, ws).map_err(kerr)?;
        }
        Ok(())
    }
}

impl Exec for Conv2d {
    /// Shared: weights packed per run (non-constant weights), then the padded input
    /// copy or im2col matrix of the largest group, or Winograd's shared part. Per
    /// thread: the GEMM's packed B block, Winograd's slots, or the depthwise kernel's
    /// phase-split plane.
    fn workspace(&self) -> Scratch {
        if self.depthwise() {
            return Scratch::new(0, self.depthwise_need());
        }
        let pack = self.weights.workspace(self.packed_len());
        if let Some(wc) = &self.winograd {
            let s = wc.scratch();
            return Scratch::new(pack.saturating_add(s.shared), s.per_thread);
        }
        let copy = match self.padded {
            Some(p) => self.cg().saturating_mul(p.plane()),
            None if !self.pointwise() && self.materialize() => self.kdim() * self.cols(),
            None => 0,
        };
        let gemm = sgemm_scratch(self.mg(), self.cols(), self.kdim());
        Scratch::new(pack.saturating_add(round_floats(copy)), gemm.per_thread)
    }

    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        let RunOperands { x, wt, bias, extras, count, y } = self.g.operands(inputs, outputs)?;
        let extras = &extras[..count];
        let (plane, cols, cg, mg, kdim) = (self.g.h * self.g.w, self.cols(), self.cg(), self.mg(), self.kdim());
        let (cx, ws) = cx.split();
        let cx = &cx;
        if self.depthwise() {
            return self.run_depthwise(x, wt, bias, y, extras, cx, ws);
        }
        let plen = sinter_kernels::packed_a_len(mg, kdim);
        let kerr = |e: sinter_kernels::KernelError| IrError::Data(format!("{}: {e}", self.g.name));
        let run = |packed: &[f32], ws: &mut [f32]| -> Result<()> {
            if let Some(wc) = &self.winograd {
                return self.run_winograd(wc, packed, x, bias, y, extras, cx, ws);
            }
            self.check_len("packed weights", packed, plen * self.g.groups)?;
            for img in 0..self.g.n {
                for g in 0..self.g.groups {
                    let xg = &x[(img * self.g.c + g * cg) * plane..][..cg * plane];
                    let a = PackedA::new(&packed[g * plen..][..plen], mg, kdim).map_err(kerr)?;
                    let yg = &mut y[(img * self.g.m + g * mg) * cols..][..mg * cols];
                    let bias = bias.map(|b| &b[g * mg..][..mg]);
                    let post = |r: usize, j0: usize, row: &mut [f32]| {
                        self.finish_row(cx.tier, img, g * mg + r, j0, row, extras);
                    };
                    let residual = if self.fused.residual {
                        let o = self.g.post.operands()[0];
                        let base = img * o.sn + g * mg * cols;
                        Some(Matrix::new(&extras[0][base..], mg, cols, cols).map_err(kerr)?)
                    } else {
                        None
                    };
                    let epi = Epilogue {
                        bias,
                        residual,
                        act: self.fused.act,
                        post: if self.fused.post { Some(&post) } else { None },
                    };
                    if self.pointwise() {
                        let b = Matrix::new(xg, cg, cols, cols).map_err(kerr)?;
                        sinter_kernels::sgemm(cx.tier, &a, &b, yg, cols, &epi, cx.pool, ws).map_err(kerr)?;
                    } else {
                        self.gemm_im2col(xg, &a, yg, &epi, cx, ws)?;
                    }
                }
            }
            Ok(())
        };
        self.weights.with_packed(self.g.name, wt, self.packed_len(), ws, |w, out| self.pack(w, out), run)
    }
}

/// The `cpu.conv2d` factory: packed GEMM, Winograd (the plan's tactic) or direct
/// depthwise.
pub(crate) fn make(r: &Request) -> Accept<Box<dyn Exec>> {
    let (op, op_type) = (r.op.as_ref(), r.op_type);
    let Some(p) = r.packed else {
        let mut k = Conv2d::new(op, op_type, r.inputs, r.outputs, Weights::Runtime)?;
        if let Some(w) = r.f32_weight() {
            k.load_weights(w?).why("packing the weights")?;
        }
        return Ok(Box::new(k));
    };
    need(p.input == 1, "only input 1 (the weights) is ever packed")?;
    let k = Conv2d::new(op, op_type, r.inputs, r.outputs, Weights::Plan)?;
    let k = match p.layout {
        PackLayout::GemmPanels { .. } => {
            gemm_panels(&p)?;
            k
        }
        PackLayout::Winograd { tile, mr } => {
            need(mr as usize == sinter_kernels::MR, "Winograd panels of another height than this runtime's")?;
            let tile = match tile {
                2 => WinogradTile::F2,
                4 => WinogradTile::F4,
                _ => return Err(Refusal::new(format!("no Winograd F({tile},3) kernel"))),
            };
            k.with_winograd(tile).why("this convolution does not run by Winograd")?
        }
    };
    need(!k.depthwise(), "depthwise convolutions read their weights unpacked")?;
    packed_bytes_match(Some(p), k.packed_len())?;
    Ok(Box::new(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinter_ir::ops::fused::{Epilogue, Step};
    use sinter_ir::{AttrValue, Attrs, DType};
    use sinter_kernels::epilogue::Operand;
    use sinter_plan::Location;

    fn slot(shape: &[usize]) -> Slot {
        Slot { loc: Location::Arena { offset: 0, bytes: 0 }, dtype: DType::F32, shape: shape.to_vec() }
    }

    fn select(op_type: &str, steps: &[Step], x: &[usize], w: &[usize], y: &[usize]) -> Option<Conv2d> {
        let mut attrs = Attrs::new();
        attrs.insert("pads", AttrValue::Ints(vec![1; 2 * (x.len() - 2)]));
        Epilogue { steps: steps.to_vec() }.write_attrs(&mut attrs);
        let op = sinter_ir::ops::build(op_type, &attrs, 17).expect("op builds");
        Conv2d::new(op.as_ref(), op_type, &[Some(slot(x)), Some(slot(w)), None], &[slot(y)], Weights::Runtime).ok()
    }

    #[test]
    fn takes_2d_convs_and_leaves_the_rest_to_the_reference() {
        let (x, w, y) = ([1, 3, 8, 8], [4, 3, 3, 3], [1, 4, 8, 8]);
        assert!(select("Conv", &[], &x, &w, &y).is_some());
        assert!(select("FusedConv", &[Step::Relu, Step::HardSwish, Step::GeluErf], &x, &w, &y).is_some());
        // 3-D convolutions, ConvTranspose, and a mismatched output go to Generic.
        assert!(select("Conv", &[], &[1, 3, 4, 8, 8], &[4, 3, 3, 3, 3], &[1, 4, 4, 8, 8]).is_none());
        assert!(select("ConvTranspose", &[], &x, &[3, 4, 3, 3], &[1, 4, 6, 6]).is_none());
        assert!(select("Conv", &[], &x, &w, &[1, 4, 7, 8]).is_none());
    }

    #[test]
    fn valid_range_keeps_input_indices_in_bounds() {
        // o * s + off in 0..il, for every case of sign and stride, against brute force.
        for off in -5i64..5 {
            for s in 1..4 {
                for il in 0..7 {
                    for ol in 0..7 {
                        let (lo, hi) = valid_range(off, s, il, ol);
                        let ok = |o: usize| (0..il as i64).contains(&(o as i64 * s as i64 + off));
                        let want: Vec<usize> = (0..ol).filter(|&o| ok(o)).collect();
                        let got: Vec<usize> = (lo..hi).collect();
                        assert_eq!(got, want, "off {off} s {s} il {il} ol {ol}");
                    }
                }
            }
        }
    }

    #[test]
    fn operand_layouts() {
        let out = [2, 6, 4, 5];
        let o = Operand::broadcast(&[6, 1, 1], &out).expect("per channel");
        assert_eq!((o.numel, o.sn, o.sm, o.sh, o.sw), (6, 0, 1, 0, 0));
        let o = Operand::broadcast(&[2, 6, 4, 5], &out).expect("full");
        assert_eq!((o.numel, o.sn, o.sm, o.sh, o.sw), (240, 120, 20, 5, 1));
        let o = Operand::broadcast(&[4, 1], &out).expect("rows");
        assert_eq!((o.numel, o.sn, o.sm, o.sh, o.sw), (4, 0, 0, 1, 0));
        assert!(Operand::broadcast(&[3, 1, 1], &out).is_none());
        assert!(Operand::broadcast(&[1, 2, 6, 4, 5], &out).is_none());
    }
}
