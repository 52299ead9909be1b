//! sgemm against an independent f64 triple loop, for every tier this CPU runs.
//!
//! The reference accumulates in f64 and applies its own copy of the activation
//! definitions; results must agree within `1e-5 · Σ|a·b| (+ |bias| + |residual|)`, and
//! non-finite values must match exactly (NaN where the reference has NaN, same Inf).

#[macro_use]
mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_kernels::gemm::RowFn;
use sinter_kernels::{
    pack_a, packed_a_len, sgemm, sgemm_scratch, Activation, BSource, Epilogue, Isa, KernelError, KernelTable, Matrix,
    PackedA, ThreadPool, MR,
};
use std::sync::Mutex;

/// Scratch enough for every sgemm of this file on `pool`.
fn any_scratch(pool: &ThreadPool) -> Vec<f32> {
    vec![f32::NAN; sgemm_scratch(1024, 1024, 1024).total(pool.threads())]
}

/// Sentinel in C outside the `m × n` region (ldc padding): must survive untouched.
const SENTINEL: f32 = -12345.5;

struct Case {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    bias: Option<Vec<f32>>,
    /// Residual data and its row stride (>= n).
    res: Option<(Vec<f32>, usize)>,
    act: Activation,
}

impl Case {
    fn random(rng: &mut ChaCha8Rng, m: usize, n: usize, k: usize) -> Case {
        Case {
            m,
            n,
            k,
            a: (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect(),
            b: (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect(),
            bias: None,
            res: None,
            act: Activation::None,
        }
    }

    fn with_epilogue(mut self, rng: &mut ChaCha8Rng, act: Activation) -> Case {
        self.bias = Some((0..self.m).map(|_| rng.gen_range(-1.0..1.0)).collect());
        let ldr = self.n + 3;
        self.res = Some(((0..self.m * ldr).map(|_| rng.gen_range(-1.0..1.0)).collect(), ldr));
        self.act = act;
        self
    }

    /// `(value, magnitude)` per element of C from an f64 triple loop.
    fn reference(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(self.m * self.n);
        for i in 0..self.m {
            for j in 0..self.n {
                let (mut s, mut mag) = (0.0f64, 0.0f64);
                for kk in 0..self.k {
                    let p = self.a[i * self.k + kk] as f64 * self.b[kk * self.n + j] as f64;
                    s += p;
                    mag += p.abs();
                }
                if let Some(bias) = &self.bias {
                    s += bias[i] as f64;
                    mag += (bias[i] as f64).abs();
                }
                if let Some((res, ldr)) = &self.res {
                    s += res[i * ldr + j] as f64;
                    mag += (res[i * ldr + j] as f64).abs();
                }
                // Through f32 before the activation, so sums beyond f32 range are ±Inf
                // as in the kernel (all-positive overflow tests rely on it).
                out.push((act_ref(self.act, s as f32 as f64), mag));
            }
        }
        out
    }

    fn run(&self, tier: &KernelTable, ldc: usize, pool: &ThreadPool, post: Option<RowFn>) -> Vec<f32> {
        let mut packed = vec![f32::NAN; packed_a_len(self.m, self.k)];
        pack_a(self.m, self.k, &self.a, self.k, &mut packed).unwrap();
        let a = PackedA::new(&packed, self.m, self.k).unwrap();
        let b = Matrix::new(&self.b, self.k, self.n, self.n).unwrap();
        let res = self.res.as_ref().map(|(r, ldr)| Matrix::new(r, self.m, self.n, *ldr).unwrap());
        let epi = Epilogue { bias: self.bias.as_deref(), residual: res, act: self.act, post };
        let mut c = vec![SENTINEL; self.m.saturating_sub(1) * ldc + self.n];
        // Exactly the declared scratch, filled with NaN: the kernel must not read it
        // before writing.
        let mut ws = vec![f32::NAN; sgemm_scratch(self.m, self.n, self.k).total(pool.threads())];
        sgemm(tier, &a, &b, &mut c, ldc, &epi, pool, &mut ws).unwrap();
        c
    }
}

/// The activation definitions, written independently of the crate's.
fn act_ref(act: Activation, x: f64) -> f64 {
    match act {
        Activation::None => x,
        Activation::Relu => {
            if x < 0.0 {
                0.0
            } else {
                x
            }
        }
        Activation::Clip { lo, hi } => {
            if x < lo as f64 {
                lo as f64
            } else if x > hi as f64 {
                hi as f64
            } else {
                x
            }
        }
    }
}

fn check(case: &Case, c: &[f32], ldc: usize, what: &str) {
    let expected = case.reference();
    for i in 0..case.m {
        for j in 0..case.n {
            let (want, mag) = expected[i * case.n + j];
            let got = c[i * ldc + j];
            let ok = if want.is_nan() {
                got.is_nan()
            } else if want.is_infinite() {
                got as f64 == want
            } else {
                (got as f64 - want).abs() <= 1e-5 * mag + 1e-30
            };
            assert!(ok, "{what}: m={} n={} k={} C[{i},{j}] = {got}, expected {want}", case.m, case.n, case.k);
        }
        for j in case.n..ldc {
            if i + 1 < case.m {
                assert_eq!(c[i * ldc + j], SENTINEL, "{what}: wrote C[{i},{j}] past n={}", case.n);
            }
        }
    }
}

fn odd_shapes(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let pool = ThreadPool::new(1);
    let ms: Vec<usize> = (1..=17).chain([31, 33, 65]).collect();
    let ns: Vec<usize> = (1..=17).chain([23, 24, 25, 31, 33, 47, 48, 49, 65, 97]).collect();
    for &m in &ms {
        for &n in &ns {
            for k in [1, 2, 3, 8, 17, 33] {
                let case = Case::random(&mut rng, m, n, k);
                check(&case, &case.run(tier, n, &pool, None), n, "odd shapes");
            }
        }
    }
}

fn strided_c(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let pool = ThreadPool::new(1);
    for (m, n, k) in [(9, 13, 5), (16, 48, 7), (3, 1, 4), (17, 50, 19)] {
        let case = Case::random(&mut rng, m, n, k);
        for ldc in [n + 1, n + 7, 2 * n + 16] {
            check(&case, &case.run(tier, ldc, &pool, None), ldc, "ldc > n");
        }
    }
}

fn epilogues(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let pool = ThreadPool::new(1);
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::Clip { lo: -0.5, hi: 0.75 },
        Activation::Clip { lo: 0.0, hi: 6.0 },
    ];
    for (m, n, k) in [(1, 1, 1), (8, 48, 16), (13, 29, 9), (24, 100, 40), (5, 3, 300)] {
        for act in acts {
            let case = Case::random(&mut rng, m, n, k).with_epilogue(&mut rng, act);
            check(&case, &case.run(tier, n + 2, &pool, None), n + 2, "epilogue");
        }
        // Bias only, residual only.
        let mut case = Case::random(&mut rng, m, n, k).with_epilogue(&mut rng, Activation::Relu);
        case.res = None;
        check(&case, &case.run(tier, n, &pool, None), n, "bias only");
        let mut case = Case::random(&mut rng, m, n, k).with_epilogue(&mut rng, Activation::None);
        case.bias = None;
        check(&case, &case.run(tier, n, &pool, None), n, "residual only");
    }
}

fn post_callback(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for threads in [1, 2, 3] {
        let pool = ThreadPool::new(threads);
        for (m, n, k) in [(7, 5, 3), (40, 700, 30), (200, 300, 70)] {
            let case = Case::random(&mut rng, m, n, k).with_epilogue(&mut rng, Activation::Relu);
            let expected = case.reference();
            let seen = Mutex::new(vec![0u32; m * n]);
            // Checks each segment holds final values, then doubles it (so the result
            // proves the callback's writes land in C).
            let post = |row: usize, col0: usize, seg: &mut [f32]| {
                let mut seen = seen.lock().unwrap();
                for (j, x) in seg.iter_mut().enumerate() {
                    let (want, mag) = expected[row * n + col0 + j];
                    assert!((*x as f64 - want).abs() <= 1e-5 * mag + 1e-30, "post saw a non-final value");
                    seen[row * n + col0 + j] += 1;
                    *x *= 2.0;
                }
            };
            let c = case.run(tier, n, &pool, Some(&post));
            assert!(seen.into_inner().unwrap().iter().all(|&s| s == 1), "post must see every element once");
            for (i, (&got, &(want, mag))) in c.iter().zip(&expected).enumerate() {
                assert!((got as f64 - 2.0 * want).abs() <= 2e-5 * mag + 1e-30, "post write lost at {i}");
            }
        }
    }
}

fn non_finite(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let pool = ThreadPool::new(1);
    for act in [Activation::None, Activation::Relu, Activation::Clip { lo: -1.0, hi: 1.0 }] {
        for (m, n, k) in [(9, 50, 5), (8, 48, 3), (3, 7, 2)] {
            let mut case = Case::random(&mut rng, m, n, k).with_epilogue(&mut rng, act);
            case.a[0] = f32::NAN; // row 0 all NaN
            case.b[n - 1] = f32::INFINITY; // column n-1: ±Inf (or NaN with row 0)
            if m > 2 && k > 1 {
                case.a[2 * k + 1] = f32::NEG_INFINITY;
            }
            if let Some(bias) = &mut case.bias {
                bias[m - 1] = f32::NAN;
            }
            check(&case, &case.run(tier, n, &pool, None), n, "NaN/Inf");
        }
    }
    // A large-magnitude accumulation that overflows to +Inf, then Clip.
    let mut case = Case::random(&mut rng, 2, 3, 4);
    case.a.iter_mut().for_each(|x| *x = 3e38);
    case.b.iter_mut().for_each(|x| *x = 1.0);
    check(&case, &case.run(tier, 3, &pool, None), 3, "overflow to Inf");
    case.act = Activation::Clip { lo: 0.0, hi: 6.0 };
    check(&case, &case.run(tier, 3, &pool, None), 3, "Clip(Inf)");
}

fn large_blocks(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let pool = ThreadPool::new(1);
    // k beyond every tier's KC (several K blocks), n beyond NC (several N blocks); a
    // narrow B that the x86 tiers take in one K block of 777 (`whole_k_floats`); and a
    // 5-column tail panel over three K blocks of a B too large for that.
    for (m, n, k) in [(17, 1250, 37), (11, 40, 777), (33, 1201, 530), (13, 581, 700)] {
        let case = Case::random(&mut rng, m, n, k).with_epilogue(&mut rng, Activation::Clip { lo: -2.0, hi: 2.0 });
        check(&case, &case.run(tier, n + 1, &pool, None), n + 1, "large k/n");
    }
}

fn threads_agree(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Wide (N split), tall-narrow like a 1x1 conv on a 7x7 map (M split), and odd.
    for (m, n, k) in [(64, 1000, 64), (2048, 49, 64), (203, 301, 71), (9, 2000, 300)] {
        let case = Case::random(&mut rng, m, n, k).with_epilogue(&mut rng, Activation::Relu);
        let one = case.run(tier, n, &ThreadPool::new(1), None);
        check(&case, &one, n, "1 thread");
        for threads in [2, 3] {
            let many = case.run(tier, n, &ThreadPool::new(threads), None);
            let same = one.iter().zip(&many).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{threads} threads differ from 1 thread for {m}x{n}x{k}");
        }
    }
}

/// Every column tail of every tier's panel width (the x86 tiers run tails of up to 8
/// columns through a separate row-vectorized kernel, wider ones masked): n = 1..=70
/// and a few `k·48 + 1` / `+ 4` widths, odd m and k (k = 300: two K blocks where the
/// tier blocks K this narrow a B; `large_blocks` covers tails over K blocks), ldc > n,
/// the full epilogue with a `post` callback, and 1 to 3 threads, each bitwise equal to
/// the 1-thread result.
fn column_tails(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let acts = [Activation::Relu, Activation::None, Activation::Clip { lo: -0.5, hi: 0.75 }];
    for n in (1..=70).chain([97, 145, 196]) {
        for (m, k) in [(9, 1), (13, 37), (70, 300)] {
            let case = Case::random(&mut rng, m, n, k).with_epilogue(&mut rng, acts[n % 3]);
            let ldc = n + 1 + n % 5;
            let one = case.run(tier, ldc, &ThreadPool::new(1), None);
            check(&case, &one, ldc, "column tail");
            for threads in [2, 3] {
                let seen = Mutex::new(vec![0u32; m * n]);
                // Negates each finished segment (exact), so the result shows that
                // post ran once on final values and its writes landed in C.
                let post = |row: usize, col0: usize, seg: &mut [f32]| {
                    let mut seen = seen.lock().unwrap();
                    for (j, x) in seg.iter_mut().enumerate() {
                        seen[row * n + col0 + j] += 1;
                        *x = -*x;
                    }
                };
                let mut many = case.run(tier, ldc, &ThreadPool::new(threads), Some(&post));
                assert!(seen.into_inner().unwrap().iter().all(|&s| s == 1), "post must see every element once");
                for i in 0..m {
                    many[i * ldc..i * ldc + n].iter_mut().for_each(|x| *x = -*x);
                }
                let same = one.iter().zip(&many).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{threads} threads differ from 1 thread for {m}x{n}x{k} (ldc {ldc})");
            }
        }
    }
}

fn zero_sizes(tier: &KernelTable) {
    let pool = ThreadPool::new(2);
    // k = 0: C = act(bias + residual).
    let bias = [1.0, -2.0, 0.5];
    let res_data = [0.25f32, -0.5, 3.0, 1.0, 1.0, 1.0];
    let res = Matrix::new(&res_data, 3, 2, 2).unwrap();
    let a = PackedA::new(&[], 3, 0).unwrap();
    let b = Matrix::new(&[], 0, 2, 2).unwrap();
    let mut c = vec![SENTINEL; 6];
    let epi = Epilogue { bias: Some(&bias), residual: Some(res), act: Activation::Relu, post: None };
    sgemm(tier, &a, &b, &mut c, 2, &epi, &pool, &mut any_scratch(&pool)).unwrap();
    assert_eq!(c, [1.25, 0.5, 1.0, 0.0, 1.5, 1.5]);
    // m = 0 or n = 0: nothing is written.
    let a0 = PackedA::new(&[], 0, 4).unwrap();
    let b4 = Matrix::new(&[1.0; 8], 4, 2, 2).unwrap();
    let mut c = vec![SENTINEL; 2];
    sgemm(tier, &a0, &b4, &mut c, 2, &Epilogue::default(), &pool, &mut any_scratch(&pool)).unwrap();
    let a1 = PackedA::new(&[1.0; MR * 4], 1, 4).unwrap();
    let bn0 = Matrix::new(&[], 4, 0, 0).unwrap();
    sgemm(tier, &a1, &bn0, &mut c, 0, &Epilogue::default(), &pool, &mut any_scratch(&pool)).unwrap();
    assert_eq!(c, [SENTINEL; 2]);
}

per_tier! {
    odd_shapes => odd_shapes,
    strided_c => strided_c,
    epilogues => epilogues,
    post_callback => post_callback,
    non_finite => non_finite,
    large_blocks => large_blocks,
    threads_agree => threads_agree,
    column_tails => column_tails,
    zero_sizes => zero_sizes,
}

#[test]
fn pack_a_round_trip() {
    let (m, k, lda) = (11, 5, 7);
    let a: Vec<f32> = (0..m * lda).map(|i| i as f32).collect();
    let mut out = vec![f32::NAN; packed_a_len(m, k)];
    assert_eq!(out.len(), 16 * 5);
    pack_a(m, k, &a, lda, &mut out).unwrap();
    let p = PackedA::new(&out, m, k).unwrap();
    assert_eq!((p.m(), p.k()), (m, k));
    for r in 0..m {
        for kk in 0..k {
            assert_eq!(p.get(r, kk), (r * lda + kk) as f32);
        }
    }
    // Panel layout: panel 1 holds rows 8..16, column-major in MR-row groups; rows
    // 11..16 are zero padding.
    assert_eq!(&out[MR * k..MR * k + MR], &[56.0, 63.0, 70.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn matrix_pack_layout() {
    let (rows, cols, ld) = (4, 7, 9);
    let data: Vec<f32> = (0..rows * ld).map(|i| i as f32).collect();
    let b = Matrix::new(&data, rows, cols, ld).unwrap();
    assert_eq!((b.rows(), b.cols()), (rows, cols));
    // Rows 1..3, columns 2..7 into panels of 3: [2,3,4], [5,6,pad].
    let mut dst = vec![f32::NAN; 2 * 2 * 3];
    b.pack(1, 2, 2, 5, 3, &mut dst);
    assert_eq!(dst, [11.0, 12.0, 13.0, 20.0, 21.0, 22.0, 14.0, 15.0, 0.0, 23.0, 24.0, 0.0]);
    assert_eq!(b.get(3, 6), 33.0);
}

#[test]
fn shape_errors_are_errors() {
    let shape = |r: Result<(), KernelError>| assert!(matches!(r, Err(KernelError::Shape(_))), "{r:?}");
    let a = [0.0f32; 12];
    let mut out = vec![0.0; packed_a_len(3, 4)];
    shape(pack_a(3, 4, &a, 4, &mut out[1..]).map(drop));
    shape(pack_a(3, 4, &a, 5, &mut out).map(drop)); // needs 14 floats
    shape(pack_a(3, usize::MAX / 2, &a, usize::MAX / 2, &mut out).map(drop));
    shape(pack_a(usize::MAX, 4, &a, 4, &mut out).map(drop));
    shape(PackedA::new(&out[1..], 3, 4).map(drop));
    shape(PackedA::new(&out, usize::MAX, usize::MAX).map(drop));
    shape(Matrix::new(&a, 3, 5, 4).map(drop)); // cols > ld
    shape(Matrix::new(&a, 4, 4, 4).map(drop)); // 16 > 12 floats
    shape(Matrix::new(&a, usize::MAX, 2, usize::MAX).map(drop));

    let tier = KernelTable::scalar();
    let pool = ThreadPool::new(1);
    pack_a(3, 4, &a, 4, &mut out).unwrap();
    let pa = PackedA::new(&out, 3, 4).unwrap();
    let b = Matrix::new(&a, 4, 3, 3).unwrap();
    let b_bad = Matrix::new(&a, 3, 4, 4).unwrap();
    let mut c = vec![0.0; 9];
    let none = Epilogue::default();
    shape(sgemm(tier, &pa, &b_bad, &mut c, 4, &none, &pool, &mut any_scratch(&pool)));
    shape(sgemm(tier, &pa, &b, &mut c[..8], 3, &none, &pool, &mut any_scratch(&pool)));
    shape(sgemm(tier, &pa, &b, &mut c, 2, &none, &pool, &mut any_scratch(&pool))); // ldc < n
    shape(sgemm(tier, &pa, &b, &mut c, usize::MAX, &none, &pool, &mut any_scratch(&pool)));
    let short_bias = Epilogue { bias: Some(&a[..2]), ..Epilogue::default() };
    shape(sgemm(tier, &pa, &b, &mut c, 3, &short_bias, &pool, &mut any_scratch(&pool)));
    let small_res = Epilogue { residual: Some(Matrix::new(&a, 2, 3, 3).unwrap()), ..Epilogue::default() };
    shape(sgemm(tier, &pa, &b, &mut c, 3, &small_res, &pool, &mut any_scratch(&pool)));
    sgemm(tier, &pa, &b, &mut c, 3, &none, &pool, &mut any_scratch(&pool)).unwrap();
}

/// Less scratch than `sgemm_scratch` declares is an error, whatever the thread count;
/// the declared amount (and more) works.
#[test]
fn short_scratch_is_an_error() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let case = Case::random(&mut rng, 20, 70, 33);
    let mut packed = vec![0.0; packed_a_len(case.m, case.k)];
    pack_a(case.m, case.k, &case.a, case.k, &mut packed).unwrap();
    let a = PackedA::new(&packed, case.m, case.k).unwrap();
    let b = Matrix::new(&case.b, case.k, case.n, case.n).unwrap();
    for threads in [1, 3] {
        let pool = ThreadPool::new(threads);
        let need = sgemm_scratch(case.m, case.n, case.k).total(threads);
        assert_eq!(need % 16, 0, "whole cache lines");
        for tier in KernelTable::available() {
            let mut c = vec![0.0; case.m * case.n];
            let r = sgemm(tier, &a, &b, &mut c, case.n, &Epilogue::default(), &pool, &mut vec![0.0; need - 1]);
            assert!(matches!(r, Err(KernelError::Scratch { .. })), "{r:?}");
            let r = sgemm(tier, &a, &b, &mut c, case.n, &Epilogue::default(), &pool, &mut []);
            assert!(matches!(r, Err(KernelError::Scratch { .. })), "{r:?}");
            sgemm(tier, &a, &b, &mut c, case.n, &Epilogue::default(), &pool, &mut vec![0.0; need]).unwrap();
            check(&case, &c, case.n, "declared scratch");
        }
    }
}

#[test]
fn unsupported_tier_is_an_error() {
    let all = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];
    let Some(missing) = all.into_iter().find(|i| !i.supported()) else {
        eprintln!("skipping: this CPU supports every tier");
        return;
    };
    // A tier this CPU lacks has no table, so none of its kernels can be called.
    let r = KernelTable::for_isa(missing);
    assert!(matches!(r, Err(KernelError::UnsupportedTier { .. })), "{r:?}");
}

/// A `post` callback that runs another sgemm on the same thread (the runtime may
/// chain small kernels this way): it brings its own scratch, the outer call's is out
/// of its reach.
#[test]
fn nested_sgemm_in_post() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let inner = Case::random(&mut rng, 9, 10, 11);
    let mut packed = vec![0.0; packed_a_len(9, 11)];
    pack_a(9, 11, &inner.a, 11, &mut packed).unwrap();
    let inner_a = PackedA::new(&packed, 9, 11).unwrap();
    let inner_b = Matrix::new(&inner.b, 11, 10, 10).unwrap();
    for tier in KernelTable::available() {
        let outer = Case::random(&mut rng, 20, 30, 40);
        let nested_ok = Mutex::new(true);
        let post = |_: usize, _: usize, _: &mut [f32]| {
            let mut c = vec![0.0; 90];
            sgemm(
                tier,
                &inner_a,
                &inner_b,
                &mut c,
                10,
                &Epilogue::default(),
                &ThreadPool::new(1),
                &mut any_scratch(&ThreadPool::new(1)),
            )
            .unwrap();
            let expected = inner.reference();
            let ok = c.iter().zip(&expected).all(|(&g, &(w, mag))| (g as f64 - w).abs() <= 1e-5 * mag + 1e-30);
            *nested_ok.lock().unwrap() &= ok;
        };
        let c = outer.run(tier, 30, &ThreadPool::new(1), Some(&post));
        check(&outer, &c, 30, "outer of nested");
        assert!(nested_ok.into_inner().unwrap(), "nested sgemm result wrong ({tier})");
    }
}

/// A `BSource` that is not a `Matrix`: B given transposed (`n × k`), as a convolution
/// source packs from its own layout. Checks the driver only relies on `pack`.
struct Transposed<'a>(&'a [f32], usize, usize);

impl BSource for Transposed<'_> {
    fn rows(&self) -> usize {
        self.2
    }
    fn cols(&self) -> usize {
        self.1
    }
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
            for kk in 0..kc {
                for c in 0..nr {
                    let col = q * nr + c;
                    panel[kk * nr + c] = if col < nc { self.0[(n0 + col) * self.2 + k0 + kk] } else { 0.0 };
                }
            }
        }
    }
}

#[test]
fn custom_b_source() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for tier in KernelTable::available() {
        let case = Case::random(&mut rng, 21, 67, 300);
        let mut bt = vec![0.0; case.n * case.k];
        for kk in 0..case.k {
            for j in 0..case.n {
                bt[j * case.k + kk] = case.b[kk * case.n + j];
            }
        }
        let mut packed = vec![0.0; packed_a_len(case.m, case.k)];
        pack_a(case.m, case.k, &case.a, case.k, &mut packed).unwrap();
        let a = PackedA::new(&packed, case.m, case.k).unwrap();
        let mut c = vec![0.0; case.m * case.n];
        sgemm(
            tier,
            &a,
            &Transposed(&bt, case.n, case.k),
            &mut c,
            case.n,
            &Epilogue::default(),
            &ThreadPool::new(2),
            &mut any_scratch(&ThreadPool::new(2)),
        )
        .unwrap();
        check(&case, &c, case.n, "transposed B source");
    }
}
