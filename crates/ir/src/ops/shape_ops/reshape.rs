//! Ops that change only the shape, never the element order: Reshape, Flatten, Squeeze,
//! Unsqueeze. Evaluation is a plain copy of the bytes.

use super::common::{check_view, fact, fact_i64s, out, req_fact_i64s, req_view_i64s, unique_axes, view_i64s};
use crate::ops::util::{req, req_view};
use crate::tensor::checked_numel;
use crate::{Attrs, Fact, IrError, Op, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// Copies input 0 into output 0 after checking the output has `shape`.
fn copy_as(inputs: &[Option<View>], outputs: &mut [ViewMut], shape: &[usize], op: &str) -> Result<()> {
    let x = req_view(inputs, 0, op)?;
    check_view(&x, op)?;
    out(outputs, 0, x.dtype, shape, op)?.data.copy_from_slice(x.data);
    Ok(())
}

/// `Reshape` with the target shape as a constant input: `0` copies the input's dim at
/// that position (unless `allowzero`, opset 14, makes it a real zero) and one `-1` is
/// inferred from the element count.
#[derive(Debug, Clone)]
pub struct Reshape {
    pub allowzero: bool,
}

impl Reshape {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        let allowzero = match a.int_or("allowzero", 0)? {
            0 => false,
            1 => true,
            v => return Err(Attrs::unsupported("allowzero", format!("must be 0 or 1, got {v}"))),
        };
        Ok(Arc::new(Reshape { allowzero }))
    }

    /// The output shape for an input of `input` dims and the requested `spec`.
    pub fn out_shape(&self, input: &[usize], spec: &[i64]) -> Result<Vec<usize>> {
        let bad = |msg: String| IrError::Shape(format!("Reshape of {input:?} to {spec:?}: {msg}"));
        let mut dims = Vec::with_capacity(spec.len());
        let mut infer_at = None;
        for (i, &s) in spec.iter().enumerate() {
            match s {
                -1 if infer_at.is_some() => return Err(bad("more than one -1".into())),
                -1 => {
                    infer_at = Some(i);
                    dims.push(1);
                }
                0 if !self.allowzero => {
                    dims.push(*input.get(i).ok_or_else(|| bad(format!("0 at position {i} has no input dim to copy")))?)
                }
                s if s >= 0 => dims.push(usize::try_from(s).map_err(|_| bad(format!("dim {s} is too large")))?),
                s => return Err(bad(format!("invalid dim {s}"))),
            }
        }
        if self.allowzero && infer_at.is_some() && spec.contains(&0) {
            return Err(bad("-1 cannot be combined with 0 when allowzero is set".into()));
        }
        let total = checked_numel(input)?;
        let known = checked_numel(&dims)?;
        if let Some(i) = infer_at {
            if known == 0 || total % known != 0 {
                return Err(bad(format!("cannot infer the -1 dim: {total} elements do not divide into {known}")));
            }
            dims[i] = total / known;
        } else if known != total {
            return Err(bad(format!("{total} elements cannot become {known}")));
        }
        Ok(dims)
    }
}

impl Op for Reshape {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Reshape")?;
        let spec = req_fact_i64s(inputs, 1, "Reshape", "the target shape")?;
        Ok(vec![fact(x.dtype, self.out_shape(&x.shape, &spec)?)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Reshape")?;
        let shape = self.out_shape(x.shape, &req_view_i64s(inputs, 1, "Reshape")?)?;
        copy_as(inputs, outputs, &shape, "Reshape")
    }
    fn const_inputs(&self) -> &[usize] {
        &[1]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `Flatten`: a 2-D view `[prod(dims[..axis]), prod(dims[axis..])]`; `axis` may be negative.
#[derive(Debug, Clone)]
pub struct Flatten {
    pub axis: i64,
}

impl Flatten {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Flatten { axis: a.int_or("axis", 1)? }))
    }

    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let r = input.len() as i64;
        let a = if self.axis < 0 { self.axis + r } else { self.axis };
        if !(0..=r).contains(&a) {
            return Err(IrError::Shape(format!("Flatten axis {} out of range for rank {r}", self.axis)));
        }
        let (head, tail) = input.split_at(a as usize);
        Ok(vec![checked_numel(head)?, checked_numel(tail)?])
    }
}

impl Op for Flatten {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Flatten")?;
        Ok(vec![fact(x.dtype, self.out_shape(&x.shape)?)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let shape = self.out_shape(req_view(inputs, 0, "Flatten")?.shape)?;
        copy_as(inputs, outputs, &shape, "Flatten")
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Where an op's axes come from: an attribute before opset 13, a constant input after.
#[derive(Debug, Clone)]
pub enum AxesSource {
    Attr(Option<Vec<i64>>),
    Input,
}

impl AxesSource {
    fn build(a: &Attrs, opset: i64) -> Result<AxesSource> {
        Ok(if opset >= 13 { AxesSource::Input } else { AxesSource::Attr(a.ints("axes")?.map(<[i64]>::to_vec)) })
    }
    fn const_inputs(&self) -> &'static [usize] {
        match self {
            AxesSource::Input => &[1],
            AxesSource::Attr(_) => &[],
        }
    }
    fn read_facts(&self, inputs: &[Option<&Fact>], op: &str) -> Result<Option<Vec<i64>>> {
        match self {
            AxesSource::Attr(a) => Ok(a.clone()),
            AxesSource::Input => fact_i64s(inputs, 1, op, "the axes"),
        }
    }
    fn read_views(&self, inputs: &[Option<View>]) -> Result<Option<Vec<i64>>> {
        match self {
            AxesSource::Attr(a) => Ok(a.clone()),
            AxesSource::Input => view_i64s(inputs, 1),
        }
    }
}

/// `Squeeze`: removes the listed size-1 axes, or every size-1 axis when none (or an empty
/// list, as onnxruntime reads it) are given.
#[derive(Debug, Clone)]
pub struct Squeeze {
    pub axes: AxesSource,
}

impl Squeeze {
    pub(crate) fn build(a: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Squeeze { axes: AxesSource::build(a, opset)? }))
    }

    pub fn out_shape(input: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>> {
        match axes.filter(|a| !a.is_empty()) {
            None => Ok(input.iter().copied().filter(|&d| d != 1).collect()),
            Some(axes) => {
                let axes = unique_axes(axes, input.len(), "Squeeze")?;
                let mut keep = vec![true; input.len()];
                for a in axes {
                    if input[a] != 1 {
                        return Err(IrError::Shape(format!("Squeeze axis {a} of shape {input:?} is not 1")));
                    }
                    keep[a] = false;
                }
                Ok(input.iter().zip(keep).filter(|(_, k)| *k).map(|(&d, _)| d).collect())
            }
        }
    }
}

impl Op for Squeeze {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Squeeze")?;
        let axes = self.axes.read_facts(inputs, "Squeeze")?;
        Ok(vec![fact(x.dtype, Self::out_shape(&x.shape, axes.as_deref())?)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Squeeze")?;
        let shape = Self::out_shape(x.shape, self.axes.read_views(inputs)?.as_deref())?;
        copy_as(inputs, outputs, &shape, "Squeeze")
    }
    fn const_inputs(&self) -> &[usize] {
        self.axes.const_inputs()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `Unsqueeze`: inserts size-1 axes at the listed positions of the output.
#[derive(Debug, Clone)]
pub struct Unsqueeze {
    pub axes: AxesSource,
}

impl Unsqueeze {
    pub(crate) fn build(a: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
        let axes = AxesSource::build(a, opset)?;
        if let AxesSource::Attr(None) = axes {
            return Err(Attrs::unsupported("axes", "Unsqueeze requires the axes attribute before opset 13"));
        }
        Ok(Arc::new(Unsqueeze { axes }))
    }

    pub fn out_shape(input: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>> {
        let axes = axes.ok_or_else(|| IrError::MissingInput { op: "Unsqueeze".into(), index: 1 })?;
        let rank = input.len() + axes.len();
        let axes = unique_axes(axes, rank, "Unsqueeze")?;
        let mut inserted = vec![false; rank];
        for a in axes {
            inserted[a] = true;
        }
        let mut dims = input.iter();
        Ok(inserted.into_iter().map(|ins| if ins { 1 } else { dims.next().copied().unwrap_or(1) }).collect())
    }
}

impl Op for Unsqueeze {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Unsqueeze")?;
        let axes = self.axes.read_facts(inputs, "Unsqueeze")?;
        Ok(vec![fact(x.dtype, Self::out_shape(&x.shape, axes.as_deref())?)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Unsqueeze")?;
        let shape = Self::out_shape(x.shape, self.axes.read_views(inputs)?.as_deref())?;
        copy_as(inputs, outputs, &shape, "Unsqueeze")
    }
    fn const_inputs(&self) -> &[usize] {
        self.axes.const_inputs()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
