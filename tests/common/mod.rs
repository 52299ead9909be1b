//! Shared helpers for the workspace-level tests: locating outside test data and
//! comparing against oracle outputs.
#![allow(dead_code)]

use sinter_ir::{DType, Tensor};
use std::path::PathBuf;

/// The directory named by `var`, or `None` with a printed reason. When
/// `SINTER_REQUIRE_TESTDATA` is set (as `cargo xtask test` and CI do), missing data fails.
pub fn data_dir(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_dir() => Some(p),
        other => {
            let msg = format!(
                "{what}: {var} {} — run `cargo xtask test` to fetch the data and run everything",
                match other {
                    Some(p) => format!("points to {}, which does not exist", p.display()),
                    None => "is not set".to_string(),
                }
            );
            if std::env::var_os("SINTER_REQUIRE_TESTDATA").is_some() {
                panic!("{msg}");
            }
            eprintln!("SKIPPED {msg}");
            None
        }
    }
}

/// Tolerance `|ours - expected| <= atol + rtol * |expected|`, element-wise.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub atol: f64,
    pub rtol: f64,
}

/// Largest absolute and relative errors between two tensors.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrStats {
    pub max_abs: f64,
    pub max_rel: f64,
    /// Max relative error over elements with |expected| >= 1e-3 (relative error of values
    /// near zero says little).
    pub max_rel_significant: f64,
}

impl ErrStats {
    pub fn merge(&mut self, o: ErrStats) {
        self.max_abs = self.max_abs.max(o.max_abs);
        self.max_rel = self.max_rel.max(o.max_rel);
        self.max_rel_significant = self.max_rel_significant.max(o.max_rel_significant);
    }
}

/// Compares dtype, shape and values; NaN matches NaN, infinities must match exactly.
pub fn compare(ours: &Tensor, expected: &Tensor, tol: Tol) -> Result<ErrStats, String> {
    if ours.dtype() != expected.dtype() {
        return Err(format!("dtype {} != expected {}", ours.dtype(), expected.dtype()));
    }
    if ours.shape() != expected.shape() {
        return Err(format!("shape {:?} != expected {:?}", ours.shape(), expected.shape()));
    }
    let exact = !matches!(ours.dtype(), DType::F32 | DType::F16);
    let (a, b) = (ours.to_f64_vec(), expected.to_f64_vec());
    let mut stats = ErrStats::default();
    for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
        if x.is_nan() && y.is_nan() {
            continue;
        }
        if y.is_infinite() || x.is_infinite() {
            if x != y {
                return Err(format!("element {i}: {x} != expected {y}"));
            }
            continue;
        }
        let d = (x - y).abs();
        stats.max_abs = stats.max_abs.max(d);
        if y != 0.0 {
            stats.max_rel = stats.max_rel.max(d / y.abs());
        }
        if y.abs() >= 1e-3 {
            stats.max_rel_significant = stats.max_rel_significant.max(d / y.abs());
        }
        let ok = if exact { d == 0.0 } else { d <= tol.atol + tol.rtol * y.abs() };
        if !ok || d.is_nan() {
            return Err(format!("element {i}: {x} vs expected {y} (|diff| {d:e})"));
        }
    }
    Ok(stats)
}
