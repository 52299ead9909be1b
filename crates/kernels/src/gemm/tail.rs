//! Column-tail micro-kernel of the x86 tiers: the last `1..=MAX_COLS` columns of C
//! when `n % NR` is that small (7×7 maps: n = 49 = 48 + 1; 14×14: 196 = 4·48 + 4).
//!
//! A masked full-width tile would spend a whole vector per row on one useful column,
//! so here the vectors run down the rows instead: one ymm holds the 8 rows of an A
//! k step (exactly the packed A layout), times a broadcast B value, so every lane is
//! useful. The B tail is packed compactly (`cols` floats per k step). With few columns
//! there are too few accumulators to hide the FMA latency, so `U` interleaved partial
//! sums split each element's k range (`k mod U`) and are added in a fixed tree at the
//! end of the K block: the result is deterministic (the same for any thread count)
//! though rounded differently from the full-width kernel's single chain.
//!
//! ymm, not zmm, on the AVX-512 tier too: an A k step is 8 floats. That caps the tail
//! at half of the FMA peak, still 8× a masked 16-lane tile for one column.

use super::driver::Tile;
use super::operands::MR;
use std::arch::x86_64::*;

/// Widest tail this kernel takes; wider tails run as masked vector tiles.
pub(crate) const MAX_COLS: usize = 8;

/// SAFETY: AVX2 and FMA must be available, `t.cols <= MAX_COLS`, the tile valid as
/// documented on [`Tile`], with its B panel packed `t.cols` floats per k step.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn tile(t: &Tile) {
    // SAFETY: forwarded caller contract; W == t.cols in each arm. U · W (the live
    // accumulators) stays within 12 so they and the operands fit 16 ymm registers,
    // and is at least 8 where W allows (2 FMA pipes × 4 cycles of latency).
    unsafe {
        match t.cols {
            1 => cols::<1, 8>(t),
            2 => cols::<2, 4>(t),
            3 => cols::<3, 3>(t),
            4 => cols::<4, 2>(t),
            5 => cols::<5, 2>(t),
            6 => cols::<6, 2>(t),
            7 => cols::<7, 1>(t),
            _ => cols::<8, 1>(t),
        }
    }
}

/// A tile `W` columns wide, accumulated in `U` interleaved partial sums per element.
/// The tile is transposed in registers (`acc[j]` = rows of column `j`), so C, bias,
/// residual and activation go element by element through a stack copy: `8·W` values
/// once per K block, against `8·W·kc` multiply-adds.
#[target_feature(enable = "avx2,fma")]
unsafe fn cols<const W: usize, const U: usize>(t: &Tile) {
    let mut buf = [[0.0f32; MR]; W];
    if t.load_c {
        for r in 0..t.rows {
            for (j, col) in buf.iter_mut().enumerate() {
                // SAFETY: (r, j) is inside the tile's rows × cols of C.
                col[r] = unsafe { *t.c.add(r * t.ldc + j) };
            }
        }
    }
    let mut init = [_mm256_setzero_ps(); W];
    for (x, col) in init.iter_mut().zip(&buf) {
        // SAFETY: each buf column holds MR = 8 floats.
        *x = unsafe { _mm256_loadu_ps(col.as_ptr()) };
    }
    // SAFETY: the tile's A and B panels hold kc steps (caller contract).
    let acc = unsafe { accumulate::<W, U>(t.a, t.b, t.kc, &init) };
    for (x, col) in acc.iter().zip(buf.iter_mut()) {
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(col.as_mut_ptr(), *x) };
    }
    for r in 0..t.rows {
        for (j, col) in buf.iter().enumerate() {
            let mut v = col[r];
            if let Some(e) = &t.epi {
                // The vector tiers' order: + bias, + residual, then the activation.
                if !e.bias.is_null() {
                    // SAFETY: bias holds `rows` floats from the tile's first row.
                    v += unsafe { *e.bias.add(r) };
                }
                if !e.res.is_null() {
                    // SAFETY: the residual covers the tile's rows × cols (stride ldr).
                    v += unsafe { *e.res.add(r * e.ldr + j) };
                }
                v = e.act.apply(v);
            }
            // SAFETY: (r, j) is inside the tile's rows × cols of C.
            unsafe { *t.c.add(r * t.ldc + j) = v };
        }
    }
}

/// The K loop (out of line so the accumulators stay in registers, as in the other
/// kernels): `U` k steps per iteration, step `u` into partial sum `u`; leftover steps
/// go to partial sum 0, then the partials are summed pairwise in a fixed order.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn accumulate<const W: usize, const U: usize>(
    mut a: *const f32,
    mut b: *const f32,
    kc: usize,
    init: &[__m256; W],
) -> [__m256; W] {
    let mut acc = [[_mm256_setzero_ps(); W]; U];
    acc[0] = *init;
    for _ in 0..kc / U {
        for (u, acc_u) in acc.iter_mut().enumerate() {
            // SAFETY: each A k step holds MR floats, each B k step W floats, and the
            // iteration covers U steps inside the kc of the panels.
            let av = unsafe { _mm256_loadu_ps(a.add(u * MR)) };
            for (j, x) in acc_u.iter_mut().enumerate() {
                // SAFETY: as above.
                let bv = unsafe { _mm256_broadcast_ss(&*b.add(u * W + j)) };
                *x = _mm256_fmadd_ps(av, bv, *x);
            }
        }
        // SAFETY: stepping within (or one past) the panels.
        unsafe {
            a = a.add(U * MR);
            b = b.add(U * W);
        }
    }
    for _ in 0..kc % U {
        // SAFETY: as above, for the remaining single steps.
        let av = unsafe { _mm256_loadu_ps(a) };
        for (j, x) in acc[0].iter_mut().enumerate() {
            // SAFETY: as above.
            let bv = unsafe { _mm256_broadcast_ss(&*b.add(j)) };
            *x = _mm256_fmadd_ps(av, bv, *x);
        }
        // SAFETY: as above.
        unsafe {
            a = a.add(MR);
            b = b.add(W);
        }
    }
    let mut step = 1;
    while step < U {
        let mut u = 0;
        while u + step < U {
            let other = acc[u + step];
            for (x, y) in acc[u].iter_mut().zip(other) {
                *x = _mm256_add_ps(*x, y);
            }
            u += 2 * step;
        }
        step *= 2;
    }
    acc[0]
}
