//! Layer normalization of one row: `y = (x − mean) · inv_std · scale + bias`, with
//! `inv_std = 1 / sqrt(var + eps)` (ONNX `LayerNormalization`, statistics in f32 as its
//! `stash_type` 1 says).
//!
//! Mean and variance take two passes over the row (it stays in L1 between them), so the
//! variance is a sum of squared deviations rather than `E[x²] − mean²`, which cancels
//! catastrophically for rows with a large mean (see also `row`'s pivot). Each pass keeps `LANES` independent
//! partial sums, combined in a fixed tree: the loops vectorize, and the summation order
//! is the same on every tier (results differ only by FMA contraction). The body is plain
//! Rust that LLVM vectorizes; it is compiled once more with AVX2+FMA / AVX-512 enabled
//! for those tiers (on aarch64 NEON is the baseline, so the portable body is the NEON one).

use crate::error::{KernelError, Result};
use crate::tier::KernelTable;

/// Partial sums per pass: one AVX-512 vector, two AVX2 or four NEON ones.
const LANES: usize = 16;

/// The fixed-order sum of `LANES` partial sums.
#[inline(always)]
fn combine(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

/// Everything is computed relative to the row's first element `p`: `x − p` is exact when
/// `x` is within a factor of two of `p` (Sterbenz), so a row whose mean is large next to
/// its spread (a transformer's residual stream) loses no bits to rounding the mean.
#[inline(always)]
fn row(x: &[f32], scale: &[f32], bias: Option<&[f32]>, eps: f32, y: &mut [f32]) -> (f32, f32) {
    let n = x.len() as f32;
    let p = x[0];
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] += c[l] - p;
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        acc[l] += v - p;
    }
    // The mean's offset from p.
    let shift = combine(acc) / n;
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let d = (c[l] - p) - shift;
            acc[l] += d * d;
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        let d = (v - p) - shift;
        acc[l] += d * d;
    }
    let inv_std = 1.0 / (combine(acc) / n + eps).sqrt();
    match bias {
        Some(b) => {
            for (((y, &x), &s), &b) in y.iter_mut().zip(x).zip(scale).zip(b) {
                *y = ((x - p) - shift) * inv_std * s + b;
            }
        }
        None => {
            for ((y, &x), &s) in y.iter_mut().zip(x).zip(scale) {
                *y = ((x - p) - shift) * inv_std * s;
            }
        }
    }
    (p + shift, inv_std)
}

/// A tier's [`layer_norm_row`] body (all slices as long as `x`, at least 1).
///
/// # Safety
/// The CPU must support the tier the function belongs to.
pub(crate) type RowFn = unsafe fn(&[f32], &[f32], Option<&[f32]>, f32, &mut [f32]) -> (f32, f32);

/// The scalar tier's row.
pub(crate) fn row_scalar(x: &[f32], scale: &[f32], bias: Option<&[f32]>, eps: f32, y: &mut [f32]) -> (f32, f32) {
    row(x, scale, bias, eps, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn row_avx2(x: &[f32], scale: &[f32], bias: Option<&[f32]>, eps: f32, y: &mut [f32]) -> (f32, f32) {
    row(x, scale, bias, eps, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn row_avx512(x: &[f32], scale: &[f32], bias: Option<&[f32]>, eps: f32, y: &mut [f32]) -> (f32, f32) {
    row(x, scale, bias, eps, y)
}

/// Normalizes `x` into `y` (same length, at least 1) with per-element `scale` and
/// optional `bias` (each as long as the row); returns `(mean, inv_std)`, the values of
/// `LayerNormalization`'s optional outputs.
pub fn layer_norm_row(
    tier: &KernelTable,
    x: &[f32],
    scale: &[f32],
    bias: Option<&[f32]>,
    eps: f32,
    y: &mut [f32],
) -> Result<(f32, f32)> {
    let n = x.len();
    if n == 0 || y.len() != n || scale.len() != n || bias.is_some_and(|b| b.len() != n) {
        return Err(KernelError::Shape(format!(
            "layer_norm_row: x {n}, y {}, scale {}, bias {:?} floats (all equal and non-zero)",
            y.len(),
            scale.len(),
            bias.map(<[f32]>::len)
        )));
    }
    // SAFETY: a `KernelTable` exists only for tiers this CPU supports, and the
    // slices were checked above.
    Ok(unsafe { (tier.layer_norm)(x, scale, bias, eps, y) })
}
