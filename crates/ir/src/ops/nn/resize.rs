//! Resize (opsets 10-19+) and the deprecated Upsample (opsets 7-9).
//!
//! The output size and the per-axis coordinate mapping are computed once per axis: each
//! output coordinate becomes a list of (input index, weight) taps, or "extrapolate".
//! Nearest mode then gathers; linear and cubic apply the taps one axis at a time (the
//! N-D interpolations are separable). Where onnxruntime and the onnx reference
//! implementation disagree (align_corners and tf_crop_and_resize with a fractional
//! `scale * in`, pytorch_half_pixel with one output), this follows the spec text and
//! onnxruntime: coordinates use the integer output length.

use super::checked_len;
use crate::ops::util::{const_f64s, const_i64s, normalize_axis, req, req_view};
use crate::ops::Op;
use crate::{dispatch_dtype, Attrs, Elem, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Nearest,
    Linear,
    Cubic,
}

/// How an output coordinate maps back to an input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordMode {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
    /// Opset 11 only.
    TfHalfPixelForNn,
}

/// How nearest mode rounds an input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Opsets <= 10 (and Upsample): truncate when upsampling, ceil when downsampling,
    /// as onnxruntime does.
    Legacy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AspectPolicy {
    Stretch,
    NotLarger,
    NotSmaller,
}

/// Where the scales, sizes and roi come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// Upsample opset 7-8: scales attribute, one input.
    ScalesAttr(Vec<f64>),
    /// Upsample 9 and Resize 10: inputs `[X, scales]`.
    ScalesInput,
    /// Resize 11+: inputs `[X, roi, scales, sizes]`.
    Full,
}

/// `Resize` and `Upsample`.
#[derive(Debug)]
pub struct Resize {
    pub layout: Layout,
    pub mode: Mode,
    pub coord: CoordMode,
    pub nearest: NearestMode,
    pub cubic_a: f64,
    pub exclude_outside: bool,
    pub extrapolation: f64,
    pub antialias: bool,
    pub axes: Option<Vec<i64>>,
    pub aspect: AspectPolicy,
}

fn parse_mode(attrs: &Attrs) -> Result<Mode> {
    match attrs.string_or("mode", "nearest")? {
        "nearest" => Ok(Mode::Nearest),
        "linear" | "bilinear" => Ok(Mode::Linear),
        "cubic" => Ok(Mode::Cubic),
        m => Err(Attrs::unsupported("mode", format!("unknown mode '{m}'"))),
    }
}

pub(super) fn build_resize(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    let mode = parse_mode(attrs)?;
    if opset <= 10 {
        return Ok(Arc::new(Resize::legacy(mode, Layout::ScalesInput)));
    }
    let coord = match attrs.string_or("coordinate_transformation_mode", "half_pixel")? {
        "half_pixel" => CoordMode::HalfPixel,
        "half_pixel_symmetric" => CoordMode::HalfPixelSymmetric,
        "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
        "align_corners" => CoordMode::AlignCorners,
        "asymmetric" => CoordMode::Asymmetric,
        "tf_crop_and_resize" => CoordMode::TfCropAndResize,
        "tf_half_pixel_for_nn" => CoordMode::TfHalfPixelForNn,
        m => return Err(Attrs::unsupported("coordinate_transformation_mode", format!("unknown mode '{m}'"))),
    };
    let nearest = match attrs.string_or("nearest_mode", "round_prefer_floor")? {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        m => return Err(Attrs::unsupported("nearest_mode", format!("unknown mode '{m}'"))),
    };
    let aspect = match attrs.string_or("keep_aspect_ratio_policy", "stretch")? {
        "stretch" => AspectPolicy::Stretch,
        "not_larger" => AspectPolicy::NotLarger,
        "not_smaller" => AspectPolicy::NotSmaller,
        m => return Err(Attrs::unsupported("keep_aspect_ratio_policy", format!("unknown policy '{m}'"))),
    };
    let extrapolation = attrs.float_or("extrapolation_value", 0.0)? as f64;
    let cubic_a = attrs.float_or("cubic_coeff_a", -0.75)? as f64;
    if !cubic_a.is_finite() {
        return Err(Attrs::unsupported("cubic_coeff_a", "must be finite"));
    }
    Ok(Arc::new(Resize {
        layout: Layout::Full,
        mode,
        coord,
        nearest,
        cubic_a,
        exclude_outside: attrs.int_or("exclude_outside", 0)? != 0,
        extrapolation,
        antialias: attrs.int_or("antialias", 0)? != 0,
        axes: attrs.ints("axes")?.map(|a| a.to_vec()),
        aspect,
    }))
}

pub(super) fn build_upsample(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    let mode = parse_mode(attrs)?;
    if mode == Mode::Cubic {
        return Err(Attrs::unsupported("mode", "Upsample supports nearest and linear"));
    }
    let layout = match attrs.floats("scales")? {
        Some(s) if opset < 9 => Layout::ScalesAttr(s.iter().map(|&v| v as f64).collect()),
        None if opset < 9 => return Err(Attrs::unsupported("scales", "Upsample before opset 9 requires it")),
        _ => Layout::ScalesInput,
    };
    Ok(Arc::new(Resize::legacy(mode, layout)))
}

impl Resize {
    /// The fixed behaviour of Upsample and Resize-10: asymmetric coordinates.
    fn legacy(mode: Mode, layout: Layout) -> Resize {
        Resize {
            layout,
            mode,
            coord: CoordMode::Asymmetric,
            nearest: NearestMode::Legacy,
            cubic_a: -0.75,
            exclude_outside: false,
            extrapolation: 0.0,
            antialias: false,
            axes: None,
            aspect: AspectPolicy::Stretch,
        }
    }

    fn name(&self) -> &'static str {
        match self.layout {
            Layout::Full => "Resize",
            _ => "Upsample/Resize",
        }
    }
}

/// The taps of one axis: for output coordinate `x`, `idx[x * n..][..n]` with `weight`s,
/// or extrapolation when `extrapolate[x]`.
#[derive(Debug)]
struct AxisTaps {
    n: usize,
    idx: Vec<usize>,
    weight: Vec<f64>,
    extrapolate: Vec<bool>,
}

impl AxisTaps {
    /// True when the axis maps every output coordinate to the same input one.
    fn is_identity(&self, in_len: usize) -> bool {
        self.extrapolate.len() == in_len
            && !self.extrapolate.iter().any(|&e| e)
            && (0..in_len).all(|x| {
                let (idx, w) = (&self.idx[x * self.n..][..self.n], &self.weight[x * self.n..][..self.n]);
                idx.iter().zip(w).all(|(&i, &w)| w == 0.0 || (i == x && w == 1.0))
            })
    }
}

/// The resolved resize: output shape and the taps of every axis.
#[derive(Debug)]
struct Plan {
    out_shape: Vec<usize>,
    taps: Vec<AxisTaps>,
}

/// Keys' cubic convolution kernel with parameter `a`.
fn cubic_kernel(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

impl Resize {
    /// Scales (or sizes), roi and output shape for input `x`. Empty scales/sizes/roi
    /// tensors count as absent, as in ONNX.
    fn plan(
        &self,
        x: &[usize],
        roi: Option<Vec<f64>>,
        scales: Option<Vec<f64>>,
        sizes: Option<Vec<i64>>,
    ) -> Result<Plan> {
        let name = self.name();
        let rank = x.len();
        let scales = match &self.layout {
            Layout::ScalesAttr(s) => Some(s.clone()),
            _ => scales.filter(|s| !s.is_empty()),
        };
        let sizes = sizes.filter(|s| !s.is_empty());
        let roi = roi.filter(|r| !r.is_empty());
        let axes: Vec<usize> = match &self.axes {
            None => (0..rank).collect(),
            Some(a) => {
                let axes = a.iter().map(|&v| normalize_axis(v, rank)).collect::<Result<Vec<_>>>()?;
                for (i, v) in axes.iter().enumerate() {
                    if axes[..i].contains(v) {
                        return Err(Attrs::unsupported("axes", format!("axis {v} is repeated in {a:?}")));
                    }
                }
                axes
            }
        };
        let n = axes.len();
        let mut scale = vec![1.0f64; rank];
        let mut out = x.to_vec();
        match (scales, sizes) {
            (Some(_), Some(_)) => {
                return Err(IrError::Data(format!("{name}: only one of scales and sizes may be given")))
            }
            (None, None) => return Err(IrError::Data(format!("{name}: one of scales and sizes is required"))),
            (Some(s), None) => {
                if s.len() != n {
                    return Err(IrError::Shape(format!("{name}: {} scales for {n} axes", s.len())));
                }
                for (&d, &sv) in axes.iter().zip(&s) {
                    if !(sv > 0.0 && sv.is_finite()) {
                        return Err(IrError::Data(format!("{name}: scales must be positive, found {s:?}")));
                    }
                    scale[d] = sv;
                    let o = (x[d] as f64 * sv).floor();
                    if o >= (1u64 << 40) as f64 {
                        return Err(IrError::Shape(format!("{name}: output of scales {s:?} on {x:?} is too large")));
                    }
                    out[d] = o as usize;
                }
            }
            (None, Some(sz)) => {
                if sz.len() != n {
                    return Err(IrError::Shape(format!("{name}: {} sizes for {n} axes", sz.len())));
                }
                let sz = sz
                    .iter()
                    .map(|&v| usize::try_from(v).map_err(|_| IrError::Data(format!("{name}: negative size in {sz:?}"))))
                    .collect::<Result<Vec<_>>>()?;
                let ratio = |d: usize, s: usize| if x[d] == 0 { 1.0 } else { s as f64 / x[d] as f64 };
                match self.aspect {
                    AspectPolicy::Stretch => {
                        for (&d, &s) in axes.iter().zip(&sz) {
                            scale[d] = ratio(d, s);
                            out[d] = s;
                        }
                    }
                    policy => {
                        let ratios = axes.iter().zip(&sz).map(|(&d, &s)| ratio(d, s));
                        let r = if policy == AspectPolicy::NotLarger {
                            ratios.fold(f64::INFINITY, f64::min)
                        } else {
                            ratios.fold(0.0, f64::max)
                        };
                        for &d in &axes {
                            scale[d] = r;
                            // round half up
                            out[d] = (r * x[d] as f64 + 0.5).floor() as usize;
                        }
                    }
                }
                for &d in &axes {
                    if x[d] == 0 && out[d] != 0 {
                        return Err(IrError::Shape(format!(
                            "{name}: cannot resize an empty axis {d} of {x:?} to {}",
                            out[d]
                        )));
                    }
                    if scale[d] <= 0.0 && out[d] != 0 {
                        return Err(IrError::Shape(format!("{name}: sizes {sz:?} on {x:?} give a zero scale")));
                    }
                }
            }
        }
        let total = checked_len(&out, "Resize output")?;
        // roi per axis (start, end), in normalized coordinates; only tf_crop_and_resize reads it.
        let mut roi_axis = vec![(0.0, 1.0); rank];
        if self.coord == CoordMode::TfCropAndResize {
            let r = roi.ok_or_else(|| IrError::Data(format!("{name}: tf_crop_and_resize needs the roi input")))?;
            if r.len() != 2 * n {
                return Err(IrError::Shape(format!("{name}: roi has {} values for {n} axes", r.len())));
            }
            for (i, &d) in axes.iter().enumerate() {
                roi_axis[d] = (r[i], r[n + i]);
            }
        }
        // An empty output needs no taps (and its other axes may be huge).
        let taps = if total == 0 {
            Vec::new()
        } else {
            (0..rank).map(|d| self.axis_taps(x[d], out[d], scale[d], roi_axis[d])).collect::<Result<Vec<_>>>()?
        };
        Ok(Plan { out_shape: out, taps })
    }

    /// The input coordinate of output coordinate `x` on an axis.
    fn source_coord(&self, x: f64, in_len: usize, out_len: usize, scale: f64, roi: (f64, f64)) -> f64 {
        let (inl, outl) = (in_len as f64, out_len as f64);
        match self.coord {
            CoordMode::HalfPixel => (x + 0.5) / scale - 0.5,
            CoordMode::HalfPixelSymmetric => {
                let adjustment = outl / (scale * inl);
                let offset = inl / 2.0 * (1.0 - adjustment);
                offset + (x + 0.5) / scale - 0.5
            }
            CoordMode::PytorchHalfPixel => {
                if out_len > 1 {
                    (x + 0.5) / scale - 0.5
                } else {
                    0.0
                }
            }
            CoordMode::AlignCorners => {
                if out_len > 1 {
                    x * (inl - 1.0) / (outl - 1.0)
                } else {
                    0.0
                }
            }
            CoordMode::Asymmetric => x / scale,
            CoordMode::TfHalfPixelForNn => (x + 0.5) / scale,
            CoordMode::TfCropAndResize => {
                let (start, end) = roi;
                if out_len > 1 {
                    start * (inl - 1.0) + x * (end - start) * (inl - 1.0) / (outl - 1.0)
                } else {
                    0.5 * (start + end) * (inl - 1.0)
                }
            }
        }
    }

    fn axis_taps(&self, in_len: usize, out_len: usize, scale: f64, roi: (f64, f64)) -> Result<AxisTaps> {
        // Antialiasing stretches the filter by 1/scale when downsampling.
        let aa = if self.antialias && self.mode != Mode::Nearest { scale.min(1.0) } else { 1.0 };
        // Taps lie at offsets `first..first + n` from the base index: 1 - n/2 ..= n/2.
        let reach = match self.mode {
            Mode::Nearest => 0.0,
            Mode::Linear => 1.0 / aa,
            Mode::Cubic => 2.0 / aa,
        };
        let first = (-reach).floor() + 1.0;
        if first < -2048.0 {
            return Err(IrError::Unsupported(format!(
                "antialiased resize by scale {scale} needs too many taps per output"
            )));
        }
        let (first, n) =
            if self.mode == Mode::Nearest { (0, 1) } else { (first as i64, (2 - 2 * first as i64) as usize) };
        let mut t = AxisTaps {
            n,
            idx: Vec::with_capacity(out_len * n),
            weight: Vec::with_capacity(out_len * n),
            extrapolate: Vec::with_capacity(out_len),
        };
        let last = in_len.saturating_sub(1) as i64;
        let clamp = |i: i64| i.clamp(0, last) as usize;
        let mut w = vec![0f64; n];
        for xo in 0..out_len {
            let xi = self.source_coord(xo as f64, in_len, out_len, scale, roi);
            let outside =
                !xi.is_finite() || (self.coord == CoordMode::TfCropAndResize && (xi < 0.0 || xi > last as f64));
            t.extrapolate.push(outside || in_len == 0);
            if outside || in_len == 0 {
                t.idx.resize(t.idx.len() + n, 0);
                t.weight.resize(t.weight.len() + n, 0.0);
                continue;
            }
            if self.mode == Mode::Nearest {
                let f = xi.floor();
                let i = match self.nearest {
                    NearestMode::RoundPreferFloor => {
                        if xi - f == 0.5 {
                            f
                        } else {
                            xi.round()
                        }
                    }
                    NearestMode::RoundPreferCeil => {
                        if xi - f == 0.5 {
                            f + 1.0
                        } else {
                            xi.round()
                        }
                    }
                    NearestMode::Floor => f,
                    NearestMode::Ceil => xi.ceil(),
                    NearestMode::Legacy => {
                        if scale < 1.0 {
                            xi.ceil()
                        } else {
                            xi.trunc()
                        }
                    }
                };
                t.idx.push(clamp(i as i64));
                t.weight.push(1.0);
                continue;
            }
            // Base index and ratio in (0, 1]: an exact coordinate sits at the end of
            // the interval to its left, as in the ONNX reference.
            let mut base = xi.floor();
            if base == xi {
                base -= 1.0;
            }
            let ratio = xi - base;
            let base = base as i64;
            for (j, wv) in w.iter_mut().enumerate() {
                let off = (first + j as i64) as f64;
                *wv = match self.mode {
                    Mode::Linear => (1.0 - ((off - ratio) * aa).abs()).max(0.0),
                    _ => cubic_kernel((off - ratio) * aa, self.cubic_a),
                };
            }
            if self.exclude_outside {
                for (j, wv) in w.iter_mut().enumerate() {
                    let i = base + first + j as i64;
                    if i < 0 || i > last {
                        *wv = 0.0;
                    }
                }
            }
            if self.antialias || self.exclude_outside {
                let sum: f64 = w.iter().sum();
                if sum != 0.0 {
                    w.iter_mut().for_each(|v| *v /= sum);
                }
            }
            for (j, &wv) in w.iter().enumerate() {
                t.idx.push(clamp(base + first + j as i64));
                t.weight.push(wv);
            }
        }
        Ok(t)
    }

    /// The plan from facts at build time (roi, scales and sizes must be constants).
    fn plan_from_facts<'a>(&self, inputs: &[Option<&'a Fact>]) -> Result<(Plan, &'a Fact)> {
        let name = self.name();
        let x = req(inputs, 0, name)?;
        let (roi, scales, sizes) = match self.layout {
            Layout::ScalesAttr(_) => (None, None, None),
            Layout::ScalesInput => (
                None,
                Some(
                    const_f64s(inputs, 1, name, "scales")?
                        .ok_or(IrError::MissingInput { op: name.into(), index: 1 })?,
                ),
                None,
            ),
            Layout::Full => (
                const_f64s(inputs, 1, name, "roi")?,
                const_f64s(inputs, 2, name, "scales")?,
                const_i64s(inputs, 3, name, "sizes")?,
            ),
        };
        Ok((self.plan(&x.shape, roi, scales, sizes)?, x))
    }
}

impl Resize {
    /// For a nearest-mode resize that never extrapolates: per axis, the input index of
    /// every output coordinate (`None` for other modes). Lets a runtime kernel gather
    /// without recomputing coordinates on every run.
    pub fn nearest_indices(&self, inputs: &[Option<&Fact>]) -> Result<Option<Vec<Vec<usize>>>> {
        if self.mode != Mode::Nearest {
            return Ok(None);
        }
        let (plan, _) = self.plan_from_facts(inputs)?;
        if plan.taps.iter().any(|t| t.n != 1 || t.extrapolate.iter().any(|&e| e)) {
            return Ok(None);
        }
        Ok(Some(plan.taps.into_iter().map(|t| t.idx).collect()))
    }
}

impl Op for Resize {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (plan, x) = self.plan_from_facts(inputs)?;
        Ok(vec![Fact::new(x.dtype, plan.out_shape)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let name = self.name();
        let x = req_view(inputs, 0, name)?;
        let input = |i: usize| inputs.get(i).copied().flatten();
        let (roi, scales, sizes) = match self.layout {
            Layout::ScalesAttr(_) => (None, None, None),
            Layout::ScalesInput => (None, Some(req_view(inputs, 1, name)?.to_f64_vec()), None),
            Layout::Full => (
                input(1).map(|v| v.to_f64_vec()),
                input(2).map(|v| v.to_f64_vec()),
                input(3).map(|v| v.to_i64_vec()).transpose()?,
            ),
        };
        let plan = self.plan(x.shape, roi, scales, sizes)?;
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph(format!("{name} has no output")))?;
        if plan.out_shape.contains(&0) {
            return Ok(());
        }
        if self.mode == Mode::Nearest {
            dispatch_dtype!(x.dtype, T => gather::<T>(&plan, x.shape, x.as_slice::<T>()?, T::from_f64(self.extrapolation), out.as_slice_mut::<T>()?));
        } else {
            dispatch_dtype!(x.dtype, T => {
                let data: Vec<f64> = x.as_slice::<T>()?.iter().map(|v| v.to_f64()).collect();
                let res = interpolate(&plan, x.shape, data, self.extrapolation);
                for (o, v) in out.as_slice_mut::<T>()?.iter_mut().zip(res) {
                    *o = T::from_f64(v);
                }
            });
        }
        Ok(())
    }

    fn const_inputs(&self) -> &[usize] {
        match self.layout {
            Layout::ScalesAttr(_) => &[],
            Layout::ScalesInput => &[1],
            Layout::Full => &[1, 2, 3],
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Nearest mode: every output element copies one input element (or the extrapolation value).
fn gather<T: Elem>(plan: &Plan, in_shape: &[usize], x: &[T], extrapolation: T, y: &mut [T]) {
    let rank = in_shape.len();
    let total = super::sat_numel(&plan.out_shape);
    if total == 0 {
        return;
    }
    if rank == 0 {
        y[0] = x[0];
        return;
    }
    let st = crate::ops::util::strides(in_shape);
    let last = rank - 1;
    let ol = plan.out_shape[last];
    let lt = &plan.taps[last];
    let mut oidx = vec![0usize; rank];
    for row in y.chunks_exact_mut(ol) {
        let mut base = Some(0usize);
        for d in 0..last {
            let t = &plan.taps[d];
            base = match base {
                Some(b) if !t.extrapolate[oidx[d]] => Some(b + t.idx[oidx[d]] * st[d]),
                _ => None,
            };
        }
        for (xo, v) in row.iter_mut().enumerate() {
            *v = match base {
                Some(b) if !lt.extrapolate[xo] => x[b + lt.idx[xo]],
                _ => extrapolation,
            };
        }
        super::next_index(&mut oidx[..last], &plan.out_shape[..last]);
    }
}

/// Linear and cubic modes: applies each axis' taps in turn (in f64), shrinking axes
/// first so that no intermediate is larger than both the input and the output.
fn interpolate(plan: &Plan, in_shape: &[usize], mut data: Vec<f64>, extrapolation: f64) -> Vec<f64> {
    let mut shape = in_shape.to_vec();
    let mut order: Vec<usize> = (0..shape.len()).collect();
    order.sort_by(|&a, &b| {
        let ratio = |d: usize| plan.out_shape[d] as f64 / in_shape[d].max(1) as f64;
        ratio(a).total_cmp(&ratio(b))
    });
    for d in order {
        let taps = &plan.taps[d];
        let (in_len, out_len) = (shape[d], plan.out_shape[d]);
        if in_len == out_len && taps.is_identity(in_len) {
            continue;
        }
        let outer = super::sat_numel(&shape[..d]);
        let inner = super::sat_numel(&shape[d + 1..]);
        let mut next = vec![0f64; outer * out_len * inner];
        if inner > 0 {
            for o in 0..outer {
                let src = &data[o * in_len * inner..][..in_len * inner];
                let dst = &mut next[o * out_len * inner..][..out_len * inner];
                for (xo, row) in dst.chunks_exact_mut(inner).enumerate() {
                    if taps.extrapolate[xo] {
                        row.fill(extrapolation);
                        continue;
                    }
                    for j in 0..taps.n {
                        let (i, w) = (taps.idx[xo * taps.n + j], taps.weight[xo * taps.n + j]);
                        if w == 0.0 {
                            continue;
                        }
                        for (r, &s) in row.iter_mut().zip(&src[i * inner..][..inner]) {
                            *r += w * s;
                        }
                    }
                }
            }
        }
        shape[d] = out_len;
        data = next;
    }
    data
}
