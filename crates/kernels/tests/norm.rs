//! Layer normalization of a row: every tier against an f64 reference written here (the
//! ONNX definition), on odd lengths, rows with a large mean, constant rows, NaN/Inf.

#[macro_use]
mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_kernels::norm::layer_norm_row;
use sinter_kernels::KernelTable;

/// `(y, mean, inv_std)` in f64.
fn reference(x: &[f32], scale: &[f32], bias: Option<&[f32]>, eps: f32) -> (Vec<f64>, f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps as f64).sqrt();
    let y = x
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 - mean) * inv * scale[i] as f64 + bias.map_or(0.0, |b| b[i] as f64))
        .collect();
    (y, mean, inv)
}

fn close(got: f32, want: f64, scale: f64) -> bool {
    (got as f64 - want).abs() <= 2e-6 * scale.max(want.abs())
}

fn lengths_and_offsets(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for n in (1..=70).chain([127, 128, 768, 1000, 4099]) {
        // Rows centred at 0 and rows whose mean dwarfs their spread (a transformer's
        // residual stream): the pivot keeps the latter as accurate as the former.
        for offset in [0.0f32, 300.0] {
            let x: Vec<f32> = (0..n).map(|_| offset + rng.gen_range(-2.0..2.0)).collect();
            let scale: Vec<f32> = (0..n).map(|_| rng.gen_range(0.5..1.5)).collect();
            let bias: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            for b in [Some(&bias[..]), None] {
                let mut y = vec![0.0; n];
                let (mean, inv) = layer_norm_row(tier, &x, &scale, b, 1e-5, &mut y).unwrap();
                let (want, wmean, winv) = reference(&x, &scale, b, 1e-5);
                assert!(close(mean, wmean, 1.0), "{tier} n={n} offset {offset}: mean {mean} vs {wmean}");
                assert!(close(inv, winv, winv), "{tier} n={n} offset {offset}: inv_std {inv} vs {winv}");
                for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                    assert!(close(g, w, 1.0), "{tier} n={n} offset {offset} bias {}: y[{i}] {g} vs {w}", b.is_some());
                }
            }
        }
    }
}

/// A constant row has zero variance: every output is the bias (inv_std = 1/sqrt(eps)).
fn constant_row(tier: &KernelTable) {
    let x = vec![4.25f32; 37];
    let scale = vec![2.0f32; 37];
    let bias: Vec<f32> = (0..37).map(|i| i as f32).collect();
    let mut y = vec![0.0; 37];
    let (mean, inv) = layer_norm_row(tier, &x, &scale, Some(&bias), 1e-4, &mut y).unwrap();
    assert_eq!(mean, 4.25);
    assert!((inv - 100.0).abs() < 1e-3, "{tier}: {inv}");
    // Scale 2 times a zero deviation, plus the bias, exactly.
    assert_eq!(y, bias, "{tier}");
}

fn non_finite(tier: &KernelTable) {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x: Vec<f32> = (0..19).map(|i| i as f32).collect();
        x[11] = bad;
        let mut y = vec![0.0; 19];
        layer_norm_row(tier, &x, &[1.0; 19], None, 1e-5, &mut y).unwrap();
        assert!(y.iter().all(|v| v.is_nan()), "{tier}: a {bad} in the row makes every output NaN: {y:?}");
    }
}

fn tiers_agree(tier: &KernelTable) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x: Vec<f32> = (0..1001).map(|_| rng.gen_range(-3.0..3.0)).collect();
    let scale: Vec<f32> = (0..1001).map(|_| rng.gen_range(0.5..1.5)).collect();
    let (mut a, mut b) = (vec![0.0; 1001], vec![0.0; 1001]);
    layer_norm_row(tier, &x, &scale, None, 1e-5, &mut a).unwrap();
    layer_norm_row(KernelTable::scalar(), &x, &scale, None, 1e-5, &mut b).unwrap();
    for (i, (&p, &q)) in a.iter().zip(&b).enumerate() {
        assert!((p - q).abs() <= 4.0 * f32::EPSILON * q.abs().max(1.0), "{tier} vs scalar at {i}: {p} {q}");
    }
}

fn bad_sizes(tier: &KernelTable) {
    let mut y = vec![0.0; 4];
    assert!(layer_norm_row(tier, &[], &[], None, 1e-5, &mut []).is_err());
    assert!(layer_norm_row(tier, &[1.0; 4], &[1.0; 3], None, 1e-5, &mut y).is_err());
    assert!(layer_norm_row(tier, &[1.0; 4], &[1.0; 4], Some(&[0.0; 5]), 1e-5, &mut y).is_err());
    assert!(layer_norm_row(tier, &[1.0; 4], &[1.0; 4], None, 1e-5, &mut y[..3]).is_err());
}

per_tier! {
    lengths => lengths_and_offsets,
    constant => constant_row,
    nan_inf => non_finite,
    agree => tiers_agree,
    errors => bad_sizes,
}
