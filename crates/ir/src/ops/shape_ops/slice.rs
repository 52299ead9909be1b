//! Ops that cut tensors apart or join them along an axis: Slice, Split, Concat.

use super::common::{check_view, fact, fact_i64s, out, same_dtype, unique_axes, view_i64s};
use super::copy::{istrides, strided_copy};
use crate::ops::util::{normalize_axis, req, req_view};
use crate::tensor::checked_numel;
use crate::{Attrs, Fact, IrError, Op, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// `Slice`: `starts`, `ends`, optional `axes` and `steps` (attributes before opset 10,
/// constant inputs after). Negative starts/ends count from the end, out-of-range values
/// clamp, and negative steps walk backwards.
#[derive(Debug, Clone)]
pub struct Slice {
    /// The attributes before opset 10; `None` when the parameters are inputs.
    pub attrs: Option<SliceAttrs>,
}

/// Slice parameters given as attributes (before opset 10).
#[derive(Debug, Clone)]
pub struct SliceAttrs {
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub axes: Option<Vec<i64>>,
}

/// Where a slice reads: output shape, first element and per-axis strides (in elements).
#[derive(Debug, Clone, PartialEq)]
pub struct SlicePlan {
    pub shape: Vec<usize>,
    pub base: usize,
    pub strides: Vec<isize>,
}

impl Slice {
    pub(crate) fn build(a: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
        let attrs = if opset < 10 {
            let need = |n: &str| {
                a.ints(n)?.map(<[i64]>::to_vec).ok_or_else(|| Attrs::unsupported(n, "is required before opset 10"))
            };
            Some(SliceAttrs {
                starts: need("starts")?,
                ends: need("ends")?,
                // an empty list means the default, as in the reference implementation
                axes: a.ints("axes")?.filter(|a| !a.is_empty()).map(<[i64]>::to_vec),
            })
        } else {
            None
        };
        Ok(Arc::new(Slice { attrs }))
    }

    /// Resolves the slice parameters against an input shape (ONNX clamping rules).
    pub fn plan(
        input: &[usize],
        starts: &[i64],
        ends: &[i64],
        axes: Option<&[i64]>,
        steps: Option<&[i64]>,
    ) -> Result<SlicePlan> {
        let n = starts.len();
        let bad = |msg: &str| IrError::Shape(format!("Slice of {input:?}: {msg}"));
        if ends.len() != n || axes.is_some_and(|a| a.len() != n) || steps.is_some_and(|s| s.len() != n) {
            return Err(bad(&format!(
                "starts ({n}), ends ({}), axes ({:?}) and steps ({:?}) must have the same length",
                ends.len(),
                axes.map(<[i64]>::len),
                steps.map(<[i64]>::len)
            )));
        }
        let axes = match axes {
            Some(a) => unique_axes(a, input.len(), "Slice")?,
            None if n <= input.len() => (0..n).collect(),
            None => return Err(bad(&format!("{n} starts for rank {}", input.len()))),
        };
        let st = istrides(input);
        let mut plan = SlicePlan { shape: input.to_vec(), base: 0, strides: st.clone() };
        for (k, &a) in axes.iter().enumerate() {
            let step = steps.map_or(1, |s| s[k]) as i128;
            if step == 0 {
                return Err(bad("steps must not be zero"));
            }
            let d = input[a] as i128;
            let norm = |v: i64| if v < 0 { v as i128 + d } else { v as i128 };
            let (mut s, mut e) = (norm(starts[k]), norm(ends[k]));
            let len = if d == 0 {
                0
            } else if step > 0 {
                s = s.clamp(0, d);
                e = e.clamp(0, d);
                if e > s {
                    (e - s - 1) / step + 1
                } else {
                    0
                }
            } else {
                s = s.clamp(0, d - 1);
                e = e.clamp(-1, d - 1);
                if s > e {
                    (s - e - 1) / -step + 1
                } else {
                    0
                }
            };
            plan.shape[a] = len as usize;
            if len > 0 {
                plan.base += s as usize * st[a] as usize;
            }
            plan.strides[a] = if len > 1 { st[a] * step as isize } else { 0 };
        }
        Ok(plan)
    }

    fn plan_from(&self, input: &[usize], vals: [Option<Vec<i64>>; 4]) -> Result<SlicePlan> {
        let [starts, ends, axes, steps] = vals;
        let starts = starts.ok_or_else(|| IrError::MissingInput { op: "Slice".into(), index: 1 })?;
        let ends = ends.ok_or_else(|| IrError::MissingInput { op: "Slice".into(), index: 2 })?;
        Self::plan(input, &starts, &ends, axes.as_deref(), steps.as_deref())
    }
}

impl Op for Slice {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Slice")?;
        let plan = match &self.attrs {
            Some(a) => Self::plan(&x.shape, &a.starts, &a.ends, a.axes.as_deref(), None)?,
            None => {
                let f = |i, what| fact_i64s(inputs, i, "Slice", what);
                self.plan_from(&x.shape, [f(1, "starts")?, f(2, "ends")?, f(3, "axes")?, f(4, "steps")?])?
            }
        };
        Ok(vec![fact(x.dtype, plan.shape)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Slice")?;
        check_view(&x, "Slice")?;
        let plan = match &self.attrs {
            Some(a) => Self::plan(x.shape, &a.starts, &a.ends, a.axes.as_deref(), None)?,
            None => {
                let f = |i| view_i64s(inputs, i);
                self.plan_from(x.shape, [f(1)?, f(2)?, f(3)?, f(4)?])?
            }
        };
        let o = out(outputs, 0, x.dtype, &plan.shape, "Slice")?;
        strided_copy(x.dtype.size(), x.data, plan.base, &plan.shape, &plan.strides, o.data)
    }
    fn const_inputs(&self) -> &[usize] {
        if self.attrs.is_some() {
            &[]
        } else {
            &[1, 2, 3, 4]
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `Split`: cuts the input along `axis` into parts given by `split` (an attribute before
/// opset 13, a constant input after) or into `num_outputs` near-equal parts, the last one
/// smaller. Before opset 18 the equal split follows the node's output count, which the
/// node itself does not pass to the op: importers set `num_outputs` for it.
#[derive(Debug, Clone)]
pub struct Split {
    pub axis: i64,
    /// The `split` attribute (before opset 13).
    pub split_attr: Option<Vec<i64>>,
    /// Whether `split` is input 1 (opset 13 on).
    pub split_input: bool,
    pub num_outputs: Option<usize>,
}

impl Split {
    pub(crate) fn build(a: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
        let num_outputs = match a.int("num_outputs")? {
            None => None,
            Some(n) => Some(
                usize::try_from(n)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| Attrs::unsupported("num_outputs", format!("must be positive, got {n}")))?,
            ),
        };
        let split_attr = if opset < 13 { a.ints("split")?.map(<[i64]>::to_vec) } else { None };
        Ok(Arc::new(Split { axis: a.int_or("axis", 0)?, split_attr, split_input: opset >= 13, num_outputs }))
    }

    /// The axis and the size of each part for an input of `shape`.
    pub fn parts(&self, shape: &[usize], split: Option<&[i64]>) -> Result<(usize, Vec<usize>)> {
        let axis = normalize_axis(self.axis, shape.len())?;
        let dim = shape[axis];
        let sizes = match (split, self.num_outputs) {
            (Some(s), n) => {
                let sizes = super::common::to_dims(s, "Split's split")?;
                let total = sizes.iter().try_fold(0usize, |a, &b| a.checked_add(b));
                if total != Some(dim) {
                    return Err(IrError::Shape(format!("Split sizes {s:?} do not add up to dim {dim} of {shape:?}")));
                }
                if n.is_some_and(|n| n != sizes.len()) {
                    return Err(IrError::Shape(format!("Split has {} sizes but num_outputs {n:?}", sizes.len())));
                }
                sizes
            }
            (None, Some(n)) => {
                let chunk = dim.div_ceil(n);
                let last = dim.checked_sub(chunk * (n - 1)).ok_or_else(|| {
                    IrError::Shape(format!("Split: dim {dim} of {shape:?} cannot be split into {n} parts"))
                })?;
                let mut sizes = vec![chunk; n];
                sizes[n - 1] = last;
                sizes
            }
            (None, None) => {
                return Err(IrError::Unsupported(
                    "Split without 'split' sizes needs the number of outputs (the num_outputs attribute)".into(),
                ))
            }
        };
        Ok((axis, sizes))
    }

    fn split_from_facts(&self, inputs: &[Option<&Fact>]) -> Result<Option<Vec<i64>>> {
        if self.split_input {
            fact_i64s(inputs, 1, "Split", "the split sizes")
        } else {
            Ok(self.split_attr.clone())
        }
    }
}

impl Op for Split {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Split")?;
        let (axis, sizes) = self.parts(&x.shape, self.split_from_facts(inputs)?.as_deref())?;
        sizes
            .into_iter()
            .map(|n| {
                let mut s = x.shape.clone();
                s[axis] = n;
                fact(x.dtype, s)
            })
            .collect()
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Split")?;
        check_view(&x, "Split")?;
        let split = if self.split_input { view_i64s(inputs, 1)? } else { self.split_attr.clone() };
        let (axis, sizes) = self.parts(x.shape, split.as_deref())?;
        let outer = checked_numel(&x.shape[..axis])?;
        let inner = checked_numel(&x.shape[axis + 1..])? * x.dtype.size();
        let row = x.shape[axis] * inner;
        let mut offset = 0;
        for (k, &n) in sizes.iter().enumerate() {
            let mut shape = x.shape.to_vec();
            shape[axis] = n;
            if k >= outputs.len() {
                break; // trailing outputs the graph does not use
            }
            let o = out(outputs, k, x.dtype, &shape, "Split")?;
            let chunk = n * inner;
            if chunk > 0 {
                for (i, dst) in o.data.chunks_exact_mut(chunk).enumerate().take(outer) {
                    let s = i * row + offset;
                    dst.copy_from_slice(&x.data[s..s + chunk]);
                }
            }
            offset += chunk;
        }
        Ok(())
    }
    fn const_inputs(&self) -> &[usize] {
        if self.split_input {
            &[1]
        } else {
            &[]
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `Concat`: joins inputs of equal rank along `axis`; other dims must match.
#[derive(Debug, Clone)]
pub struct Concat {
    pub axis: i64,
}

impl Concat {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        let axis = a.int("axis")?.ok_or_else(|| Attrs::unsupported("axis", "is required"))?;
        Ok(Arc::new(Concat { axis }))
    }

    /// The axis and output shape for inputs of the given shapes.
    pub fn out_shape(&self, shapes: &[&[usize]]) -> Result<(usize, Vec<usize>)> {
        let first = shapes.first().ok_or_else(|| IrError::MissingInput { op: "Concat".into(), index: 0 })?;
        let axis = normalize_axis(self.axis, first.len())?;
        let mut out = first.to_vec();
        out[axis] = 0;
        for s in shapes {
            let compatible =
                s.len() == first.len() && s.iter().zip(first.iter()).enumerate().all(|(i, (a, b))| i == axis || a == b);
            if !compatible {
                return Err(IrError::Shape(format!("Concat on axis {axis}: shapes {shapes:?} do not match")));
            }
            out[axis] = out[axis]
                .checked_add(s[axis])
                .ok_or_else(|| IrError::Shape(format!("Concat of {shapes:?} is too large")))?;
        }
        Ok((axis, out))
    }
}

impl Op for Concat {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let facts = (0..inputs.len()).map(|i| req(inputs, i, "Concat")).collect::<Result<Vec<_>>>()?;
        let shapes: Vec<&[usize]> = facts.iter().map(|f| f.shape.as_slice()).collect();
        let (_, shape) = self.out_shape(&shapes)?;
        let dtype = facts[0].dtype;
        for f in &facts {
            same_dtype(dtype, f.dtype, "Concat input")?;
        }
        Ok(vec![fact(dtype, shape)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let views = (0..inputs.len()).map(|i| req_view(inputs, i, "Concat")).collect::<Result<Vec<_>>>()?;
        let shapes: Vec<&[usize]> = views.iter().map(|v| v.shape).collect();
        let (axis, shape) = self.out_shape(&shapes)?;
        let dtype = views[0].dtype;
        for v in &views {
            same_dtype(dtype, v.dtype, "Concat input")?;
            check_view(v, "Concat")?;
        }
        let o = out(outputs, 0, dtype, &shape, "Concat")?;
        let outer = checked_numel(&shape[..axis])?;
        let chunks: Vec<usize> = views.iter().map(|v| v.data.len() / outer.max(1)).collect();
        let row: usize = chunks.iter().sum();
        if row == 0 {
            return Ok(());
        }
        for (i, dst) in o.data.chunks_exact_mut(row).enumerate() {
            let mut at = 0;
            for (v, &c) in views.iter().zip(&chunks) {
                dst[at..at + c].copy_from_slice(&v.data[i * c..(i + 1) * c]);
                at += c;
            }
        }
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
