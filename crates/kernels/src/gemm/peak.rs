//! Peak FMA throughput of a tier, measured with a register-resident loop, so GEMM
//! speed can be reported as a fraction of what this CPU (and clock) can do.

use crate::error::Result;
use crate::tier::KernelTable;
use std::time::{Duration, Instant};

/// Independent accumulator chains: more than latency × pipes (4 × 2 on Zen 5), and
/// with the two operands no more than the 32 zmm / NEON registers.
const CHAINS: usize = 16;
/// With only 16 vector registers (AVX2, SSE2 for the scalar tier) 12 chains + 2
/// operands avoid spills.
const CHAINS_16: usize = 12;

/// Single-thread GFLOP/s (2 per FMA lane) of `tier`'s widest FMA, measured for ~60 ms.
/// The scalar tier measures unfused multiply-add (what its kernel does).
pub fn measure_fma_gflops(tier: &KernelTable) -> Result<f64> {
    measure_fma_gflops_threads(tier, 1)
}

/// Like [`measure_fma_gflops`] with `threads` OS threads running the loop at once
/// (the sum of their rates).
pub fn measure_fma_gflops_threads(tier: &KernelTable, threads: usize) -> Result<f64> {
    let run = tier.fma_peak;
    let threads = threads.max(1);
    let rates: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(move || measure_one(run))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).collect()
    });
    Ok(rates.iter().sum())
}

/// Best rate over ~1 ms windows for ~60 ms in all: the best window is the one least
/// disturbed by other processes (time slices are a few ms) and clock ramps; a mean
/// would under-report peak on a shared machine.
fn measure_one(run: PeakFn) -> f64 {
    let mut iters = 1u64 << 8;
    let total = Instant::now();
    let mut best = 0.0f64;
    loop {
        let start = Instant::now();
        // SAFETY: `run` came from a `KernelTable`, which exist only for tiers this CPU
        // supports.
        let flops = unsafe { run(iters) };
        let dt = start.elapsed();
        if dt >= Duration::from_micros(800) {
            best = best.max(flops / dt.as_secs_f64() / 1e9);
        } else {
            iters *= 2;
        }
        if total.elapsed() >= Duration::from_millis(60) && best > 0.0 {
            return best;
        }
    }
}

/// A tier's FMA loop: runs `iters` rounds of its chains and returns the flops done.
///
/// # Safety
/// The CPU must support the tier the function belongs to.
pub(crate) type PeakFn = unsafe fn(iters: u64) -> f64;

/// The scalar tier's loop: unfused multiply-adds in four-wide rows so LLVM can use the
/// baseline SIMD, as the scalar kernel does.
pub(crate) fn run_scalar(iters: u64) -> f64 {
    let (x, y) = (std::hint::black_box(0.999_f32), std::hint::black_box(1e-3_f32));
    let mut acc = [[0.0f32; 4]; CHAINS_16];
    for _ in 0..iters {
        for row in acc.iter_mut() {
            for v in row.iter_mut() {
                *v = *v * x + y;
            }
        }
    }
    std::hint::black_box(acc);
    (iters * CHAINS_16 as u64 * 8) as f64
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn run_avx512(iters: u64) -> f64 {
    let (x, y) = (std::hint::black_box(0.999_f32), std::hint::black_box(1e-3_f32));
    // SAFETY: forwarded caller contract.
    std::hint::black_box(unsafe { x86::fma512(iters, x, y) });
    (iters * CHAINS as u64 * 32) as f64
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn run_avx2(iters: u64) -> f64 {
    let (x, y) = (std::hint::black_box(0.999_f32), std::hint::black_box(1e-3_f32));
    // SAFETY: forwarded caller contract.
    std::hint::black_box(unsafe { x86::fma256(iters, x, y) });
    (iters * CHAINS_16 as u64 * 16) as f64
}

/// # Safety
/// The CPU must support NEON.
#[cfg(target_arch = "aarch64")]
pub(crate) unsafe fn run_neon(iters: u64) -> f64 {
    let (x, y) = (std::hint::black_box(0.999_f32), std::hint::black_box(1e-3_f32));
    // SAFETY: forwarded caller contract.
    std::hint::black_box(unsafe { arm::fma128(iters, x, y) });
    (iters * CHAINS as u64 * 8) as f64
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{CHAINS, CHAINS_16};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma512(iters: u64, x: f32, y: f32) -> f32 {
        let (xv, yv) = (_mm512_set1_ps(x), _mm512_set1_ps(y));
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, xv, yv);
            }
        }
        let sum = acc.iter().fold(_mm512_setzero_ps(), |s, a| _mm512_add_ps(s, *a));
        _mm512_reduce_add_ps(sum)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma256(iters: u64, x: f32, y: f32) -> f32 {
        let (xv, yv) = (_mm256_set1_ps(x), _mm256_set1_ps(y));
        let mut acc = [_mm256_setzero_ps(); CHAINS_16];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, xv, yv);
            }
        }
        let mut out = [0.0f32; 8];
        let sum = acc.iter().fold(_mm256_setzero_ps(), |s, a| _mm256_add_ps(s, *a));
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
        out.iter().sum()
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::CHAINS;
    use std::arch::aarch64::*;

    #[target_feature(enable = "neon")]
    pub(super) unsafe fn fma128(iters: u64, x: f32, y: f32) -> f32 {
        let (xv, yv) = (vdupq_n_f32(x), vdupq_n_f32(y));
        let mut acc = [vdupq_n_f32(0.0); CHAINS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = vfmaq_f32(yv, *a, xv);
            }
        }
        let sum = acc.iter().fold(vdupq_n_f32(0.0), |s, a| vaddq_f32(s, *a));
        vaddvq_f32(sum)
    }
}
