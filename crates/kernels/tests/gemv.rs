//! `sgemv` on every tier this CPU has, against an f64 reference.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_kernels::gemv::sgemv;
use sinter_kernels::{pack_a, packed_a_len, Activation, KernelTable, PackedA, ThreadPool};

fn reference(a: &[f32], x: &[f32], bias: Option<&[f32]>, act: Activation, m: usize, k: usize) -> Vec<f64> {
    (0..m)
        .map(|i| {
            let mut s: f64 = (0..k).map(|j| a[i * k + j] as f64 * x[j] as f64).sum();
            if let Some(b) = bias {
                s += b[i] as f64;
            }
            act.apply(s as f32) as f64
        })
        .collect()
}

fn check(tier: &KernelTable, m: usize, k: usize, act: Activation, threads: usize, special: bool) {
    let mut rng = ChaCha8Rng::seed_from_u64((m * 1000 + k) as u64);
    let mut a: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let x: Vec<f32> = (0..k).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let bias: Vec<f32> = (0..m).map(|_| rng.gen_range(-1.0..1.0)).collect();
    if special && m > 2 && k > 1 {
        a[0] = f32::NAN;
        a[k + 1] = f32::INFINITY;
    }
    let mut packed = vec![0.0; packed_a_len(m, k)];
    pack_a(m, k, &a, k, &mut packed).unwrap();
    let pa = PackedA::new(&packed, m, k).unwrap();
    let mut y = vec![0.0; m];
    let pool = ThreadPool::new(threads);
    sgemv(tier, &pa, &x, Some(&bias), act, &mut y, &pool).unwrap();
    let want = reference(&a, &x, Some(&bias), act, m, k);
    for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
        let scale: f64 = (0..k).map(|j| (a[i * k + j] as f64 * x[j] as f64).abs()).sum::<f64>() + 1.0;
        let ok = (g.is_nan() && w.is_nan()) || g as f64 == w || ((g as f64 - w).abs() <= 1e-5 * scale);
        assert!(ok, "{tier} m={m} k={k} {act:?} threads={threads} row {i}: got {g}, want {w}");
    }
}

#[test]
fn sgemv_matches_reference_on_every_tier() {
    for tier in KernelTable::available() {
        for &m in &[1, 3, 7, 8, 9, 17, 64, 1000] {
            for &k in &[1, 2, 3, 5, 8, 13, 64, 127, 2048] {
                for act in [Activation::None, Activation::Relu, Activation::Clip { lo: -0.5, hi: 0.5 }] {
                    check(tier, m, k, act, 1, false);
                }
                check(tier, m, k, Activation::Relu, 3, true);
            }
        }
    }
}

#[test]
fn sgemv_rejects_wrong_lengths() {
    let packed = vec![0.0; packed_a_len(5, 3)];
    let pa = PackedA::new(&packed, 5, 3).unwrap();
    let pool = ThreadPool::new(1);
    let mut y = vec![0.0; 5];
    assert!(sgemv(KernelTable::scalar(), &pa, &[0.0; 2], None, Activation::None, &mut y, &pool).is_err());
    assert!(sgemv(KernelTable::scalar(), &pa, &[0.0; 3], None, Activation::None, &mut y[..4], &pool).is_err());
    assert!(sgemv(KernelTable::scalar(), &pa, &[0.0; 3], Some(&[0.0; 4]), Activation::None, &mut y, &pool).is_err());
}
