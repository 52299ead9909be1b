//! Conv and ConvTranspose over any number of spatial axes, by im2col / col2im around
//! the blocked GEMM.

use super::gemm::{sgemm, Mat};
use super::{
    check_float, checked_len, f32_input, next_index, sat_numel, valid_range, with_f32_output, AutoPad, Geometry,
    WindowAttrs,
};
use crate::ops::util::{req, req_view};
use crate::ops::Op;
use crate::{Attrs, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// The group count, checked positive.
fn group_attr(attrs: &Attrs) -> Result<usize> {
    let g = attrs.int_or("group", 1)?;
    if g < 1 {
        return Err(Attrs::unsupported("group", format!("must be >= 1, found {g}")));
    }
    usize::try_from(g).map_err(|_| Attrs::unsupported("group", "too large"))
}

/// The kernel's spatial shape from W, checked against the `kernel_shape` attribute.
fn kernel_from_weights(window: &WindowAttrs, w: &[usize]) -> Result<Vec<usize>> {
    let kernel = w[2..].to_vec();
    if let Some(ks) = &window.kernel_shape {
        if *ks != kernel {
            return Err(IrError::Shape(format!(
                "kernel_shape {ks:?} does not match the weights' spatial shape {kernel:?}"
            )));
        }
    }
    if kernel.contains(&0) {
        return Err(IrError::Shape(format!("weights of shape {w:?} have an empty kernel")));
    }
    Ok(kernel)
}

/// X, W and the optional B of a (transposed) convolution: a float X, and W and B of its dtype.
fn operand_facts<'a>(op: &str, inputs: &[Option<&'a Fact>]) -> Result<(&'a Fact, &'a Fact, Option<&'a Fact>)> {
    let (x, w) = (req(inputs, 0, op)?, req(inputs, 1, op)?);
    let b = inputs.get(2).copied().flatten();
    check_float(op, x.dtype)?;
    for f in [Some(w), b].into_iter().flatten() {
        if f.dtype != x.dtype {
            return Err(IrError::DType { expected: x.dtype.to_string(), found: f.dtype });
        }
    }
    Ok((x, w, b))
}

/// Checks the optional bias against the output channel count.
fn check_bias(op: &str, b: Option<&[usize]>, channels: usize) -> Result<()> {
    match b {
        Some(b) if b != [channels] => {
            Err(IrError::Shape(format!("{op}: bias of shape {b:?} does not match {channels} output channels")))
        }
        _ => Ok(()),
    }
}

/// Shapes of a convolution, validated.
#[derive(Debug)]
struct ConvPlan {
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
    in_spatial: Vec<usize>,
    geom: Geometry,
}

/// `Conv`: N-D grouped convolution with optional bias.
#[derive(Debug)]
pub struct Conv {
    pub(super) window: WindowAttrs,
    pub group: usize,
}

pub(super) fn build_conv(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(Conv { window: WindowAttrs::parse(attrs)?, group: group_attr(attrs)? }))
}

impl Conv {
    fn plan(&self, x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<ConvPlan> {
        if x.len() < 3 || w.len() != x.len() {
            return Err(IrError::Shape(format!(
                "Conv needs X [N, C, spatial...] and W of the same rank, got {x:?} and {w:?}"
            )));
        }
        let (c, m, g) = (x[1], w[0], self.group);
        if g > c.max(1) || c % g != 0 || w[1].checked_mul(g) != Some(c) || m % g != 0 {
            return Err(IrError::Shape(format!("Conv: input {x:?} and weights {w:?} do not fit group={g}")));
        }
        check_bias("Conv", b, m)?;
        let kernel = kernel_from_weights(&self.window, w)?;
        let geom = self.window.resolve(&x[2..], &kernel, false)?;
        let plan =
            ConvPlan { batch: x[0], in_channels: c, out_channels: m, groups: g, in_spatial: x[2..].to_vec(), geom };
        checked_len(&plan.out_shape(), "Conv output")?;
        checked_len(&plan.geom.out, "Conv output plane")?;
        checked_len(&plan.geom.kernel, "Conv kernel")?;
        // The im2col buffer of one group.
        checked_len(&[c / g, plan.kernel_size(), plan.out_size()], "Conv im2col buffer")?;
        Ok(plan)
    }
}

/// A convolution's resolved window, for runtime kernels that reimplement the op.
#[derive(Clone, Debug)]
pub struct ConvWindow {
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pad_begin: Vec<i64>,
    pub pad_end: Vec<i64>,
    /// Output spatial shape.
    pub out: Vec<usize>,
}

impl Conv {
    /// Validates X and W shapes like `infer` (bias aside) and resolves the window.
    pub fn resolve_window(&self, x: &[usize], w: &[usize]) -> Result<ConvWindow> {
        let g = self.plan(x, w, None)?.geom;
        Ok(ConvWindow {
            strides: g.strides,
            dilations: g.dilations,
            pad_begin: g.pad_begin,
            pad_end: g.pad_end,
            out: g.out,
        })
    }
}

impl ConvPlan {
    fn out_shape(&self) -> Vec<usize> {
        let mut s = vec![self.batch, self.out_channels];
        s.extend(&self.geom.out);
        s
    }
    fn kernel_size(&self) -> usize {
        sat_numel(&self.geom.kernel)
    }
    fn out_size(&self) -> usize {
        sat_numel(&self.geom.out)
    }
    fn in_size(&self) -> usize {
        sat_numel(&self.in_spatial)
    }
    /// A 1x1 kernel with unit strides and no padding: the input is its own im2col matrix.
    fn is_pointwise(&self) -> bool {
        let g = &self.geom;
        g.kernel.iter().all(|&k| k == 1)
            && g.strides.iter().all(|&s| s == 1)
            && g.pad_begin.iter().chain(&g.pad_end).all(|&p| p == 0)
    }
}

impl Op for Conv {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (x, w, b) = operand_facts("Conv", inputs)?;
        let plan = self.plan(&x.shape, &w.shape, b.map(|b| b.shape.as_slice()))?;
        Ok(vec![Fact::new(x.dtype, plan.out_shape())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let (x, w) = (req_view(inputs, 0, "Conv")?, req_view(inputs, 1, "Conv")?);
        let b = inputs.get(2).copied().flatten();
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph("Conv has no output".into()))?;
        let plan = self.plan(x.shape, w.shape, b.map(|b| b.shape))?;
        let (xd, wd) = (f32_input("Conv", &x)?, f32_input("Conv", &w)?);
        let bd = b.map(|b| f32_input("Conv", &b)).transpose()?;
        with_f32_output("Conv", out, |y| {
            conv_f32(&plan, &xd, &wd, bd.as_deref(), y);
            Ok(())
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Per image and group: `Y_g = W_g * im2col(X_g) + B`.
fn conv_f32(p: &ConvPlan, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (cg, mg) = (p.in_channels / p.groups, p.out_channels / p.groups);
    let (in_size, out_size, ksize) = (p.in_size(), p.out_size(), p.kernel_size());
    let kdim = cg * ksize;
    if y.is_empty() {
        return;
    }
    let pointwise = p.is_pointwise();
    let mut col = if pointwise { Vec::new() } else { vec![0f32; kdim * out_size] };
    for n in 0..p.batch {
        for g in 0..p.groups {
            let xg = &x[(n * p.in_channels + g * cg) * in_size..][..cg * in_size];
            let b_mat = if pointwise {
                xg
            } else {
                im2col(xg, cg, &p.in_spatial, &p.geom, &mut col);
                &col
            };
            let yg = &mut y[(n * p.out_channels + g * mg) * out_size..][..mg * out_size];
            for (m, row) in yg.chunks_exact_mut(out_size.max(1)).enumerate() {
                row.fill(bias.map_or(0.0, |b| b[g * mg + m]));
            }
            let a = Mat { data: &w[g * mg * kdim..], rs: kdim, cs: 1 };
            sgemm(mg, out_size, kdim, 1.0, a, Mat { data: b_mat, rs: out_size, cs: 1 }, yg, out_size);
        }
    }
}

/// Fills `col` (`[channels * kernel_size, out_size]`) with the input patches: row
/// `(c, k)` holds, for every output position, the input under kernel tap `k` (0 in padding).
fn im2col(x: &[f32], channels: usize, in_sp: &[usize], g: &Geometry, col: &mut [f32]) {
    let nd = in_sp.len();
    let last = nd - 1;
    let in_size = sat_numel(in_sp);
    let out_size = sat_numel(&g.out);
    let (ol, il) = (g.out[last], in_sp[last]);
    if out_size == 0 {
        return;
    }
    let in_strides = crate::ops::util::strides(in_sp);
    let mut kidx = vec![0usize; nd];
    let mut oidx = vec![0usize; nd];
    let mut rows = col.chunks_exact_mut(out_size);
    for c in 0..channels {
        let xc = &x[c * in_size..][..in_size];
        kidx.fill(0);
        loop {
            let Some(row) = rows.next() else { return };
            let off = (kidx[last] * g.dilations[last]) as i64 - g.pad_begin[last];
            let (lo, hi) = valid_range(off, g.strides[last], il, ol);
            oidx.fill(0);
            for seg in row.chunks_exact_mut(ol) {
                // Offset of the segment's row in the input, unless it falls in the padding.
                let mut base = Some(0usize);
                for d in 0..last {
                    let i = (oidx[d] * g.strides[d] + kidx[d] * g.dilations[d]) as i64 - g.pad_begin[d];
                    if i < 0 || i >= in_sp[d] as i64 {
                        base = None;
                        break;
                    }
                    base = base.map(|b| b + i as usize * in_strides[d]);
                }
                match base {
                    Some(b) if lo < hi => {
                        seg[..lo].fill(0.0);
                        seg[hi..].fill(0.0);
                        let s = g.strides[last];
                        // lo * s + off >= 0 by construction of the valid range.
                        let start = (b as i64 + lo as i64 * s as i64 + off) as usize;
                        if s == 1 {
                            seg[lo..hi].copy_from_slice(&xc[start..start + (hi - lo)]);
                        } else {
                            for (dst, src) in seg[lo..hi].iter_mut().zip(xc[start..].iter().step_by(s)) {
                                *dst = *src;
                            }
                        }
                    }
                    _ => seg.fill(0.0),
                }
                next_index(&mut oidx[..last], &g.out[..last]);
            }
            if !next_index(&mut kidx, &g.kernel) {
                break;
            }
        }
    }
}

/// `ConvTranspose`: the gradient of Conv with respect to its input, with
/// `output_padding` / `output_shape` choosing the output size.
#[derive(Debug)]
pub struct ConvTranspose {
    pub(super) window: WindowAttrs,
    pub group: usize,
    pub output_padding: Option<Vec<usize>>,
    pub output_shape: Option<Vec<usize>>,
}

pub(super) fn build_conv_transpose(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(ConvTranspose {
        window: WindowAttrs::parse(attrs)?,
        group: group_attr(attrs)?,
        output_padding: super::window_ints(attrs, "output_padding", 0)?,
        output_shape: super::window_ints(attrs, "output_shape", 0)?,
    }))
}

impl ConvTranspose {
    fn plan(&self, x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<ConvPlan> {
        if x.len() < 3 || w.len() != x.len() {
            return Err(IrError::Shape(format!(
                "ConvTranspose needs X [N, C, spatial...] and W of the same rank, got {x:?} and {w:?}"
            )));
        }
        let (c, g) = (x[1], self.group);
        if g > c.max(1) || w[0] != c || c % g != 0 {
            return Err(IrError::Shape(format!("ConvTranspose: input {x:?} and weights {w:?} do not fit group={g}")));
        }
        let m =
            w[1].checked_mul(g).ok_or_else(|| IrError::Shape(format!("ConvTranspose: weights {w:?} are too large")))?;
        check_bias("ConvTranspose", b, m)?;
        let kernel = kernel_from_weights(&self.window, w)?;
        let nd = kernel.len();
        let in_sp = &x[2..];
        let mut geom = Geometry {
            kernel: kernel.clone(),
            strides: WindowAttrs::per_axis("strides", &self.window.strides, nd, 1)?,
            dilations: WindowAttrs::per_axis("dilations", &self.window.dilations, nd, 1)?,
            pad_begin: vec![0; nd],
            pad_end: vec![0; nd],
            out: vec![0; nd],
        };
        let out_pad = WindowAttrs::per_axis("output_padding", &self.output_padding, nd, 0)?;
        // output_shape may be given with or without the N and C dimensions.
        let requested = match &self.output_shape {
            None => None,
            Some(s) if s.len() == nd => Some(s.clone()),
            Some(s) if s.len() == nd + 2 => Some(s[2..].to_vec()),
            Some(s) => return Err(IrError::Shape(format!("output_shape {s:?} does not match {nd} spatial axes"))),
        };
        let pads = WindowAttrs::per_axis("pads", &self.window.pads, 2 * nd, 0)?;
        let too_big = || IrError::Shape(format!("ConvTranspose of {x:?} with weights {w:?} is too large"));
        for i in 0..nd {
            let (s, d, k) = (geom.strides[i] as i64, geom.dilations[i] as i64, kernel[i] as i64);
            let len = in_sp[i] as i64;
            if len == 0 {
                return Err(IrError::Shape(format!("ConvTranspose: empty spatial axis in {x:?}")));
            }
            // The size of the full (unpadded) result along this axis.
            let natural = s
                .checked_mul(len - 1)
                .and_then(|v| v.checked_add(out_pad[i] as i64))
                .and_then(|v| v.checked_add((k - 1).checked_mul(d)?))
                .and_then(|v| v.checked_add(1))
                .filter(|&v| v < i64::MAX / 4)
                .ok_or_else(too_big)?;
            let target = match (&requested, self.window.auto_pad) {
                (Some(r), _) => Some(r[i] as i64),
                (None, AutoPad::SameUpper | AutoPad::SameLower) => Some(len.checked_mul(s).ok_or_else(too_big)?),
                _ => None,
            };
            let (pb, pe, out) = match target {
                Some(t) => {
                    let split = if self.window.auto_pad == AutoPad::SameUpper {
                        AutoPad::SameUpper
                    } else {
                        AutoPad::SameLower
                    };
                    let (pb, pe) = split.split(natural - t);
                    (pb, pe, t)
                }
                None if self.window.auto_pad == AutoPad::Valid => (0, 0, natural),
                None => {
                    let (pb, pe) = (pads[i] as i64, pads[nd + i] as i64);
                    (pb, pe, natural - pb - pe)
                }
            };
            if out <= 0 {
                return Err(IrError::Shape(format!("ConvTranspose: pads leave no output on spatial axis {i}")));
            }
            geom.pad_begin[i] = pb;
            geom.pad_end[i] = pe;
            geom.out[i] = out as usize;
        }
        let plan =
            ConvPlan { batch: x[0], in_channels: c, out_channels: m, groups: g, in_spatial: in_sp.to_vec(), geom };
        checked_len(&plan.out_shape(), "ConvTranspose output")?;
        checked_len(&plan.geom.out, "ConvTranspose output plane")?;
        checked_len(&plan.geom.kernel, "ConvTranspose kernel")?;
        checked_len(&[m / g, plan.kernel_size(), plan.in_size()], "ConvTranspose column buffer")?;
        Ok(plan)
    }
}

impl ConvTranspose {
    /// Validates X and W shapes like `infer` (bias aside) and resolves the window
    /// (`pad_begin` and `out` after `output_padding` / `output_shape` / `auto_pad`).
    pub fn resolve_window(&self, x: &[usize], w: &[usize]) -> Result<ConvWindow> {
        let g = self.plan(x, w, None)?.geom;
        Ok(ConvWindow {
            strides: g.strides,
            dilations: g.dilations,
            pad_begin: g.pad_begin,
            pad_end: g.pad_end,
            out: g.out,
        })
    }
}

impl Op for ConvTranspose {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (x, w, b) = operand_facts("ConvTranspose", inputs)?;
        let plan = self.plan(&x.shape, &w.shape, b.map(|b| b.shape.as_slice()))?;
        Ok(vec![Fact::new(x.dtype, plan.out_shape())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let (x, w) = (req_view(inputs, 0, "ConvTranspose")?, req_view(inputs, 1, "ConvTranspose")?);
        let b = inputs.get(2).copied().flatten();
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph("ConvTranspose has no output".into()))?;
        let plan = self.plan(x.shape, w.shape, b.map(|b| b.shape))?;
        let (xd, wd) = (f32_input("ConvTranspose", &x)?, f32_input("ConvTranspose", &w)?);
        let bd = b.map(|b| f32_input("ConvTranspose", &b)).transpose()?;
        with_f32_output("ConvTranspose", out, |y| {
            conv_transpose_f32(&plan, &xd, &wd, bd.as_deref(), y);
            Ok(())
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Per image and group: `col = W_g^T * X_g`, then every column entry is added to the
/// output position its input position and kernel tap map to (col2im).
fn conv_transpose_f32(p: &ConvPlan, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (cg, mg) = (p.in_channels / p.groups, p.out_channels / p.groups);
    let (in_size, out_size, ksize) = (p.in_size(), p.out_size(), p.kernel_size());
    if y.is_empty() {
        return;
    }
    let rows = mg * ksize;
    let mut col = vec![0f32; rows * in_size];
    for n in 0..p.batch {
        for g in 0..p.groups {
            let xg = &x[(n * p.in_channels + g * cg) * in_size..][..cg * in_size];
            // W_g is [cg, mg * ksize]; its transpose has row stride 1 and column stride mg * ksize.
            let a = Mat { data: &w[g * cg * rows..], rs: 1, cs: rows };
            col.fill(0.0);
            sgemm(rows, in_size, cg, 1.0, a, Mat { data: xg, rs: in_size, cs: 1 }, &mut col, in_size);
            let yg = &mut y[(n * p.out_channels + g * mg) * out_size..][..mg * out_size];
            for (m, plane) in yg.chunks_exact_mut(out_size).enumerate() {
                plane.fill(bias.map_or(0.0, |b| b[g * mg + m]));
                col2im_add(&col[m * ksize * in_size..][..ksize * in_size], &p.in_spatial, &p.geom, plane);
            }
        }
    }
}

/// Adds the `[kernel_size, in_size]` columns of one output channel into its plane.
fn col2im_add(col: &[f32], in_sp: &[usize], g: &Geometry, plane: &mut [f32]) {
    let nd = in_sp.len();
    let last = nd - 1;
    let in_size = sat_numel(in_sp);
    let (il, ol) = (in_sp[last], g.out[last]);
    let out_strides = crate::ops::util::strides(&g.out);
    let mut kidx = vec![0usize; nd];
    let mut iidx = vec![0usize; nd];
    for row in col.chunks_exact(in_size) {
        let off = (kidx[last] * g.dilations[last]) as i64 - g.pad_begin[last];
        let (lo, hi) = valid_range(off, g.strides[last], ol, il);
        iidx.fill(0);
        for seg in row.chunks_exact(il) {
            let mut base = Some(0usize);
            for d in 0..last {
                let o = (iidx[d] * g.strides[d] + kidx[d] * g.dilations[d]) as i64 - g.pad_begin[d];
                if o < 0 || o >= g.out[d] as i64 {
                    base = None;
                    break;
                }
                base = base.map(|b| b + o as usize * out_strides[d]);
            }
            if let Some(b) = base.filter(|_| lo < hi) {
                let s = g.strides[last];
                let start = (b as i64 + lo as i64 * s as i64 + off) as usize;
                for (v, dst) in seg[lo..hi].iter().zip(plane[start..].iter_mut().step_by(s)) {
                    *dst += v;
                }
            }
            next_index(&mut iidx[..last], &in_sp[..last]);
        }
        next_index(&mut kidx, &g.kernel);
    }
}
