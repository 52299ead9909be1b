//! MaxPool, AveragePool and the global pools over NCHW f32 planes, with the semantics of
//! the IR's reference (`sinter_ir::ops::nn::pool`), which the runtime must match:
//!
//! - MaxPool: a running `if x > m { m = x }` from `-inf` over the window's taps inside
//!   the input, so NaN never wins (a window of only NaN or only padding gives `-inf`).
//! - AveragePool: the sum of the taps inside the input divided by the number of taps
//!   inside the input (`count_include_pad = false`) or inside the padded input
//!   (`true`: taps past the trailing padding, which `ceil_mode` can create, do not
//!   count); 0 when that count is 0. Sums are f32 here (the reference uses f64).
//! - `ceil_mode` only changes the output size, which the caller passes in the geometry.
//!
//! The SIMD tiers share the depthwise engine (see [`crate::depthwise`]): the plane is
//! copied padded with `-inf` (max) or 0 (average), so window taps need no bounds
//! checks; the average divisor is `rows[oy] · cols[ox]` (the count is separable),
//! precomputed into scratch.

use crate::depthwise::{input_index, run_window, valid_range, DwGeom, Reduce};
use crate::error::{KernelError, Result};
use crate::tier::KernelTable;

/// What a pool computes over its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg { count_include_pad: bool },
}

/// A pooling window: the [`DwGeom`] fields plus the trailing pads, which only
/// `count_include_pad` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    win: DwGeom,
    pad_end: [usize; 2],
}

impl PoolGeom {
    /// As [`DwGeom::new`], with `pads` = `[top, left, bottom, right]` (ONNX order).
    pub fn new(
        input: [usize; 2],
        output: [usize; 2],
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: [usize; 4],
    ) -> Result<PoolGeom> {
        let win = DwGeom::new(input, output, kernel, strides, dilations, [pads[0], pads[1]])?;
        for (axis, (len, begin, end)) in
            [(input[0], pads[0], pads[2]), (input[1], pads[1], pads[3])].into_iter().enumerate()
        {
            if len.checked_add(begin).and_then(|n| n.checked_add(end)).is_none() {
                return Err(KernelError::Shape(format!("pool: padded size of axis {axis} overflows")));
            }
        }
        Ok(PoolGeom { win, pad_end: [pads[2], pads[3]] })
    }

    pub fn window(&self) -> &DwGeom {
        &self.win
    }

    /// `[top, left, bottom, right]`.
    pub fn pads(&self) -> [usize; 4] {
        let [t, l] = self.win.pads();
        [t, l, self.pad_end[0], self.pad_end[1]]
    }

    /// Floats of the per-column and per-row tap counts that follow the padded copy.
    fn count_floats(&self) -> (usize, usize) {
        let [oh, ow] = self.win.output();
        (ow.next_multiple_of(16), oh)
    }
}

/// Scratch floats [`pool2d`] needs for `g` (the same for every tier and kind).
pub fn pool_scratch_floats(g: &PoolGeom) -> usize {
    let (c, r) = g.count_floats();
    g.win.padded_floats() + c + r
}

/// Pools one `h × w` plane `x` into the `oh × ow` plane `y` (row-major). `scratch` holds
/// at least [`pool_scratch_floats`] floats (overwritten). Fails on slices of the wrong
/// size or a tier this CPU lacks.
pub fn pool2d(
    tier: &KernelTable,
    kind: PoolKind,
    g: &PoolGeom,
    x: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let Some(window) = tier.window else {
        g.win.check("pool2d", x, y, scratch, 0)?;
        scalar_pool(kind, g, x, y);
        return Ok(());
    };
    let need = pool_scratch_floats(g);
    g.win.check("pool2d", x, y, scratch, need)?;
    let (padded, rest) = scratch[..need].split_at_mut(g.win.padded_floats());
    let red = match kind {
        PoolKind::Max => Reduce::Max,
        PoolKind::Avg { count_include_pad } => {
            let (cols, rows) = rest.split_at_mut(g.count_floats().0);
            let [oh, ow] = g.win.output();
            cols.fill(0.0);
            for (o, c) in cols[..ow].iter_mut().enumerate() {
                *c = axis_count(g, 1, o, count_include_pad) as f32;
            }
            for (o, r) in rows[..oh].iter_mut().enumerate() {
                *r = axis_count(g, 0, o, count_include_pad) as f32;
            }
            Reduce::Avg { rows, cols }
        }
    };
    run_window(window, &g.win, x, red, y, padded)
}

/// Taps of output `o`'s window along `axis` that the average divides by: inside the
/// input, or inside the padded input with `include_pad`.
fn axis_count(g: &PoolGeom, axis: usize, o: usize, include_pad: bool) -> usize {
    let (len, k, s, d, pb) =
        (g.win.input()[axis], g.win.kernel()[axis], g.win.strides()[axis], g.win.dilations()[axis], g.win.pads()[axis]);
    // Taps j (0..k) at padded index o·s + j·d, inside [lo, hi) of the padded axis.
    let (lo, hi) = if include_pad { (0, pb + len + g.pad_end[axis]) } else { (pb, pb + len) };
    let (a, b) = valid_range(o * s, lo, d, hi - lo, k);
    b - a
}

/// The scalar reference: direct loops over the taps inside the input.
fn scalar_pool(kind: PoolKind, g: &PoolGeom, x: &[f32], y: &mut [f32]) {
    let w = &g.win;
    let ([h, iw], [_, ow], [kh, kw], [sh, sw], [dh, dw], [ph, pw]) =
        (w.input(), w.output(), w.kernel(), w.strides(), w.dilations(), w.pads());
    if ow == 0 {
        return;
    }
    for (oy, yrow) in y.chunks_exact_mut(ow).enumerate() {
        let rows = || (0..kh).filter_map(|ky| input_index(oy * sh + ky * dh, ph, h));
        for (ox, out) in yrow.iter_mut().enumerate() {
            let (lo, hi) = valid_range(ox * sw, pw, dw, iw, kw);
            // Input column of tap `lo` (any value when there is no valid tap).
            let start = if lo < hi { lo * dw + ox * sw - pw } else { 0 };
            let taps = move |iy: usize| x[iy * iw..][..iw].iter().skip(start).step_by(dw).take(hi - lo);
            *out = match kind {
                PoolKind::Max => {
                    let mut m = f32::NEG_INFINITY;
                    for &v in rows().flat_map(taps) {
                        if v > m {
                            m = v;
                        }
                    }
                    m
                }
                PoolKind::Avg { count_include_pad } => {
                    let sum: f32 = rows().flat_map(taps).sum();
                    let count = axis_count(g, 0, oy, count_include_pad) * axis_count(g, 1, ox, count_include_pad);
                    if count == 0 {
                        0.0
                    } else {
                        sum / count as f32
                    }
                }
            };
        }
    }
}

/// `GlobalAveragePool` of one plane: its mean (0 for an empty plane).
pub fn global_average_pool(tier: &KernelTable, x: &[f32]) -> Result<f32> {
    let sum = reduce_plane(tier, x, false)?;
    Ok(if x.is_empty() { 0.0 } else { sum / x.len() as f32 })
}

/// `GlobalMaxPool` of one plane: `-inf`, raised by every value greater than the
/// running maximum (NaN never wins).
pub fn global_max_pool(tier: &KernelTable, x: &[f32]) -> Result<f32> {
    reduce_plane(tier, x, true)
}

/// The sum (or max) of `x` by a lane-parallel reduction written in plain Rust and
/// compiled with the tier's target features: its fixed-size lane arrays vectorize to
/// that tier's registers.
fn reduce_plane(tier: &KernelTable, x: &[f32], max: bool) -> Result<f32> {
    // SAFETY: a `KernelTable` exists only for tiers this CPU supports.
    Ok(unsafe { (tier.reduce_plane)(x, max) })
}

/// A tier's plane reduction: the max of `x` if `max`, else its sum.
///
/// # Safety
/// The CPU must support the tier the function belongs to.
pub(crate) type ReduceFn = unsafe fn(&[f32], bool) -> f32;

/// Scalar, and NEON (part of the aarch64 baseline, so this is compiled for it).
pub(crate) fn reduce_scalar(x: &[f32], max: bool) -> f32 {
    if max {
        max_lanes(x)
    } else {
        sum_lanes(x)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn reduce_avx2(x: &[f32], max: bool) -> f32 {
    reduce_scalar_inline(x, max)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn reduce_avx512(x: &[f32], max: bool) -> f32 {
    reduce_scalar_inline(x, max)
}

/// The lane loops, inlined into each tier's wrapper so they compile with its features.
#[inline(always)]
#[cfg(target_arch = "x86_64")]
fn reduce_scalar_inline(x: &[f32], max: bool) -> f32 {
    if max {
        max_lanes(x)
    } else {
        sum_lanes(x)
    }
}

/// Lanes of the running partial results: enough for 4 AVX-512 registers in flight.
const RED_LANES: usize = 64;

#[inline(always)]
fn sum_lanes(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; RED_LANES];
    let chunks = x.chunks_exact(RED_LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    for (a, &v) in acc.iter_mut().zip(tail) {
        *a += v;
    }
    // Pairwise halving keeps the combination vectorized and accurate.
    let mut n = RED_LANES;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            acc[i] += acc[i + n];
        }
    }
    acc[0]
}

#[inline(always)]
fn max_lanes(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; RED_LANES];
    let chunks = x.chunks_exact(RED_LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    for (a, &v) in acc.iter_mut().zip(tail) {
        *a = if v > *a { v } else { *a };
    }
    acc.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}
