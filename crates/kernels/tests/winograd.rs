//! Winograd 3×3 convolution: every tier, both tile sizes, against a naive f64 direct
//! convolution written here (an independent definition: no transforms involved).

#[macro_use]
mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_kernels::winograd::{pack_weights, packed_weights_len, WinogradConv, WinogradTile};
use sinter_kernels::{Activation, Isa, KernelError, KernelTable, ThreadPool};
use sinter_kernels::{Epilogue, Matrix};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, Debug)]
struct Case {
    c: usize,
    m: usize,
    h: usize,
    w: usize,
    /// `[top, left, bottom, right]`.
    pads: [usize; 4],
}

impl Case {
    fn out(&self) -> (usize, usize) {
        (self.h + self.pads[0] + self.pads[2] - 2, self.w + self.pads[1] + self.pads[3] - 2)
    }
}

fn act_f64(act: Activation, v: f64) -> f64 {
    match act {
        Activation::None => v,
        Activation::Relu => v.max(0.0),
        Activation::Clip { lo, hi } => v.clamp(lo as f64, hi as f64),
    }
}

/// Direct cross-correlation in f64 (taps outside the input are zero). Returns the
/// value before the activation and the sum of absolute terms, which scales the
/// rounding error any f32 algorithm may make.
fn reference(case: Case, x: &[f32], wt: &[f32], bias: Option<&[f32]>, res: Option<&[f32]>) -> (Vec<f64>, Vec<f64>) {
    let Case { c, m, h, w, pads } = case;
    let (oh, ow) = case.out();
    let mut val = vec![0f64; m * oh * ow];
    let mut mag = vec![0f64; m * oh * ow];
    for mo in 0..m {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut s, mut a) = (0f64, 0f64);
                for ci in 0..c {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let iy = (oy + ky) as isize - pads[0] as isize;
                            let ix = (ox + kx) as isize - pads[1] as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let t = x[(ci * h + iy as usize) * w + ix as usize] as f64
                                * wt[((mo * c + ci) * 3 + ky) * 3 + kx] as f64;
                            s += t;
                            a += t.abs();
                        }
                    }
                }
                let i = (mo * oh + oy) * ow + ox;
                let extra = bias.map_or(0.0, |b| b[mo] as f64) + res.map_or(0.0, |r| r[i] as f64);
                val[i] = s + extra;
                mag[i] = a + extra.abs();
            }
        }
    }
    (val, mag)
}

fn random(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
}

/// Relative (to the absolute-term sum) error allowed per tile: F(4,3)'s transforms
/// amplify rounding by roughly an order of magnitude more than F(2,3)'s.
fn tolerance(tile: WinogradTile) -> f64 {
    match tile {
        WinogradTile::F2 => 2e-6,
        WinogradTile::F4 => 2e-5,
    }
}

struct Opts {
    bias: bool,
    res: bool,
    act: Activation,
}

fn check(tier: &KernelTable, tile: WinogradTile, case: Case, opts: &Opts, pool: &ThreadPool, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let Case { c, m, h, w, pads } = case;
    let (oh, ow) = case.out();
    let x = random(&mut rng, c * h * w, 1.0);
    let wt = random(&mut rng, m * c * 9, (6.0 / (9.0 * c as f32)).sqrt());
    let bias = opts.bias.then(|| random(&mut rng, m, 0.5));
    let res = opts.res.then(|| random(&mut rng, m * oh * ow, 1.0));
    let mut packed = vec![0f32; packed_weights_len(tile, m, c)];
    pack_weights(tile, m, c, &wt, &mut packed).unwrap();
    let conv = WinogradConv::new(tile, c, h, w, m, pads).unwrap();
    assert_eq!(conv.out_size(), (oh, ow));
    let mut y = vec![f32::NAN; m * oh * ow];
    let residual = res.as_deref().map(|r| Matrix::new(r, m, oh * ow, oh * ow).unwrap());
    let epi = Epilogue { bias: bias.as_deref(), residual, act: opts.act, post: None };
    let mut ws = vec![f32::NAN; conv.scratch().total(pool.threads())];
    conv.run(tier, &packed, &x, &mut y, &epi, pool, &mut ws).unwrap();
    let (val, mag) = reference(case, &x, &wt, bias.as_deref(), res.as_deref());
    for (i, ((got, want), mag)) in y.iter().zip(&val).zip(&mag).enumerate() {
        let want = act_f64(opts.act, *want);
        let err = (*got as f64 - want).abs();
        assert!(
            err <= tolerance(tile) * (mag + 1.0),
            "{tier} {tile:?} {case:?} threads {}: y[{i}] = {got}, expected {want} (err {err:e}, scale {mag})",
            pool.threads()
        );
    }
}

/// Odd sizes and pads on one tier: every size in `sizes` for h and w, channel counts
/// and pads cycled through so each value meets several others.
fn sizes_and_pads(tier: &KernelTable, tile: WinogradTile) {
    let sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17];
    let chans = [1, 3, 8, 17];
    let pads = [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [0, 1, 2, 0], [2, 0, 1, 1], [1, 2, 0, 2]];
    let pools = [ThreadPool::new(1), ThreadPool::new(2), ThreadPool::new(3)];
    let mut n = 0u64;
    for (hi, &h) in sizes.iter().enumerate() {
        for (wi, &w) in sizes.iter().enumerate() {
            let p = pads[(hi + 2 * wi) % pads.len()];
            let case = Case { c: chans[(hi + wi) % 4], m: chans[(hi * 3 + wi) % 4], h, w, pads: p };
            if h + p[0] + p[2] < 3 || w + p[1] + p[3] < 3 {
                continue;
            }
            let opts = Opts {
                bias: n.is_multiple_of(2),
                res: n.is_multiple_of(3),
                act: [Activation::None, Activation::Relu][n as usize % 2],
            };
            check(tier, tile, case, &opts, &pools[n as usize % 3], n);
            n += 1;
        }
    }
}

/// Layers big enough for several tile blocks (so the block split, the parallel path
/// and block-spanning tile rows are exercised), on 1, 2 and 3 threads.
fn multi_block(tier: &KernelTable, tile: WinogradTile) {
    let cases = [
        Case { c: 8, m: 16, h: 30, w: 30, pads: [1, 1, 1, 1] },
        Case { c: 17, m: 9, h: 23, w: 41, pads: [0, 2, 1, 0] },
        Case { c: 64, m: 24, h: 14, w: 14, pads: [1, 1, 1, 1] },
    ];
    for threads in [1, 2, 3] {
        let pool = ThreadPool::new(threads);
        for (i, case) in cases.iter().enumerate() {
            let act = Activation::Clip { lo: -0.5, hi: 0.75 };
            check(tier, tile, *case, &Opts { bias: true, res: i != 1, act }, &pool, 100 + i as u64);
        }
    }
}

fn f2_sizes_and_pads(tier: &KernelTable) {
    sizes_and_pads(tier, WinogradTile::F2);
}

fn f4_sizes_and_pads(tier: &KernelTable) {
    sizes_and_pads(tier, WinogradTile::F4);
}

fn f2_multi_block(tier: &KernelTable) {
    multi_block(tier, WinogradTile::F2);
}

fn f4_multi_block(tier: &KernelTable) {
    multi_block(tier, WinogradTile::F4);
}

per_tier! {
    f2_sizes_and_pads => f2_sizes_and_pads,
    f4_sizes_and_pads => f4_sizes_and_pads,
    f2_multi_block => f2_multi_block,
    f4_multi_block => f4_multi_block,
}

/// Packed weights hold `G g Gᵀ` for each ξ: checked on a single filter against the
/// transform written out by hand (F(2,3): G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]).
#[test]
fn f2_weight_transform_by_hand() {
    let g = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
    let gm = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
    let mut packed = vec![0f32; packed_weights_len(WinogradTile::F2, 1, 1)];
    pack_weights(WinogradTile::F2, 1, 1, &g, &mut packed).unwrap();
    // One packed 1×1 matrix is one MR-row panel: element 0 is the value.
    let plen = packed.len() / 16;
    for i in 0..4 {
        for j in 0..4 {
            let mut want = 0.0f64;
            for a in 0..3 {
                for b in 0..3 {
                    want += gm[i][a] * g[a * 3 + b] as f64 * gm[j][b];
                }
            }
            assert_eq!(packed[(i * 4 + j) * plen] as f64, want, "U[{i}][{j}]");
        }
    }
}

/// `post` sees every output pixel exactly once, after bias and activation, and what it
/// writes is what ends up in `y`.
#[test]
fn post_hook_covers_each_pixel_once() {
    let tier = KernelTable::for_isa(Isa::best()).unwrap();
    for tile in [WinogradTile::F2, WinogradTile::F4] {
        for threads in [1, 2] {
            let case = Case { c: 5, m: 7, h: 19, w: 23, pads: [1, 0, 1, 2] };
            let (oh, ow) = case.out();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let x = random(&mut rng, case.c * case.h * case.w, 1.0);
            let wt = random(&mut rng, case.m * case.c * 9, 0.3);
            let bias = random(&mut rng, case.m, 0.5);
            let mut packed = vec![0f32; packed_weights_len(tile, case.m, case.c)];
            pack_weights(tile, case.m, case.c, &wt, &mut packed).unwrap();
            let conv = WinogradConv::new(tile, case.c, case.h, case.w, case.m, case.pads).unwrap();
            let seen: Vec<AtomicU32> = (0..case.m * oh * ow).map(|_| AtomicU32::new(0)).collect();
            let post = |ch: usize, off: usize, vals: &mut [f32]| {
                for (i, v) in vals.iter_mut().enumerate() {
                    assert!(*v >= 0.0, "post runs after the activation");
                    seen[ch * oh * ow + off + i].fetch_add(1, Ordering::Relaxed);
                    *v = 2.0 * *v + 1.0;
                }
            };
            let epi = Epilogue { bias: Some(&bias), residual: None, act: Activation::Relu, post: Some(&post) };
            let mut y = vec![0f32; case.m * oh * ow];
            let mut ws = vec![f32::NAN; conv.scratch().total(threads)];
            conv.run(tier, &packed, &x, &mut y, &epi, &ThreadPool::new(threads), &mut ws).unwrap();
            assert!(
                seen.iter().all(|s| s.load(Ordering::Relaxed) == 1),
                "{tile:?}: a pixel was not posted exactly once"
            );
            let (val, mag) = reference(case, &x, &wt, Some(&bias), None);
            for (i, (got, want)) in y.iter().zip(&val).enumerate() {
                let want = 2.0 * want.max(0.0) + 1.0;
                assert!(
                    (*got as f64 - want).abs() <= 2.0 * tolerance(tile) * (mag[i] + 1.0),
                    "y[{i}] = {got}, expected {want}"
                );
            }
        }
    }
}

fn shape_err<T: std::fmt::Debug>(r: Result<T, KernelError>) -> String {
    match r {
        Err(KernelError::Shape(msg)) => msg,
        other => panic!("expected a shape error, got {other:?}"),
    }
}

#[test]
fn bad_geometry_is_an_error() {
    let t = WinogradTile::F4;
    shape_err(WinogradConv::new(t, 0, 5, 5, 1, [1; 4]));
    shape_err(WinogradConv::new(t, 1, 0, 5, 1, [1; 4]));
    shape_err(WinogradConv::new(t, 1, 5, 5, 0, [1; 4]));
    // 1×2 input with no padding: the 3×3 kernel does not fit.
    shape_err(WinogradConv::new(t, 1, 1, 2, 1, [0, 1, 0, 0]));
    shape_err(WinogradConv::new(t, usize::MAX / 2, 1 << 20, 1 << 20, 1, [0; 4]));
    shape_err(WinogradConv::new(t, 1, 5, 5, 1, [usize::MAX, 0, 1, 0]));
    shape_err(WinogradConv::new(t, 1 << 40, 3, 3, 1 << 40, [0; 4]));
    let ok = WinogradConv::new(t, 1, 1, 1, 1, [1; 4]).unwrap();
    assert_eq!(ok.out_size(), (1, 1));
}

#[test]
fn wrong_lengths_are_errors() {
    let (c, m, h, w) = (3, 4, 6, 5);
    for tile in [WinogradTile::F2, WinogradTile::F4] {
        let wt = vec![0.1f32; m * c * 9];
        let plen = packed_weights_len(tile, m, c);
        let mut packed = vec![0f32; plen];
        shape_err(pack_weights(tile, m, c, &wt[1..], &mut packed));
        shape_err(pack_weights(tile, m, c, &wt, &mut packed[1..]));
        pack_weights(tile, m, c, &wt, &mut packed).unwrap();
        let conv = WinogradConv::new(tile, c, h, w, m, [1; 4]).unwrap();
        assert_eq!(conv.packed_weights_len(), plen);
        let (oh, ow) = conv.out_size();
        let x = vec![1f32; c * h * w];
        let mut y = vec![0f32; m * oh * ow];
        let pool = ThreadPool::new(1);
        let tier = KernelTable::scalar();
        let none = Epilogue::default();
        let mut ws = vec![0f32; conv.scratch().total(1)];
        shape_err(conv.run(tier, &packed[1..], &x, &mut y, &none, &pool, &mut ws));
        shape_err(conv.run(tier, &packed, &x[1..], &mut y, &none, &pool, &mut ws));
        shape_err(conv.run(tier, &packed, &x, &mut y[1..], &none, &pool, &mut ws));
        let short = vec![0f32; m - 1];
        shape_err(conv.run(tier, &packed, &x, &mut y, &Epilogue { bias: Some(&short), ..none }, &pool, &mut ws));
        // A residual one column wider than the output.
        let res = vec![0f32; m * (oh * ow + 1)];
        let wide = Matrix::new(&res, m, oh * ow + 1, oh * ow + 1).unwrap();
        shape_err(conv.run(tier, &packed, &x, &mut y, &Epilogue { residual: Some(wide), ..none }, &pool, &mut ws));
        conv.run(tier, &packed, &x, &mut y, &none, &pool, &mut ws).unwrap();
        // Less scratch than declared is an error, for one thread and for several.
        for threads in [1, 3] {
            let need = conv.scratch().total(threads);
            let mut short = vec![0f32; need - 1];
            let r = conv.run(tier, &packed, &x, &mut y, &none, &ThreadPool::new(threads), &mut short);
            assert!(matches!(r, Err(KernelError::Scratch { .. })), "{r:?}");
        }
        // Unsupported tiers have no table (there is always one on any machine).
        for other in sinter_kernels::isa::ALL.into_iter().filter(|i| !i.supported()) {
            assert!(matches!(KernelTable::for_isa(other), Err(KernelError::UnsupportedTier { .. })));
        }
    }
}

/// The heuristic picks F(4,3) for ResNet-50's 56², 28² and 14² layers and the direct
/// convolution for its 7² ones and for thin layers (what the example measures).
#[test]
fn suggested_tiles() {
    use sinter_kernels::winograd::suggest_tile;
    assert_eq!(suggest_tile(64, 64, 56, 56), Some(WinogradTile::F4));
    assert_eq!(suggest_tile(128, 128, 28, 28), Some(WinogradTile::F4));
    assert_eq!(suggest_tile(256, 256, 14, 14), Some(WinogradTile::F4));
    assert_eq!(suggest_tile(512, 512, 7, 7), None);
    assert_eq!(suggest_tile(3, 64, 224, 224), None);
}

/// Random geometries (seeded): block splits that start and end mid tile row, large
/// pads, wide and tall maps, several thread counts, on the best tier.
#[test]
fn random_geometries() {
    let tier = KernelTable::for_isa(Isa::best()).unwrap();
    let pools = [ThreadPool::new(1), ThreadPool::new(2), ThreadPool::new(4)];
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for i in 0..40u64 {
        let pads = [rng.gen_range(0..4), rng.gen_range(0..4), rng.gen_range(0..4), rng.gen_range(0..4)];
        let case = Case {
            c: rng.gen_range(1..40),
            m: rng.gen_range(1..40),
            h: rng.gen_range(1..60),
            w: rng.gen_range(1..60),
            pads,
        };
        if case.h + pads[0] + pads[2] < 3 || case.w + pads[1] + pads[3] < 3 {
            continue;
        }
        let tile = if i % 2 == 0 { WinogradTile::F2 } else { WinogradTile::F4 };
        let act = [Activation::None, Activation::Relu, Activation::Clip { lo: -0.3, hi: 0.4 }][i as usize % 3];
        let opts = Opts { bias: i % 4 != 0, res: i % 5 < 2, act };
        check(tier, tile, case, &opts, &pools[i as usize % 3], 1000 + i);
    }
}
