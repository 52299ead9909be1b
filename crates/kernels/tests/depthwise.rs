//! Depthwise convolution: every tier against a naive f64 reference written here.

#[macro_use]
mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_kernels::depthwise::{depthwise_conv2d, depthwise_conv2d_channels, scratch_floats, DwGeom};
use sinter_kernels::{Activation, Isa, KernelTable};

/// One test case: sizes and attributes (pads are `[top, left, bottom, right]`).
#[derive(Clone, Copy, Debug)]
struct Case {
    h: usize,
    w: usize,
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    pads: [usize; 4],
}

impl Case {
    /// ONNX output size (floor mode); `None` when the window does not fit.
    fn out(&self) -> Option<[usize; 2]> {
        let o = |n: usize, pb: usize, pe: usize, k: usize, s: usize, d: usize| {
            let ext = n + pb + pe;
            let dk = (k - 1) * d + 1;
            (ext >= dk).then(|| (ext - dk) / s + 1)
        };
        Some([
            o(self.h, self.pads[0], self.pads[2], self.k[0], self.s[0], self.d[0])?,
            o(self.w, self.pads[1], self.pads[3], self.k[1], self.s[1], self.d[1])?,
        ])
    }

    fn geom(&self) -> DwGeom {
        DwGeom::new([self.h, self.w], self.out().unwrap(), self.k, self.s, self.d, [self.pads[0], self.pads[1]])
            .unwrap()
    }
}

fn act_f64(act: Activation, v: f64) -> f64 {
    match act {
        Activation::None => v,
        Activation::Relu => {
            if v < 0.0 {
                0.0
            } else {
                v
            }
        }
        Activation::Clip { lo, hi } => {
            if v < lo as f64 {
                lo as f64
            } else if v > hi as f64 {
                hi as f64
            } else {
                v
            }
        }
    }
}

/// The definition: taps outside the input read zero padding. Returns the
/// values and, per output, the sum of |w·x| (the scale for the rounding tolerance).
fn reference(c: &Case, x: &[f32], w: &[f32], bias: f32, act: Activation) -> (Vec<f64>, Vec<f64>) {
    let [oh, ow] = c.out().unwrap();
    let (mut y, mut mag) = (Vec::new(), Vec::new());
    for oy in 0..oh as i64 {
        for ox in 0..ow as i64 {
            let (mut acc, mut m) = (bias as f64, (bias as f64).abs());
            for ky in 0..c.k[0] as i64 {
                for kx in 0..c.k[1] as i64 {
                    let iy = oy * c.s[0] as i64 + ky * c.d[0] as i64 - c.pads[0] as i64;
                    let ix = ox * c.s[1] as i64 + kx * c.d[1] as i64 - c.pads[1] as i64;
                    let wv = w[(ky * c.k[1] as i64 + kx) as usize] as f64;
                    if iy < 0 || ix < 0 || iy >= c.h as i64 || ix >= c.w as i64 {
                        acc += wv * 0.0; // zero padding: NaN for a non-finite weight
                        continue;
                    }
                    let p = wv * x[(iy * c.w as i64 + ix) as usize] as f64;
                    acc += p;
                    m += p.abs();
                }
            }
            y.push(act_f64(act, acc));
            mag.push(m);
        }
    }
    (y, mag)
}

fn check(tier: &KernelTable, c: &Case, x: &[f32], w: &[f32], bias: f32, act: Activation) {
    let g = c.geom();
    let [oh, ow] = c.out().unwrap();
    let mut y = vec![f32::from_bits(0x7fc0_1234); oh * ow]; // garbage that is not a result
                                                            // Scratch full of garbage too: the kernel must not depend on its contents.
    let mut scratch = vec![f32::NAN; scratch_floats(&g) + 3];
    depthwise_conv2d(tier, &g, x, w, bias, act, &mut y, &mut scratch).unwrap();
    assert_matches(tier, c, act, &y, x, w, bias);
}

/// `y` against the f64 reference of one plane.
fn assert_matches(tier: &KernelTable, c: &Case, act: Activation, y: &[f32], x: &[f32], w: &[f32], bias: f32) {
    let ow = c.out().unwrap()[1];
    let (want, mag) = reference(c, x, w, bias, act);
    assert_eq!(y.len(), want.len());
    for (i, ((&got, &want), &mag)) in y.iter().zip(&want).zip(&mag).enumerate() {
        let ok = if want.is_nan() {
            got.is_nan()
        } else if want.is_infinite() {
            got as f64 == want
        } else {
            (got as f64 - want).abs() <= 1e-5 * mag + 1e-6
        };
        assert!(ok, "{tier} {c:?} {act:?}: output {i} (row {}, col {}) = {got}, expected {want}", i / ow, i % ow);
    }
}

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

/// Odd widths, all strides 1..3, pads, dilation 2, several kernels.
fn sizes_battery(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut n = 0;
    let widths: Vec<usize> = (1..=20).chain([33, 47]).collect();
    for (i, &w) in widths.iter().enumerate() {
        let h = [1, 2, 3, 5, 8, 9, 13][i % 7];
        for k in [[1, 1], [3, 3], [5, 5], [3, 1], [1, 3], [2, 4]] {
            for s in [[1, 1], [2, 2], [3, 3], [1, 2], [2, 1]] {
                for d in [[1, 1], [2, 2], [1, 2]] {
                    for pads in [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [0, 1, 2, 0], [2, 0, 1, 3]] {
                        let c = Case { h, w, k, s, d, pads };
                        if c.out().is_none() {
                            continue;
                        }
                        let x = rand_vec(&mut rng, h * w);
                        let wt = rand_vec(&mut rng, k[0] * k[1]);
                        let act = [Activation::None, Activation::Relu, Activation::Clip { lo: -0.3, hi: 0.6 }][n % 3];
                        check(tier, &c, &x, &wt, rng.gen_range(-1.0..1.0), act);
                        n += 1;
                    }
                }
            }
        }
    }
    assert!(n > 3000, "only {n} cases");
}

/// MobileNet / PP-OCR shapes, including wide rows (the multi-vector blocks).
fn model_shapes(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for (hw, k, s, p) in [
        (112, 3, 1, 1),
        (112, 3, 2, 1),
        (56, 3, 2, 1),
        (28, 3, 1, 1),
        (14, 5, 1, 2),
        (7, 3, 1, 1),
        (80, 5, 2, 2),
        (160, 3, 1, 1),
    ] {
        let c = Case { h: hw, w: hw + 3, k: [k, k], s: [s, s], d: [1, 1], pads: [p; 4] };
        let x = rand_vec(&mut rng, c.h * c.w);
        let wt = rand_vec(&mut rng, k * k);
        check(tier, &c, &x, &wt, 0.25, Activation::Clip { lo: 0.0, hi: 6.0 });
    }
}

/// Larger outputs than the input implies (ceil mode, big trailing pads) and 1-pixel planes.
fn odd_outputs(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for c in [
        Case { h: 1, w: 1, k: [3, 3], s: [1, 1], d: [1, 1], pads: [1, 1, 1, 1] },
        Case { h: 1, w: 1, k: [1, 1], s: [3, 3], d: [1, 1], pads: [0, 0, 0, 0] },
        Case { h: 4, w: 6, k: [3, 3], s: [2, 2], d: [1, 1], pads: [0, 0, 5, 7] },
        Case { h: 3, w: 17, k: [1, 5], s: [1, 4], d: [3, 3], pads: [0, 6, 0, 9] },
        Case { h: 6, w: 40, k: [7, 7], s: [1, 1], d: [1, 1], pads: [3, 3, 3, 3] },
    ] {
        let x = rand_vec(&mut rng, c.h * c.w);
        let wt = rand_vec(&mut rng, c.k[0] * c.k[1]);
        check(tier, &c, &x, &wt, -0.5, Activation::None);
        check(tier, &c, &x, &wt, -0.5, Activation::Relu);
    }
}

/// NaN and infinities in the input propagate as in the definition; activations keep NaN.
fn non_finite(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    for (hw, s) in [(9, 1), (20, 2), (33, 1), (5, 3)] {
        let c = Case { h: hw, w: hw, k: [3, 3], s: [s, s], d: [1, 1], pads: [1; 4] };
        let mut x = rand_vec(&mut rng, hw * hw);
        x[hw + 1] = f32::NAN;
        x[2 * hw + 4] = f32::INFINITY;
        x[hw * hw - 1] = f32::NEG_INFINITY;
        x[hw * hw - 3] = f32::INFINITY;
        x[hw * hw - 2] = f32::NEG_INFINITY; // inf - inf windows give NaN
        let wt = rand_vec(&mut rng, 9);
        for act in [Activation::None, Activation::Relu, Activation::Clip { lo: -1.0, hi: 1.0 }] {
            check(tier, &c, &x, &wt, 0.0, act);
        }
    }
}

/// Non-finite weights: padding taps give `w·0` (NaN for ±inf), as ONNX's zero padding.
fn non_finite_weights(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (hw, s, p) in [(6, 1, 1), (19, 2, 1), (7, 1, 0)] {
        let c = Case { h: hw, w: hw + 2, k: [3, 3], s: [s, s], d: [1, 1], pads: [p; 4] };
        let x = rand_vec(&mut rng, c.h * c.w);
        for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let mut wt = rand_vec(&mut rng, 9);
            wt[0] = bad;
            check(tier, &c, &x, &wt, 0.5, Activation::None);
            check(tier, &c, &x, &wt, 0.5, Activation::Relu);
        }
    }
}

/// Wrong slice sizes are errors, not panics.
fn bad_sizes(tier: &KernelTable) {
    let g = DwGeom::new([5, 6], [5, 6], [3, 3], [1, 1], [1, 1], [1, 1]).unwrap();
    let (x, w, mut y) = (vec![0.0; 30], vec![0.0; 9], vec![0.0; 30]);
    let mut scratch = vec![0.0; scratch_floats(&g)];
    let act = Activation::None;
    assert!(depthwise_conv2d(tier, &g, &x[..29], &w, 0.0, act, &mut y, &mut scratch).is_err());
    assert!(depthwise_conv2d(tier, &g, &x, &w[..8], 0.0, act, &mut y, &mut scratch).is_err());
    assert!(depthwise_conv2d(tier, &g, &x, &w, 0.0, act, &mut y[..29], &mut scratch).is_err());
    if tier.isa() != Isa::Scalar {
        let n = scratch.len() - 1;
        assert!(depthwise_conv2d(tier, &g, &x, &w, 0.0, act, &mut y, &mut scratch[..n]).is_err());
    }
    assert!(depthwise_conv2d(tier, &g, &x, &w, 0.0, act, &mut y, &mut scratch).is_ok());
}

/// The multi-channel entry point: each channel as the f64 reference of its plane, with
/// and without bias, on shapes of the row-ring path and of the window engine.
fn channels(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let cases = [
        Case { h: 7, w: 7, k: [3, 3], s: [1, 1], d: [1, 1], pads: [1; 4] },
        Case { h: 14, w: 17, k: [3, 3], s: [1, 1], d: [1, 1], pads: [1; 4] },
        Case { h: 30, w: 37, k: [3, 3], s: [1, 1], d: [1, 1], pads: [1; 4] },
        Case { h: 9, w: 40, k: [3, 3], s: [2, 2], d: [1, 1], pads: [1; 4] },
        Case { h: 21, w: 20, k: [5, 5], s: [2, 2], d: [1, 1], pads: [2; 4] },
        Case { h: 11, w: 12, k: [5, 5], s: [1, 1], d: [1, 1], pads: [2, 2, 0, 1] },
        Case { h: 1, w: 1, k: [3, 3], s: [1, 1], d: [1, 1], pads: [1; 4] },
        Case { h: 9, w: 10, k: [2, 4], s: [1, 2], d: [2, 1], pads: [1, 2, 0, 1] },
        Case { h: 8, w: 8, k: [3, 3], s: [3, 3], d: [1, 1], pads: [1; 4] },
    ];
    for (n, c) in cases.iter().enumerate() {
        let g = c.geom();
        let [oh, ow] = c.out().unwrap();
        let (plane, out, taps, chans) = (c.h * c.w, oh * ow, c.k[0] * c.k[1], 5);
        let mut x = rand_vec(&mut rng, chans * plane);
        let at = (n * 7) % x.len();
        x[at] = f32::NAN;
        let mut wt = rand_vec(&mut rng, chans * taps);
        wt[taps] = f32::INFINITY; // channel 1: padding taps give NaN
        let bias = rand_vec(&mut rng, chans);
        let act = [Activation::None, Activation::Relu, Activation::Clip { lo: 0.0, hi: 0.5 }][n % 3];
        for with_bias in [true, false] {
            let mut y = vec![f32::from_bits(0x7fc0_1234); chans * out];
            let mut scratch = vec![f32::NAN; scratch_floats(&g)];
            let b = with_bias.then_some(&bias[..]);
            depthwise_conv2d_channels(tier, &g, chans, &x, &wt, b, act, &mut y, &mut scratch).unwrap();
            for i in 0..chans {
                let bi = if with_bias { bias[i] } else { 0.0 };
                let (xc, wc) = (&x[i * plane..][..plane], &wt[i * taps..][..taps]);
                assert_matches(tier, c, act, &y[i * out..][..out], xc, wc, bi);
            }
        }
    }
    // Wrong sizes are errors; zero channels is fine.
    let c = cases[0];
    let g = c.geom();
    let (x, w, b, mut y) = (vec![0.0; 2 * 49], vec![0.0; 18], vec![0.0; 2], vec![0.0; 2 * 49]);
    let mut scratch = vec![0.0; scratch_floats(&g)];
    let act = Activation::None;
    assert!(depthwise_conv2d_channels(tier, &g, 2, &x, &w, Some(&b), act, &mut y, &mut scratch).is_ok());
    assert!(depthwise_conv2d_channels(tier, &g, 2, &x[1..], &w, Some(&b), act, &mut y, &mut scratch).is_err());
    assert!(depthwise_conv2d_channels(tier, &g, 2, &x, &w[1..], Some(&b), act, &mut y, &mut scratch).is_err());
    assert!(depthwise_conv2d_channels(tier, &g, 2, &x, &w, Some(&b[1..]), act, &mut y, &mut scratch).is_err());
    assert!(depthwise_conv2d_channels(tier, &g, 2, &x, &w, Some(&b), act, &mut y[1..], &mut scratch).is_err());
    assert!(depthwise_conv2d_channels(tier, &g, 3, &x, &w, Some(&b), act, &mut y, &mut scratch).is_err());
    assert!(depthwise_conv2d_channels(tier, &g, usize::MAX, &x, &w, None, act, &mut y, &mut scratch).is_err());
    assert!(depthwise_conv2d_channels(tier, &g, 0, &[], &[], None, act, &mut [], &mut scratch).is_ok());
    if tier.isa() != Isa::Scalar {
        let n = scratch.len() - 1;
        assert!(depthwise_conv2d_channels(tier, &g, 2, &x, &w, Some(&b), act, &mut y, &mut scratch[..n]).is_err());
    }
}

#[test]
fn geometry_is_validated() {
    assert!(DwGeom::new([5, 5], [5, 5], [0, 3], [1, 1], [1, 1], [1, 1]).is_err());
    assert!(DwGeom::new([5, 5], [5, 5], [3, 3], [1, 0], [1, 1], [1, 1]).is_err());
    assert!(DwGeom::new([5, 5], [5, 5], [3, 3], [1, 1], [0, 1], [1, 1]).is_err());
    assert!(DwGeom::new([5, 5], [usize::MAX / 2, 5], [3, 3], [4, 1], [1, 1], [1, 1]).is_err());
    assert!(DwGeom::new([usize::MAX, 3], [5, 5], [3, 3], [1, 1], [1, 1], [1, 1]).is_err());
    assert!(DwGeom::new([5, 5], [5, 5], [3, usize::MAX], [1, 1], [1, 1], [1, 1]).is_err());
    // Empty outputs are fine and write nothing.
    let g = DwGeom::new([0, 0], [0, 4], [3, 3], [1, 1], [1, 1], [1, 1]).unwrap();
    for tier in KernelTable::available() {
        let mut scratch = vec![0.0; scratch_floats(&g)];
        depthwise_conv2d(tier, &g, &[], &[0.0; 9], 0.0, Activation::None, &mut [], &mut scratch).unwrap();
    }
}

#[test]
fn unsupported_tier_is_an_error() {
    // A tier this CPU lacks has no table, so its kernels cannot be reached.
    for isa in [Isa::Avx2, Isa::Avx512, Isa::Neon].into_iter().filter(|i| !i.supported()) {
        assert!(KernelTable::for_isa(isa).is_err());
    }
}

// The same battery for every tier; tiers this CPU lacks are reported and skipped.
per_tier! {
    sizes => sizes_battery,
    models => model_shapes,
    odd => odd_outputs,
    nan_inf => non_finite,
    nan_inf_weights => non_finite_weights,
    errors => bad_sizes,
    channels => channels,
}
