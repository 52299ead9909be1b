//! Matrix–vector product with the packed A of [`crate::gemm`]: `y = act(A·x + bias)`.
//!
//! A fully connected layer at batch 1 (a classifier head) is one `N × K` weight matrix
//! times one vector: memory-bound, and a GEMM micro-kernel with one live column would
//! waste almost all of its registers. This streams each `MR`-row panel once, with
//! several independent accumulators per panel so the adds overlap, and spreads panels
//! over the pool's threads. The loop body is plain Rust over `MR`-lane arrays that LLVM
//! vectorizes; it is compiled once more with AVX2+FMA / AVX-512 enabled for those tiers.

use crate::error::{KernelError, Result};
use crate::gemm::{Activation, PackedA, MR};
use crate::thread_pool::ThreadPool;
use crate::tier::KernelTable;

/// K steps per accumulator set; four sets hide the FMA latency.
const UNROLL: usize = 4;

/// Computes panel `p` of `y` (`MR` rows, fewer in the last panel).
#[inline(always)]
fn panel(panel: &[f32], x: &[f32], bias: Option<&[f32]>, act: Activation, rows: usize, y: &mut [f32]) {
    let mut acc = [[0.0f32; MR]; UNROLL];
    let mut chunks = panel.chunks_exact(MR * UNROLL);
    let mut xs = x.chunks_exact(UNROLL);
    for (a, xk) in (&mut chunks).zip(&mut xs) {
        for u in 0..UNROLL {
            for r in 0..MR {
                acc[u][r] += a[u * MR + r] * xk[u];
            }
        }
    }
    for (a, &xk) in chunks.remainder().chunks_exact(MR).zip(xs.remainder()) {
        for r in 0..MR {
            acc[0][r] += a[r] * xk;
        }
    }
    for r in 0..rows {
        let mut v = (acc[0][r] + acc[1][r]) + (acc[2][r] + acc[3][r]);
        if let Some(b) = bias {
            v += b[r];
        }
        y[r] = act.apply(v);
    }
}

#[inline(always)]
fn panels(a: &PackedA, x: &[f32], bias: Option<&[f32]>, act: Activation, first: usize, count: usize, y: &mut [f32]) {
    let (m, k) = (a.m(), a.k());
    for p in first..first + count {
        let rows = (m - p * MR).min(MR);
        let data = &a.data()[p * MR * k..][..MR * k];
        let b = bias.map(|b| &b[p * MR..][..rows]);
        panel(data, x, b, act, rows, &mut y[(p - first) * MR..][..rows]);
    }
}

/// A tier's panel loop: rows of panels `first..first + count` of `a` into `y`.
///
/// # Safety
/// The CPU must support the tier the function belongs to.
pub(crate) type PanelsFn = unsafe fn(&PackedA, &[f32], Option<&[f32]>, Activation, usize, usize, &mut [f32]);

/// The scalar tier's panel loop.
pub(crate) fn panels_scalar(
    a: &PackedA,
    x: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    first: usize,
    count: usize,
    y: &mut [f32],
) {
    panels(a, x, bias, act, first, count, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn panels_avx2(
    a: &PackedA,
    x: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    f: usize,
    c: usize,
    y: &mut [f32],
) {
    panels(a, x, bias, act, f, c, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn panels_avx512(
    a: &PackedA,
    x: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    f: usize,
    c: usize,
    y: &mut [f32],
) {
    panels(a, x, bias, act, f, c, y)
}

/// `y = act(A·x + bias)` for packed `a` (`m × k`), `x` of `k` floats, `y` of `m`, on
/// `pool`'s threads. The sum order per row is fixed (independent of the thread count).
pub fn sgemv(
    tier: &KernelTable,
    a: &PackedA,
    x: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
    pool: &ThreadPool,
) -> Result<()> {
    let (m, k) = (a.m(), a.k());
    if x.len() != k || y.len() != m || bias.is_some_and(|b| b.len() != m) {
        return Err(KernelError::Shape(format!(
            "sgemv: A is {m}x{k}, x has {}, y {}, bias {:?}",
            x.len(),
            y.len(),
            bias.map(|b| b.len())
        )));
    }
    let panels_fn = tier.gemv;
    let n_panels = m.div_ceil(MR);
    // Panels per task: about 64 KiB of weights, enough to amortize the dispatch.
    let per_task = (16384 / (MR * k).max(1)).max(1);
    let tasks = n_panels.div_ceil(per_task);
    let run = |t: usize, y: &mut [f32]| {
        let first = t * per_task;
        let count = per_task.min(n_panels - first);
        // SAFETY: a `KernelTable` exists only for tiers this CPU supports; panels
        // `first..first + count` are inside A, and `y` holds their rows.
        unsafe { panels_fn(a, x, bias, act, first, count, y) }
    };
    if tasks <= 1 || pool.threads() == 1 {
        for t in 0..tasks {
            let first = t * per_task * MR;
            let end = ((t + 1) * per_task * MR).min(m);
            run(t, &mut y[first..end]);
        }
        return Ok(());
    }
    // Rows `first..end` of task `t` are `MR` rows per panel, `per_task` panels a task.
    pool.par_chunks(y, 1, per_task * MR, &|first, y| run(first / (per_task * MR), y));
    Ok(())
}
