//! Inputs for `run` and `bench`: `.npy` files by name, seeded random values for the rest.

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_ir::{DType, Tensor};
use sinter_runtime::IoInfo;
use std::path::Path;

/// Parses `NAME=FILE.npy` arguments and fills the remaining plan inputs randomly.
pub fn gather(specs: &[String], plan_inputs: &[IoInfo], seed: u64) -> Result<Vec<(String, Tensor)>> {
    let mut given = Vec::new();
    for spec in specs {
        let Some((name, file)) = spec.split_once('=') else {
            bail!("--input '{spec}' must look like NAME=FILE.npy");
        };
        if !plan_inputs.iter().any(|i| i.name == name) {
            let names: Vec<_> = plan_inputs.iter().map(|i| i.name.as_str()).collect();
            bail!("the plan has no input '{name}'; its inputs are: {}", names.join(", "));
        }
        let t = sinter_npy::read(Path::new(file))?;
        given.push((name.to_string(), t));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for info in plan_inputs {
        match given.iter().position(|(n, _)| *n == info.name) {
            Some(i) => out.push(given.swap_remove(i)),
            None => out.push((info.name.clone(), random(info, &mut rng).context("making a random input")?)),
        }
    }
    Ok(out)
}

/// Standard-normal floats; small non-negative integers (valid as indices and masks).
fn random(info: &IoInfo, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let n: usize = info.shape.iter().product();
    let normal = |rng: &mut ChaCha8Rng| {
        let (u, v): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let t = match info.dtype {
        DType::F32 => Tensor::from_vec(&info.shape, (0..n).map(|_| normal(rng) as f32).collect())?,
        DType::F16 => Tensor::from_vec(&info.shape, (0..n).map(|_| half::f16::from_f64(normal(rng))).collect())?,
        DType::Bool => Tensor::from_bools(&info.shape, &(0..n).map(|_| rng.gen_bool(0.5)).collect::<Vec<_>>())?,
        DType::I8 => Tensor::from_vec(&info.shape, (0..n).map(|_| rng.gen_range(0..10i8)).collect())?,
        DType::U8 => Tensor::from_vec(&info.shape, (0..n).map(|_| rng.gen_range(0..10u8)).collect())?,
        DType::I32 => Tensor::from_vec(&info.shape, (0..n).map(|_| rng.gen_range(0..10i32)).collect())?,
        DType::I64 => Tensor::from_vec(&info.shape, (0..n).map(|_| rng.gen_range(0..10i64)).collect())?,
    };
    Ok(t)
}
