//! Single-precision GEMM `C = epilogue(A·B)` with A packed once (weights, at build time)
//! and B packed on the fly from any [`BSource`] (a matrix, or the implicit im2col of a
//! convolution), so convolutions need no im2col buffer.
//!
//! Layout follows the GotoBLAS/BLIS scheme: B is packed per thread into a `KC × NC`
//! block that stays in L2, each `MR × KC` A micro-panel stays in L1 while the
//! micro-kernel sweeps the B block's `NR`-column panels, and the `MR × NR` accumulator
//! tile lives in registers for the whole K block. The epilogue runs on that tile after
//! the last K block, so C is written once with its final values (plus once per earlier
//! K block). `driver.rs` has the blocking and threading, one file per tier the kernels
//! (`scalar.rs`, `avx2.rs`, `avx512.rs`, `neon.rs`, plus `tail.rs` for the x86 tiers'
//! narrow last panel); [`peak`] measures FMA peak.
//!
//! Every element of C is computed by a fixed sequence of operations that depends only
//! on its column's position in the last panel (the tail kernel splits each K block
//! into interleaved partial sums) and on the fixed K blocking — the accumulator is
//! stored to C between K blocks and reloaded, which is exact — so results never depend
//! on the thread count; they differ between tiers only in rounding (fused or unfused
//! multiply-add, the tail's partial sums).

pub(crate) mod driver;
mod operands;
pub mod peak;
pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
#[cfg(target_arch = "x86_64")]
pub(crate) mod tail;

use crate::error::{KernelError, Result};
use crate::scratch::Scratch;
use crate::thread_pool::ThreadPool;
use crate::tier::KernelTable;

pub use crate::epilogue::{Activation, Epilogue, RowFn};
pub use driver::nr_for;
pub use operands::{pack_a, packed_a_len, BSource, Matrix, PackedA, MR};

/// The scratch [`sgemm`] needs for `m × n` C and inner size `k`: one packed B block per
/// thread, the same for every tier (the most any needs) and every thread count.
pub fn sgemm_scratch(m: usize, n: usize, k: usize) -> Scratch {
    driver::scratch(m, n, k)
}

/// `C[m × n] (row stride ldc) = epilogue(A·B)`, on `pool`'s threads, with `tier`'s
/// micro-kernels and block sizes. `scratch` holds at least
/// [`sgemm_scratch`]`(m, n, k).total(pool.threads())` floats (a `Scratch` error
/// otherwise); its contents are overwritten.
///
/// `post` is called once per finished row segment `(row, col0, values)`; segments
/// are at most `NC` columns wide and arrive in no particular order across threads.
/// Neither `post` nor `b` gets scratch: one that runs another kernel must bring its
/// own (a `Fn + Sync` callback cannot reach this call's `&mut` scratch, so it can
/// never alias it).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    tier: &KernelTable,
    a: &PackedA,
    b: &dyn BSource,
    c: &mut [f32],
    ldc: usize,
    epi: &Epilogue,
    pool: &ThreadPool,
    scratch: &mut [f32],
) -> Result<()> {
    gemm(tier, a, b, c, ldc, epi, Some(pool), scratch)
}

/// [`sgemm_scratch`] enough for every GEMM of `m` rows, inner size `k` and at most `n`
/// columns (the figure is not monotonic in `n`: a narrower B may take one whole-K block).
pub fn sgemm_scratch_upto(m: usize, n: usize, k: usize) -> Scratch {
    driver::scratch_upto(m, n, k)
}

/// [`sgemm`] on the calling thread only: a GEMM inside a pool task (Winograd's), which
/// needs [`sgemm_scratch`]`(m, n, k).total(1)` floats of scratch.
pub(crate) fn sgemm_serial(
    tier: &KernelTable,
    a: &PackedA,
    b: &dyn BSource,
    c: &mut [f32],
    ldc: usize,
    epi: &Epilogue,
    scratch: &mut [f32],
) -> Result<()> {
    gemm(tier, a, b, c, ldc, epi, None, scratch)
}

#[allow(clippy::too_many_arguments)]
fn gemm(
    tier: &KernelTable,
    a: &PackedA,
    b: &dyn BSource,
    c: &mut [f32],
    ldc: usize,
    epi: &Epilogue,
    pool: Option<&ThreadPool>,
    scratch: &mut [f32],
) -> Result<()> {
    let (m, k, n) = (a.m, a.k, b.cols());
    if b.rows() != k {
        return Err(KernelError::Shape(format!("sgemm: A is {m}x{k} but B has {} rows", b.rows())));
    }
    let c_needed = if m > 0 && n > 0 { (m - 1).checked_mul(ldc).and_then(|x| x.checked_add(n)) } else { Some(0) };
    if n > ldc || !matches!(c_needed, Some(need) if need <= c.len()) {
        return Err(KernelError::Shape(format!("sgemm: C {m}x{n} (ldc {ldc}) over {} floats", c.len())));
    }
    if epi.bias.is_some_and(|b| b.len() < m) {
        return Err(KernelError::Shape(format!("sgemm: bias of {} for {m} rows", epi.bias.map_or(0, |b| b.len()))));
    }
    if let Some(r) = epi.residual {
        if r.rows < m || r.cols < n {
            return Err(KernelError::Shape(format!("sgemm: residual {}x{} smaller than C {m}x{n}", r.rows, r.cols)));
        }
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let need = sgemm_scratch(m, n, k).total(pool.map_or(1, ThreadPool::threads));
    if scratch.len() < need {
        return Err(KernelError::Scratch { what: "sgemm".into(), len: scratch.len(), need });
    }
    driver::run(tier.gemm, a, b, c, ldc, epi, pool, scratch)
}
