//! x86_64 AVX2 + FMA: 8 lanes of `__m256`; tails by `maskload`/`maskstore`. See [`super`] for the contract.

// The primitives predate `unsafe_op_in_unsafe_fn`: each `unsafe fn` is one or two
// intrinsics whose pointer contract is the function's (see the module docs).
#![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

use std::arch::x86_64::*;

pub(crate) type V = __m256;
pub(crate) const L: usize = 8;

#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn splat(v: f32) -> V {
    _mm256_set1_ps(v)
}
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn load(p: *const f32) -> V {
    _mm256_loadu_ps(p)
}
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn store(p: *mut f32, v: V) {
    _mm256_storeu_ps(p, v)
}
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn store_n(p: *mut f32, v: V, n: usize) {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes);
    _mm256_maskstore_ps(p, mask, v)
}
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn fmadd(a: V, b: V, c: V) -> V {
    _mm256_fmadd_ps(a, b, c)
}
/// `x > m ? x : m`, which is exactly what MAXPS computes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn vmax(x: V, m: V) -> V {
    _mm256_max_ps(x, m)
}
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn vadd(a: V, b: V) -> V {
    _mm256_add_ps(a, b)
}
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn mul(a: V, b: V) -> V {
    _mm256_mul_ps(a, b)
}
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn div_or_zero(a: V, d: V) -> V {
    let nz = _mm256_cmp_ps::<_CMP_NEQ_UQ>(d, _mm256_setzero_ps());
    _mm256_and_ps(_mm256_div_ps(a, d), nz)
}
/// `x < 0 ? 0 : x` (NaN stays): MAXPS returns its second operand unless the first
/// is greater.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn relu(x: V) -> V {
    _mm256_max_ps(_mm256_setzero_ps(), x)
}
/// `x < lo ? lo : x > hi ? hi : x`, as `Activation::apply` (NaN stays).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn clip(x: V, lo: V, hi: V) -> V {
    let t = _mm256_min_ps(hi, x); // hi < x ? hi : x
    _mm256_blendv_ps(t, lo, _mm256_cmp_ps::<_CMP_LT_OQ>(x, lo))
}
/// `d[t] = s[2t]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn gather2(s: &[f32], d: &mut [f32]) {
    let mut t = 0;
    while t + L <= d.len() && 2 * (t + L) <= s.len() {
        // SAFETY: loads s[2t .. 2t + 16] and stores d[t .. t + 8], both in bounds
        // by the loop condition.
        unsafe {
            let a = _mm256_loadu_ps(s.as_ptr().add(2 * t));
            let b = _mm256_loadu_ps(s.as_ptr().add(2 * t + L));
            // [a0 a2 b0 b2 | a4 a6 b4 b6] -> [a0 a2 a4 a6 b0 b2 b4 b6]
            let e = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
            let e = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(e)));
            _mm256_storeu_ps(d.as_mut_ptr().add(t), e);
        }
        t += L;
    }
    for (v, &x) in d[t..].iter_mut().zip(s[2 * t..].iter().step_by(2)) {
        *v = x;
    }
}

/// The row-independent part of [`split2`]: `full` whole vectors, then scalar
/// tails up to `ne` even and `no` odd outputs.
pub(crate) struct Split2 {
    full: usize,
    ne: usize,
    no: usize,
}

/// Plans `e[u] = s[2u]` for `u < ne`, `o[u] = s[2u + 1]` for `u < no` over rows of
/// `n` floats, where `no <= ne <= ceil(n / 2)` and `no <= n / 2`.
pub(crate) fn split2_plan(n: usize, ne: usize, no: usize) -> Split2 {
    Split2 { full: (no / L).min(n / (2 * L)), ne, no }
}

/// Runs `plan` on one row: `s` is valid for the plan's `n` floats, `e` and `o`
/// for its `ne` and `no`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn split2(plan: &Split2, s: *const f32, e: *mut f32, o: *mut f32) {
    for i in 0..plan.full {
        let u = i * L;
        let a = _mm256_loadu_ps(s.add(2 * u));
        let b = _mm256_loadu_ps(s.add(2 * u + L));
        // [a0 a2 b0 b2 | a4 a6 b4 b6] -> [a0 a2 a4 a6 b0 b2 b4 b6], odds alike.
        let ev = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        let od = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        let ev = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(ev)));
        let od = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(od)));
        _mm256_storeu_ps(e.add(u), ev);
        _mm256_storeu_ps(o.add(u), od);
    }
    for t in plan.full * L..plan.ne {
        *e.add(t) = *s.add(2 * t);
    }
    for t in plan.full * L..plan.no {
        *o.add(t) = *s.add(2 * t + 1);
    }
}

/// The row-independent part of [`copy_row`]: `full` whole vectors, then the
/// `n % L` floats left under `tail`'s mask (`rem` of them).
pub(crate) struct Copy1 {
    full: usize,
    rem: usize,
    tail: __m256i,
}

#[target_feature(enable = "avx2,fma")]
pub(crate) fn copy_plan(n: usize) -> Copy1 {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let rem = n % L;
    Copy1 { full: n / L, rem, tail: _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), lanes) }
}

/// Copies the plan's `n` floats from `s` to `d` (valid for them, not overlapping).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn copy_row(plan: &Copy1, s: *const f32, d: *mut f32) {
    let all = _mm256_set1_epi32(std::hint::black_box(-1));
    for i in 0..plan.full {
        // Stores under an opaque full mask: LLVM would turn plain ones into a
        // memcpy call, which costs more than the copy on rows this short.
        _mm256_maskstore_ps(d.add(i * L), all, _mm256_loadu_ps(s.add(i * L)));
    }
    if plan.rem != 0 {
        // The mask keeps both accesses within the `n` floats.
        let at = plan.full * L;
        let v = _mm256_maskload_ps(s.wrapping_add(at), plan.tail);
        _mm256_maskstore_ps(d.wrapping_add(at), plan.tail, v);
    }
}

/// The lanes of `p` set in `m`, zero elsewhere; only those lanes are accessed.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn load_masked(p: *const f32, m: u32) -> V {
    let bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let on = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(m as i32), bits), bits);
    _mm256_maskload_ps(p, on)
}
