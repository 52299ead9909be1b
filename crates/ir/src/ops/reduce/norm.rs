//! `LayerNormalization`, `MeanVarianceNormalization` and `LpNormalization`.

use super::{axes_mask, check_len, check_out_shape, reduced_shape, split_at, Rows};
use crate::ops::util::{broadcast_strides, for_each_broadcast, normalize_axis, req, req_view};
use crate::ops::Op;
use crate::tensor::numel;
use crate::{Attrs, DType, Elem, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

fn check_float(op: &str, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(IrError::UnsupportedDType { op: op.to_string(), dtype })
    }
}

fn first_output<'a, 'b>(outputs: &'a mut [ViewMut<'b>], op: &str) -> Result<&'a mut ViewMut<'b>> {
    outputs.first_mut().ok_or_else(|| IrError::Graph(format!("{op}: no output buffer")))
}

/// `LayerNormalization` (opset 17): normalizes over the dimensions from `axis` on,
/// then scales and shifts by `Scale` and `B`, which broadcast unidirectionally to X.
/// Statistics are computed in f64 and the optional `Mean` and `InvStdDev` outputs are
/// f32 (`stash_type` 1, the only value supported).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub axis: i64,
    pub epsilon: f32,
}

pub(super) fn build_layer_norm(attrs: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
    let stash_type = attrs.int_or("stash_type", 1)?;
    if stash_type != 1 {
        return Err(Attrs::unsupported("stash_type", format!("only 1 (float) is supported, got {stash_type}")));
    }
    Ok(Arc::new(LayerNorm { axis: attrs.int_or("axis", -1)?, epsilon: attrs.float_or("epsilon", 1e-5)? }))
}

/// `p` with leading 1s dropped, so that it can be matched against a suffix of a shape.
fn strip_leading_ones(p: &[usize]) -> &[usize] {
    let k = p.iter().take_while(|&&d| d == 1).count();
    &p[k..]
}

/// Whether `p` broadcasts unidirectionally to `target` (numpy rules, target unchanged).
fn broadcasts_to(p: &[usize], target: &[usize]) -> bool {
    let p = strip_leading_ones(p);
    p.len() <= target.len() && p.iter().rev().zip(target.iter().rev()).all(|(&a, &b)| a == 1 || a == b)
}

/// A LayerNormalization parameter broadcast to the normalized block (`x_shape[axis..]`)
/// when it is constant across the leading dimensions, else to all of X.
struct Param {
    values: Vec<f64>,
    per_row: bool,
}

impl Param {
    fn expand(v: View, x_shape: &[usize], axis: usize) -> Result<Param> {
        let vals = v.to_f64_vec();
        check_len(vals.len(), v.shape, "LayerNormalization parameter")?;
        let p = strip_leading_ones(v.shape);
        let per_row = p.len() > x_shape.len() - axis;
        let target = if per_row { x_shape } else { &x_shape[axis..] };
        let strides = broadcast_strides(p, target);
        let mut values = Vec::with_capacity(numel(target));
        for_each_broadcast(target, [&strides], |_, [i]| values.push(vals[i]));
        Ok(Param { values, per_row })
    }

    /// The parameters for row `r` of the `(rows, inner)` view of X.
    fn row(&self, r: usize, inner: usize) -> &[f64] {
        if self.per_row {
            &self.values[r * inner..(r + 1) * inner]
        } else {
            &self.values
        }
    }
}

impl LayerNorm {
    fn check(&self, x: (DType, &[usize]), scale: (DType, &[usize]), b: Option<(DType, &[usize])>) -> Result<usize> {
        const OP: &str = "LayerNormalization";
        check_float(OP, x.0)?;
        let axis = normalize_axis(self.axis, x.1.len()).map_err(|e| IrError::Shape(format!("{OP}: {e}")))?;
        for (what, p) in std::iter::once(("Scale", scale)).chain(b.map(|b| ("B", b))) {
            if p.0 != x.0 {
                return Err(IrError::DType { expected: format!("{} {what} like X", x.0), found: p.0 });
            }
            if !broadcasts_to(p.1, x.1) {
                return Err(IrError::Shape(format!(
                    "{OP}: {what} of shape {:?} does not broadcast to X {:?}",
                    p.1, x.1
                )));
            }
        }
        Ok(axis)
    }
}

impl Op for LayerNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        const OP: &str = "LayerNormalization";
        let x = req(inputs, 0, OP)?;
        let scale = req(inputs, 1, OP)?;
        let b = inputs.get(2).copied().flatten();
        let axis = self.check((x.dtype, &x.shape), (scale.dtype, &scale.shape), b.map(|b| (b.dtype, &b.shape[..])))?;
        let mut stat = x.shape.clone();
        stat[axis..].fill(1);
        Ok(vec![Fact::new(x.dtype, x.shape.clone()), Fact::new(DType::F32, stat.clone()), Fact::new(DType::F32, stat)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        const OP: &str = "LayerNormalization";
        let x = req_view(inputs, 0, OP)?;
        let scale = req_view(inputs, 1, OP)?;
        let b = inputs.get(2).copied().flatten();
        let axis = self.check((x.dtype, x.shape), (scale.dtype, scale.shape), b.map(|b| (b.dtype, b.shape)))?;
        let (rows, n, inner) = split_at(x.shape, axis)?;
        let inner = n * inner;
        let scale = Param::expand(scale, x.shape, axis)?;
        let bias = b.map(|b| Param::expand(b, x.shape, axis)).transpose()?;
        let mut outs = outputs.iter_mut();
        let y = outs.next().ok_or_else(|| IrError::Graph(format!("{OP}: no output buffer")))?;
        check_out_shape(y.shape, x.shape, OP)?;
        let mut stat_shape = x.shape.to_vec();
        stat_shape[axis..].fill(1);
        let mut stats = Vec::with_capacity(2);
        for s in outs.take(2) {
            check_out_shape(s.shape, &stat_shape, OP)?;
            let s = s.as_slice_mut::<f32>()?;
            check_len(s.len(), &stat_shape, "LayerNormalization statistics")?;
            stats.push(s);
        }
        let p = LnParams { scale: &scale, bias: bias.as_ref(), eps: f64::from(self.epsilon), rows, inner };
        match x.dtype {
            DType::F32 => layer_norm::<f32>(x, y, &mut stats, &p),
            DType::F16 => layer_norm::<half::f16>(x, y, &mut stats, &p),
            dtype => Err(IrError::UnsupportedDType { op: OP.to_string(), dtype }),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct LnParams<'a> {
    scale: &'a Param,
    bias: Option<&'a Param>,
    eps: f64,
    rows: usize,
    inner: usize,
}

fn layer_norm<T: Elem>(x: View, y: &mut ViewMut, stats: &mut [&mut [f32]], p: &LnParams) -> Result<()> {
    let xs = x.as_slice::<T>()?;
    check_len(xs.len(), x.shape, "input")?;
    let ys = y.as_slice_mut::<T>()?;
    check_len(ys.len(), x.shape, "output")?;
    if p.inner == 0 {
        return Ok(());
    }
    let n = p.inner as f64;
    for (r, (xr, yr)) in xs.chunks_exact(p.inner).zip(ys.chunks_exact_mut(p.inner)).enumerate().take(p.rows) {
        // Two passes: the mean, then the variance around it (no cancellation).
        let mean = xr.iter().map(|v| v.to_f64()).sum::<f64>() / n;
        let var = xr.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
        let inv_std = 1.0 / (var + p.eps).sqrt();
        let scale = p.scale.row(r, p.inner);
        match p.bias {
            Some(b) => {
                for (((d, v), s), b) in yr.iter_mut().zip(xr).zip(scale).zip(b.row(r, p.inner)) {
                    *d = T::from_f64((v.to_f64() - mean) * inv_std * s + b);
                }
            }
            None => {
                for ((d, v), s) in yr.iter_mut().zip(xr).zip(scale) {
                    *d = T::from_f64((v.to_f64() - mean) * inv_std * s);
                }
            }
        }
        for (s, v) in stats.iter_mut().zip([mean, inv_std]) {
            if let Some(d) = s.get_mut(r) {
                *d = v as f32;
            }
        }
    }
    Ok(())
}

/// `MeanVarianceNormalization`: `(X - E[X]) / (sqrt(E[(X - E[X])^2]) + 1e-9)` over
/// `axes` (default `[0, 2, 3]`), the epsilon placement of ONNX's function body.
#[derive(Clone, Debug)]
pub struct MeanVarianceNorm {
    pub axes: Vec<i64>,
}

pub(super) fn build_mvn(attrs: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(MeanVarianceNorm { axes: attrs.ints("axes")?.map_or_else(|| vec![0, 2, 3], <[i64]>::to_vec) }))
}

impl Op for MeanVarianceNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        const OP: &str = "MeanVarianceNormalization";
        let x = req(inputs, 0, OP)?;
        check_float(OP, x.dtype)?;
        axes_mask(&self.axes, x.rank(), OP)?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        const OP: &str = "MeanVarianceNormalization";
        let x = req_view(inputs, 0, OP)?;
        let mask = axes_mask(&self.axes, x.shape.len(), OP)?;
        let y = first_output(outputs, OP)?;
        check_out_shape(y.shape, x.shape, OP)?;
        match x.dtype {
            DType::F32 => mvn::<f32>(x, y, &mask),
            DType::F16 => mvn::<half::f16>(x, y, &mask),
            dtype => Err(IrError::UnsupportedDType { op: OP.to_string(), dtype }),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn mvn<T: Elem>(x: View, y: &mut ViewMut, mask: &[bool]) -> Result<()> {
    let xs = x.as_slice::<T>()?;
    check_len(xs.len(), x.shape, "input")?;
    let ys = y.as_slice_mut::<T>()?;
    check_len(ys.len(), x.shape, "output")?;
    let rows = Rows::new(x.shape, mask);
    let n = x.shape.iter().zip(mask).filter(|(_, &r)| r).map(|(&d, _)| d).product::<usize>() as f64;
    let mut mean = vec![0.0f64; numel(&reduced_shape(x.shape, mask, true))];
    rows.fold(xs, &mut mean, |v| v.to_f64(), |a, b| a + b);
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; mean.len()];
    let len = rows.row_len;
    rows.for_each(|i, o| {
        let row = &xs[i..i + len];
        if rows.last_reduced {
            let m = mean[o];
            var[o] += row.iter().map(|v| (v.to_f64() - m).powi(2)).sum::<f64>();
        } else {
            for ((s, v), m) in var[o..o + len].iter_mut().zip(row).zip(&mean[o..o + len]) {
                *s += (v.to_f64() - m).powi(2);
            }
        }
    });
    let stats: Vec<(f64, f64)> = mean.into_iter().zip(var).map(|(m, v)| (m, (v / n).sqrt() + 1e-9)).collect();
    rows.map_with(xs, &stats, ys, |v, (m, d)| T::from_f64((v.to_f64() - m) / d));
    Ok(())
}

/// `LpNormalization`: divides by the L1 or L2 norm along `axis`; a zero norm gives
/// zeros (as onnxruntime does) rather than NaN.
#[derive(Clone, Debug)]
pub struct LpNorm {
    pub axis: i64,
    pub p: i64,
}

pub(super) fn build_lp_norm(attrs: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
    let p = attrs.int_or("p", 2)?;
    if p != 1 && p != 2 {
        return Err(Attrs::unsupported("p", format!("must be 1 or 2, got {p}")));
    }
    Ok(Arc::new(LpNorm { axis: attrs.int_or("axis", -1)?, p }))
}

impl Op for LpNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        const OP: &str = "LpNormalization";
        let x = req(inputs, 0, OP)?;
        check_float(OP, x.dtype)?;
        normalize_axis(self.axis, x.rank()).map_err(|e| IrError::Shape(format!("{OP}: {e}")))?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        const OP: &str = "LpNormalization";
        let x = req_view(inputs, 0, OP)?;
        let axis = normalize_axis(self.axis, x.shape.len()).map_err(|e| IrError::Shape(format!("{OP}: {e}")))?;
        let y = first_output(outputs, OP)?;
        check_out_shape(y.shape, x.shape, OP)?;
        let dims = split_at(x.shape, axis)?;
        match x.dtype {
            DType::F32 => lp_norm::<f32>(x, y, dims, self.p),
            DType::F16 => lp_norm::<half::f16>(x, y, dims, self.p),
            dtype => Err(IrError::UnsupportedDType { op: OP.to_string(), dtype }),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn lp_norm<T: Elem>(x: View, y: &mut ViewMut, (outer, n, inner): (usize, usize, usize), p: i64) -> Result<()> {
    let xs = x.as_slice::<T>()?;
    check_len(xs.len(), x.shape, "input")?;
    let ys = y.as_slice_mut::<T>()?;
    check_len(ys.len(), x.shape, "output")?;
    let block = n * inner;
    if outer == 0 || block == 0 {
        return Ok(());
    }
    let mut norm = vec![0.0f64; inner];
    for (xb, yb) in xs.chunks_exact(block).zip(ys.chunks_exact_mut(block)) {
        norm.fill(0.0);
        for row in xb.chunks_exact(inner) {
            for (s, v) in norm.iter_mut().zip(row) {
                let v = v.to_f64();
                *s += if p == 1 { v.abs() } else { v * v };
            }
        }
        if p == 2 {
            norm.iter_mut().for_each(|s| *s = s.sqrt());
        }
        for (xrow, yrow) in xb.chunks_exact(inner).zip(yb.chunks_exact_mut(inner)) {
            for ((d, v), s) in yrow.iter_mut().zip(xrow).zip(&norm) {
                *d = T::from_f64(if *s == 0.0 { 0.0 } else { v.to_f64() / s });
            }
        }
    }
    Ok(())
}
