//! NEON micro-kernel: an 8 × 12 tile in 24 q-register accumulators.
//!
//! Per k step: two loads of the 8 A values, three of B, and 24 lane-indexed FMAs
//! (`fmla v.4s, b.4s, a.s[lane]` needs no broadcast), 29 of the 32 registers. Full
//! tiles run the epilogue in registers; edge tiles (m % 8, n % 12) go through a small
//! stack tile and the scalar epilogue, which has identical per-element semantics.

use super::driver::Tile;
use super::operands::MR;
use crate::epilogue::Activation;
use std::arch::aarch64::*;

/// Columns per B panel.
pub(crate) const NR: usize = 12;
const NV: usize = 3;
const LANES: usize = 4;

/// Exactly [`Activation::apply`] lane-wise, with compare + select: NEON `fmax`/`fmin`
/// would turn NaN operands and -0.0 differently from the scalar definition.
#[inline(always)]
unsafe fn activate(act: Activation, x: float32x4_t) -> float32x4_t {
    // SAFETY: NEON intrinsics on registers only; the caller runs with NEON enabled.
    unsafe {
        match act {
            Activation::None => x,
            Activation::Relu => {
                let zero = vdupq_n_f32(0.0);
                vbslq_f32(vcltq_f32(x, zero), zero, x)
            }
            Activation::Clip { lo, hi } => {
                let (lo, hi) = (vdupq_n_f32(lo), vdupq_n_f32(hi));
                let upper = vbslq_f32(vcgtq_f32(x, hi), hi, x);
                vbslq_f32(vcltq_f32(x, lo), lo, upper)
            }
        }
    }
}

/// SAFETY: NEON must be available and the tile valid as documented on [`Tile`].
#[target_feature(enable = "neon")]
pub(crate) unsafe fn tile(t: &Tile) {
    let full = t.rows == MR && t.cols == NR;
    let mut acc = [[vdupq_n_f32(0.0); NV]; MR];
    // Edge tiles: C rows/columns outside the tile are never touched; the valid part
    // goes through this buffer instead.
    let mut buf = [[0.0f32; NR]; MR];
    if t.load_c {
        if full {
            for (r, acc_row) in acc.iter_mut().enumerate() {
                for (v, x) in acc_row.iter_mut().enumerate() {
                    // SAFETY: a full tile's 8 × 12 floats are inside C.
                    *x = unsafe { vld1q_f32(t.c.add(r * t.ldc + v * LANES)) };
                }
            }
        } else {
            for (r, buf_row) in buf.iter_mut().enumerate().take(t.rows) {
                // SAFETY: the tile's rows × cols are inside C.
                let c_row = unsafe { std::slice::from_raw_parts(t.c.add(r * t.ldc), t.cols) };
                buf_row[..t.cols].copy_from_slice(c_row);
            }
            for (acc_row, buf_row) in acc.iter_mut().zip(&buf) {
                for (v, x) in acc_row.iter_mut().enumerate() {
                    // SAFETY: buf rows hold NR floats.
                    *x = unsafe { vld1q_f32(buf_row.as_ptr().add(v * LANES)) };
                }
            }
        }
    }
    // SAFETY: the tile's panels hold kc steps (caller contract).
    let mut acc = unsafe { accumulate(t.a, t.b, t.kc, &acc) };
    if full {
        for (r, acc_row) in acc.iter_mut().enumerate() {
            if let Some(e) = &t.epi {
                if !e.bias.is_null() {
                    // SAFETY: bias holds MR floats from the tile's first row.
                    let bias = vdupq_n_f32(unsafe { *e.bias.add(r) });
                    for x in acc_row.iter_mut() {
                        *x = vaddq_f32(*x, bias);
                    }
                }
                if !e.res.is_null() {
                    for (v, x) in acc_row.iter_mut().enumerate() {
                        // SAFETY: the residual covers the full tile (stride ldr).
                        *x = vaddq_f32(*x, unsafe { vld1q_f32(e.res.add(r * e.ldr + v * LANES)) });
                    }
                }
                for x in acc_row.iter_mut() {
                    // SAFETY: NEON is enabled in this function.
                    *x = unsafe { activate(e.act, *x) };
                }
            }
            for (v, x) in acc_row.iter().enumerate() {
                // SAFETY: a full tile's 8 × 12 floats are inside C.
                unsafe { vst1q_f32(t.c.add(r * t.ldc + v * LANES), *x) };
            }
        }
        return;
    }
    for (acc_row, buf_row) in acc.iter().zip(buf.iter_mut()) {
        for (v, x) in acc_row.iter().enumerate() {
            // SAFETY: buf rows hold NR floats.
            unsafe { vst1q_f32(buf_row.as_mut_ptr().add(v * LANES), *x) };
        }
    }
    for (r, buf_row) in buf.iter().enumerate().take(t.rows) {
        // SAFETY: the tile's rows × cols are inside C; nothing else references them.
        let c_row = unsafe { std::slice::from_raw_parts_mut(t.c.add(r * t.ldc), t.cols) };
        match &t.epi {
            None => c_row.copy_from_slice(&buf_row[..t.cols]),
            Some(e) => {
                // SAFETY: bias holds `rows` floats from the tile's first row.
                let bias = if e.bias.is_null() { None } else { Some(unsafe { *e.bias.add(r) }) };
                for (j, (out, &x)) in c_row.iter_mut().zip(buf_row).enumerate() {
                    let mut v = x;
                    if let Some(b) = bias {
                        v += b;
                    }
                    if !e.res.is_null() {
                        // SAFETY: the residual covers the tile's rows × cols.
                        v += unsafe { *e.res.add(r * e.ldr + j) };
                    }
                    *out = e.act.apply(v);
                }
            }
        }
    }
}

/// The K loop, out of line so `acc` stays in registers (see the AVX-512 kernel).
#[target_feature(enable = "neon")]
#[inline(never)]
unsafe fn accumulate(
    mut a: *const f32,
    mut b: *const f32,
    kc: usize,
    init: &[[float32x4_t; NV]; MR],
) -> [[float32x4_t; NV]; MR] {
    let mut acc = *init;
    for _ in 0..kc {
        // SAFETY: each k step holds MR A floats and NR B floats.
        let (a0, a1, b0, b1, b2) =
            unsafe { (vld1q_f32(a), vld1q_f32(a.add(4)), vld1q_f32(b), vld1q_f32(b.add(4)), vld1q_f32(b.add(8))) };
        macro_rules! row {
            ($r:expr, $a:ident, $lane:expr) => {
                acc[$r][0] = vfmaq_laneq_f32::<$lane>(acc[$r][0], b0, $a);
                acc[$r][1] = vfmaq_laneq_f32::<$lane>(acc[$r][1], b1, $a);
                acc[$r][2] = vfmaq_laneq_f32::<$lane>(acc[$r][2], b2, $a);
            };
        }
        row!(0, a0, 0);
        row!(1, a0, 1);
        row!(2, a0, 2);
        row!(3, a0, 3);
        row!(4, a1, 0);
        row!(5, a1, 1);
        row!(6, a1, 2);
        row!(7, a1, 3);
        // SAFETY: stepping within (or one past) the panels.
        unsafe {
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    acc
}
