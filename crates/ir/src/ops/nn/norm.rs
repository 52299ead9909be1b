//! Normalizations: BatchNormalization (inference), InstanceNormalization and LRN.

use super::{check_float, f32_input, sat_numel, with_f32_output};
use crate::ops::util::{req, req_view};
use crate::ops::Op;
use crate::{Attrs, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// `BatchNormalization` in inference mode: `y = (x - mean) / sqrt(var + eps) * scale + B`
/// per channel (axis 1), or per activation for the `spatial = 0` form of opsets 7-8.
#[derive(Debug)]
pub struct BatchNorm {
    pub epsilon: f32,
}

pub(super) fn build_batch_norm(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    if attrs.int_or("training_mode", 0)? != 0 {
        return Err(Attrs::unsupported("training_mode", "training mode is not supported (inference only)"));
    }
    if opset < 7 && attrs.int_or("is_test", 0)? == 0 {
        return Err(Attrs::unsupported("is_test", "training mode is not supported (inference only)"));
    }
    // `spatial` (opsets 7-8) only changes the parameters' shape, which eval reads from
    // the inputs; `momentum` only matters in training.
    Ok(Arc::new(BatchNorm { epsilon: attrs.float_or("epsilon", 1e-5)? }))
}

/// The number of values each parameter holds: one per channel, or one per activation
/// (`[C, D1, ...]`, the `spatial = 0` layout).
fn bn_param_len(x: &[usize], params: &[&[usize]]) -> Result<usize> {
    if x.len() < 2 {
        return Err(IrError::Shape(format!("BatchNormalization needs an input [N, C, ...], got {x:?}")));
    }
    let per_channel = x[1];
    let per_activation = sat_numel(&x[1..]);
    let len = params.first().map(|p| sat_numel(p)).unwrap_or(per_channel);
    for p in params {
        let n = sat_numel(p);
        let fits = (n == per_channel && p.len() == 1) || (n == per_activation && *p == &x[1..]);
        if !fits || n != len {
            return Err(IrError::Shape(format!(
                "BatchNormalization: parameter of shape {p:?} fits neither [{}] nor {:?} for input {x:?}",
                x[1],
                &x[1..]
            )));
        }
    }
    Ok(len)
}

impl Op for BatchNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "BatchNormalization")?;
        check_float("BatchNormalization", x.dtype)?;
        let mut shapes = Vec::with_capacity(4);
        for i in 1..5 {
            let p = req(inputs, i, "BatchNormalization")?;
            check_float("BatchNormalization", p.dtype)?;
            shapes.push(p.shape.as_slice());
        }
        bn_param_len(&x.shape, &shapes)?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "BatchNormalization")?;
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph("BatchNormalization has no output".into()))?;
        let params = (1..5).map(|i| req_view(inputs, i, "BatchNormalization")).collect::<Result<Vec<_>>>()?;
        let shapes: Vec<&[usize]> = params.iter().map(|p| p.shape).collect();
        let len = bn_param_len(x.shape, &shapes)?;
        let vals = params.iter().map(|p| f32_input("BatchNormalization", p)).collect::<Result<Vec<_>>>()?;
        // Fold into y = x * a + b per parameter entry (computed in f64, rounded once).
        let (a, b): (Vec<f32>, Vec<f32>) = (0..len)
            .map(|i| {
                let (s, bias, mean, var) = (vals[0][i] as f64, vals[1][i] as f64, vals[2][i] as f64, vals[3][i] as f64);
                let a = s / (var + self.epsilon as f64).sqrt();
                (a as f32, (bias - mean * a) as f32)
            })
            .unzip();
        // Each parameter entry covers a run of `inner` contiguous elements.
        let inner = if len == x.shape[1] { sat_numel(&x.shape[2..]) } else { 1 };
        let xd = f32_input("BatchNormalization", &x)?;
        with_f32_output("BatchNormalization", out, |y| {
            if inner == 0 || len == 0 {
                return Ok(());
            }
            for (r, (yr, xr)) in y.chunks_exact_mut(inner).zip(xd.chunks_exact(inner)).enumerate() {
                let (a, b) = (a[r % len], b[r % len]);
                for (yv, &xv) in yr.iter_mut().zip(xr) {
                    *yv = xv * a + b;
                }
            }
            Ok(())
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `InstanceNormalization`: per image and channel, normalize over the spatial axes, then
/// `* scale[c] + B[c]`.
#[derive(Debug)]
pub struct InstanceNorm {
    pub epsilon: f32,
}

pub(super) fn build_instance_norm(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(InstanceNorm { epsilon: attrs.float_or("epsilon", 1e-5)? }))
}

fn check_channel_params(op: &str, x: &[usize], params: &[&[usize]]) -> Result<()> {
    if x.len() < 3 {
        return Err(IrError::Shape(format!("{op} needs an input [N, C, spatial...], got {x:?}")));
    }
    for p in params {
        if *p != [x[1]] {
            return Err(IrError::Shape(format!("{op}: parameter of shape {p:?} does not match {} channels", x[1])));
        }
    }
    Ok(())
}

impl Op for InstanceNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "InstanceNormalization")?;
        let (s, b) = (req(inputs, 1, "InstanceNormalization")?, req(inputs, 2, "InstanceNormalization")?);
        check_float("InstanceNormalization", x.dtype)?;
        for p in [s, b] {
            if p.dtype != x.dtype {
                return Err(IrError::DType { expected: x.dtype.to_string(), found: p.dtype });
            }
        }
        check_channel_params("InstanceNormalization", &x.shape, &[&s.shape, &b.shape])?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "InstanceNormalization")?;
        let (s, b) = (req_view(inputs, 1, "InstanceNormalization")?, req_view(inputs, 2, "InstanceNormalization")?);
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph("InstanceNormalization has no output".into()))?;
        check_channel_params("InstanceNormalization", x.shape, &[s.shape, b.shape])?;
        let channels = x.shape[1];
        let size = sat_numel(&x.shape[2..]);
        let (xd, sd, bd) = (
            f32_input("InstanceNormalization", &x)?,
            f32_input("InstanceNormalization", &s)?,
            f32_input("InstanceNormalization", &b)?,
        );
        with_f32_output("InstanceNormalization", out, |y| {
            if size == 0 {
                return Ok(());
            }
            for (i, (yp, xp)) in y.chunks_exact_mut(size).zip(xd.chunks_exact(size)).enumerate() {
                let c = i % channels;
                // Two passes in f64: mean, then the (population) variance around it.
                let mean = xp.iter().map(|&v| v as f64).sum::<f64>() / size as f64;
                let var = xp.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / size as f64;
                let a = sd[c] as f64 / (var + self.epsilon as f64).sqrt();
                let shift = bd[c] as f64 - mean * a;
                for (yv, &xv) in yp.iter_mut().zip(xp) {
                    *yv = (xv as f64 * a + shift) as f32;
                }
            }
            Ok(())
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `LRN`: local response normalization across channels,
/// `y = x / (bias + alpha / size * sum of x^2 over nearby channels) ^ beta`.
#[derive(Debug)]
pub struct Lrn {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

pub(super) fn build_lrn(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    let size = attrs.int("size")?.ok_or_else(|| Attrs::unsupported("size", "LRN requires it"))?;
    if !(1..=1 << 20).contains(&size) {
        return Err(Attrs::unsupported("size", format!("must be positive, found {size}")));
    }
    Ok(Arc::new(Lrn {
        size: size as usize,
        alpha: attrs.float_or("alpha", 1e-4)?,
        beta: attrs.float_or("beta", 0.75)?,
        bias: attrs.float_or("bias", 1.0)?,
    }))
}

impl Op for Lrn {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "LRN")?;
        check_float("LRN", x.dtype)?;
        if x.shape.len() < 2 {
            return Err(IrError::Shape(format!("LRN needs an input [N, C, ...], got {:?}", x.shape)));
        }
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "LRN")?;
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph("LRN has no output".into()))?;
        if x.shape.len() < 2 {
            return Err(IrError::Shape(format!("LRN needs an input [N, C, ...], got {:?}", x.shape)));
        }
        let channels = x.shape[1];
        let size = sat_numel(&x.shape[2..]);
        // The window of channel c is [c - before, c + after].
        let before = (self.size - 1) / 2;
        let after = self.size - 1 - before;
        let xd = f32_input("LRN", &x)?;
        let scale = self.alpha as f64 / self.size as f64;
        with_f32_output("LRN", out, |y| {
            let image = channels * size;
            if image == 0 {
                return Ok(());
            }
            let mut sq = vec![0f64; size];
            for (yi, xi) in y.chunks_exact_mut(image).zip(xd.chunks_exact(image)) {
                for c in 0..channels {
                    sq.fill(0.0);
                    for cc in c.saturating_sub(before)..(c + after + 1).min(channels) {
                        for (s, &v) in sq.iter_mut().zip(&xi[cc * size..][..size]) {
                            *s += v as f64 * v as f64;
                        }
                    }
                    for ((yv, &xv), &s) in yi[c * size..][..size].iter_mut().zip(&xi[c * size..][..size]).zip(&sq) {
                        *yv = (xv as f64 / (self.bias as f64 + scale * s).powf(self.beta as f64)) as f32;
                    }
                }
            }
            Ok(())
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
