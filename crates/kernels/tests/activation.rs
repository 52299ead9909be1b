//! Activations and softmax: every tier against f64 references computed here, against
//! the scalar tier, and on the special values of the IR's reference formulas.

#[macro_use]
mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_kernels::activation::{apply, softmax_row, Unary};
use sinter_kernels::{Isa, KernelTable};

const ALL: [Unary; 5] = [Unary::Sigmoid, Unary::Silu, Unary::Tanh, Unary::GeluErf, Unary::GeluTanh];
const TINY: f64 = f32::MIN_POSITIVE as f64;

/// erfc in f64 to ~1e-15 relative: `1 − erf` from the positive series
/// `erf(z) = 2/√π·e^(−z²)·Σ 2ⁿz^(2n+1)/(1·3···(2n+1))` below 2 (erfc ≥ 0.0047 there, so
/// the subtraction loses < 3 digits), the continued fraction
/// `erfc(z) = e^(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …))))` above.
fn erfc(z: f64) -> f64 {
    assert!(z >= 0.0);
    let k = (-z * z).exp() / std::f64::consts::PI.sqrt();
    if z < 2.0 {
        let (mut term, mut sum) = (z, z);
        for n in 1..200 {
            term *= 2.0 * z * z / (2 * n + 1) as f64;
            sum += term;
        }
        1.0 - 2.0 * k * sum
    } else {
        // Evaluated backwards from a deep enough tail.
        let mut f = z;
        for n in (1..400).rev() {
            f = z + (n as f64 / 2.0) / f;
        }
        k / f
    }
}

#[test]
fn test_erfc_matches_python() {
    // CPython 3.11 math.erfc (libm, ~1 ulp).
    let table = [
        (0.0, 1.0),
        (0.25, 0.7236736098317631),
        (0.5, 0.4795001221869535),
        (1.0, 0.15729920705028513),
        (1.5, 0.033894853524689274),
        (2.0, 0.004677734981047265),
        (2.5, 0.0004069520174449589),
        (3.0, 2.2090496998585438e-05),
        (4.0, 1.541725790028002e-08),
        (5.0, 1.5374597944280351e-12),
        (6.5, 3.8421483271206475e-20),
        (8.0, 1.1224297172982928e-29),
        (9.5, 3.76921448565488e-41),
    ];
    for (z, want) in table {
        let got = erfc(z);
        assert!(((got - want) / want).abs() < 1e-13, "erfc({z}) = {got}, python {want}");
    }
}

/// The definitions in f64, in forms that do not cancel: `Φ(x) = erfc(−x/√2)/2` and
/// `0.5·x·(1+tanh(w)) = x/(1+e^−2w)` (mathematically equal to the IR's formulas).
fn reference(f: Unary, x: f64) -> f64 {
    match f {
        Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Unary::Silu => x / (1.0 + (-x).exp()),
        Unary::Tanh => x.tanh(),
        Unary::GeluErf => {
            let u = x.abs() / std::f64::consts::SQRT_2;
            x * if x >= 0.0 { 1.0 - 0.5 * erfc(u) } else { 0.5 * erfc(u) }
        }
        Unary::GeluTanh => {
            let w = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
            x / (1.0 + (-2.0 * w).exp())
        }
    }
}

/// Worst relative error allowed against [`reference`] (where the exact result is not
/// tiny, see [`close`]). Measured worst on [`inputs`], AVX2/AVX-512 and scalar tiers:
/// sigmoid 1.3e-7, SiLU 1.3e-7, tanh 1.2e-7, GeluErf 3.3e-7 (scalar 3.6e-7; the erfc
/// fit contributes 7e-8). GeluTanh computes `e^(−2w)` from `w` rounded to f32, so its
/// error grows as `|w|·ulp` while the result decays as `e^(−2|w|)`: 9.1e-7 (scalar
/// 1.1e-6) on |x| ≤ 4, 9.8e-6 (scalar 1.1e-5) at x ≈ −9.5 where the result is ~1e-33.
fn bound(f: Unary, x: f64) -> f64 {
    match f {
        Unary::Sigmoid | Unary::Silu | Unary::Tanh => 3e-7,
        Unary::GeluErf => 5e-7,
        Unary::GeluTanh => {
            let w = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
            3e-7 + 4e-7 * w.abs()
        }
    }
}

/// Dense samples of [−10, 10] (step 1/256), a grid over [−100, 100], random values,
/// tiny and zero values, and the points around the branch switches.
fn inputs() -> Vec<f32> {
    let mut v: Vec<f32> = (-2560..=2560).map(|i| i as f32 / 256.0).collect();
    v.extend((-2000..=2000).map(|i| i as f32 / 20.0));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    v.extend((0..4000).map(|_| rng.gen_range(-20.0f32..20.0)));
    v.extend((0..1000).map(|_| rng.gen_range(-1.0f32..1.0)));
    v.extend([1e-30, -1e-30, 1e-7, -1e-7, 0.0, -0.0, f32::MIN_POSITIVE, -f32::MIN_POSITIVE, 1e-42]);
    for c in [0.625f32, 44.36, 87.336, 88.72, 13.9, 14.0, 14.1] {
        for s in [1.0f32, -1.0] {
            let c = c * s;
            v.extend([c, f32::from_bits(c.to_bits() + 1), f32::from_bits(c.to_bits() - 1)]);
        }
    }
    v
}

fn close(f: Unary, x: f32, got: f32) -> Result<f64, String> {
    let want = reference(f, x as f64);
    let got = got as f64;
    // SiLU and GeluTanh divide by `1 + e^(..)`, which overflows (as in the reference's
    // f32 sigmoid) where the result is still ~1e-37 at most; GeluErf's exp flushes
    // where `|x|·t/2` times it is still up to ~2e-38.
    let tiny = if matches!(f, Unary::Silu | Unary::GeluTanh | Unary::GeluErf) { 3e-37 } else { TINY };
    if want.abs() < tiny {
        return if (got - want).abs() <= tiny { Ok(0.0) } else { Err(format!("{f:?}({x}) = {got}, want {want}")) };
    }
    let rel = ((got - want) / want).abs();
    if rel <= bound(f, x as f64) {
        Ok(rel)
    } else {
        Err(format!("{f:?}({x:e}) = {got:e}, want {want:e} (rel {rel:.2e})"))
    }
}

fn accuracy(tier: &KernelTable) {
    let xs = inputs();
    for f in ALL {
        let mut ys = xs.clone();
        apply(tier, f, &mut ys).unwrap();
        let (mut worst, mut worst_mid) = ((0.0f64, 0.0f32), 0.0f64);
        for (&x, &y) in xs.iter().zip(&ys) {
            match close(f, x, y) {
                Ok(rel) => {
                    if rel > worst.0 {
                        worst = (rel, x);
                    }
                    if x.abs() <= 4.0 {
                        worst_mid = worst_mid.max(rel);
                    }
                }
                Err(e) => panic!("{tier}: {e}"),
            }
        }
        println!("{tier} {f:?}: worst relative error {:.2e} at x = {} ({worst_mid:.2e} on |x| <= 4)", worst.0, worst.1);
    }
}

/// Exact results on special values, from the f64 formulas of the IR's reference:
/// `erf(±inf) = ±1`, so GeluErf(−inf) = 0.5·(−inf)·0 = NaN, likewise GeluTanh
/// (`tanh(−inf) = −1`) and SiLU (`−inf·sigmoid(−inf) = −inf·0`).
fn special_values(tier: &KernelTable) {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let cases: [(Unary, [f32; 5]); 5] = [
        // f(+inf), f(−inf), f(+0), f(−0), f(±100) pattern: see `xs` below.
        (Unary::Sigmoid, [1.0, 0.0, 0.5, 0.5, 1.0]),
        (Unary::Silu, [inf, nan, 0.0, -0.0, 100.0]),
        (Unary::Tanh, [1.0, -1.0, 0.0, -0.0, 1.0]),
        (Unary::GeluErf, [inf, nan, 0.0, -0.0, 100.0]),
        (Unary::GeluTanh, [inf, nan, 0.0, -0.0, 100.0]),
    ];
    let xs = [inf, -inf, 0.0, -0.0, 100.0];
    for (f, want) in cases {
        for n in [1, 5, 40] {
            // Values in every lane position, NaN included.
            let mut ys: Vec<f32> = (0..n).flat_map(|_| xs.iter().copied().chain([nan])).collect();
            apply(tier, f, &mut ys).unwrap();
            for (chunk_i, chunk) in ys.chunks(6).enumerate() {
                for (i, (&got, &w)) in chunk.iter().zip(want.iter().chain([&nan])).enumerate() {
                    let ok = if w.is_nan() { got.is_nan() } else { got.to_bits() == w.to_bits() };
                    assert!(
                        ok,
                        "{tier} {f:?}: x = {} gave {got}, want {w} (block {chunk_i})",
                        xs.get(i).unwrap_or(&nan)
                    );
                }
            }
        }
    }
    // Far tails: exact limits or values below f32's normal range.
    let mut ys = vec![-100.0f32, -1e30, 1e30, -50.0];
    apply(tier, Unary::GeluErf, &mut ys).unwrap();
    assert_eq!(ys[..3], [-0.0, -0.0, 1e30]);
    assert!(ys[3] <= 0.0 && ys[3] > -1e-38);
    let mut ys = vec![-100.0f32, 100.0, -1e30, 1e30];
    apply(tier, Unary::Sigmoid, &mut ys).unwrap();
    assert_eq!(ys, [0.0, 1.0, 0.0, 1.0]);
    let mut ys = vec![-1e30f32, 1e30, 30.0];
    apply(tier, Unary::Tanh, &mut ys).unwrap();
    assert_eq!(ys, [-1.0, 1.0, 1.0]);
}

/// `a` and `b` within `ulps` units in the last place (NaN only with NaN; both below the
/// normal range counts as equal, one may be flushed).
fn ulp_close(a: f32, b: f32, ulps: u32) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.abs() < f32::MIN_POSITIVE * 2.0 && b.abs() < f32::MIN_POSITIVE * 2.0 {
        return true;
    }
    let key = |v: f32| {
        let i = v.to_bits() as i32;
        if i < 0 {
            i32::MIN.wrapping_sub(i) as i64
        } else {
            i as i64
        }
    };
    (key(a) - key(b)).unsigned_abs() <= ulps as u64
}

/// Every length up to 70 and a few long ones (tails shorter than a block), each element
/// against the scalar tier: within 4 ulp (GeluTanh: plus `|2w|` ulp, see [`bound`]).
fn lengths(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let lens: Vec<usize> = (0..=70).chain([1000, 4099]).collect();
    for f in ALL {
        for &n in &lens {
            let xs: Vec<f32> = (0..n)
                .map(|i| match i % 7 {
                    0 => f32::NAN,
                    1 => rng.gen_range(-100.0..100.0),
                    _ => rng.gen_range(-10.0..10.0),
                })
                .collect();
            let (mut ys, mut want) = (xs.clone(), xs.clone());
            apply(tier, f, &mut ys).unwrap();
            apply(KernelTable::scalar(), f, &mut want).unwrap();
            for ((&x, &y), &w) in xs.iter().zip(&ys).zip(&want) {
                let ulps = match f {
                    Unary::GeluTanh => 4 + (6.0 * (x * (0.8 + 0.036 * x * x)).abs()) as u32,
                    Unary::GeluErf => 8,
                    _ => 4,
                };
                assert!(ulp_close(y, w, ulps), "{tier} {f:?} n={n}: f({x}) = {y}, scalar {w}");
                if !x.is_nan() {
                    close(f, x, y).unwrap_or_else(|e| panic!("{tier} n={n}: {e}"));
                }
            }
        }
    }
}

fn softmax_ref(x: &[f32]) -> Vec<f64> {
    let mut max = x[0] as f64;
    for &v in &x[1..] {
        if v as f64 > max || max.is_nan() {
            max = v as f64;
        }
    }
    let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
    x.iter().map(|&v| (v as f64 - max).exp() / sum).collect()
}

/// Against f64 softmax: relative error ≤ 4e-7, outputs below `f32::MIN_POSITIVE` may
/// flush. Measured worst: 1.6e-7 (scalar 1.7e-7) relative; sums within 6e-8 of 1.
fn softmax_accuracy(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (mut worst, mut worst_sum) = (0.0f64, 0.0f64);
    for n in (1..=70).chain([1000, 4099]) {
        for scale in [1.0f32, 10.0, 100.0] {
            let x: Vec<f32> = (0..n).map(|_| rng.gen_range(-scale..scale)).collect();
            let mut y = vec![0.0; n];
            softmax_row(tier, &x, &mut y).unwrap();
            let want = softmax_ref(&x);
            for (&yv, &w) in y.iter().zip(&want) {
                let (yv, tol) = (yv as f64, 4e-7);
                if w < TINY {
                    assert!((yv - w).abs() <= TINY, "{tier} n={n}: {yv} vs {w}");
                } else {
                    assert!(((yv - w) / w).abs() <= tol, "{tier} n={n} scale={scale}: {yv:e} vs {w:e}");
                    worst = worst.max(((yv - w) / w).abs());
                }
            }
            let sum: f64 = y.iter().map(|&v| v as f64).sum();
            worst_sum = worst_sum.max((sum - 1.0).abs());
            assert!((sum - 1.0).abs() <= 1e-6, "{tier} n={n}: sum {sum}");
            // The tier agrees with the scalar one.
            let mut s = vec![0.0; n];
            softmax_row(KernelTable::scalar(), &x, &mut s).unwrap();
            for (&a, &b) in y.iter().zip(&s) {
                let extra = (scale * 2.0) as u32;
                assert!(ulp_close(a, b, 4 + extra), "{tier} n={n}: {a} vs scalar {b}");
            }
        }
    }
    println!("{tier} softmax: worst relative error {worst:.2e}, |sum - 1| <= {worst_sum:.2e}");
}

fn softmax_special(tier: &KernelTable) {
    let run = |x: &[f32]| {
        let mut y = vec![0.0; x.len()];
        softmax_row(tier, x, &mut y).unwrap();
        y
    };
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    // A NaN anywhere (first, middle, tail lane), a +inf, or a row of only −inf: all NaN
    // (the reference's sum is NaN: exp(NaN), or exp(inf − inf), exp(−inf + inf)).
    for n in [1, 2, 17, 33, 100] {
        for pos in [0, n / 2, n - 1] {
            for bad in [nan, inf] {
                let mut x: Vec<f32> = (0..n).map(|i| i as f32 * 0.1).collect();
                x[pos] = bad;
                assert!(run(&x).iter().all(|v| v.is_nan()), "{tier} n={n} pos={pos} {bad}");
            }
        }
        assert!(run(&vec![-inf; n]).iter().all(|v| v.is_nan()), "{tier} n={n} all -inf");
    }
    // −inf entries get exactly 0; huge values do not overflow.
    assert_eq!(run(&[-inf, 0.0, -inf]), [0.0, 1.0, 0.0]);
    assert_eq!(run(&[3e38, 3e38, -3e38, 1.0]), [0.5, 0.5, 0.0, 0.0]);
    assert_eq!(run(&[1e30; 37]).iter().map(|&v| v as f64).sum::<f64>(), 37.0 * (1.0f32 / 37.0) as f64);
    // Length 1; a masked row (large negative scores flush to 0).
    assert_eq!(run(&[5.0]), [1.0]);
    assert_eq!(run(&[-1e30]), [1.0]);
    assert!(run(&[nan])[0].is_nan());
    let y = run(&[0.0, -10000.0, 1.0, -10000.0]);
    let e = (-1.0f64).exp();
    assert!((y[0] as f64 - e / (1.0 + e)).abs() < 1e-7 && y[1] == 0.0 && y[3] == 0.0);
}

fn errors(tier: &KernelTable) {
    let mut y = vec![0.0; 3];
    assert!(softmax_row(tier, &[], &mut []).is_err());
    assert!(softmax_row(tier, &[1.0, 2.0], &mut y).is_err());
    assert!(apply(tier, Unary::Tanh, &mut []).is_ok());
}

#[test]
fn unsupported_tier_is_an_error() {
    // A tier this CPU lacks has no table, so its kernels cannot be reached.
    for isa in [Isa::Avx2, Isa::Avx512, Isa::Neon].into_iter().filter(|i| !i.supported()) {
        assert!(KernelTable::for_isa(isa).is_err());
    }
}

per_tier! {
    accuracy => accuracy,
    special_values => special_values,
    lengths => lengths,
    softmax_accuracy => softmax_accuracy,
    softmax_special => softmax_special,
    errors => errors,
}
