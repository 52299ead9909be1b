//! Direct depthwise 2-D convolution of NCHW f32 planes, and the sliding-window engine it
//! shares with [`crate::pooling`].
//!
//! Depthwise layers (one input and one output channel per group) dominate MobileNet and
//! PP-OCR; as GEMMs they would be `1 × k` products, so they get a direct kernel. The API
//! works on one channel plane ([`depthwise_conv2d`]) or a run of them
//! ([`depthwise_conv2d_channels`]); the runtime spreads channels over its threads and
//! applies further epilogue steps itself.
//!
//! # How the SIMD tiers work
//!
//! In the general engine (every kernel, stride and dilation, and pooling), the input
//! plane is first copied into scratch, padded and split by column phase: for
//! stride `sw`, padded row `r` becomes `sw` rows where phase `p` holds padded columns
//! `p, p + sw, p + 2·sw, …`. Tap `(ky, kx)` of output `(oy, ox)` then reads phase
//! `(kx·dw) % sw` of padded row `oy·sh + ky·dh` at index `ox + (kx·dw) / sw`, so for
//! every stride and dilation the taps of consecutive outputs are consecutive floats:
//! the kernel vectorizes along the output width with plain unaligned loads, no
//! gathers and no border cases (the padding is in the copy, and each phase row is long
//! enough for whole vectors past the last output, so only the final store is masked).
//! Blocks of up to 8 accumulators (several rows and/or several vectors of one row)
//! hide the FMA latency; narrow planes (7×7, 14×14) block over rows. The copy costs
//! one pass over the input, small next to the `kh·kw` taps per output. The same engine
//! computes max and average pooling with another reduction and padding value.
//!
//! # The row-ring path (x86 convolution, 3×3 and 5×5, stride 1 or 2)
//!
//! The MobileNet / PP-OCR layers take a leaner path on AVX-512 and AVX2 that never
//! copies the whole plane: output rows go in blocks of up to 8 (planes one vector
//! wide, 7×7 and 14×14: nearly the whole plane) or 4 (8 on AVX-512 at stride 1), and
//! each padded input row is written once, when the first block needing it starts,
//! into a small ring of row slots with the same phase-split layout (stride 2
//! deinterleaves each row in one pass: 2 loads, 2 permutes, 2 stores per 32 floats).
//! The ring stays in L1, its padding columns and its zero row (for the padding rows)
//! are cleared once per call, not once per row, and within a block every loaded input
//! vector feeds all the output rows that read it (`kh` of them at stride 1), so a
//! block issues about one load per two or three FMAs. On AVX-512, 3×3 stride-1 layers
//! skip the ring too: each tap loads the input row straight from the plane under a
//! mask of the lanes inside it (masked-off lanes read as zero, which is the padding,
//! and touch no memory), so nothing is copied at all. [`depthwise_conv2d_channels`]
//! runs many planes per call, which matters on 7×7 planes (~440 multiply-adds each),
//! where the per-call setup would otherwise rival the arithmetic.
//!
//! The scalar tier is the reference: direct loops over the valid taps, no scratch.
//! Padding taps contribute `w·0` in every tier, as zero padding defines them (this
//! only shows with a NaN or infinite weight, which makes them NaN, as in the IR's
//! im2col reference and onnxruntime).

use crate::error::{KernelError, Result};
use crate::gemm::Activation;
use crate::tier::KernelTable;

/// Lanes of the widest vector tier; the padded rows are sized for it whatever the tier,
/// so [`scratch_floats`] does not depend on the tier.
const MAX_LANES: usize = 16;

/// The geometry of a 2-D sliding window over one plane (shared by depthwise convolution
/// and pooling). Built by [`DwGeom::new`], which checks that every size the kernels
/// derive from it fits in `usize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DwGeom {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    ph: usize,
    pw: usize,
    /// Padded rows the outputs read: `(oh - 1)·sh + (kh - 1)·dh + 1`.
    rows: usize,
    /// Floats per phase row of the padded copy.
    phase_len: usize,
}

impl DwGeom {
    /// An `h × w` input, an `oh × ow` output, a `[kh, kw]` kernel with `strides`,
    /// `dilations` and leading `pads` (`[top, left]`). Output `(oy, ox)` reads input
    /// `(oy·sh + ky·dh − ph, ox·sw + kx·dw − pw)`; taps outside the input read the
    /// padding. Any output size is accepted (the trailing padding is implied by it).
    pub fn new(
        input: [usize; 2],
        output: [usize; 2],
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: [usize; 2],
    ) -> Result<DwGeom> {
        let bad = |what: &str| {
            KernelError::Shape(format!(
                "window: {what} (input {input:?}, output {output:?}, kernel {kernel:?}, strides {strides:?}, \
                 dilations {dilations:?}, pads {pads:?})"
            ))
        };
        if kernel.contains(&0) || strides.contains(&0) || dilations.contains(&0) {
            return Err(bad("kernel, strides and dilations must be positive"));
        }
        let [h, w] = input;
        let [oh, ow] = output;
        // Padded extent read by `n` outputs: (n - 1)·s + (k - 1)·d + 1.
        let extent = |n: usize, s: usize, k: usize, d: usize| {
            if n == 0 {
                Some(0)
            } else {
                (n - 1).checked_mul(s)?.checked_add((k - 1).checked_mul(d)?)?.checked_add(1)
            }
        };
        let overflow = || bad("sizes overflow");
        let rows = extent(oh, strides[0], kernel[0], dilations[0]).ok_or_else(overflow)?;
        let cols = extent(ow, strides[1], kernel[1], dilations[1]).ok_or_else(overflow)?;
        let phase_len = ow
            .checked_next_multiple_of(MAX_LANES)
            .and_then(|n| n.checked_add((kernel[1] - 1).checked_mul(dilations[1])? / strides[1]))
            .ok_or_else(overflow)?;
        // Every size the kernels compute, checked once here.
        let sizes = [
            h.checked_mul(w),
            oh.checked_mul(ow),
            kernel[0].checked_mul(kernel[1]),
            rows.checked_mul(strides[1]).and_then(|n| n.checked_mul(phase_len)),
            h.checked_add(pads[0]).and_then(|n| n.checked_add(rows)),
            w.checked_add(pads[1]).and_then(|n| n.checked_add(cols)),
            phase_len.checked_mul(strides[1]).and_then(|n| n.checked_add(w)),
            cols.checked_add(MAX_LANES * strides[1]),
        ];
        if sizes.iter().any(Option::is_none) {
            return Err(overflow());
        }
        Ok(DwGeom {
            h,
            w,
            oh,
            ow,
            kh: kernel[0],
            kw: kernel[1],
            sh: strides[0],
            sw: strides[1],
            dh: dilations[0],
            dw: dilations[1],
            ph: pads[0],
            pw: pads[1],
            rows,
            phase_len,
        })
    }

    pub fn input(&self) -> [usize; 2] {
        [self.h, self.w]
    }
    pub fn output(&self) -> [usize; 2] {
        [self.oh, self.ow]
    }
    pub fn kernel(&self) -> [usize; 2] {
        [self.kh, self.kw]
    }
    pub fn strides(&self) -> [usize; 2] {
        [self.sh, self.sw]
    }
    pub fn dilations(&self) -> [usize; 2] {
        [self.dh, self.dw]
    }
    pub fn pads(&self) -> [usize; 2] {
        [self.ph, self.pw]
    }

    /// Floats of the padded, phase-split copy of the input (see the module docs).
    pub(crate) fn padded_floats(&self) -> usize {
        self.rows * self.sw * self.phase_len
    }

    /// Checks the plane slices against the geometry.
    pub(crate) fn check(&self, what: &str, x: &[f32], y: &[f32], scratch: &[f32], scratch_need: usize) -> Result<()> {
        let want = [("input", x.len(), self.h * self.w), ("output", y.len(), self.oh * self.ow)];
        for (name, got, need) in want {
            if got != need {
                return Err(KernelError::Shape(format!("{what}: {name} plane holds {got} floats, expected {need}")));
            }
        }
        if scratch.len() < scratch_need {
            return Err(KernelError::Shape(format!(
                "{what}: scratch holds {} floats, needs {scratch_need}",
                scratch.len()
            )));
        }
        Ok(())
    }
}

/// Scratch floats [`depthwise_conv2d`] and [`depthwise_conv2d_channels`] need for `g`
/// (the same for every tier).
pub fn scratch_floats(g: &DwGeom) -> usize {
    match ring_floats(g) {
        Some(n) => n.max(g.padded_floats()),
        None => g.padded_floats(),
    }
}

/// Most output rows one block of the row-ring path computes: 8 on planes of one vector
/// per row (7×7, 14×14: a block covers most of the plane, so its setup is amortized
/// over more taps) and at stride 1 on AVX-512 (2 vectors × 8 rows of accumulators fit
/// its 32 registers), else 4.
const RING_MAX_ROWS: usize = 8;

/// Ring slots of the row-ring path: the padded rows of one block of [`RING_MAX_ROWS`]
/// output rows.
pub(crate) const fn ring_slots(kh: usize, s: usize) -> usize {
    (RING_MAX_ROWS - 1) * s + kh
}

/// Floats of the row ring of the x86 convolution path (see the module docs), or `None`
/// where that path does not apply: dilation 1, equal strides 1 or 2, a 3×3 or 5×5
/// kernel (the MobileNet / PP-OCR layers), and sizes that fit.
fn ring_floats(g: &DwGeom) -> Option<usize> {
    let kernel_ok = (g.kh, g.kw) == (3, 3) || (g.kh, g.kw) == (5, 5);
    if !kernel_ok || g.dh != 1 || g.dw != 1 || g.sh != g.sw || !(1..=2).contains(&g.sh) {
        return None;
    }
    // Ring slots plus one slot of zeros for the padding rows.
    let slots = ring_slots(g.kh, g.sh) + 1;
    g.sw.checked_mul(g.phase_len)?.checked_mul(slots)
}

/// `y = act(bias + Σ w[ky, kx] · x[oy·sh + ky·dh − ph, ox·sw + kx·dw − pw])` over one
/// channel plane: `x` is `h × w`, `w` is `kh × kw`, `y` is `oh × ow`, all row-major;
/// zero padding. `scratch` holds at least [`scratch_floats`] floats (its contents are
/// overwritten). Fails on slices of the wrong size or a tier this CPU lacks.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d(
    tier: &KernelTable,
    g: &DwGeom,
    x: &[f32],
    w: &[f32],
    bias: f32,
    act: Activation,
    y: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let need = if tier.window.is_none() { 0 } else { scratch_floats(g) };
    g.check("depthwise_conv2d", x, y, scratch, need)?;
    if w.len() != g.kh * g.kw {
        return Err(KernelError::Shape(format!(
            "depthwise_conv2d: {} weights for a {}x{} kernel",
            w.len(),
            g.kh,
            g.kw
        )));
    }
    let Some(window) = tier.window else {
        scalar_conv(g, x, w, bias, act, y);
        return Ok(());
    };
    if let Some(ring) = ring_floats(g) {
        if ring_conv(tier, g, 1, x, w, Some(std::slice::from_ref(&bias)), act, y, &mut scratch[..ring])? {
            return Ok(());
        }
    }
    run_window(window, g, x, Reduce::Conv { w, bias, act }, y, &mut scratch[..g.padded_floats()])
}

/// [`depthwise_conv2d`] over `c` consecutive channel planes in one call, which saves
/// the per-call setup on small planes (a 7×7 plane is ~440 multiply-adds): `x` holds
/// `c` input planes (`c × h × w`), `w` their kernels (`c × kh × kw`), `bias` one value
/// per channel (or none: zero), `y` the `c` output planes (`c × oh × ow`), all
/// row-major. Channel `i` computes exactly what `depthwise_conv2d` with
/// `x[i]`, `w[i]` and `bias[i]` does. `scratch` as for [`depthwise_conv2d`].
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_channels(
    tier: &KernelTable,
    g: &DwGeom,
    c: usize,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let (plane, out, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let sizes = [
        ("input", x.len(), plane.checked_mul(c)),
        ("weight", w.len(), taps.checked_mul(c)),
        ("output", y.len(), out.checked_mul(c)),
        ("bias", bias.map_or(c, <[f32]>::len), Some(c)),
    ];
    for (what, got, want) in sizes {
        if Some(got) != want {
            return Err(KernelError::Shape(format!(
                "depthwise_conv2d_channels: {what} holds {got} floats, expected {c} channels of the geometry"
            )));
        }
    }
    if c == 0 {
        return Ok(());
    }
    if tier.window.is_some() {
        if let Some(ring) = ring_floats(g) {
            if scratch.len() < ring {
                return Err(KernelError::Shape(format!(
                    "depthwise_conv2d_channels: scratch holds {} floats, needs {}",
                    scratch.len(),
                    scratch_floats(g)
                )));
            }
            if ring_conv(tier, g, c, x, w, bias, act, y, &mut scratch[..ring])? {
                return Ok(());
            }
        }
    }
    for i in 0..c {
        let b = bias.map_or(0.0, |b| b[i]);
        let yc = &mut y[i * out..][..out];
        depthwise_conv2d(tier, g, &x[i * plane..][..plane], &w[i * taps..][..taps], b, act, yc, scratch)?;
    }
    Ok(())
}

/// Runs the row-ring convolution of `c` planes with `tier`'s ring code; `Ok(false)`
/// where the tier has none (the caller then uses the window engine). The caller has
/// checked the slice sizes against `g` and `c` and that `ring_floats(g) == Some(ring.len())`.
#[allow(clippy::too_many_arguments)]
fn ring_conv(
    tier: &KernelTable,
    g: &DwGeom,
    c: usize,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
    ring: &mut [f32],
) -> Result<bool> {
    let ok = x.len() == c * g.h * g.w
        && w.len() == c * g.kh * g.kw
        && bias.is_none_or(|b| b.len() == c)
        && y.len() == c * g.oh * g.ow
        && ring_floats(g) == Some(ring.len());
    if !ok {
        return Err(KernelError::Shape("depthwise ring: slice sizes do not match the geometry".into()));
    }
    if g.oh == 0 || g.ow == 0 || c == 0 {
        return Ok(true);
    }
    let Some(ring_run) = tier.dw_ring else {
        return Ok(false);
    };
    // SAFETY: a `KernelTable` exists only for tiers this CPU supports, and the slices
    // match `g` (checked above).
    unsafe { ring_run(g, c, x, w, bias, act, y, ring) };
    Ok(true)
}

/// A tier's row-ring convolution (see `ring_engine`).
///
/// # Safety
/// The CPU supports the tier; the slices match `g` and `c` as `ring_conv` checks, and
/// `ring` holds `ring_floats(g)` floats.
pub(crate) type RingFn = unsafe fn(&DwGeom, usize, &[f32], &[f32], Option<&[f32]>, Activation, &mut [f32], &mut [f32]);

/// A tier's window engine (see `window_engine`): `(g, x, red, fill, y, padded)`.
///
/// # Safety
/// The CPU supports the tier; the slices match `g` as `run_window` checks.
pub(crate) type WindowFn = unsafe fn(&DwGeom, &[f32], Reduce, f32, &mut [f32], &mut [f32]);

/// The scalar reference: for each tap, a contiguous (strided) run of valid outputs.
fn scalar_conv(g: &DwGeom, x: &[f32], wts: &[f32], bias: f32, act: Activation, y: &mut [f32]) {
    if g.ow == 0 {
        return;
    }
    for (oy, yrow) in y.chunks_exact_mut(g.ow).enumerate() {
        yrow.fill(bias);
        for ky in 0..g.kh {
            let iy = input_index(oy * g.sh + ky * g.dh, g.ph, g.h);
            for kx in 0..g.kw {
                let wv = wts[ky * g.kw + kx];
                let (lo, hi) = match iy {
                    Some(_) => valid_range(kx * g.dw, g.pw, g.sw, g.w, g.ow),
                    None => (g.ow, g.ow),
                };
                if !wv.is_finite() {
                    // Padding taps add `w·0`: NaN for an infinite or NaN weight, as
                    // zero padding (and the IR's im2col reference) defines it.
                    let (head, rest) = yrow.split_at_mut(lo);
                    for d in head.iter_mut().chain(&mut rest[hi - lo..]) {
                        *d += wv * 0.0;
                    }
                }
                if let (Some(iy), true) = (iy, lo < hi) {
                    let xrow = &x[iy * g.w..][..g.w];
                    let start = lo * g.sw + kx * g.dw - g.pw;
                    for (d, &s) in yrow[lo..hi].iter_mut().zip(xrow[start..].iter().step_by(g.sw)) {
                        *d += wv * s;
                    }
                }
            }
        }
        for v in yrow.iter_mut() {
            *v = act.apply(*v);
        }
    }
}

/// Input index of padded index `padded` (`padded − pad`), if inside `0..len`.
#[inline]
pub(crate) fn input_index(padded: usize, pad: usize, len: usize) -> Option<usize> {
    padded.checked_sub(pad).filter(|&i| i < len)
}

/// The outputs `lo..hi` (within `0..n_out`) whose input index `o·s + off − pad` lies in
/// `0..len`, for a tap at offset `off`.
#[inline]
pub(crate) fn valid_range(off: usize, pad: usize, s: usize, len: usize, n_out: usize) -> (usize, usize) {
    // Smallest o with o·s + off >= pad.
    let lo = pad.saturating_sub(off).div_ceil(s).min(n_out);
    // Outputs with o·s + off < pad + len.
    let hi = (pad + len).saturating_sub(off).div_ceil(s).clamp(lo, n_out);
    (lo, hi)
}

/// What the window engine computes per output.
#[derive(Clone, Copy)]
pub(crate) enum Reduce<'a> {
    /// `act(bias + Σ w·x)`, zero padding.
    Conv { w: &'a [f32], bias: f32, act: Activation },
    /// Running `if x > m { m = x }` from `-inf` (NaN never wins), `-inf` padding.
    Max,
    /// `Σ x / (rows[oy] · cols[ox])` (0 where that count is 0), zero padding.
    Avg { rows: &'a [f32], cols: &'a [f32] },
}

/// Runs a SIMD tier of the engine: pads `x` into `padded` (exactly
/// `g.padded_floats()` floats), then reduces every window into `y`. The caller has
/// checked the slice sizes (and, for `Avg`, that `rows`/`cols` hold `oh` / `ow` counts
/// padded to a multiple of [`MAX_LANES`]).
pub(crate) fn run_window(
    window: WindowFn,
    g: &DwGeom,
    x: &[f32],
    red: Reduce,
    y: &mut [f32],
    padded: &mut [f32],
) -> Result<()> {
    let ok = padded.len() == g.padded_floats()
        && x.len() == g.h * g.w
        && y.len() == g.oh * g.ow
        && match red {
            Reduce::Conv { w, .. } => w.len() == g.kh * g.kw,
            Reduce::Max => true,
            Reduce::Avg { rows, cols } => rows.len() >= g.oh && cols.len() >= g.ow.next_multiple_of(MAX_LANES),
        };
    if !ok {
        return Err(KernelError::Shape("window engine: slice sizes do not match the geometry".into()));
    }
    if g.oh == 0 || g.ow == 0 {
        return Ok(());
    }
    let fill = if matches!(red, Reduce::Max) { f32::NEG_INFINITY } else { 0.0 };
    // SAFETY: `window` came from a `KernelTable`, which exist only for tiers this CPU
    // supports, and the slices match `g` (checked above).
    unsafe { window(g, x, red, fill, y, padded) };
    Ok(())
}

/// Fills `padded` (`g.padded_floats()` floats) with the padded, phase-split copy of
/// `x`: phase row `(r, p)` holds `x[r − ph, p + t·sw − pw]` at index `t`, `fill`
/// outside the input. `gather2` copies every other float (`d[t] = s[2t]`) with the
/// tier's deinterleave. Phases are the outer loop so each one's valid range is
/// computed once, not per row.
#[inline(always)]
fn pad_plane(g: &DwGeom, x: &[f32], fill: f32, padded: &mut [f32], gather2: impl Fn(&[f32], &mut [f32])) {
    let row_len = g.sw * g.phase_len;
    for p in 0..g.sw {
        let (lo, hi) = valid_range(p, g.pw, g.sw, g.w, g.phase_len);
        // Input column of index `lo` (meaningful only when lo < hi).
        let start = (lo * g.sw + p).saturating_sub(g.pw);
        for (r, row) in padded.chunks_exact_mut(row_len).enumerate() {
            let d = &mut row[p * g.phase_len..][..g.phase_len];
            let iy = match input_index(r, g.ph, g.h) {
                Some(iy) if lo < hi => iy,
                _ => {
                    d.fill(fill);
                    continue;
                }
            };
            let xrow = &x[iy * g.w..][..g.w];
            d[..lo].fill(fill);
            d[hi..].fill(fill);
            let d = &mut d[lo..hi];
            match g.sw {
                1 => d.copy_from_slice(&xrow[start..start + d.len()]),
                2 => gather2(&xrow[start..], d),
                s => {
                    for (v, &xv) in d.iter_mut().zip(xrow[start..].iter().step_by(s)) {
                        *v = xv;
                    }
                }
            }
        }
    }
}

/// The engine for one SIMD tier. The expanding module defines `V` (its vector type),
/// `L` (lanes), and `#[inline]` helpers with the same target features: `splat`,
/// `load`, `store`, `store_n`, `fmadd(a, b, c) = a·b + c`, `vmax(x, m) = x > m ? x : m`,
/// `vadd`, `div_or_zero`, `relu`, `clip`, `mul`, `gather2`.
macro_rules! window_engine {
    ($feat:literal) => {
        use crate::depthwise::{pad_plane, DwGeom, Reduce};
        use crate::gemm::Activation;

        /// Reduction kinds, as const generic parameters so each block is specialized.
        const CONV: u8 = 0;
        const MAX: u8 = 1;
        const AVG: u8 = 2;

        /// Index steps precomputed from the geometry (no divisions in the tap loops).
        struct Plan<'a> {
            g: &'a DwGeom,
            red: Reduce<'a>,
            /// Floats from one output row to the next, and from one kernel row to the next.
            row_step: usize,
            ky_step: usize,
            /// Moving one tap right adds `dw` padded columns: `dp` phases and `dt`
            /// indices; a phase past `sw - 1` wraps to the next index of phase 0.
            dp: usize,
            kx_step: usize,
            wrap: usize,
        }

        /// One block: `R` output rows from `oy0`, `NV` vectors from `ox0`; the last
        /// vector of each row stores `last` lanes.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn block<const K: u8, const R: usize, const NV: usize>(
            pl: &Plan,
            s: *const f32,
            oy0: usize,
            ox0: usize,
            last: usize,
            y: *mut f32,
        ) {
            let g = pl.g;
            let init = match (K, &pl.red) {
                (CONV, Reduce::Conv { bias, .. }) => splat(*bias),
                (MAX, _) => splat(f32::NEG_INFINITY),
                _ => splat(0.0),
            };
            let wts = match &pl.red {
                Reduce::Conv { w, .. } => w.as_ptr(),
                _ => std::ptr::null(),
            };
            let mut acc = [[init; NV]; R];
            let base = oy0 * pl.row_step + ox0;
            for ky in 0..g.kh {
                let mut idx = base + ky * pl.ky_step;
                let mut p = 0;
                for kx in 0..g.kw {
                    let tap = s.add(idx);
                    if K == CONV {
                        let wv = splat(*wts.add(ky * g.kw + kx));
                        for r in 0..R {
                            for v in 0..NV {
                                acc[r][v] = fmadd(wv, load(tap.add(r * pl.row_step + v * L)), acc[r][v]);
                            }
                        }
                    } else if K == MAX {
                        for r in 0..R {
                            for v in 0..NV {
                                acc[r][v] = vmax(load(tap.add(r * pl.row_step + v * L)), acc[r][v]);
                            }
                        }
                    } else {
                        for r in 0..R {
                            for v in 0..NV {
                                acc[r][v] = vadd(acc[r][v], load(tap.add(r * pl.row_step + v * L)));
                            }
                        }
                    }
                    p += pl.dp;
                    idx += pl.kx_step;
                    if p >= g.sw {
                        // idx includes p·phase_len >= sw·phase_len: no underflow.
                        p -= g.sw;
                        idx -= pl.wrap;
                    }
                }
            }
            for r in 0..R {
                let yrow = y.add((oy0 + r) * g.ow + ox0);
                for v in 0..NV {
                    let a = acc[r][v];
                    let out = match &pl.red {
                        Reduce::Conv { act, .. } => match *act {
                            Activation::None => a,
                            Activation::Relu => relu(a),
                            Activation::Clip { lo, hi } => clip(a, splat(lo), splat(hi)),
                        },
                        Reduce::Max => a,
                        Reduce::Avg { rows, cols } => {
                            let count = mul(splat(*rows.get_unchecked(oy0 + r)), load(cols.as_ptr().add(ox0 + v * L)));
                            div_or_zero(a, count)
                        }
                    };
                    if v + 1 == NV && last < L {
                        store_n(yrow.add(v * L), out, last);
                    } else {
                        store(yrow.add(v * L), out);
                    }
                }
            }
        }

        /// `R` output rows from `oy0`, all columns: blocks of 4 vectors, then one block
        /// of the 1 to 4 vectors left (the last one partial), so a row's tail keeps
        /// as many independent accumulators as its head.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn rows<const K: u8, const R: usize>(pl: &Plan, s: *const f32, oy0: usize, y: *mut f32) {
            let ow = pl.g.ow;
            let mut ox = 0;
            while ox + 4 * L <= ow {
                block::<K, R, 4>(pl, s, oy0, ox, L, y);
                ox += 4 * L;
            }
            let rem = ow - ox;
            if rem > 0 {
                let nv = rem.div_ceil(L);
                let last = rem - (nv - 1) * L;
                match nv {
                    1 => block::<K, R, 1>(pl, s, oy0, ox, last, y),
                    2 => block::<K, R, 2>(pl, s, oy0, ox, last, y),
                    3 => block::<K, R, 3>(pl, s, oy0, ox, last, y),
                    _ => block::<K, R, 4>(pl, s, oy0, ox, last, y),
                }
            }
        }

        /// All output rows: rows of at least two vectors in blocks of 2 rows, narrower
        /// ones (7×7, 14×14 planes) in blocks of 4 rows, so a block has enough
        /// independent accumulators to hide the FMA latency.
        #[target_feature(enable = $feat)]
        unsafe fn all_rows<const K: u8>(pl: &Plan, s: *const f32, y: *mut f32) {
            let oh = pl.g.oh;
            let tall = if pl.g.ow > L { 2 } else { 4 };
            let mut oy = 0;
            while oy + tall <= oh {
                if tall == 4 {
                    rows::<K, 4>(pl, s, oy, y);
                } else {
                    rows::<K, 2>(pl, s, oy, y);
                }
                oy += tall;
            }
            if oy + 2 <= oh {
                rows::<K, 2>(pl, s, oy, y);
                oy += 2;
            }
            if oy < oh {
                rows::<K, 1>(pl, s, oy, y);
            }
        }

        /// # Safety
        /// The CPU supports the tier; the slices match `g` as `run_window` checks.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn run(g: &DwGeom, x: &[f32], red: Reduce, fill: f32, y: &mut [f32], padded: &mut [f32]) {
            let row_len = g.sw * g.phase_len;
            pad_plane(g, x, fill, padded, |s, d| gather2(s, d));
            // Every index the blocks read is below `padded.len()`: padded rows up to
            // `(oh-1)·sh + (kh-1)·dh < g.rows`, phase indices up to
            // `round_up(ow, MAX_LANES) - 1 + (kw-1)·dw / sw < phase_len`.
            let (dp, dt) = (g.dw % g.sw, g.dw / g.sw);
            let plan = Plan {
                g,
                red,
                row_step: g.sh * row_len,
                ky_step: g.dh * row_len,
                dp,
                kx_step: dp * g.phase_len + dt,
                wrap: row_len - 1,
            };
            let (s, yp) = (padded.as_ptr(), y.as_mut_ptr());
            match red {
                Reduce::Conv { .. } => all_rows::<CONV>(&plan, s, yp),
                Reduce::Max => all_rows::<MAX>(&plan, s, yp),
                Reduce::Avg { .. } => all_rows::<AVG>(&plan, s, yp),
            }
        }
    };
}

/// The row-ring convolution for one x86 tier (same helpers as `window_engine`). Output
/// rows go in blocks of up to [`RING_MAX_ROWS`]; each padded input row is written once
/// into a ring slot (phase-split like the window engine's copy, but only the slots a
/// block reads, so the ring stays in L1), and each loaded input vector feeds every
/// output row of the block it belongs to (`kh` rows reuse it at stride 1).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_macros))]
macro_rules! ring_engine {
    ($feat:literal) => {
        use crate::depthwise::{ring_slots, valid_range, RING_MAX_ROWS};

        /// Padded rows one block of `RING_MAX_ROWS` outputs reads, at most (5×5, stride 2).
        const MAX_BLOCK_ROWS: usize = (RING_MAX_ROWS - 1) * 2 + 5;

        /// One block: `R` output rows from the block's first (their padded rows start
        /// at `rows[0]`), `NV` vectors from `ox0`; the last vector stores `last` lanes.
        /// `yrow` is the first output row; `pl` the phase length.
        #[inline]
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn ring_block<const KH: usize, const KW: usize, const S: usize, const R: usize, const NV: usize>(
            rows: &[*const f32; MAX_BLOCK_ROWS],
            pl: usize,
            w: *const f32,
            bias: f32,
            act: Activation,
            ox0: usize,
            last: usize,
            yrow: *mut f32,
            ow: usize,
        ) {
            let mut acc = [[splat(bias); NV]; R];
            for j in 0..(R - 1) * S + KH {
                let rp = rows[j];
                for kx in 0..KW {
                    let tap = rp.add((kx % S) * pl + kx / S + ox0);
                    for v in 0..NV {
                        let xv = load(tap.add(v * L));
                        for r in 0..R {
                            // Output row r reads padded row j with kernel row j − r·S.
                            if j >= r * S && j - r * S < KH {
                                let wv = splat(*w.add((j - r * S) * KW + kx));
                                acc[r][v] = fmadd(wv, xv, acc[r][v]);
                            }
                        }
                    }
                }
            }
            for r in 0..R {
                let yp = yrow.add(r * ow + ox0);
                for v in 0..NV {
                    let a = acc[r][v];
                    let out = match act {
                        Activation::None => a,
                        Activation::Relu => relu(a),
                        Activation::Clip { lo, hi } => clip(a, splat(lo), splat(hi)),
                    };
                    if v + 1 == NV && last < L {
                        store_n(yp.add(v * L), out, last);
                    } else {
                        store(yp.add(v * L), out);
                    }
                }
            }
        }

        /// How padded rows of a plane go into the ring (see `ring_planes`).
        struct RowFill {
            wd: usize,
            ph: usize,
            h: usize,
            ring: *mut f32,
            slot: usize,
            nslots: usize,
            copy: Copy1,
            split: Split2,
            start: usize,
            lo: usize,
            even_at: usize,
            odd_at: usize,
            ne: usize,
        }

        /// Writes padded rows `from..to` of plane `x` into the ring, the first into slot
        /// `at`; returns the slot after the last. Not inlined: on its own, the loop keeps
        /// its state in registers instead of reloading it from the caller's spills.
        #[inline(never)]
        #[target_feature(enable = $feat)]
        unsafe fn fill_rows<const S: usize>(
            f: &RowFill,
            x: *const f32,
            from: usize,
            to: usize,
            mut at: usize,
        ) -> usize {
            for row in from..to {
                if (f.ph..f.ph + f.h).contains(&row) {
                    let src = x.add((row - f.ph) * f.wd);
                    let d = f.ring.add(at * f.slot);
                    if S == 1 {
                        copy_row(&f.copy, src.add(f.start), d.add(f.lo));
                    } else if f.ne > 0 {
                        split2(&f.split, src, d.add(f.even_at), d.add(f.odd_at));
                    }
                }
                at += 1;
                if at == f.nslots {
                    at = 0;
                }
            }
            at
        }

        /// `R` output rows from `oy`, all columns, in blocks of 2 vectors then 1.
        #[inline]
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn ring_rows<const KH: usize, const KW: usize, const S: usize, const R: usize>(
            rows: &[*const f32; MAX_BLOCK_ROWS],
            pl: usize,
            w: *const f32,
            bias: f32,
            act: Activation,
            yrow: *mut f32,
            ow: usize,
        ) {
            let nvec = ow.div_ceil(L);
            let mut vi = 0;
            while vi + 2 <= nvec {
                let last = if vi + 2 == nvec { ow - (nvec - 1) * L } else { L };
                ring_block::<KH, KW, S, R, 2>(rows, pl, w, bias, act, vi * L, last, yrow, ow);
                vi += 2;
            }
            if vi < nvec {
                ring_block::<KH, KW, S, R, 1>(rows, pl, w, bias, act, vi * L, ow - vi * L, yrow, ow);
            }
        }

        /// All planes with a `KH × KW` kernel and stride `S`.
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn ring_planes<const KH: usize, const KW: usize, const S: usize>(
            g: &DwGeom,
            c: usize,
            x: &[f32],
            w: &[f32],
            bias: Option<&[f32]>,
            act: Activation,
            y: &mut [f32],
            ring: &mut [f32],
        ) {
            let [h, wd] = g.input();
            let [oh, ow] = g.output();
            let [ph, pw] = g.pads();
            let pl = g.phase_len;
            let slot = S * pl;
            let nslots = ring_slots(KH, S);
            // The padding columns (and the zero slot, the last one) are zero once for
            // all rows and planes; rows then write only their input columns.
            ring.fill(0.0);
            let ring = ring.as_mut_ptr();
            let zero = ring.add(nslots * slot) as *const f32;
            // Stride 1: the indices `lo..hi` hold the input columns from `start`.
            let (lo, hi) = valid_range(0, pw, 1, wd, pl);
            let start = lo.saturating_sub(pw);
            let copy = copy_plan(hi - lo);
            // Stride 2: input column 2u is padded column 2u + pw, so the even columns
            // go to phase pw % 2 from index pw / 2, the odd ones to the other phase from
            // (pw + 1) / 2; `ne` and `no` of them land inside a phase row.
            let even_at = (pw % 2) * pl + pw / 2;
            let odd_at = ((pw + 1) % 2) * pl + pw.div_ceil(2);
            let (ne, no) =
                (wd.div_ceil(2).min(pl.saturating_sub(pw / 2)), (wd / 2).min(pl.saturating_sub(pw.div_ceil(2))));
            let split = split2_plan(wd, ne, no);
            let filler = RowFill { wd, ph, h, ring, slot, nslots, copy, split, start, lo, even_at, odd_at, ne };
            for ch in 0..c {
                let xc = &x[ch * h * wd..][..h * wd];
                let wc = w.as_ptr().add(ch * KH * KW);
                let b = bias.map_or(0.0, |b| b[ch]);
                let yc = y.as_mut_ptr().add(ch * oh * ow);
                // Padded rows below `next` are in the ring.
                let (mut next, mut next_slot, mut first_slot) = (0, 0, 0);
                let narrow = ow <= L;
                let mut oy = 0;
                while oy < oh {
                    let r = if narrow {
                        (oh - oy).min(RING_MAX_ROWS)
                    } else if L == 16 && S == 1 && oy + 8 <= oh {
                        // 2 × 8 accumulators fit AVX-512's 32 registers, not AVX2's 16;
                        // at stride 2 the block's 17 input rows make it slower.
                        8
                    } else if oy + 4 <= oh {
                        4
                    } else if oy + 2 <= oh {
                        2
                    } else {
                        1
                    };
                    let first = oy * S;
                    let end = first + (r - 1) * S + KH;
                    // Fill the slots of the block's rows (slot `row % nslots`, tracked
                    // as `next_slot`: the rows they held are below `first`, done).
                    if next < end {
                        next_slot = fill_rows::<S>(&filler, xc.as_ptr(), next, end, next_slot);
                        next = end;
                    }
                    let mut rows = [zero; MAX_BLOCK_ROWS];
                    let mut at = first_slot;
                    for (j, rp) in rows.iter_mut().enumerate().take(end - first) {
                        if (ph..ph + h).contains(&(first + j)) {
                            *rp = ring.add(at * slot);
                        }
                        at += 1;
                        if at == nslots {
                            at = 0;
                        }
                    }
                    first_slot = (first_slot + r * S) % nslots;
                    let yrow = yc.add(oy * ow);
                    if narrow {
                        let args = (&rows, pl, wc, b, act, 0, ow, yrow, ow);
                        match r {
                            8 => ring_block::<KH, KW, S, 8, 1>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8,
                            ),
                            7 => ring_block::<KH, KW, S, 7, 1>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8,
                            ),
                            6 => ring_block::<KH, KW, S, 6, 1>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8,
                            ),
                            5 => ring_block::<KH, KW, S, 5, 1>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8,
                            ),
                            4 => ring_block::<KH, KW, S, 4, 1>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8,
                            ),
                            3 => ring_block::<KH, KW, S, 3, 1>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8,
                            ),
                            2 => ring_block::<KH, KW, S, 2, 1>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8,
                            ),
                            _ => ring_block::<KH, KW, S, 1, 1>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8,
                            ),
                        }
                    } else {
                        match r {
                            8 => ring_rows::<KH, KW, S, 8>(&rows, pl, wc, b, act, yrow, ow),
                            4 => ring_rows::<KH, KW, S, 4>(&rows, pl, wc, b, act, yrow, ow),
                            2 => ring_rows::<KH, KW, S, 2>(&rows, pl, wc, b, act, yrow, ow),
                            _ => ring_rows::<KH, KW, S, 1>(&rows, pl, wc, b, act, yrow, ow),
                        }
                    }
                    oy += r;
                }
            }
        }

        /// # Safety
        /// The CPU supports the tier; the slices match `g` and `c` as `ring_conv`
        /// checks, and `ring` holds `ring_floats(g)` floats.
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn ring_run(
            g: &DwGeom,
            c: usize,
            x: &[f32],
            w: &[f32],
            bias: Option<&[f32]>,
            act: Activation,
            y: &mut [f32],
            ring: &mut [f32],
        ) {
            match (g.kernel()[0], g.strides()[0]) {
                (3, 1) if DIRECT_S1 => direct_planes::<3, 3>(g, c, x, w, bias, act, y),
                (3, 1) => ring_planes::<3, 3, 1>(g, c, x, w, bias, act, y, ring),
                (3, _) => ring_planes::<3, 3, 2>(g, c, x, w, bias, act, y, ring),
                (5, 1) => ring_planes::<5, 5, 1>(g, c, x, w, bias, act, y, ring),
                _ => ring_planes::<5, 5, 2>(g, c, x, w, bias, act, y, ring),
            }
        }

        /// One input plane for [`direct_block`].
        struct Plane {
            x: *const f32,
            h: usize,
            w: usize,
            ph: usize,
            pw: usize,
        }

        /// Stride 1 without the ring: like [`ring_block`], but each tap loads the input
        /// row straight from the plane under a mask of the lanes whose column (and row)
        /// is inside it; masked lanes read as zero, exactly the zero padding, and touch
        /// no memory. For tiers with cheap masked loads (`DIRECT_S1`).
        #[inline]
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn direct_block<const KH: usize, const KW: usize, const R: usize, const NV: usize>(
            pl: &Plane,
            w: *const f32,
            bias: f32,
            act: Activation,
            oy0: usize,
            ox0: usize,
            last: usize,
            yrow: *mut f32,
            ow: usize,
        ) {
            let lanes = |n: usize| ((1u64 << n.min(L)) - 1) as u32;
            // Lanes of vector v, tap kx inside the row: padded columns c + l in
            // pw..pw + w (`pw + w` fits: `DwGeom::new` checks it).
            let mut cols = [[0u32; KW]; NV];
            for (v, cv) in cols.iter_mut().enumerate() {
                for (kx, m) in cv.iter_mut().enumerate() {
                    let c = ox0 + v * L + kx;
                    *m = lanes((pl.pw + pl.w).saturating_sub(c)) & !lanes(pl.pw.saturating_sub(c));
                }
            }
            let mut acc = [[splat(bias); NV]; R];
            for j in 0..R + KH - 1 {
                // Padded row oy0 + j is input row iy when inside the plane; otherwise
                // every lane is masked off and `rp` is never dereferenced.
                let (rows, iy) = match (oy0 + j).checked_sub(pl.ph).filter(|&iy| iy < pl.h) {
                    Some(iy) => (u32::MAX, iy),
                    None => (0, 0),
                };
                // Column ox0 - pw of row iy (before the row where ox0 < pw: only the
                // masked-in lanes are read).
                let rp = pl.x.wrapping_add(iy * pl.w + ox0).wrapping_sub(pl.pw);
                for kx in 0..KW {
                    for v in 0..NV {
                        let xv = load_masked(rp.wrapping_add(kx + v * L), cols[v][kx] & rows);
                        for r in 0..R {
                            if j >= r && j - r < KH {
                                let wv = splat(*w.add((j - r) * KW + kx));
                                acc[r][v] = fmadd(wv, xv, acc[r][v]);
                            }
                        }
                    }
                }
            }
            for r in 0..R {
                let yp = yrow.add(r * ow + ox0);
                for v in 0..NV {
                    let a = acc[r][v];
                    let out = match act {
                        Activation::None => a,
                        Activation::Relu => relu(a),
                        Activation::Clip { lo, hi } => clip(a, splat(lo), splat(hi)),
                    };
                    if v + 1 == NV && last < L {
                        store_n(yp.add(v * L), out, last);
                    } else {
                        store(yp.add(v * L), out);
                    }
                }
            }
        }

        /// `R` output rows from `oy`, all columns, in blocks of 2 vectors then 1.
        #[inline]
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn direct_rows<const KH: usize, const KW: usize, const R: usize>(
            pl: &Plane,
            w: *const f32,
            bias: f32,
            act: Activation,
            oy: usize,
            y: *mut f32,
            ow: usize,
        ) {
            let yrow = y.add(oy * ow);
            let nvec = ow.div_ceil(L);
            let mut vi = 0;
            while vi + 2 <= nvec {
                let last = if vi + 2 == nvec { ow - (nvec - 1) * L } else { L };
                direct_block::<KH, KW, R, 2>(pl, w, bias, act, oy, vi * L, last, yrow, ow);
                vi += 2;
            }
            if vi < nvec {
                direct_block::<KH, KW, R, 1>(pl, w, bias, act, oy, vi * L, ow - vi * L, yrow, ow);
            }
        }

        /// All planes with a `KH × KW` kernel at stride 1, straight from the input.
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn direct_planes<const KH: usize, const KW: usize>(
            g: &DwGeom,
            c: usize,
            x: &[f32],
            w: &[f32],
            bias: Option<&[f32]>,
            act: Activation,
            y: &mut [f32],
        ) {
            let [h, wd] = g.input();
            let [oh, ow] = g.output();
            let [ph, pw] = g.pads();
            let narrow = ow <= L;
            for ch in 0..c {
                let pl = Plane { x: x.as_ptr().add(ch * h * wd), h, w: wd, ph, pw };
                let wc = w.as_ptr().add(ch * KH * KW);
                let b = bias.map_or(0.0, |b| b[ch]);
                let yc = y.as_mut_ptr().add(ch * oh * ow);
                let mut oy = 0;
                while oy < oh {
                    let left = oh - oy;
                    let r = if narrow {
                        left.min(8)
                    } else if L == 16 && left >= 8 {
                        8
                    } else if left >= 4 {
                        4
                    } else if left >= 2 {
                        2
                    } else {
                        1
                    };
                    match r {
                        8 => direct_rows::<KH, KW, 8>(&pl, wc, b, act, oy, yc, ow),
                        7 => direct_rows::<KH, KW, 7>(&pl, wc, b, act, oy, yc, ow),
                        6 => direct_rows::<KH, KW, 6>(&pl, wc, b, act, oy, yc, ow),
                        5 => direct_rows::<KH, KW, 5>(&pl, wc, b, act, oy, yc, ow),
                        4 => direct_rows::<KH, KW, 4>(&pl, wc, b, act, oy, yc, ow),
                        3 => direct_rows::<KH, KW, 3>(&pl, wc, b, act, oy, yc, ow),
                        2 => direct_rows::<KH, KW, 2>(&pl, wc, b, act, oy, yc, ow),
                        _ => direct_rows::<KH, KW, 1>(&pl, wc, b, act, oy, yc, ow),
                    }
                    oy += r;
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    // The engine macros predate `unsafe_op_in_unsafe_fn`: their `unsafe fn`s use raw
    // pointers and intrinsics directly under the `# Safety` contracts documented on
    // them. Converting them to per-operation `unsafe {}` blocks is left for later.
    #![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
    use crate::simd::avx512::*;
    #[allow(unused_imports)]
    use std::arch::x86_64::*;

    /// Stride 1 reads the input directly under masks (see `direct_block`).
    const DIRECT_S1: bool = true;

    window_engine!("avx512f,avx2,fma");
    ring_engine!("avx512f,avx2,fma");
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    // The engine macros predate `unsafe_op_in_unsafe_fn`: their `unsafe fn`s use raw
    // pointers and intrinsics directly under the `# Safety` contracts documented on
    // them. Converting them to per-operation `unsafe {}` blocks is left for later.
    #![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
    use crate::simd::avx2::*;
    #[allow(unused_imports)]
    use std::arch::x86_64::*;

    /// AVX2's masked loads are slower than plain ones: stride 1 goes through the ring.
    const DIRECT_S1: bool = false;

    window_engine!("avx2,fma");
    ring_engine!("avx2,fma");
}

#[cfg(target_arch = "aarch64")]
#[allow(unused_unsafe)]
pub(crate) mod neon {
    // The engine macros predate `unsafe_op_in_unsafe_fn`: their `unsafe fn`s use raw
    // pointers and intrinsics directly under the `# Safety` contracts documented on
    // them. Converting them to per-operation `unsafe {}` blocks is left for later.
    #![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
    use crate::simd::neon::*;
    #[allow(unused_imports)]
    use std::arch::aarch64::*;

    window_engine!("neon");
}
