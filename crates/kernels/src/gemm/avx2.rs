//! AVX2+FMA micro-kernel: the 8 × 24 tile runs as two 4 × 24 passes over the same B
//! panel (still in L1 for the second pass).
//!
//! 16 ymm registers do not hold an 8-row tile plus operands; 4 × 24 needs 12
//! accumulators + 3 B vectors + 1 broadcast = 16, with 12 FMAs per 7 loads. Full
//! vectors use plain loads/stores; only the column tail uses `vmaskmov` (slow on AMD).
//! A last panel of at most 8 columns goes to the row-vectorized kernel of `tail.rs`.

use super::driver::Tile;
use super::operands::MR;
use crate::epilogue::Activation;
use std::arch::x86_64::*;

/// Columns per B panel.
pub(crate) const NR: usize = 24;
const LANES: usize = 8;
const HALF: usize = 4;
/// k steps ahead that the B panel is prefetched.
const PF_DIST: usize = 8;

/// SAFETY: AVX2 and FMA must be available and the tile valid as documented on [`Tile`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn tile(t: &Tile) {
    for h in 0..MR / HALF {
        if h * HALF >= t.rows {
            break;
        }
        // SAFETY: forwarded caller contract; h selects rows inside the tile.
        unsafe {
            match t.cols.div_ceil(LANES) {
                1 => half::<1>(t, h * HALF),
                2 => half::<2>(t, h * HALF),
                _ => half::<3>(t, h * HALF),
            }
        }
    }
}

/// Exactly [`Activation::apply`] lane-wise (see the AVX-512 kernel for the NaN and
/// signed-zero argument; `max`/`min` here have the same operand-order semantics).
#[inline(always)]
unsafe fn activate(act: Activation, x: __m256) -> __m256 {
    // SAFETY: register-only intrinsics; callers run with the tier's features enabled
    // (this function's `# Safety` contract).
    unsafe {
        match act {
            Activation::None => x,
            Activation::Relu => _mm256_max_ps(_mm256_setzero_ps(), x),
            Activation::Clip { lo, hi } => {
                let upper = _mm256_min_ps(_mm256_set1_ps(hi), x);
                let below = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(lo));
                _mm256_blendv_ps(upper, _mm256_set1_ps(lo), below)
            }
        }
    }
}

/// Loads vector `v` of a row: whole when all its lanes are valid, else masked.
#[inline(always)]
unsafe fn load(p: *const f32, rem: usize, mask: __m256i) -> __m256 {
    // SAFETY: the caller passes a pointer valid for `min(rem, 8)` floats.
    unsafe {
        if rem >= LANES {
            _mm256_loadu_ps(p)
        } else {
            _mm256_maskload_ps(p, mask)
        }
    }
}

/// Rows `r0..r0 + 4` of a tile with `NV` 8-lane vectors per row (`NV · 8 ≥ cols`).
#[target_feature(enable = "avx2,fma")]
unsafe fn half<const NV: usize>(t: &Tile, r0: usize) {
    let rows = HALF.min(t.rows - r0);
    let mut rems = [0usize; NV];
    let mut masks = [_mm256_setzero_si256(); NV];
    let lane_ids = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for v in 0..NV {
        rems[v] = t.cols.saturating_sub(v * LANES);
        masks[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(rems[v].min(LANES) as i32), lane_ids);
    }
    // SAFETY: row r0 of the tile is inside C.
    let c = unsafe { t.c.add(r0 * t.ldc) };
    let mut acc = [[_mm256_setzero_ps(); NV]; HALF];
    if t.load_c {
        for (r, acc_row) in acc.iter_mut().enumerate() {
            if r >= rows {
                continue;
            }
            for v in 0..NV {
                // SAFETY: lanes < rems[v] of row r are inside the tile's C.
                acc_row[v] = unsafe { load(c.add(r * t.ldc + v * LANES), rems[v], masks[v]) };
            }
        }
    }
    // Each half prefetches its half of the next A block (see `Tile::a_next`).
    let a_next = if t.a_next.is_null() { t.a_next } else { t.a_next.wrapping_add(r0 / HALF * (t.kc * MR / 2)) };
    // SAFETY: rows r0..r0+4 of each A k step are inside its MR floats, and the
    // tile's panels hold kc steps (caller contract).
    let mut acc = unsafe { accumulate::<NV>(t.a.add(r0), t.b, t.ldb, t.kc, a_next, &acc) };
    for (r, acc_row) in acc.iter_mut().enumerate() {
        if r >= rows {
            continue;
        }
        if let Some(e) = &t.epi {
            if !e.bias.is_null() {
                // SAFETY: bias holds `rows` floats from the tile's first row.
                let bias = _mm256_set1_ps(unsafe { *e.bias.add(r0 + r) });
                for x in acc_row.iter_mut() {
                    *x = _mm256_add_ps(*x, bias);
                }
            }
            if !e.res.is_null() {
                for v in 0..NV {
                    // SAFETY: the residual covers the tile's rows × cols (stride ldr).
                    let res = unsafe { load(e.res.add((r0 + r) * e.ldr + v * LANES), rems[v], masks[v]) };
                    acc_row[v] = _mm256_add_ps(acc_row[v], res);
                }
            }
            for x in acc_row.iter_mut() {
                // SAFETY: AVX is enabled in this function.
                *x = unsafe { activate(e.act, *x) };
            }
        }
        for v in 0..NV {
            // SAFETY: lanes < rems[v] of row r are inside the tile's C.
            unsafe {
                let p = c.add(r * t.ldc + v * LANES);
                if rems[v] >= LANES {
                    _mm256_storeu_ps(p, acc_row[v]);
                } else {
                    _mm256_maskstore_ps(p, masks[v], acc_row[v]);
                }
            }
        }
    }
}

/// The K loop, out of line so `acc` stays in registers (see the AVX-512 kernel).
/// `a` points at the pass's first row inside the first A k step.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn accumulate<const NV: usize>(
    mut a: *const f32,
    mut b: *const f32,
    ldb: usize,
    kc: usize,
    a_next: *const f32,
    init: &[[__m256; NV]; HALF],
) -> [[__m256; NV]; HALF] {
    // A fresh local (not the by-value argument, which LLVM keeps in memory and
    // stores to on every k step).
    let mut acc = *init;
    // Half of the next A block's kc/2 lines: one every fourth k step.
    let mut a_pf = a_next;
    let pf_step = if a_next.is_null() { 0 } else { 16 };
    for i in 0..kc {
        if pf_step != 0 && i % 4 == 0 {
            _mm_prefetch::<_MM_HINT_T0>(a_pf as *const i8);
            a_pf = a_pf.wrapping_add(pf_step);
        }
        // The B panel streams from L2 on the first pass: prefetch its 96-byte k step
        // (two lines cover it) PF_DIST steps ahead. A hint: past-the-end is harmless.
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(PF_DIST * ldb) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(PF_DIST * ldb + 16) as *const i8);
        let mut bv = [_mm256_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            // SAFETY: each k step of the B panel holds NR floats.
            *x = unsafe { _mm256_loadu_ps(b.add(v * LANES)) };
        }
        for (r, acc_row) in acc.iter_mut().enumerate() {
            // SAFETY: r < 4 stays inside the A k step.
            let ar = _mm256_set1_ps(unsafe { *a.add(r) });
            for v in 0..NV {
                acc_row[v] = _mm256_fmadd_ps(ar, bv[v], acc_row[v]);
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
