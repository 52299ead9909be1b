//! AVX-512F micro-kernel: an 8 × 48 tile in 24 zmm accumulators.
//!
//! Per k step it loads 3 B vectors and broadcasts 8 A values for 24 FMAs: with two
//! 512-bit FMA pipes that is 12 cycles of FMA work against 11 loads, so the kernel is
//! FMA-bound, and 24 independent chains cover the 4-cycle FMA latency. 24 + 3 + 1
//! registers fit the 32 zmm. Column tails use masked loads/stores (no padding of C),
//! and narrower tails run a 1- or 2-vector instance so they cost less; a last panel of
//! at most 8 columns goes to the row-vectorized kernel of `tail.rs` instead.

use super::driver::Tile;
use super::operands::MR;
use crate::epilogue::Activation;
use std::arch::x86_64::*;

/// Columns per B panel.
pub(crate) const NR: usize = 48;
const LANES: usize = 16;
/// k steps ahead that the B panel is prefetched (it streams from L2).
const PF_DIST: usize = 8;

/// SAFETY: AVX-512F must be available and the tile valid as documented on [`Tile`].
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn tile(t: &Tile) {
    // SAFETY: forwarded caller contract.
    unsafe {
        match t.cols.div_ceil(LANES) {
            1 => kernel::<1>(t),
            2 => kernel::<2>(t),
            _ => kernel::<3>(t),
        }
    }
}

/// Mask of the valid lanes of vector `v` for a tile `cols` wide.
#[inline(always)]
fn lane_mask(cols: usize, v: usize) -> __mmask16 {
    let rem = cols.saturating_sub(v * LANES);
    if rem >= LANES {
        0xffff
    } else {
        (1u16 << rem) - 1
    }
}

/// Exactly [`Activation::apply`] lane-wise: `max(0, x)` returns `x` when `x` is NaN
/// (and -0.0 for -0.0), and Clip tests `x < lo` on the input, as the scalar code does.
#[inline(always)]
unsafe fn activate(act: Activation, x: __m512) -> __m512 {
    // SAFETY: register-only intrinsics; callers run with the tier's features enabled
    // (this function's `# Safety` contract).
    unsafe {
        match act {
            Activation::None => x,
            Activation::Relu => _mm512_max_ps(_mm512_setzero_ps(), x),
            Activation::Clip { lo, hi } => {
                let upper = _mm512_min_ps(_mm512_set1_ps(hi), x);
                let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(lo));
                _mm512_mask_blend_ps(below, upper, _mm512_set1_ps(lo))
            }
        }
    }
}

/// One tile with `NV` 16-lane vectors per row (`NV · 16 ≥ cols`): C loaded (masked)
/// into the accumulators on later K blocks, the K loop, then bias, residual and
/// activation in registers and a masked store.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const NV: usize>(t: &Tile) {
    let mut masks = [0 as __mmask16; NV];
    for (v, mask) in masks.iter_mut().enumerate() {
        *mask = lane_mask(t.cols, v);
    }
    let mut acc = if t.load_c {
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        for (r, acc_row) in acc.iter_mut().enumerate() {
            if r < t.rows {
                for v in 0..NV {
                    // SAFETY: masked lanes are inside the tile's rows × cols of C.
                    acc_row[v] = unsafe { _mm512_maskz_loadu_ps(masks[v], t.c.add(r * t.ldc + v * LANES)) };
                }
            }
        }
        // SAFETY: the tile's A and B panels hold kc steps (caller contract).
        unsafe { accumulate::<NV, false>(t.a, t.b, t.ldb, t.kc, t.a_next, &acc) }
    } else {
        // The first K block starts from zero in registers: no initial tile to pass
        // through memory (a visible cost when k is small, as in a network's first layers).
        // SAFETY: as above.
        unsafe { accumulate::<NV, true>(t.a, t.b, t.ldb, t.kc, t.a_next, &[[_mm512_setzero_ps(); NV]; MR]) }
    };
    for (r, acc_row) in acc.iter_mut().enumerate() {
        if r >= t.rows {
            continue;
        }
        if let Some(e) = &t.epi {
            if !e.bias.is_null() {
                // SAFETY: bias holds `rows` floats from the tile's first row.
                let bias = _mm512_set1_ps(unsafe { *e.bias.add(r) });
                for x in acc_row.iter_mut() {
                    *x = _mm512_add_ps(*x, bias);
                }
            }
            if !e.res.is_null() {
                for v in 0..NV {
                    // SAFETY: the residual covers the tile's rows × cols (stride ldr).
                    let res = unsafe { _mm512_maskz_loadu_ps(masks[v], e.res.add(r * e.ldr + v * LANES)) };
                    acc_row[v] = _mm512_add_ps(acc_row[v], res);
                }
            }
            for x in acc_row.iter_mut() {
                // SAFETY: AVX-512F is enabled in this function.
                *x = unsafe { activate(e.act, *x) };
            }
        }
        for v in 0..NV {
            // SAFETY: masked lanes are inside the tile's rows × cols of C.
            unsafe { _mm512_mask_storeu_ps(t.c.add(r * t.ldc + v * LANES), masks[v], acc_row[v]) };
        }
    }
}

/// The K loop, kept out of line: the epilogue loops are too big for LLVM to unroll,
/// and an `acc` indexed by a loop variable there would live in memory, costing a
/// store per FMA. Here every index is constant, so `acc` stays in registers; it goes
/// through memory only once per call.
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn accumulate<const NV: usize, const ZERO: bool>(
    mut a: *const f32,
    mut b: *const f32,
    ldb: usize,
    kc: usize,
    a_next: *const f32,
    init: &[[__m512; NV]; MR],
) -> [[__m512; NV]; MR] {
    // A fresh local (not the by-value argument, which LLVM keeps in memory and
    // stores to on every k step); `ZERO` ignores `init`, so it is never read.
    let mut acc = if ZERO { [[_mm512_setzero_ps(); NV]; MR] } else { *init };
    // One 64-byte line of the next A block (two k steps of it) every other step.
    let mut a_pf = a_next;
    let pf_step = if a_next.is_null() { 0 } else { MR };
    for i in 0..kc {
        if pf_step != 0 && i % 2 == 0 {
            _mm_prefetch::<_MM_HINT_T0>(a_pf as *const i8);
        }
        a_pf = a_pf.wrapping_add(pf_step);
        for v in 0..NV {
            // Prefetch is a hint: an address past the panel is harmless.
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(PF_DIST * ldb + v * LANES) as *const i8);
        }
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            // SAFETY: each k step of the B panel holds NR floats (`ldb` apart).
            *x = unsafe { _mm512_loadu_ps(b.add(v * LANES)) };
        }
        for (r, acc_row) in acc.iter_mut().enumerate() {
            // SAFETY: each k step of the A panel holds MR floats.
            let ar = _mm512_set1_ps(unsafe { *a.add(r) });
            for v in 0..NV {
                acc_row[v] = _mm512_fmadd_ps(ar, bv[v], acc_row[v]);
            }
        }
        // SAFETY: stepping within (or one past) the panels.
        unsafe {
            a = a.add(MR);
            b = b.add(ldb);
        }
    }
    acc
}
