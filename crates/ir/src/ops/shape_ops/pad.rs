//! `Pad` in constant, reflect, edge and wrap modes; negative pads crop.

use super::common::{check_view, fact, fact_i64s, out, same_dtype, view_i64s};
use super::copy::{elems, elems_mut, with_elem_size};
use crate::ops::util::{req, req_view};
use crate::{Attrs, DType, Fact, IrError, Op, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// How `Pad` fills the border.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    Constant,
    /// Mirror without repeating the edge element (numpy `reflect`).
    Reflect,
    /// Repeat the edge element.
    Edge,
    /// Wrap around (opset 19).
    Wrap,
}

/// `Pad`: `pads` (`[begin_0, begin_1, …, end_0, end_1, …]`) is an attribute before opset 11
/// and a constant input after, optionally restricted to `axes` (input 3, opset 18). The
/// constant is the `value` attribute before opset 11, else the optional input 2.
#[derive(Debug, Clone)]
pub struct Pad {
    pub mode: PadMode,
    /// The `pads` attribute (before opset 11); `None` when pads is an input.
    pub pads_attr: Option<Vec<i64>>,
    /// The `value` attribute (before opset 11).
    pub value_attr: f32,
}

impl Pad {
    pub(crate) fn build(a: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
        let mode = match a.string_or("mode", "constant")? {
            "constant" => PadMode::Constant,
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            "wrap" => PadMode::Wrap,
            m => return Err(Attrs::unsupported("mode", format!("must be constant, reflect, edge or wrap, got {m:?}"))),
        };
        let pads_attr = if opset < 11 {
            // opset 1 called it `paddings`
            let p = a.ints("pads")?.or(a.ints("paddings")?);
            Some(p.ok_or_else(|| Attrs::unsupported("pads", "is required before opset 11"))?.to_vec())
        } else {
            None
        };
        Ok(Arc::new(Pad { mode, pads_attr, value_attr: a.float_or("value", 0.0)? }))
    }

    /// Per-axis `(begin, end)` pads for an input of `shape`.
    pub fn resolve(shape: &[usize], pads: &[i64], axes: Option<&[i64]>) -> Result<Vec<(i64, i64)>> {
        let rank = shape.len();
        let axes = match axes {
            Some(a) => super::common::unique_axes(a, rank, "Pad")?,
            None => (0..rank).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(IrError::Shape(format!("Pad: {} pads for {} axes of {shape:?}", pads.len(), axes.len())));
        }
        let mut out = vec![(0, 0); rank];
        for (k, &a) in axes.iter().enumerate() {
            out[a] = (pads[k], pads[k + axes.len()]);
        }
        Ok(out)
    }

    /// The output shape, checking that pads are usable in this mode.
    pub fn out_shape(&self, shape: &[usize], pads: &[(i64, i64)]) -> Result<Vec<usize>> {
        shape
            .iter()
            .zip(pads)
            .map(|(&d, &(b, e))| {
                let n = (d as i128) + b as i128 + e as i128;
                let n = usize::try_from(n).map_err(|_| {
                    IrError::Shape(format!("Pad: pads {pads:?} give a negative or huge dim for {shape:?}"))
                })?;
                if d == 0 && n > 0 && self.mode != PadMode::Constant {
                    return Err(IrError::Shape(format!(
                        "Pad: {:?} mode cannot pad an empty axis of {shape:?}",
                        self.mode
                    )));
                }
                Ok(n)
            })
            .collect()
    }

    /// For one axis of input size `d`, the input index each output index reads, or -1 for
    /// the constant.
    fn axis_map(&self, d: usize, begin: i64, n: usize) -> Vec<isize> {
        let d = d as isize;
        (0..n as isize)
            .map(|o| {
                let i = o - begin as isize;
                if (0..d).contains(&i) {
                    return i;
                }
                match self.mode {
                    PadMode::Constant => -1,
                    PadMode::Edge => i.clamp(0, d - 1),
                    PadMode::Wrap => i.rem_euclid(d),
                    PadMode::Reflect if d == 1 => 0,
                    PadMode::Reflect => {
                        let period = 2 * (d - 1);
                        let m = i.rem_euclid(period);
                        if m < d {
                            m
                        } else {
                            period - m
                        }
                    }
                }
            })
            .collect()
    }

    fn pads_from_facts(&self, inputs: &[Option<&Fact>], shape: &[usize]) -> Result<Vec<(i64, i64)>> {
        match &self.pads_attr {
            Some(p) => Self::resolve(shape, p, None),
            None => {
                let pads = fact_i64s(inputs, 1, "Pad", "the pads")?
                    .ok_or_else(|| IrError::MissingInput { op: "Pad".into(), index: 1 })?;
                Self::resolve(shape, &pads, fact_i64s(inputs, 3, "Pad", "the axes")?.as_deref())
            }
        }
    }

    /// The fill value as the bytes of one element of `dtype`.
    fn constant_bytes(&self, inputs: &[Option<View>], dtype: DType) -> Result<Vec<u8>> {
        if self.pads_attr.is_some() {
            let v = self.value_attr as f64;
            return Ok(crate::dispatch_dtype!(dtype, T => {
                let x = <T as crate::Elem>::from_f64(v);
                bytemuck::bytes_of(&x).to_vec()
            }));
        }
        match inputs.get(2).copied().flatten() {
            Some(v) if !v.data.is_empty() => {
                same_dtype(dtype, v.dtype, "Pad constant_value (same type as the data)")?;
                if v.len() != 1 {
                    return Err(IrError::Shape(format!(
                        "Pad constant_value must be a scalar, has shape {:?}",
                        v.shape
                    )));
                }
                Ok(v.data[..dtype.size()].to_vec())
            }
            _ => Ok(vec![0; dtype.size()]),
        }
    }
}

impl Op for Pad {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Pad")?;
        if let Some(c) = inputs.get(2).copied().flatten().filter(|_| self.pads_attr.is_none()) {
            same_dtype(x.dtype, c.dtype, "Pad constant_value (same type as the data)")?;
        }
        let pads = self.pads_from_facts(inputs, &x.shape)?;
        Ok(vec![fact(x.dtype, self.out_shape(&x.shape, &pads)?)?])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Pad")?;
        check_view(&x, "Pad")?;
        let pads = match &self.pads_attr {
            Some(p) => Self::resolve(x.shape, p, None)?,
            None => {
                let p = view_i64s(inputs, 1)?.ok_or_else(|| IrError::MissingInput { op: "Pad".into(), index: 1 })?;
                Self::resolve(x.shape, &p, view_i64s(inputs, 3)?.as_deref())?
            }
        };
        let shape = self.out_shape(x.shape, &pads)?;
        let value = self.constant_bytes(inputs, x.dtype)?;
        let o = out(outputs, 0, x.dtype, &shape, "Pad")?;
        if o.data.is_empty() {
            return Ok(());
        }
        let maps: Vec<Vec<isize>> =
            x.shape.iter().zip(&pads).zip(&shape).map(|((&d, &(b, _)), &n)| self.axis_map(d, b, n)).collect();
        let st = crate::ops::util::strides(x.shape);
        with_elem_size!(x.dtype.size(), T => {
            let src = elems::<T>(x.data)?;
            let dst = elems_mut::<T>(o.data)?;
            let fill: T = elems::<T>(&value)?[0];
            pad_rows(src, dst, &maps, &st, &shape, fill);
            Ok(())
        })
    }

    fn const_inputs(&self) -> &[usize] {
        if self.pads_attr.is_some() {
            &[]
        } else {
            &[1, 3]
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Fills `dst` (shape `shape`) row by row: outer axes pick a source row through their
/// maps (or the constant), the last axis maps element by element.
fn pad_rows<T: Copy>(src: &[T], dst: &mut [T], maps: &[Vec<isize>], st: &[usize], shape: &[usize], fill: T) {
    let Some((inner_map, outer_maps)) = maps.split_last() else {
        // rank 0: nothing to pad
        dst[0] = src[0];
        return;
    };
    let outer_shape = &shape[..shape.len() - 1];
    let mut idx = vec![0usize; outer_shape.len()];
    for row in dst.chunks_exact_mut(inner_map.len().max(1)) {
        let mut base = Some(0usize);
        for (k, &i) in idx.iter().enumerate() {
            let m = outer_maps[k][i];
            base = base.and_then(|b| if m < 0 { None } else { Some(b + m as usize * st[k]) });
        }
        match base {
            None => row.fill(fill),
            Some(b) => {
                for (d, &m) in row.iter_mut().zip(inner_map) {
                    *d = if m < 0 { fill } else { src[b + m as usize] };
                }
            }
        }
        for k in (0..outer_shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < outer_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}
