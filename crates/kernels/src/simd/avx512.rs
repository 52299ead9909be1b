//! x86_64 AVX-512F: 16 lanes of `__m512`; tails by mask registers. See [`super`] for the contract.

// The primitives predate `unsafe_op_in_unsafe_fn`: each `unsafe fn` is one or two
// intrinsics whose pointer contract is the function's (see the module docs).
#![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

use std::arch::x86_64::*;

pub(crate) type V = __m512;
pub(crate) const L: usize = 16;

#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn splat(v: f32) -> V {
    _mm512_set1_ps(v)
}
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn load(p: *const f32) -> V {
    _mm512_loadu_ps(p)
}
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn store(p: *mut f32, v: V) {
    _mm512_storeu_ps(p, v)
}
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn store_n(p: *mut f32, v: V, n: usize) {
    _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, v)
}
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn fmadd(a: V, b: V, c: V) -> V {
    _mm512_fmadd_ps(a, b, c)
}
/// `x > m ? x : m`, which is exactly what MAXPS computes.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn vmax(x: V, m: V) -> V {
    _mm512_max_ps(x, m)
}
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn vadd(a: V, b: V) -> V {
    _mm512_add_ps(a, b)
}
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn mul(a: V, b: V) -> V {
    _mm512_mul_ps(a, b)
}
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn div_or_zero(a: V, d: V) -> V {
    let nz = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(d, _mm512_setzero_ps());
    _mm512_maskz_div_ps(nz, a, d)
}
/// `x < 0 ? 0 : x` (NaN stays): MAXPS returns its second operand unless the first
/// is greater.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn relu(x: V) -> V {
    _mm512_max_ps(_mm512_setzero_ps(), x)
}
/// `x < lo ? lo : x > hi ? hi : x`, as `Activation::apply` (NaN stays).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn clip(x: V, lo: V, hi: V) -> V {
    let t = _mm512_min_ps(hi, x); // hi < x ? hi : x
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, lo), t, lo)
}
/// `d[t] = s[2t]`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn gather2(s: &[f32], d: &mut [f32]) {
    let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let mut t = 0;
    while t + L <= d.len() && 2 * (t + L) <= s.len() {
        // SAFETY: loads s[2t .. 2t + 32] and stores d[t .. t + 16], both in bounds
        // by the loop condition.
        unsafe {
            let a = _mm512_loadu_ps(s.as_ptr().add(2 * t));
            let b = _mm512_loadu_ps(s.as_ptr().add(2 * t + L));
            _mm512_storeu_ps(d.as_mut_ptr().add(t), _mm512_permutex2var_ps(a, idx, b));
        }
        t += L;
    }
    let m = d.len() - t; // < 16 outputs left, reading s[2t .. 2t + 2m - 1]
    if m > 0 {
        let avail = (s.len() - 2 * t).min(2 * L);
        let ma = (((1u64 << avail.min(L)) - 1) & 0xffff) as u16;
        let mb = (((1u64 << avail.saturating_sub(L)) - 1) & 0xffff) as u16;
        // SAFETY: masked loads touch only s[2t .. 2t + avail] and the masked store
        // d[t .. t + m], all in bounds.
        unsafe {
            let a = _mm512_maskz_loadu_ps(ma, s.as_ptr().add(2 * t));
            let b = _mm512_maskz_loadu_ps(mb, s.as_ptr().add(2 * t + L).cast());
            let e = _mm512_permutex2var_ps(a, idx, b);
            _mm512_mask_storeu_ps(d.as_mut_ptr().add(t), ((1u32 << m) - 1) as u16, e);
        }
    }
}

/// The row-independent part of [`split2`] for rows of `n` floats: `full` whole
/// vectors, then (if `tail`) one masked step with masks for the two loads and the
/// two stores, computed once per plane instead of once per row.
pub(crate) struct Split2 {
    full: usize,
    tail: bool,
    masks: [u16; 4],
}

/// Plans `e[u] = s[2u]` for `u < ne`, `o[u] = s[2u + 1]` for `u < no` over rows of
/// `n` floats, where `no <= ne <= ceil(n / 2)`, `no <= n / 2` and `ne <= no + 1`
/// (the caller's bounds), so that one masked step covers what the whole vectors
/// leave (fewer than `L` odd outputs, or fewer than `2L` inputs).
pub(crate) fn split2_plan(n: usize, ne: usize, no: usize) -> Split2 {
    let mask = |k: usize| (((1u32 << k.min(L)) - 1) & 0xffff) as u16;
    let full = (no / L).min(n / (2 * L));
    let u = full * L;
    let avail = n - 2 * u;
    Split2 {
        full,
        tail: u < ne,
        masks: [mask(avail), mask(avail.saturating_sub(L)), mask(ne.saturating_sub(u)), mask(no.saturating_sub(u))],
    }
}

/// Runs `plan` on one row: `s` is valid for the plan's `n` floats, `e` and `o`
/// for its `ne` and `no`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn split2(plan: &Split2, s: *const f32, e: *mut f32, o: *mut f32) {
    let ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for i in 0..plan.full {
        let u = i * L;
        let a = _mm512_loadu_ps(s.add(2 * u));
        let b = _mm512_loadu_ps(s.add(2 * u + L));
        _mm512_storeu_ps(e.add(u), _mm512_permutex2var_ps(a, ie, b));
        _mm512_storeu_ps(o.add(u), _mm512_permutex2var_ps(a, io, b));
    }
    if plan.tail {
        // The masks keep the loads within s[2u .. n] and the stores within
        // e[u .. ne] and o[u .. no].
        let u = plan.full * L;
        let [ma, mb, me, mo] = plan.masks;
        let p = s.wrapping_add(2 * u);
        let a = _mm512_maskz_loadu_ps(ma, p);
        let b = _mm512_maskz_loadu_ps(mb, p.wrapping_add(L));
        _mm512_mask_storeu_ps(e.wrapping_add(u), me, _mm512_permutex2var_ps(a, ie, b));
        _mm512_mask_storeu_ps(o.wrapping_add(u), mo, _mm512_permutex2var_ps(a, io, b));
    }
}

/// The row-independent part of [`copy_row`]: `full` whole vectors, then `tail`
/// floats under a mask.
pub(crate) struct Copy1 {
    full: usize,
    tail: u16,
    /// All lanes, opaque to the optimizer (see `copy_row`).
    all: u16,
}

pub(crate) fn copy_plan(n: usize) -> Copy1 {
    Copy1 { full: n / L, tail: ((1u32 << (n % L)) - 1) as u16, all: std::hint::black_box(0xffff) }
}

/// Copies the plan's `n` floats from `s` to `d` (valid for them, not overlapping).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn copy_row(plan: &Copy1, s: *const f32, d: *mut f32) {
    for i in 0..plan.full {
        // Stores under an opaque full mask: LLVM would turn plain ones into a
        // memcpy call, which costs more than the copy on rows this short.
        _mm512_mask_storeu_ps(d.add(i * L), plan.all, _mm512_loadu_ps(s.add(i * L)));
    }
    if plan.tail != 0 {
        // The mask keeps both accesses within the `n` floats.
        let at = plan.full * L;
        let v = _mm512_maskz_loadu_ps(plan.tail, s.wrapping_add(at));
        _mm512_mask_storeu_ps(d.wrapping_add(at), plan.tail, v);
    }
}

/// The lanes of `p` set in `m`, zero elsewhere; only those lanes are accessed.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn load_masked(p: *const f32, m: u32) -> V {
    _mm512_maskz_loadu_ps(m as u16, p)
}
