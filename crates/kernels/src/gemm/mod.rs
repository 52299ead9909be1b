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

/// Rows per packed A panel, the same on every target so a packed plan is portable.
pub const MR: usize = 8;

/// Floats of A (`m × k`) packed into `MR`-row panels.
///
/// Saturates instead of overflowing: no slice is `usize::MAX` floats long, so an
/// absurd size can never pass a length check.
pub fn packed_a_len(m: usize, k: usize) -> usize {
    m.div_ceil(MR).saturating_mul(MR).saturating_mul(k)
}

/// Packs row-major `a` (`m × k`, row stride `lda`) into `out` (`packed_a_len(m, k)`
/// floats): panel `p` holds, for each `kk` in `0..k`, rows `p·MR .. p·MR + MR` of column
/// `kk`, zero past row `m`.
pub fn pack_a(m: usize, k: usize, a: &[f32], lda: usize, out: &mut [f32]) -> Result<()> {
    let needed = if m > 0 && k > 0 { (m - 1).checked_mul(lda).and_then(|x| x.checked_add(k)) } else { Some(0) };
    if out.len() != packed_a_len(m, k) || !matches!(needed, Some(need) if need <= a.len()) {
        return Err(KernelError::Shape(format!(
            "pack_a: {m}x{k} (lda {lda}) from {} floats into {}",
            a.len(),
            out.len()
        )));
    }
    for (p, panel) in out.chunks_exact_mut(MR * k.max(1)).enumerate().take(m.div_ceil(MR)) {
        for kk in 0..k {
            for r in 0..MR {
                let row = p * MR + r;
                panel[kk * MR + r] = if row < m { a[row * lda + kk] } else { 0.0 };
            }
        }
    }
    Ok(())
}

/// A packed by [`pack_a`].
#[derive(Clone, Copy, Debug)]
pub struct PackedA<'a> {
    data: &'a [f32],
    m: usize,
    k: usize,
}

impl<'a> PackedA<'a> {
    pub fn new(data: &'a [f32], m: usize, k: usize) -> Result<PackedA<'a>> {
        if data.len() != packed_a_len(m, k) {
            return Err(KernelError::Shape(format!(
                "packed A {m}x{k} needs {} floats, has {}",
                packed_a_len(m, k),
                data.len()
            )));
        }
        Ok(PackedA { data, m, k })
    }
    pub fn m(&self) -> usize {
        self.m
    }
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
    /// Element `(row, kk)` of the unpacked matrix.
    pub fn get(&self, row: usize, kk: usize) -> f32 {
        self.data[(row / MR) * MR * self.k + kk * MR + row % MR]
    }
}

/// A `k × n` B operand, packed on demand into `nr`-column panels.
pub trait BSource: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    /// Writes rows `k0..k0 + kc` and columns `n0..n0 + nc` into `dst` as consecutive
    /// panels of `nr` columns: panel `q` holds, for each row `kk`, columns
    /// `n0 + q·nr .. n0 + q·nr + nr`, zero past `n0 + nc`. `dst` holds exactly
    /// `kc · nc.div_ceil(nr) · nr` floats.
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]);
    /// The operand as a row-major matrix `(data, row stride)`, if it is one: kernels that
    /// take a row stride then read its full-width panels in place instead of packing
    /// them (a 1×1 convolution's input; the copy would cost as much as ~1/4 of its FMAs).
    fn direct(&self) -> Option<(&[f32], usize)> {
        None
    }
}

/// A row-major matrix view (row stride `ld`).
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    ld: usize,
}

impl<'a> Matrix<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize, ld: usize) -> Result<Matrix<'a>> {
        let needed =
            if rows > 0 && cols > 0 { (rows - 1).checked_mul(ld).and_then(|x| x.checked_add(cols)) } else { Some(0) };
        if cols > ld || !matches!(needed, Some(need) if need <= data.len()) {
            return Err(KernelError::Shape(format!("matrix {rows}x{cols} (ld {ld}) over {} floats", data.len())));
        }
        Ok(Matrix { data, rows, cols, ld })
    }
    /// Row `r` (`cols` values).
    pub fn row(&self, r: usize) -> &'a [f32] {
        &self.data[r * self.ld..][..self.cols]
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.ld + c]
    }
}

impl BSource for Matrix<'_> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn direct(&self) -> Option<(&[f32], usize)> {
        Some((self.data, self.ld))
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        if kc == 0 || nr == 0 {
            return;
        }
        // Row-major B: each panel row is a contiguous run of the source row, so copy
        // runs (memcpy-speed) instead of single floats; only the tail panel pads.
        for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate().take(nc.div_ceil(nr)) {
            let c0 = n0 + q * nr;
            let w = nr.min(n0 + nc - c0);
            for (kk, out) in panel.chunks_exact_mut(nr).enumerate() {
                let start = (k0 + kk) * self.ld + c0;
                out[..w].copy_from_slice(&self.data[start..start + w]);
                out[w..].fill(0.0);
            }
        }
    }
}

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
