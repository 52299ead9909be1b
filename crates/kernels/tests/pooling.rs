//! Pooling: every tier against a naive reference written here (the IR's semantics).

#[macro_use]
mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_kernels::pooling::{global_average_pool, global_max_pool, pool2d, pool_scratch_floats, PoolGeom, PoolKind};
use sinter_kernels::{Isa, KernelTable};

/// Sizes and attributes; pads `[top, left, bottom, right]`; `ceil` as ONNX ceil_mode.
#[derive(Clone, Copy, Debug)]
struct Case {
    h: usize,
    w: usize,
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    pads: [usize; 4],
    ceil: bool,
}

impl Case {
    /// ONNX output size; with ceil_mode, a window starting in the trailing padding is
    /// dropped.
    fn out(&self) -> Option<[usize; 2]> {
        let o = |n: usize, pb: usize, pe: usize, k: usize, s: usize, d: usize| {
            let ext = n + pb + pe;
            let dk = (k - 1) * d + 1;
            if ext < dk {
                return None;
            }
            let mut o = if self.ceil { (ext - dk).div_ceil(s) + 1 } else { (ext - dk) / s + 1 };
            if self.ceil && (o - 1) * s >= n + pb {
                o -= 1;
            }
            Some(o)
        };
        Some([
            o(self.h, self.pads[0], self.pads[2], self.k[0], self.s[0], self.d[0])?,
            o(self.w, self.pads[1], self.pads[3], self.k[1], self.s[1], self.d[1])?,
        ])
    }
}

/// The definition (as `sinter_ir`'s reference): taps inside the input; max from -inf
/// with `>`; average in f64 over the taps inside the input, or inside the padded input.
fn reference(c: &Case, kind: PoolKind, x: &[f32]) -> Vec<f64> {
    let [oh, ow] = c.out().unwrap();
    let mut y = Vec::new();
    for oy in 0..oh as i64 {
        for ox in 0..ow as i64 {
            let (mut m, mut sum, mut inside, mut padded) = (f32::NEG_INFINITY, 0.0f64, 0usize, 0usize);
            for ky in 0..c.k[0] as i64 {
                for kx in 0..c.k[1] as i64 {
                    let iy = oy * c.s[0] as i64 + ky * c.d[0] as i64 - c.pads[0] as i64;
                    let ix = ox * c.s[1] as i64 + kx * c.d[1] as i64 - c.pads[1] as i64;
                    let in_pad = iy >= -(c.pads[0] as i64)
                        && ix >= -(c.pads[1] as i64)
                        && iy < (c.h + c.pads[2]) as i64
                        && ix < (c.w + c.pads[3]) as i64;
                    padded += in_pad as usize;
                    if iy < 0 || ix < 0 || iy >= c.h as i64 || ix >= c.w as i64 {
                        continue;
                    }
                    let v = x[(iy * c.w as i64 + ix) as usize];
                    if v > m {
                        m = v;
                    }
                    sum += v as f64;
                    inside += 1;
                }
            }
            y.push(match kind {
                PoolKind::Max => m as f64,
                PoolKind::Avg { count_include_pad } => {
                    let n = if count_include_pad { padded } else { inside };
                    if n == 0 {
                        0.0
                    } else {
                        sum / n as f64
                    }
                }
            });
        }
    }
    y
}

fn check(tier: &KernelTable, c: &Case, kind: PoolKind, x: &[f32]) {
    let out = c.out().unwrap();
    let g = PoolGeom::new([c.h, c.w], out, c.k, c.s, c.d, c.pads).unwrap();
    let mut y = vec![f32::from_bits(0x7fc0_1234); out[0] * out[1]];
    let mut scratch = vec![f32::NAN; pool_scratch_floats(&g) + 5];
    pool2d(tier, kind, &g, x, &mut y, &mut scratch).unwrap();
    let want = reference(c, kind, x);
    for (i, (&got, &want)) in y.iter().zip(&want).enumerate() {
        let ok = match kind {
            // Max is exact (the same comparisons in the same order per lane).
            PoolKind::Max => got.to_bits() == (want as f32).to_bits() || (got.is_nan() && want.is_nan()),
            PoolKind::Avg { .. } if !want.is_finite() => {
                got.is_nan() == want.is_nan() && (want.is_nan() || got as f64 == want)
            }
            PoolKind::Avg { .. } => (got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0),
        };
        assert!(ok, "{tier} {kind:?} {c:?}: output {i} = {got}, expected {want}");
    }
}

fn kinds() -> [PoolKind; 3] {
    [PoolKind::Max, PoolKind::Avg { count_include_pad: false }, PoolKind::Avg { count_include_pad: true }]
}

fn sizes_battery(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut n = 0;
    let widths: Vec<usize> = (1..=20).chain([33, 47]).collect();
    for (i, &w) in widths.iter().enumerate() {
        let h = [1, 2, 3, 5, 8, 9, 13][i % 7];
        for k in [[1, 1], [2, 2], [3, 3], [5, 5], [3, 1]] {
            for s in [[1, 1], [2, 2], [3, 3], [1, 2]] {
                for d in [[1, 1], [2, 2]] {
                    for pads in [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [0, 1, 2, 0]] {
                        for ceil in [false, true] {
                            let c = Case { h, w, k, s, d, pads, ceil };
                            if c.out().is_none() {
                                continue;
                            }
                            let x: Vec<f32> = (0..h * w).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
                            for kind in kinds() {
                                check(tier, &c, kind, &x);
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(n > 5000, "only {n} cases");
}

/// Windows entirely in the padding (pads >= kernel), and all-negative planes (the
/// padding must not leak a 0 into max).
fn padding_only_windows(tier: &KernelTable) {
    for c in [
        Case { h: 2, w: 3, k: [2, 2], s: [1, 1], d: [1, 1], pads: [3, 3, 3, 3], ceil: false },
        Case { h: 4, w: 4, k: [3, 3], s: [2, 2], d: [1, 1], pads: [1, 1, 1, 1], ceil: true },
        Case { h: 1, w: 1, k: [3, 3], s: [1, 1], d: [1, 1], pads: [1, 1, 1, 1], ceil: false },
    ] {
        let x: Vec<f32> = (0..c.h * c.w).map(|i| -1.0 - i as f32).collect();
        for kind in kinds() {
            check(tier, &c, kind, &x);
        }
    }
}

/// NaN never wins a max (as the reference's `>`), and propagates through averages.
fn non_finite(tier: &KernelTable) {
    let c = Case { h: 6, w: 21, k: [3, 3], s: [2, 2], d: [1, 1], pads: [1, 1, 1, 1], ceil: true };
    let mut x: Vec<f32> = (0..c.h * c.w).map(|i| (i % 7) as f32 - 3.0).collect();
    x[0] = f32::NAN;
    x[22] = f32::INFINITY;
    x[40] = f32::NEG_INFINITY;
    x[41] = f32::INFINITY;
    x[100..103].fill(f32::NAN);
    x[110] = f32::NEG_INFINITY;
    for kind in kinds() {
        check(tier, &c, kind, &x);
    }
    // A window of only NaN gives -inf for max.
    let c = Case { h: 2, w: 2, k: [2, 2], s: [1, 1], d: [1, 1], pads: [0; 4], ceil: false };
    check(tier, &c, PoolKind::Max, &[f32::NAN; 4]);
}

fn global(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for n in [0, 1, 3, 15, 16, 17, 49, 63, 64, 65, 196, 1000, 3136] {
        let x: Vec<f32> = (0..n).map(|_| rng.gen_range(-2.0f32..3.0)).collect();
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n.max(1) as f64;
        let got = global_average_pool(tier, &x).unwrap() as f64;
        assert!((got - mean).abs() <= 1e-5 * mean.abs().max(1.0), "{tier} n={n}: mean {got}, expected {mean}");
        let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        assert_eq!(global_max_pool(tier, &x).unwrap(), max, "{tier} n={n}");
    }
    let mut x = vec![1.0f32; 100];
    x[7] = f32::NAN;
    assert!(global_average_pool(tier, &x).unwrap().is_nan());
    assert_eq!(global_max_pool(tier, &x).unwrap(), 1.0);
    x[50] = f32::INFINITY;
    assert_eq!(global_max_pool(tier, &x).unwrap(), f32::INFINITY);
    assert_eq!(global_max_pool(tier, &[f32::NAN; 70]).unwrap(), f32::NEG_INFINITY);
}

fn bad_sizes(tier: &KernelTable) {
    let g = PoolGeom::new([4, 5], [2, 2], [2, 2], [2, 2], [1, 1], [0; 4]).unwrap();
    let mut scratch = vec![0.0; pool_scratch_floats(&g)];
    let (x, mut y) = (vec![0.0; 20], vec![0.0; 4]);
    assert!(pool2d(tier, PoolKind::Max, &g, &x[..19], &mut y, &mut scratch).is_err());
    assert!(pool2d(tier, PoolKind::Max, &g, &x, &mut y[..3], &mut scratch).is_err());
    if tier.isa() != Isa::Scalar {
        let n = scratch.len() - 1;
        assert!(pool2d(tier, PoolKind::Max, &g, &x, &mut y, &mut scratch[..n]).is_err());
    }
    assert!(pool2d(tier, PoolKind::Avg { count_include_pad: true }, &g, &x, &mut y, &mut scratch).is_ok());
}

#[test]
fn geometry_is_validated() {
    assert!(PoolGeom::new([4, 4], [2, 2], [0, 2], [1, 1], [1, 1], [0; 4]).is_err());
    assert!(PoolGeom::new([4, 4], [2, 2], [2, 2], [1, 1], [1, 1], [0, 0, usize::MAX, 0]).is_err());
    let g = PoolGeom::new([4, 4], [2, 2], [2, 2], [1, 1], [1, 1], [1, 2, 3, 4]).unwrap();
    assert_eq!(g.pads(), [1, 2, 3, 4]);
}

#[test]
fn unsupported_tier_is_an_error() {
    // A tier this CPU lacks has no table, so its kernels cannot be reached.
    for isa in [Isa::Avx2, Isa::Avx512, Isa::Neon].into_iter().filter(|i| !i.supported()) {
        assert!(KernelTable::for_isa(isa).is_err());
    }
}

per_tier! {
    sizes => sizes_battery,
    padding => padding_only_windows,
    nan_inf => non_finite,
    global_pools => global,
    errors => bad_sizes,
}
