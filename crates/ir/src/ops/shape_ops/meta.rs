//! Ops that produce values from shapes or attributes: Shape, Size, Constant,
//! ConstantOfShape, Range, EyeLike.

use super::common::{fact, out, req_fact_i64s, same_dtype, to_dims};
use super::copy::fill;
use crate::ops::util::{req, req_view};
use crate::{AttrValue, Attrs, DType, Elem, Fact, IrError, Op, Result, Tensor, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// `Shape`: the input's dimensions as int64, optionally sliced by `start`/`end` (opset 15).
/// The result is known at build time, so inference returns it as a value and shape
/// subgraphs fold away.
#[derive(Debug, Clone)]
pub struct Shape {
    pub start: i64,
    pub end: Option<i64>,
}

impl Shape {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Shape { start: a.int_or("start", 0)?, end: a.int("end")? }))
    }

    fn dims(&self, shape: &[usize]) -> Vec<i64> {
        let r = shape.len() as i64;
        let clamp = |v: i64| (if v < 0 { v.saturating_add(r) } else { v }).clamp(0, r) as usize;
        let (s, e) = (clamp(self.start), clamp(self.end.unwrap_or(r)));
        shape.get(s..e.max(s)).unwrap_or(&[]).iter().map(|&d| d as i64).collect()
    }
}

impl Op for Shape {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Shape")?;
        let dims = self.dims(&x.shape);
        Ok(vec![Fact::constant(Arc::new(Tensor::from_slice(&[dims.len()], &dims)?))])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Shape")?;
        let dims = self.dims(x.shape);
        let o = out(outputs, 0, DType::I64, &[dims.len()], "Shape")?;
        o.data.copy_from_slice(bytemuck::cast_slice(&dims));
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `Size`: the input's element count as an int64 scalar, known at build time.
#[derive(Debug, Clone)]
pub struct Size;

impl Size {
    pub(crate) fn build(_a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Size))
    }
}

impl Op for Size {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Size")?;
        Ok(vec![Fact::constant(Arc::new(Tensor::scalar(x.numel() as i64)))])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let n = req_view(inputs, 0, "Size")?.len() as i64;
        out(outputs, 0, DType::I64, &[], "Size")?.data.copy_from_slice(&n.to_le_bytes());
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `Constant`: a value given as an attribute. Importers usually turn these into
/// initializers, but the op exists for graphs (and tests) that use it.
#[derive(Debug, Clone)]
pub struct Constant {
    pub value: Arc<Tensor>,
}

impl Constant {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        let mut found: Vec<(&str, Tensor)> = Vec::new();
        for (name, v) in &a.0 {
            let t = match (name.as_str(), v) {
                ("value", AttrValue::Tensor(t)) => t.clone(),
                ("value_float", AttrValue::Float(f)) => Tensor::scalar(*f),
                ("value_floats", AttrValue::Floats(f)) => Tensor::from_slice(&[f.len()], f)?,
                ("value_int", AttrValue::Int(i)) => Tensor::scalar(*i),
                ("value_ints", AttrValue::Ints(i)) => Tensor::from_slice(&[i.len()], i)?,
                ("value" | "value_float" | "value_floats" | "value_int" | "value_ints", v) => {
                    return Err(Attrs::unsupported(name, format!("has the wrong kind of value {v:?}")))
                }
                (other, _) => {
                    return Err(Attrs::unsupported(
                        other,
                        "is not supported on Constant (Sinter has no sparse or string tensors)",
                    ))
                }
            };
            found.push((name, t));
        }
        match found.len() {
            1 => Ok(Arc::new(Constant { value: Arc::new(found.remove(0).1) })),
            0 => Err(Attrs::unsupported("value", "Constant needs exactly one value attribute, found none")),
            _ => Err(Attrs::unsupported(
                found[1].0,
                format!(
                    "Constant needs exactly one value attribute, found {:?}",
                    found.iter().map(|f| f.0).collect::<Vec<_>>()
                ),
            )),
        }
    }
}

impl Op for Constant {
    fn infer(&self, _inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        Ok(vec![Fact::constant(self.value.clone())])
    }
    fn eval(&self, _inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let o = out(outputs, 0, self.value.dtype(), self.value.shape(), "Constant")?;
        o.data.copy_from_slice(self.value.bytes());
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `ConstantOfShape`: a tensor of the shape given by the (constant) input, filled with the
/// one-element `value` attribute (float 0 by default).
#[derive(Debug, Clone)]
pub struct ConstantOfShape {
    pub value: Tensor,
}

impl ConstantOfShape {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        let value = match a.tensor("value")? {
            None => Tensor::scalar(0f32),
            Some(t) if t.len() == 1 => t.clone(),
            Some(t) => {
                return Err(Attrs::unsupported(
                    "value",
                    format!("must hold exactly one element, has shape {:?}", t.shape()),
                ))
            }
        };
        Ok(Arc::new(ConstantOfShape { value }))
    }

    fn out_shape(values: &[i64]) -> Result<Vec<usize>> {
        to_dims(values, "ConstantOfShape's shape input")
    }
}

impl Op for ConstantOfShape {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let s = req(inputs, 0, "ConstantOfShape")?;
        if s.rank() != 1 {
            return Err(IrError::Shape(format!("ConstantOfShape's shape input must be 1-D, has shape {:?}", s.shape)));
        }
        let values = req_fact_i64s(inputs, 0, "ConstantOfShape", "the output shape")?;
        Ok(vec![fact(self.value.dtype(), Self::out_shape(&values)?)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let values = super::common::req_view_i64s(inputs, 0, "ConstantOfShape")?;
        let shape = Self::out_shape(&values)?;
        let o = out(outputs, 0, self.value.dtype(), &shape, "ConstantOfShape")?;
        fill(o.data, self.value.bytes())
    }
    fn const_inputs(&self) -> &[usize] {
        &[0]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `Range`: `start, start + delta, …` up to (excluding) `limit`. The length depends on
/// the values, so all three inputs must be constant; the op then folds at build time.
#[derive(Debug, Clone)]
pub struct Range;

impl Range {
    pub(crate) fn build(_a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Range))
    }

    /// The output, computed from the three scalar inputs.
    fn compute(start: &Tensor, limit: &Tensor, delta: &Tensor) -> Result<Tensor> {
        let dtype = start.dtype();
        for (t, what) in [(start, "start"), (limit, "limit"), (delta, "delta")] {
            same_dtype(dtype, t.dtype(), &format!("Range {what} (all inputs share one type)"))?;
            if t.len() != 1 {
                return Err(IrError::Shape(format!("Range {what} must be a scalar, has shape {:?}", t.shape())));
            }
        }
        match dtype {
            DType::F32 | DType::F16 => {
                let (s, l, d) = (start.to_f64_vec()[0], limit.to_f64_vec()[0], delta.to_f64_vec()[0]);
                if d == 0.0 || !d.is_finite() || !s.is_finite() || !l.is_finite() {
                    return Err(IrError::Data(format!(
                        "Range start {s}, limit {l}, delta {d} do not give a finite range"
                    )));
                }
                let n = ((l - s) / d).ceil().max(0.0);
                if n > (u32::MAX as f64) {
                    return Err(IrError::Shape(format!("Range of {n} elements is too large")));
                }
                let n = n as usize;
                crate::dispatch_dtype!(dtype, T => {
                    let v: Vec<T> = (0..n).map(|i| T::from_f64(s + i as f64 * d)).collect();
                    Tensor::from_vec(&[n], v)
                })
            }
            DType::I8 | DType::U8 | DType::I32 | DType::I64 => {
                let (s, l, d) = (start.to_i64_vec()?[0], limit.to_i64_vec()?[0], delta.to_i64_vec()?[0]);
                if d == 0 {
                    return Err(IrError::Data("Range delta must not be zero".into()));
                }
                let (s128, span, d128) = (s as i128, l as i128 - s as i128, d as i128);
                // ceil(span / d) for either sign of d
                let n = if (span > 0) == (d > 0) && span != 0 { (span + d128 - d128.signum()) / d128 } else { 0 };
                if n > u32::MAX as i128 {
                    return Err(IrError::Shape(format!("Range of {n} elements is too large")));
                }
                let vals = (0..n).map(move |i| s128 + i * d128);
                match dtype {
                    DType::I64 => Tensor::from_vec(&[n as usize], vals.map(|v| v as i64).collect::<Vec<_>>()),
                    DType::I32 => Tensor::from_vec(&[n as usize], vals.map(|v| v as i32).collect::<Vec<_>>()),
                    DType::I8 => Tensor::from_vec(&[n as usize], vals.map(|v| v as i8).collect::<Vec<_>>()),
                    _ => Tensor::from_vec(&[n as usize], vals.map(|v| v as u8).collect::<Vec<_>>()),
                }
            }
            DType::Bool => Err(IrError::UnsupportedDType { op: "Range".into(), dtype }),
        }
    }
}

impl Op for Range {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let mut vals = Vec::with_capacity(3);
        for (i, what) in ["start", "limit", "delta"].iter().enumerate() {
            let f = req(inputs, i, "Range")?;
            let v = f.value.as_ref().ok_or_else(|| IrError::NotConstant {
                op: "Range".into(),
                index: i,
                what: format!("{what}; the output length depends on it"),
            })?;
            vals.push(v.clone());
        }
        let t = Self::compute(&vals[0], &vals[1], &vals[2])?;
        Ok(vec![Fact::constant(Arc::new(t))])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let t = |i| req_view(inputs, i, "Range").map(|v| v.to_tensor());
        let r = Self::compute(&t(0)?, &t(1)?, &t(2)?)?;
        out(outputs, 0, r.dtype(), r.shape(), "Range")?.data.copy_from_slice(r.bytes());
        Ok(())
    }
    fn const_inputs(&self) -> &[usize] {
        &[0, 1, 2]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `EyeLike`: ones on the `k`th diagonal of a 2-D tensor shaped like the input.
#[derive(Debug, Clone)]
pub struct EyeLike {
    /// Output dtype; the input's when `None`.
    pub dtype: Option<DType>,
    pub k: i64,
}

impl EyeLike {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        let dtype = match a.int("dtype")? {
            None => None,
            Some(code) => Some(i32::try_from(code).ok().and_then(DType::from_onnx).ok_or_else(|| {
                Attrs::unsupported("dtype", format!("type {} is not supported", DType::onnx_name(code as i32)))
            })?),
        };
        Ok(Arc::new(EyeLike { dtype, k: a.int_or("k", 0)? }))
    }
}

impl Op for EyeLike {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "EyeLike")?;
        if x.rank() != 2 {
            return Err(IrError::Shape(format!("EyeLike needs a 2-D input, got shape {:?}", x.shape)));
        }
        Ok(vec![fact(self.dtype.unwrap_or(x.dtype), x.shape.clone())?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "EyeLike")?;
        let o = out(outputs, 0, self.dtype.unwrap_or(x.dtype), x.shape, "EyeLike")?;
        let (rows, cols) = match *x.shape {
            [r, c] => (r as i64, c as i64),
            _ => return Err(IrError::Shape(format!("EyeLike needs a 2-D input, got shape {:?}", x.shape))),
        };
        o.data.fill(0);
        let dtype = o.dtype;
        crate::dispatch_dtype!(dtype, T => {
            let s = o.as_slice_mut::<T>()?;
            for i in 0..rows {
                let j = i.saturating_add(self.k);
                if (0..cols).contains(&j) {
                    s[(i * cols + j) as usize] = T::from_f64(1.0);
                }
            }
        });
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
