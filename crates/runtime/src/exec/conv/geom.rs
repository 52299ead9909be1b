//! What a 2-D convolution kernel and a transposed one share: the NCHW sizes and window
//! resolved from the node, the epilogue's steps and operand layouts, and the checks
//! that make the run loops' index arithmetic safe.

use crate::exec::epilogue::{epilogue_inputs, post_ops, MAX_EPILOGUE_INPUTS};
use crate::exec::refusal::{need, Accept, Why};
use crate::prepare::Slot;
use sinter_ir::ops::fused::{Step, BASE_SLOTS};
use sinter_ir::ops::nn::ConvWindow;
use sinter_ir::{IrError, Result, View, ViewMut};
use sinter_kernels::epilogue::PostOps;

/// A run's operands, each checked against the geometry: input, weights as the op gets
/// them (packed or not: the kernel checks their length), bias, epilogue inputs, output.
pub(crate) struct RunOperands<'a, 'o> {
    pub x: &'a [f32],
    pub wt: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub extras: [&'a [f32]; MAX_EPILOGUE_INPUTS],
    /// How many of `extras` there are.
    pub count: usize,
    pub y: &'o mut [f32],
}

/// A 2-D (transposed) convolution's sizes: input `[n, c, h, w]`, output `[n, m, oh, ow]`,
/// `groups`, a `kh × kw` kernel with strides, dilations and leading pads (negative pads
/// crop), and its fused epilogue.
#[derive(Clone, Debug)]
pub(crate) struct ConvGeom {
    pub name: &'static str,
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub groups: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub ph: i64,
    pub pw: i64,
    pub oh: usize,
    pub ow: usize,
    pub has_bias: bool,
    /// The fused epilogue; its operands are the op's inputs `BASE_SLOTS..`, broadcast
    /// onto the output.
    pub post: PostOps,
}

impl ConvGeom {
    /// The geometry of a node with input `[n, c, h, w]`, 4-D weights (`kernel` their
    /// spatial size), `m` output channels in `groups` and the resolved `win`, or why not
    /// (shapes disagree, a size is 0, or the run loops' sizes would overflow). `fused` says whether inputs `BASE_SLOTS..` are
    /// epilogue operands.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &'static str,
        steps: Vec<Step>,
        fused: bool,
        inputs: &[Option<Slot>],
        outputs: &[Slot],
        (m, groups): (usize, usize),
        kernel: [usize; 2],
        win: &ConvWindow,
    ) -> Accept<ConvGeom> {
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let y = outputs.first().why("no output")?;
        need(x.shape.len() == 4 && outputs.len() == 1, "only 2-D convolutions (4-D input, one output)")?;
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (oh, ow) = (*win.out.first().why("no output size")?, *win.out.get(1).why("no output width")?);
        need(y.shape == [n, m, oh, ow], "the output shape does not match the window")?;
        need(groups != 0 && m % groups == 0 && c % groups == 0, "channels do not split into the groups")?;
        let bias = inputs.get(2).and_then(Option::as_ref);
        need(bias.is_none_or(|b| b.shape == [m]), "the bias is not one value per output channel")?;
        let extras = if fused { inputs.get(BASE_SLOTS..).unwrap_or(&[]) } else { &[] };
        let post = post_ops(&steps, extras, &[n, m, oh, ow])?;
        need(![n, c, h, w, m, oh, ow, kernel[0], kernel[1]].contains(&0), "an empty dimension")?;
        let sizes = n.checked_mul(c).and_then(|v| v.checked_mul(h)?.checked_mul(w));
        let out = n.checked_mul(m).and_then(|v| v.checked_mul(oh)?.checked_mul(ow));
        need(sizes.is_some() && out.is_some(), "sizes overflow")?;
        let pair = |v: &[usize], what: &'static str| -> Accept<(usize, usize)> {
            Ok((*v.first().why(what)?, *v.get(1).why(what)?))
        };
        let (sh, sw) = pair(&win.strides, "no strides")?;
        let (dh, dw) = pair(&win.dilations, "no dilations")?;
        let (ph, pw) = (*win.pad_begin.first().why("no pads")?, *win.pad_begin.get(1).why("no pads")?);
        Ok(ConvGeom {
            name,
            n,
            c,
            h,
            w,
            m,
            groups,
            kh: kernel[0],
            kw: kernel[1],
            sh,
            sw,
            dh,
            dw,
            ph,
            pw,
            oh,
            ow,
            has_bias: bias.is_some(),
            post,
        })
    }

    /// The operands of a run, with the input, bias, epilogue inputs and output checked
    /// against the geometry.
    pub fn operands<'a, 'o>(
        &self,
        inputs: &[Option<View<'a>>],
        outputs: &'o mut [ViewMut<'_>],
    ) -> Result<RunOperands<'a, 'o>> {
        let missing = |index| IrError::MissingInput { op: self.name.into(), index };
        let input = |i: usize| inputs.get(i).copied().flatten().ok_or_else(|| missing(i));
        let x = input(0)?.as_slice::<f32>()?;
        let wt = input(1)?.as_slice::<f32>()?;
        let bias = if self.has_bias { Some(input(2)?.as_slice::<f32>()?) } else { None };
        let mut extras: [&[f32]; MAX_EPILOGUE_INPUTS] = [&[]; MAX_EPILOGUE_INPUTS];
        let count = epilogue_inputs(self.name, inputs, BASE_SLOTS, &self.post, &mut extras)?;
        let y = outputs.first_mut().ok_or_else(|| missing(0))?.as_slice_mut::<f32>()?;
        if x.len() != self.n * self.c * self.h * self.w
            || y.len() != self.n * self.m * self.oh * self.ow
            || bias.is_some_and(|b| b.len() != self.m)
        {
            return Err(IrError::Data(format!("{}: operand sizes do not match the plan", self.name)));
        }
        Ok(RunOperands { x, wt, bias, extras, count, y })
    }

    /// Input channels per group.
    pub fn cg(&self) -> usize {
        self.c / self.groups
    }

    /// Output channels per group.
    pub fn mg(&self) -> usize {
        self.m / self.groups
    }

    /// Rows of one group's im2col matrix: input channels per group times kernel taps.
    pub fn kdim(&self) -> usize {
        self.cg() * self.kh * self.kw
    }

    /// Output positions per channel: columns of the im2col matrix.
    pub fn cols(&self) -> usize {
        self.oh * self.ow
    }
}

/// Output positions `[lo, hi)` (within `0..ol`) whose input index `o * s + off` lies in
/// `0..il`.
pub(crate) fn valid_range(off: i64, s: usize, il: usize, ol: usize) -> (usize, usize) {
    let s = s as i64;
    // Smallest o with o * s + off >= 0.
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    // Largest o with o * s + off <= il - 1, plus one.
    let last = il as i64 - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let lo = (lo.max(0) as usize).min(ol);
    (lo, (hi.max(0) as usize).clamp(lo, ol))
}
