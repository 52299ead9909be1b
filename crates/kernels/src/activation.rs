//! Element-wise activations (sigmoid, SiLU, tanh, both GELUs) and a softmax row, with
//! the semantics of the IR's references (`apply_unary_portable` in
//! `sinter_ir::ops::fused::epilogue`, the runtime's `LastAxisSoftmax`), up to rounding.
//!
//! Everything is built on one f32 `exp`, written here so it vectorizes (libm's does not):
//!
//! - Range reduction `x = n·ln2 + r`, `|r| ≤ ln2/2`: `n = round(x·log2e)` by adding
//!   `1.5·2²³`, which leaves `n` in the low mantissa bits (no float→int conversion);
//!   `ln2` is split Cody–Waite style into `LN2_HI` (9 significant bits, so `n·LN2_HI` is
//!   exact) and `LN2_LO`.
//! - `e^r ≈ 1 + r + r²·P(r)`, `P` of degree 5, a minimax fit of the relative error
//!   (Lawson's iteratively reweighted least squares in numpy; 1.2e-9 with the f32
//!   coefficients).
//! - `2ⁿ` as two factors `2^⌊n/2⌋ · 2^(n−⌊n/2⌋)` built from exponent bits, so `n = 128`
//!   (`x` just below `ln(f32::MAX)`) needs no special case.
//! - `x > ln(f32::MAX)` gives `+inf`, NaN stays NaN, and results below the smallest
//!   normal (`x < −87.34`) are flushed to 0 (as with FTZ): no subnormal arithmetic, whose
//!   micro-code assists are slow on some CPUs, e.g. for masked attention scores.
//!
//! The functions are written once, per element, over fixed blocks that LLVM vectorizes
//! (branches are selects; bit tricks are integer lane ops), and instantiated per tier
//! with its target features. The vector tiers fuse multiply-adds; the scalar reference
//! rounds each operation, so tiers differ by a few ulp at most.

use crate::error::{KernelError, Result};
use crate::tier::KernelTable;

/// Element-wise functions applied in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// `1/(1+e^−x)`.
    Sigmoid,
    /// `x·sigmoid(x)`.
    Silu,
    Tanh,
    /// `0.5·x·(1+erf(x/√2))`.
    GeluErf,
    /// `0.5·x·(1+tanh(√(2/π)·(x+0.044715x³)))`.
    GeluTanh,
}

/// Elements per block: two AVX-512 or four AVX2 registers, enough independent work per
/// iteration to hide the latency of the polynomial chains.
const BLOCK: usize = 32;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `1.5·2²³`: adding it rounds to an integer kept in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;
/// `355/512`: with `|n| < 2¹⁵`, `n·LN2_HI` is exact.
const LN2_HI: f32 = 355.0 / 512.0;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `ln(f32::MAX)` rounded up: above it `e^x` overflows.
const EXP_MAX: f32 = 88.722_84;
/// `ln(f32::MIN_POSITIVE)`: below it `e^x` is subnormal, flushed to 0.
const EXP_MIN: f32 = -87.336_55;
/// `P(r)` of `e^r ≈ 1 + r + r²·P(r)` on `|r| ≤ ln2/2`, low degree first.
const EXP_P: [f32; 6] = [0.5, 0.166_666_66, 0.041_666_28, 0.008_333_504, 0.001_394_576, 0.000_197_892_53];

/// Below this `|x|`, tanh uses its odd polynomial: `1 − 2/(e^{2|x|}+1)` cancels as
/// `|x| → 0`, and here it loses at most ~1 ulp to that.
const TANH_SMALL: f32 = 0.625;
/// `P` of `tanh(x) ≈ x + x³·P(x²)` on `|x| ≤ 0.625` (minimax relative fit, 2.7e-9).
const TANH_P: [f32; 6] = [-0.333_333_3, 0.133_332_06, -0.053_946_763, 0.021_700_703, -0.008_177_398, 0.002_142_961_1];

/// `√(2/π)` and `0.044715·√(2/π)` of the tanh GELU.
const GELU_K0: f32 = 0.797_884_6;
const GELU_K1: f32 = 0.035_677_407;
/// `1/(2√2)`: `t = 1/(1 + z/2)` with `z = |x|/√2`.
const ERFC_T: f32 = 0.353_553_38;
/// Beyond this `|x|`, `erfc(|x|/√2)/2 < 1e-43`: flushed (see the module doc).
const ERFC_CLAMP: f32 = 14.0;
/// `g(t)` of `erfc(z) ≈ t·e^(−z² + g(t))`, `t = 1/(1 + z/2)`, the form of the
/// Chebyshev-fitted `erfcc` of Numerical Recipes (§6.2), refitted here (minimax by
/// Lawson's algorithm against CPython's `math.erfc`) on `z ∈ [0, 10]` only, which is
/// all GELU needs: 7.1e-8 relative error with these f32 coefficients.
const ERFC_G: [f32; 10] = [
    -1.265_441_4,
    0.998_492_5,
    0.387_899_9,
    0.028_356_135,
    0.020_199_005,
    -0.116_793_49,
    -0.651_240_9,
    1.122_395,
    -0.666_060_45,
    0.142_193_75,
];

/// `a·b + c`, fused where the tier has FMA (one rounding) and as two operations in the
/// scalar reference (`mul_add` without hardware FMA would be a slow libm call).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn horner<const FMA: bool, const N: usize>(c: &[f32; N], x: f32) -> f32 {
    let mut acc = c[N - 1];
    for &ci in c[..N - 1].iter().rev() {
        acc = madd::<FMA>(acc, x, ci);
    }
    acc
}

/// `e^(hi + lo)` for a small correction `lo` (|lo| ≲ 2): `hi − n·LN2_HI` is exact when
/// `hi` is a short float (as `−a²/2` with a 12-bit `a` in [`gelu_erf`]), so the rounding
/// of `hi + lo`, whose ulp is ~1e-5 near ±87, does not reach the result.
#[inline(always)]
fn exp_parts<const FMA: bool>(hi: f32, lo: f32) -> f32 {
    let x = hi + lo;
    // Clamped so that the exponent bits below stay valid; the selects at the end give
    // the out-of-range results. `clamp` keeps NaN, which passes through.
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let t = madd::<FMA>(xc, LOG2E, ROUND_MAGIC);
    let nf = t - ROUND_MAGIC;
    // n in [-126, 128] (garbage for NaN, whose result is NaN regardless): wrapping ops.
    let n = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = madd::<FMA>(-nf, LN2_HI, hi) + lo;
    let r = madd::<FMA>(-nf, LN2_LO, r);
    let p = madd::<FMA>(r * r, horner::<FMA, 6>(&EXP_P, r), r) + 1.0;
    let n1 = n >> 1;
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n.wrapping_sub(n1).wrapping_add(127) as u32) << 23);
    let e = p * s1 * s2;
    if x > EXP_MAX {
        f32::INFINITY
    } else if x < EXP_MIN {
        0.0
    } else {
        e
    }
}

#[inline(always)]
fn exp<const FMA: bool>(x: f32) -> f32 {
    exp_parts::<FMA>(x, 0.0)
}

#[inline(always)]
fn sigmoid<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp::<FMA>(-x))
}

/// `x/(1+e^−x)`: `−inf` gives `−inf/inf` = NaN, as the reference's `−inf·0`.
#[inline(always)]
fn silu<const FMA: bool>(x: f32) -> f32 {
    x / (1.0 + exp::<FMA>(-x))
}

/// The odd polynomial near 0 (keeps −0.0 and relative accuracy for tiny `x`), else
/// `1 − 2/(e^{2|x|}+1)` with the sign of `x` (overflow of the exp gives exactly 1).
#[inline(always)]
fn tanh<const FMA: bool>(x: f32) -> f32 {
    let a = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    let a2 = a * a;
    let small = madd::<FMA>(a * a2, horner::<FMA, 6>(&TANH_P, a2), a);
    let big = 1.0 - 2.0 / (exp::<FMA>(a + a) + 1.0);
    let t = if a < TANH_SMALL { small } else { big };
    f32::from_bits(t.to_bits() | (x.to_bits() & 0x8000_0000))
}

/// `x·Φ(x)` with `Φ(x) = erfc(−x/√2)/2`: for `x < 0` directly `erfc(|x|/√2)/2`, for
/// `x ≥ 0` `1 − erfc(|x|/√2)/2`, so there is no cancellation on either side.
/// `erfc(z) = t·e^(−z² + g(t))` with `z² = x²/2` split exactly: `a = |x|` is cut to
/// 12 significant bits `ah` (so `ah²` is exact) and `x²/2 = ah²/2 + (a−ah)(a+ah)/2`.
/// Special values as the reference's f64 `0.5·x·(1+erf(x/√2))`: `+inf → +inf`,
/// `−inf → −inf·0 = NaN`, NaN → NaN, `±0 → ±0`.
#[inline(always)]
fn gelu_erf<const FMA: bool>(x: f32) -> f32 {
    let a = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    let a = if a > ERFC_CLAMP { ERFC_CLAMP } else { a };
    let t = 1.0 / madd::<FMA>(a, ERFC_T, 1.0);
    let ah = f32::from_bits(a.to_bits() & 0xffff_f000);
    let hi = -0.5 * (ah * ah);
    let lo = madd::<FMA>(-0.5 * (a - ah), a + ah, horner::<FMA, 10>(&ERFC_G, t));
    let e = exp_parts::<FMA>(hi, lo);
    let half_t = 0.5 * t;
    if x >= 0.0 {
        x * madd::<FMA>(-half_t, e, 1.0)
    } else {
        // `x·t/2` first: `t·e/2` alone would be subnormal near x = −13.
        (x * half_t) * e
    }
}

/// `0.5·x·(1+tanh(w))` rewritten as `x/(1+e^−2w)`, which does not cancel for `x < 0`.
/// `±inf` give `+inf` and NaN (`−inf/inf`), as the reference.
#[inline(always)]
fn gelu_tanh<const FMA: bool>(x: f32) -> f32 {
    let minus_2w = x * madd::<FMA>(x * x, -2.0 * GELU_K1, -2.0 * GELU_K0);
    x / (1.0 + exp::<FMA>(minus_2w))
}

/// One element-wise function, as a type so that its body is inlined (an `impl Fn`
/// argument may stay a call per element, which blocks vectorization).
trait Elementwise {
    fn f<const FMA: bool>(x: f32) -> f32;
}

macro_rules! elementwise {
    ($($name:ident => $fn:ident;)*) => {$(
        struct $name;
        impl Elementwise for $name {
            #[inline(always)]
            fn f<const FMA: bool>(x: f32) -> f32 {
                $fn::<FMA>(x)
            }
        }
    )*};
}

elementwise! {
    SigmoidFn => sigmoid;
    SiluFn => silu;
    TanhFn => tanh;
    GeluErfFn => gelu_erf;
    GeluTanhFn => gelu_tanh;
}

/// `E` over `xs` by blocks of fixed length (vectorized whole); the tail goes through a
/// padded block so it runs the same lane code.
#[inline(always)]
fn map_blocks<E: Elementwise, const FMA: bool>(xs: &mut [f32]) {
    let (blocks, tail) = xs.as_chunks_mut::<BLOCK>();
    for b in blocks {
        for v in b.iter_mut() {
            *v = E::f::<FMA>(*v);
        }
    }
    if !tail.is_empty() {
        let mut b = [0.0f32; BLOCK];
        b[..tail.len()].copy_from_slice(tail);
        for v in b.iter_mut() {
            *v = E::f::<FMA>(*v);
        }
        tail.copy_from_slice(&b[..tail.len()]);
    }
}

#[inline(always)]
fn apply_with<const FMA: bool>(f: Unary, xs: &mut [f32]) {
    match f {
        Unary::Sigmoid => map_blocks::<SigmoidFn, FMA>(xs),
        Unary::Silu => map_blocks::<SiluFn, FMA>(xs),
        Unary::Tanh => map_blocks::<TanhFn, FMA>(xs),
        Unary::GeluErf => map_blocks::<GeluErfFn, FMA>(xs),
        Unary::GeluTanh => map_blocks::<GeluTanhFn, FMA>(xs),
    }
}

/// `e^(x − m)` with the rounding error of `x − m` (Knuth's TwoSum) passed on as the
/// low part: a rounded difference near −20 is off by up to 1e-6 (relative, after exp);
/// the reference subtracts in f64. The error term is dropped where the difference is
/// not finite (or NaN), where it would be NaN itself.
#[inline(always)]
fn exp_diff<const FMA: bool>(x: f32, m: f32) -> f32 {
    let d = x - m;
    let mb = d - x;
    let err = (x - (d - mb)) + (-m - mb);
    let lo = if d > -f32::MAX { err } else { 0.0 };
    exp_parts::<FMA>(d, lo)
}

/// Three passes over the row: the maximum (lane-wise; NaN handling does not matter,
/// since a NaN anywhere makes the sum and so every output NaN, as in the reference),
/// `y = e^(x−max)` summed in f64 lanes (the sum's rounding stays far below the exps'),
/// and `y *= 1/sum`.
#[inline(always)]
fn softmax_with<const FMA: bool>(x: &[f32], y: &mut [f32]) {
    let (xb, xt) = x.as_chunks::<BLOCK>();
    let mut lanes = [f32::NEG_INFINITY; BLOCK];
    for b in xb {
        for (m, &v) in lanes.iter_mut().zip(b) {
            *m = if v > *m { v } else { *m };
        }
    }
    for (m, &v) in lanes.iter_mut().zip(xt) {
        *m = if v > *m { v } else { *m };
    }
    let max = lanes.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });

    let mut sums = [0.0f64; BLOCK];
    let (yb, yt) = y.as_chunks_mut::<BLOCK>();
    for (yb, xb) in yb.iter_mut().zip(xb) {
        // Two loops: fused, LLVM vectorizes the exps at the f64 sums' narrower width.
        for (d, &v) in yb.iter_mut().zip(xb) {
            *d = exp_diff::<FMA>(v, max);
        }
        for (s, &e) in sums.iter_mut().zip(yb.iter()) {
            *s += f64::from(e);
        }
    }
    if !xt.is_empty() {
        let mut b = [max; BLOCK];
        b[..xt.len()].copy_from_slice(xt);
        for v in b.iter_mut() {
            *v = exp_diff::<FMA>(*v, max);
        }
        for ((d, &e), s) in yt.iter_mut().zip(&b).zip(sums.iter_mut()) {
            *d = e;
            *s += f64::from(e);
        }
    }
    let mut n = BLOCK;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            sums[i] += sums[i + n];
        }
    }
    let inv = (1.0 / sums[0]) as f32;
    for v in y.iter_mut() {
        *v *= inv;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn apply_avx2(f: Unary, xs: &mut [f32]) {
    apply_with::<true>(f, xs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn apply_avx512(f: Unary, xs: &mut [f32]) {
    apply_with::<true>(f, xs)
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
pub(crate) fn apply_neon(f: Unary, xs: &mut [f32]) {
    apply_with::<true>(f, xs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn softmax_avx2(x: &[f32], y: &mut [f32]) {
    softmax_with::<true>(x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn softmax_avx512(x: &[f32], y: &mut [f32]) {
    softmax_with::<true>(x, y)
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
pub(crate) fn softmax_neon(x: &[f32], y: &mut [f32]) {
    softmax_with::<true>(x, y)
}

/// A tier's [`apply`].
///
/// # Safety
/// The CPU must support the tier the function belongs to.
pub(crate) type UnaryFn = unsafe fn(Unary, &mut [f32]);

/// A tier's [`softmax_row`] body (`x.len() == y.len() >= 1`).
///
/// # Safety
/// The CPU must support the tier the function belongs to.
pub(crate) type SoftmaxFn = unsafe fn(&[f32], &mut [f32]);

/// The scalar tier's [`apply`] (unfused multiply-adds).
pub(crate) fn apply_scalar(f: Unary, xs: &mut [f32]) {
    apply_with::<false>(f, xs)
}

/// The scalar tier's softmax row.
pub(crate) fn softmax_scalar(x: &[f32], y: &mut [f32]) {
    softmax_with::<false>(x, y)
}

/// Applies `f` to every element of `xs` in place with `tier`'s code.
pub fn apply(tier: &KernelTable, f: Unary, xs: &mut [f32]) -> Result<()> {
    // SAFETY: a `KernelTable` exists only for tiers this CPU supports.
    unsafe { (tier.unary)(f, xs) };
    Ok(())
}

/// `y = softmax(x)` over one row (`x.len() == y.len() >= 1`, else a Shape error): max,
/// `e^(x − max)` summed, scaled by `1/sum`. A NaN anywhere in the row, a `+inf`, or a
/// row of only `−inf` gives an all-NaN row, as the reference.
pub fn softmax_row(tier: &KernelTable, x: &[f32], y: &mut [f32]) -> Result<()> {
    if x.is_empty() || x.len() != y.len() {
        return Err(KernelError::Shape(format!(
            "softmax_row: x has {} elements and y {} (need equal, at least 1)",
            x.len(),
            y.len()
        )));
    }
    // SAFETY: a `KernelTable` exists only for tiers this CPU supports.
    unsafe { (tier.softmax)(x, y) };
    Ok(())
}
