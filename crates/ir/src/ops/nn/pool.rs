//! Pooling: MaxPool, AveragePool and LpPool over sliding windows, and their global forms.

use super::{check_float, f32_input, next_index, sat_numel, valid_range, with_f32_output, Geometry, WindowAttrs};
use crate::ops::util::{req, req_view};
use crate::ops::Op;
use crate::{dispatch_dtype, Attrs, DType, Elem, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// What a pool computes over its window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolKind {
    Max,
    Average {
        count_include_pad: bool,
    },
    /// The p-norm `(sum |x|^p)^(1/p)`.
    Lp {
        p: i32,
    },
}

impl PoolKind {
    fn name(self) -> &'static str {
        match self {
            PoolKind::Max => "MaxPool",
            PoolKind::Average { .. } => "AveragePool",
            PoolKind::Lp { .. } => "LpPool",
        }
    }
}

/// A pool over sliding windows (`MaxPool`, `AveragePool`, `LpPool`).
#[derive(Debug)]
pub struct Pool {
    pub kind: PoolKind,
    pub(super) window: WindowAttrs,
    pub kernel: Vec<usize>,
    pub ceil_mode: bool,
}

fn lp_p(attrs: &Attrs) -> Result<i32> {
    let p = attrs.int_or("p", 2)?;
    if !(1..=64).contains(&p) {
        return Err(Attrs::unsupported("p", format!("expected an exponent in 1..=64, found {p}")));
    }
    Ok(p as i32)
}

fn build_pool(kind: PoolKind, attrs: &Attrs) -> Result<Arc<dyn Op>> {
    let window = WindowAttrs::parse(attrs)?;
    let kernel = window
        .kernel_shape
        .clone()
        .ok_or_else(|| Attrs::unsupported("kernel_shape", format!("{} requires it", kind.name())))?;
    Ok(Arc::new(Pool { kind, window, kernel, ceil_mode: attrs.int_or("ceil_mode", 0)? != 0 }))
}

pub(super) fn build_max_pool(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    // storage_order only affects the optional Indices output, which is not supported
    // (a node asking for it fails inference with an output-count error).
    match attrs.int_or("storage_order", 0)? {
        0 | 1 => {}
        v => return Err(Attrs::unsupported("storage_order", format!("must be 0 or 1, found {v}"))),
    }
    build_pool(PoolKind::Max, attrs)
}

pub(super) fn build_average_pool(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    build_pool(PoolKind::Average { count_include_pad: attrs.int_or("count_include_pad", 0)? != 0 }, attrs)
}

pub(super) fn build_lp_pool(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    build_pool(PoolKind::Lp { p: lp_p(attrs)? }, attrs)
}

fn check_pool_dtype(kind: PoolKind, dtype: DType) -> Result<()> {
    match (kind, dtype) {
        (PoolKind::Max, DType::I8 | DType::U8) => Ok(()),
        _ => check_float(kind.name(), dtype),
    }
}

impl Pool {
    fn geometry(&self, x: &[usize]) -> Result<Geometry> {
        if x.len() < 3 {
            return Err(IrError::Shape(format!("{} needs an input [N, C, spatial...], got {x:?}", self.kind.name())));
        }
        self.window.resolve(&x[2..], &self.kernel, self.ceil_mode)
    }
}

impl Pool {
    /// The resolved window for input `x` (`[N, C, spatial...]`), for runtime kernels.
    pub fn resolve_window(&self, x: &[usize]) -> Result<super::ConvWindow> {
        let g = self.geometry(x)?;
        Ok(super::ConvWindow {
            strides: g.strides,
            dilations: g.dilations,
            pad_begin: g.pad_begin,
            pad_end: g.pad_end,
            out: g.out,
        })
    }
}

impl Op for Pool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, self.kind.name())?;
        check_pool_dtype(self.kind, x.dtype)?;
        let g = self.geometry(&x.shape)?;
        let mut shape = x.shape[..2].to_vec();
        shape.extend(&g.out);
        super::checked_len(&shape, "pool output")?;
        Ok(vec![Fact::new(x.dtype, shape)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let name = self.kind.name();
        let x = req_view(inputs, 0, name)?;
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph(format!("{name} has no output")))?;
        let g = self.geometry(x.shape)?;
        let planes = x.shape[0] * x.shape[1];
        let in_sp = &x.shape[2..];
        match self.kind {
            PoolKind::Max => {
                check_pool_dtype(self.kind, x.dtype)?;
                dispatch_dtype!(x.dtype, T => {
                    let xd = x.as_slice::<T>()?;
                    let y = out.as_slice_mut::<T>()?;
                    pool_planes(&g, in_sp, planes, |plane, offs, _| {
                        let xp = &xd[plane..];
                        let mut m = T::from_f64(f64::NEG_INFINITY);
                        for &o in offs {
                            if xp[o] > m {
                                m = xp[o];
                            }
                        }
                        m
                    }, y);
                });
                Ok(())
            }
            PoolKind::Average { count_include_pad } => {
                let xd = f32_input(name, &x)?;
                with_f32_output(name, out, |y| {
                    pool_planes(
                        &g,
                        in_sp,
                        planes,
                        |plane, offs, padded| {
                            let sum: f64 = offs.iter().map(|&o| xd[plane + o] as f64).sum();
                            let count = if count_include_pad { padded } else { offs.len() };
                            if count == 0 {
                                0.0
                            } else {
                                (sum / count as f64) as f32
                            }
                        },
                        y,
                    );
                    Ok(())
                })
            }
            PoolKind::Lp { p } => {
                let xd = f32_input(name, &x)?;
                with_f32_output(name, out, |y| {
                    pool_planes(&g, in_sp, planes, |plane, offs, _| lp_norm(offs.iter().map(|&o| xd[plane + o]), p), y);
                    Ok(())
                })
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn lp_norm(vals: impl Iterator<Item = f32>, p: i32) -> f32 {
    let sum: f64 = vals.map(|v| (v.abs() as f64).powi(p)).sum();
    sum.powf(1.0 / p as f64) as f32
}

/// Walks every output of every plane, calling `f(plane offset, window offsets, padded
/// count)`: the offsets of the window's taps that fall inside the input (relative to the
/// plane) and the number of taps inside the padded input (for `count_include_pad`).
fn pool_planes<T>(
    g: &Geometry,
    in_sp: &[usize],
    planes: usize,
    mut f: impl FnMut(usize, &[usize], usize) -> T,
    y: &mut [T],
) {
    let in_size = sat_numel(in_sp);
    let out_size = sat_numel(&g.out);
    if out_size == 0 {
        return;
    }
    let in_strides = crate::ops::util::strides(in_sp);
    let (mut offs, mut tmp) = (Vec::new(), Vec::new());
    let mut oidx = vec![0usize; in_sp.len()];
    for (plane, yp) in y.chunks_exact_mut(out_size).enumerate().take(planes) {
        oidx.fill(0);
        for yv in yp.iter_mut() {
            let padded = window_taps(g, in_sp, &in_strides, &oidx, &mut offs, &mut tmp);
            *yv = f(plane * in_size, &offs, padded);
            next_index(&mut oidx, &g.out);
        }
    }
}

/// Collects into `offs` the in-bounds taps of the window of output `oidx`, returning how
/// many taps lie inside the padded input.
fn window_taps(
    g: &Geometry,
    in_sp: &[usize],
    in_strides: &[usize],
    oidx: &[usize],
    offs: &mut Vec<usize>,
    tmp: &mut Vec<usize>,
) -> usize {
    offs.clear();
    offs.push(0);
    let mut padded = 1usize;
    for d in 0..in_sp.len() {
        let start = (oidx[d] * g.strides[d]) as i64 - g.pad_begin[d];
        // Taps j with start + j * dilation inside the input, and inside the padded input
        // (solved arithmetically: kernel sizes come from attributes and may be huge).
        let (lo, hi) = valid_range(start, g.dilations[d], in_sp[d], g.kernel[d]);
        let padded_len = (in_sp[d] as i64 + g.pad_begin[d] + g.pad_end[d]).max(0) as usize;
        let (plo, phi) = valid_range(start + g.pad_begin[d], g.dilations[d], padded_len, g.kernel[d]);
        tmp.clear();
        for j in lo..hi {
            let i = (start + (j * g.dilations[d]) as i64) as usize;
            tmp.extend(offs.iter().map(|&b| b + i * in_strides[d]));
        }
        std::mem::swap(offs, tmp);
        padded = padded.saturating_mul(phi - plo);
    }
    padded
}

/// A pool over each whole plane (`GlobalAveragePool`, `GlobalMaxPool`, `GlobalLpPool`).
#[derive(Debug)]
pub struct GlobalPool {
    pub kind: PoolKind,
}

pub(super) fn build_global_average_pool(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(GlobalPool { kind: PoolKind::Average { count_include_pad: false } }))
}

pub(super) fn build_global_max_pool(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(GlobalPool { kind: PoolKind::Max }))
}

pub(super) fn build_global_lp_pool(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(GlobalPool { kind: PoolKind::Lp { p: lp_p(attrs)? } }))
}

impl GlobalPool {
    fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "GlobalMaxPool",
            PoolKind::Average { .. } => "GlobalAveragePool",
            PoolKind::Lp { .. } => "GlobalLpPool",
        }
    }
}

impl Op for GlobalPool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, self.name())?;
        check_pool_dtype(self.kind, x.dtype)?;
        if x.shape.len() < 2 {
            return Err(IrError::Shape(format!("{} needs an input [N, C, ...], got {:?}", self.name(), x.shape)));
        }
        let mut shape = x.shape.clone();
        shape[2..].fill(1);
        Ok(vec![Fact::new(x.dtype, shape)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let name = self.name();
        let x = req_view(inputs, 0, name)?;
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph(format!("{name} has no output")))?;
        if x.shape.len() < 2 {
            return Err(IrError::Shape(format!("{name} needs an input [N, C, ...], got {:?}", x.shape)));
        }
        let size = sat_numel(&x.shape[2..]);
        match self.kind {
            PoolKind::Max => {
                check_pool_dtype(self.kind, x.dtype)?;
                dispatch_dtype!(x.dtype, T => {
                    let xd = x.as_slice::<T>()?;
                    let y = out.as_slice_mut::<T>()?;
                    for (i, yv) in y.iter_mut().enumerate() {
                        *yv = xd[i * size..][..size].iter().fold(T::from_f64(f64::NEG_INFINITY), |m, &v| if v > m { v } else { m });
                    }
                });
                Ok(())
            }
            PoolKind::Average { .. } => {
                let xd = f32_input(name, &x)?;
                with_f32_output(name, out, |y| {
                    for (i, yv) in y.iter_mut().enumerate() {
                        let sum: f64 = xd[i * size..][..size].iter().map(|&v| v as f64).sum();
                        *yv = if size == 0 { 0.0 } else { (sum / size as f64) as f32 };
                    }
                    Ok(())
                })
            }
            PoolKind::Lp { p } => {
                let xd = f32_input(name, &x)?;
                with_f32_output(name, out, |y| {
                    for (i, yv) in y.iter_mut().enumerate() {
                        *yv = lp_norm(xd[i * size..][..size].iter().copied(), p);
                    }
                    Ok(())
                })
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
