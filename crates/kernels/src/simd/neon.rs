//! aarch64 NEON: 4 lanes of `float32x4_t`; tails through a stack copy. See [`super`] for the contract.

// The primitives predate `unsafe_op_in_unsafe_fn`: each `unsafe fn` is one or two
// intrinsics whose pointer contract is the function's (see the module docs).
#![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![allow(unused_unsafe)]

use std::arch::aarch64::*;

pub(crate) type V = float32x4_t;
pub(crate) const L: usize = 4;

#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn splat(v: f32) -> V {
    // SAFETY: register-only intrinsics (safe or not depending on the
    // std version); NEON is enabled on this function.
    unsafe { vdupq_n_f32(v) }
}
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn load(p: *const f32) -> V {
    vld1q_f32(p)
}
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn store(p: *mut f32, v: V) {
    vst1q_f32(p, v)
}
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn store_n(p: *mut f32, v: V, n: usize) {
    let mut tmp = [0.0f32; L];
    vst1q_f32(tmp.as_mut_ptr(), v);
    std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, n.min(L));
}
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn fmadd(a: V, b: V, c: V) -> V {
    // SAFETY: register-only intrinsics (safe or not depending on the
    // std version); NEON is enabled on this function.
    unsafe { vfmaq_f32(c, a, b) }
}
/// `x > m ? x : m` (FMAX would propagate NaN, the reference ignores it).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn vmax(x: V, m: V) -> V {
    // SAFETY: register-only intrinsics (safe or not depending on the
    // std version); NEON is enabled on this function.
    unsafe { vbslq_f32(vcgtq_f32(x, m), x, m) }
}
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn vadd(a: V, b: V) -> V {
    // SAFETY: register-only intrinsics (safe or not depending on the
    // std version); NEON is enabled on this function.
    unsafe { vaddq_f32(a, b) }
}
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn mul(a: V, b: V) -> V {
    // SAFETY: register-only intrinsics (safe or not depending on the
    // std version); NEON is enabled on this function.
    unsafe { vmulq_f32(a, b) }
}
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn div_or_zero(a: V, d: V) -> V {
    // SAFETY: register-only intrinsics (safe or not depending on the
    // std version); NEON is enabled on this function.
    unsafe {
        let zero = vdupq_n_f32(0.0);
        vbslq_f32(vceqq_f32(d, zero), zero, vdivq_f32(a, d))
    }
}
/// `x < 0 ? 0 : x` (NaN stays; and -0.0 stays, unlike FMAX).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn relu(x: V) -> V {
    // SAFETY: register-only intrinsics (safe or not depending on the
    // std version); NEON is enabled on this function.
    unsafe {
        let zero = vdupq_n_f32(0.0);
        vbslq_f32(vcltq_f32(x, zero), zero, x)
    }
}
/// `x < lo ? lo : x > hi ? hi : x`, as `Activation::apply` (NaN stays).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn clip(x: V, lo: V, hi: V) -> V {
    // SAFETY: register-only intrinsics (safe or not depending on the
    // std version); NEON is enabled on this function.
    unsafe {
        let t = vbslq_f32(vcgtq_f32(x, hi), hi, x);
        vbslq_f32(vcltq_f32(x, lo), lo, t)
    }
}
/// `d[t] = s[2t]`.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn gather2(s: &[f32], d: &mut [f32]) {
    let mut t = 0;
    while t + L <= d.len() && 2 * (t + L) <= s.len() {
        // SAFETY: loads s[2t .. 2t + 8] and stores d[t .. t + 4], both in bounds by
        // the loop condition.
        unsafe {
            let pair = vld2q_f32(s.as_ptr().add(2 * t));
            vst1q_f32(d.as_mut_ptr().add(t), pair.0);
        }
        t += L;
    }
    for (v, &x) in d[t..].iter_mut().zip(s[2 * t..].iter().step_by(2)) {
        *v = x;
    }
}
