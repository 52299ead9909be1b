//! Neural-network ops: convolutions, pooling, matrix products, normalizations and resizing.
//!
//! These kernels define the meaning of the ops (and fold constants), so they favour
//! clarity; convolutions still go through im2col and a blocked GEMM so that a whole
//! ResNet-50 runs in about a second rather than minutes. f16 tensors are computed in f32.

use super::OpSpec;
use crate::{Attrs, DType, IrError, Result, View, ViewMut};
use half::f16;
use half::slice::HalfFloatSliceExt;
use std::borrow::Cow;

mod conv;
pub use conv::{Conv, ConvTranspose, ConvWindow};
pub use gemm::{Gemm, MatMul};
pub use pool::{GlobalPool, Pool, PoolKind};
pub use resize::Resize;
pub(crate) mod gemm;
mod norm;
mod pool;
pub(crate) mod resize;
#[cfg(test)]
mod tests;

pub(crate) const OPS: &[OpSpec] = &[
    OpSpec { op_type: "Conv", build: conv::build_conv },
    OpSpec { op_type: "ConvTranspose", build: conv::build_conv_transpose },
    OpSpec { op_type: "MaxPool", build: pool::build_max_pool },
    OpSpec { op_type: "AveragePool", build: pool::build_average_pool },
    OpSpec { op_type: "LpPool", build: pool::build_lp_pool },
    OpSpec { op_type: "GlobalAveragePool", build: pool::build_global_average_pool },
    OpSpec { op_type: "GlobalMaxPool", build: pool::build_global_max_pool },
    OpSpec { op_type: "GlobalLpPool", build: pool::build_global_lp_pool },
    OpSpec { op_type: "MatMul", build: gemm::build_matmul },
    OpSpec { op_type: "Gemm", build: gemm::build_gemm },
    OpSpec { op_type: "MatMulInteger", build: gemm::build_matmul_integer },
    OpSpec { op_type: "BatchNormalization", build: norm::build_batch_norm },
    OpSpec { op_type: "InstanceNormalization", build: norm::build_instance_norm },
    OpSpec { op_type: "LRN", build: norm::build_lrn },
    OpSpec { op_type: "Resize", build: resize::build_resize },
    OpSpec { op_type: "Upsample", build: resize::build_upsample },
];

/// Fails unless `dtype` is a float type these ops compute (f32, or f16 through f32).
pub(super) fn check_float(op: &str, dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F16 => Ok(()),
        dtype => Err(IrError::UnsupportedDType { op: op.to_string(), dtype }),
    }
}

/// An f32 or f16 tensor as f32s, borrowed when it already is f32.
pub(super) fn f32_input<'a>(op: &str, v: &View<'a>) -> Result<Cow<'a, [f32]>> {
    match v.dtype {
        DType::F32 => Ok(Cow::Borrowed(v.as_slice::<f32>()?)),
        DType::F16 => {
            let src = v.as_slice::<f16>()?;
            let mut out = vec![0f32; src.len()];
            src.convert_to_f32_slice(&mut out);
            Ok(Cow::Owned(out))
        }
        dtype => Err(IrError::UnsupportedDType { op: op.to_string(), dtype }),
    }
}

/// Computes an f32 or f16 output through an f32 buffer: the output itself when it is
/// f32, a temporary rounded into the output afterwards when it is f16.
pub(super) fn with_f32_output(op: &str, out: &mut ViewMut, f: impl FnOnce(&mut [f32]) -> Result<()>) -> Result<()> {
    match out.dtype {
        DType::F32 => f(out.as_slice_mut::<f32>()?),
        DType::F16 => {
            let dst = out.as_slice_mut::<f16>()?;
            let mut tmp = vec![0f32; dst.len()];
            f(&mut tmp)?;
            dst.convert_from_f32_slice(&tmp);
            Ok(())
        }
        dtype => Err(IrError::UnsupportedDType { op: op.to_string(), dtype }),
    }
}

/// The most elements one output or scratch buffer of these ops may hold (16 GiB of f32):
/// shapes derived from untrusted attributes beyond it are errors rather than aborts on
/// allocation failure.
pub(super) const MAX_ELEMENTS: usize = 1 << 32;

/// The element count of a buffer of the given dimensions, failing on overflow or
/// beyond [`MAX_ELEMENTS`] instead of panicking or aborting later.
pub(super) fn checked_len(factors: &[usize], what: &str) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| IrError::Shape(format!("{what} of size {factors:?} is too large")))
}

/// The element count of `dims`, saturating: sub-shapes of an empty tensor may multiply
/// past `usize::MAX`, and then nothing is ever indexed with the result.
pub(super) fn sat_numel(dims: &[usize]) -> usize {
    dims.iter().fold(1usize, |acc, &d| acc.saturating_mul(d))
}

/// Advances a row-major multi-index over `shape`; returns false once it wraps to zeros.
pub(super) fn next_index(idx: &mut [usize], shape: &[usize]) -> bool {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

/// The positions `o` in `0..count` with `0 <= o * stride + offset < len`, as `lo..hi`.
/// Sliding windows use it to split a row into its padded and in-bounds parts.
pub(super) fn valid_range(offset: i64, stride: usize, len: usize, count: usize) -> (usize, usize) {
    let s = stride as i64;
    let lo = if offset >= 0 { 0 } else { (-offset + s - 1) / s };
    let room = len as i64 - offset;
    let hi = if room <= 0 { 0 } else { (room + s - 1) / s };
    let hi = (hi.max(0) as u64).min(count as u64) as usize;
    let lo = (lo.max(0) as u64).min(hi as u64) as usize;
    (lo, hi)
}

/// How the padding of a sliding window is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AutoPad {
    /// Explicit `pads`.
    NotSet,
    /// Output size `ceil(in / stride)`, odd padding at the end.
    SameUpper,
    /// Output size `ceil(in / stride)`, odd padding at the beginning.
    SameLower,
    /// No padding.
    Valid,
}

impl AutoPad {
    fn parse(attrs: &Attrs) -> Result<AutoPad> {
        match attrs.string_or("auto_pad", "NOTSET")? {
            "NOTSET" | "" => Ok(AutoPad::NotSet),
            "SAME_UPPER" => Ok(AutoPad::SameUpper),
            "SAME_LOWER" => Ok(AutoPad::SameLower),
            "VALID" => Ok(AutoPad::Valid),
            other => Err(Attrs::unsupported("auto_pad", format!("unknown value '{other}'"))),
        }
    }

    /// Splits a total padding between the two ends (`SAME_UPPER` puts the odd one at the end).
    /// A negative total (output larger than the natural size) extends the end only.
    pub(super) fn split(self, total: i64) -> (i64, i64) {
        if total < 0 {
            return (0, total);
        }
        match self {
            AutoPad::SameUpper => (total / 2, total - total / 2),
            _ => (total - total / 2, total / 2),
        }
    }
}

/// The largest size, stride, dilation or padding a window attribute may hold: far beyond
/// any real tensor, small enough that the window arithmetic cannot overflow.
const MAX_WINDOW_VALUE: i64 = 1 << 40;

/// A list of window sizes (kernel, strides, pads...) that must all lie in
/// `min..=MAX_WINDOW_VALUE`, as usizes.
pub(super) fn window_ints(attrs: &Attrs, name: &str, min: i64) -> Result<Option<Vec<usize>>> {
    match attrs.ints(name)? {
        None => Ok(None),
        Some(v) => v
            .iter()
            .map(|&x| {
                if (min..=MAX_WINDOW_VALUE).contains(&x) {
                    Ok(x as usize)
                } else {
                    Err(Attrs::unsupported(name, format!("values must lie in {min}..={MAX_WINDOW_VALUE}, found {v:?}")))
                }
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
    }
}

/// The sliding-window attributes shared by convolutions and pools, as written in the
/// node; their lengths are checked against the input rank in [`WindowAttrs::resolve`].
#[derive(Clone, Debug)]
pub(super) struct WindowAttrs {
    pub auto_pad: AutoPad,
    pub kernel_shape: Option<Vec<usize>>,
    pub strides: Option<Vec<usize>>,
    pub dilations: Option<Vec<usize>>,
    pub pads: Option<Vec<usize>>,
}

/// A sliding window resolved for one input shape, per spatial axis. Input position of
/// tap `k` of output `o` is `o * strides + k * dilations - pad_begin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pad_begin: Vec<i64>,
    pub pad_end: Vec<i64>,
    pub out: Vec<usize>,
}

impl WindowAttrs {
    pub fn parse(attrs: &Attrs) -> Result<WindowAttrs> {
        let w = WindowAttrs {
            auto_pad: AutoPad::parse(attrs)?,
            kernel_shape: window_ints(attrs, "kernel_shape", 1)?,
            strides: window_ints(attrs, "strides", 1)?,
            dilations: window_ints(attrs, "dilations", 1)?,
            pads: window_ints(attrs, "pads", 0)?,
        };
        if let Some(p) = &w.pads {
            if p.len() % 2 != 0 {
                return Err(Attrs::unsupported("pads", format!("needs a begin and an end per axis, found {p:?}")));
            }
        }
        Ok(w)
    }

    /// A per-axis attribute with its default, checked to have one value per spatial axis.
    pub fn per_axis(name: &str, v: &Option<Vec<usize>>, n: usize, default: usize) -> Result<Vec<usize>> {
        match v {
            None => Ok(vec![default; n]),
            Some(v) if v.len() == n => Ok(v.clone()),
            Some(v) => Err(IrError::Shape(format!("'{name}' has {} values for {n} spatial axes", v.len()))),
        }
    }

    /// Strides, dilations and the kernel extents, with the extents checked for overflow.
    fn base(&self, kernel: &[usize]) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
        let n = kernel.len();
        let strides = Self::per_axis("strides", &self.strides, n, 1)?;
        let dilations = Self::per_axis("dilations", &self.dilations, n, 1)?;
        let extents = kernel
            .iter()
            .zip(&dilations)
            .map(|(&k, &d)| {
                k.checked_sub(1)
                    .and_then(|k1| k1.checked_mul(d))
                    .and_then(|e| e.checked_add(1))
                    .filter(|&e| e <= i64::MAX as usize / 4)
                    .ok_or_else(|| IrError::Shape(format!("kernel {kernel:?} with dilations {dilations:?} is invalid")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((strides, dilations, extents))
    }

    /// The explicit pads as (begin, end) lists.
    fn explicit_pads(&self, n: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        let pads = Self::per_axis("pads", &self.pads, 2 * n, 0)?;
        let as_i64 = |v: &[usize]| v.iter().map(|&p| p as i64).collect::<Vec<_>>();
        Ok((as_i64(&pads[..n]), as_i64(&pads[n..])))
    }

    /// Resolves the window of a convolution or pool over spatial dims `input`. With
    /// `ceil_mode`, a partial last window counts unless it would start in the end padding.
    pub fn resolve(&self, input: &[usize], kernel: &[usize], ceil_mode: bool) -> Result<Geometry> {
        let n = input.len();
        if kernel.len() != n {
            return Err(IrError::Shape(format!("kernel {kernel:?} does not match {n} spatial axes")));
        }
        let (strides, dilations, extents) = self.base(kernel)?;
        let mut g = Geometry {
            kernel: kernel.to_vec(),
            strides,
            dilations,
            pad_begin: vec![0; n],
            pad_end: vec![0; n],
            out: vec![0; n],
        };
        let (pb, pe) = match self.auto_pad {
            AutoPad::NotSet => self.explicit_pads(n)?,
            _ => (vec![0; n], vec![0; n]),
        };
        for i in 0..n {
            let (len, s, e) = (input[i] as i64, g.strides[i] as i64, extents[i] as i64);
            match self.auto_pad {
                AutoPad::NotSet => {
                    let padded = len + pb[i] + pe[i];
                    if padded < e {
                        return Err(IrError::Shape(format!(
                            "window extent {e} exceeds the padded input size {padded} on spatial axis {i}"
                        )));
                    }
                    let mut out = if ceil_mode { (padded - e + s - 1) / s + 1 } else { (padded - e) / s + 1 };
                    // The last window must start inside the input or the begin padding.
                    if ceil_mode && (out - 1) * s >= len + pb[i] {
                        out -= 1;
                    }
                    g.out[i] = out as usize;
                    g.pad_begin[i] = pb[i];
                    g.pad_end[i] = pe[i];
                }
                AutoPad::Valid => {
                    if len < e {
                        return Err(IrError::Shape(format!(
                            "window extent {e} exceeds the input size {len} on spatial axis {i}"
                        )));
                    }
                    g.out[i] = ((len - e) / s + 1) as usize;
                }
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let out = (len + s - 1) / s;
                    let total = ((out - 1).max(0) * s + e - len).max(0);
                    let (b, en) = self.auto_pad.split(total);
                    g.out[i] = out as usize;
                    g.pad_begin[i] = b;
                    g.pad_end[i] = en;
                }
            }
        }
        Ok(g)
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use crate::AttrValue;

    #[test]
    fn valid_ranges() {
        // o * 2 - 1 in [0, 5) for o in 0..4: o = 1, 2 (o = 3 gives 5)
        assert_eq!(valid_range(-1, 2, 5, 4), (1, 3));
        assert_eq!(valid_range(0, 1, 3, 5), (0, 3));
        assert_eq!(valid_range(7, 1, 3, 5), (0, 0));
        assert_eq!(valid_range(-9, 3, 4, 2), (2, 2));
    }

    fn window(pairs: &[(&str, AttrValue)]) -> WindowAttrs {
        let mut a = Attrs::new();
        for (k, v) in pairs {
            a.insert(k, v.clone());
        }
        WindowAttrs::parse(&a).unwrap()
    }

    #[test]
    fn output_sizes() {
        // floor((5 + 1 + 1 - 3) / 2) + 1 = 3
        let w = window(&[("pads", AttrValue::Ints(vec![1, 1])), ("strides", AttrValue::Ints(vec![2]))]);
        assert_eq!(w.resolve(&[5], &[3], false).unwrap().out, vec![3]);
        // ceil mode: 4x4 input, kernel 3, stride 2: ceil(1 / 2) + 1 = 2
        let w = window(&[("strides", AttrValue::Ints(vec![2]))]);
        assert_eq!(w.resolve(&[4], &[3], true).unwrap().out, vec![2]);
        // ... but a window starting in the end padding is dropped: in 2, kernel 1, stride 2
        assert_eq!(w.resolve(&[2], &[1], true).unwrap().out, vec![1]);
        // SAME_UPPER: in 5, kernel 3, dilation 2 (extent 5), stride 2: out 3, total pad 4
        let w = window(&[
            ("auto_pad", AttrValue::String("SAME_UPPER".into())),
            ("strides", AttrValue::Ints(vec![2])),
            ("dilations", AttrValue::Ints(vec![2])),
        ]);
        let g = w.resolve(&[5], &[3], false).unwrap();
        assert_eq!((g.out[0], g.pad_begin[0], g.pad_end[0]), (3, 2, 2));
        // SAME_LOWER puts the odd padding first: in 4, kernel 2, stride 1 -> total 1
        let w = window(&[("auto_pad", AttrValue::String("SAME_LOWER".into()))]);
        let g = w.resolve(&[4], &[2], false).unwrap();
        assert_eq!((g.out[0], g.pad_begin[0], g.pad_end[0]), (4, 1, 0));
        let w = window(&[("auto_pad", AttrValue::String("VALID".into())), ("strides", AttrValue::Ints(vec![3]))]);
        assert_eq!(w.resolve(&[10], &[4], false).unwrap().out, vec![3]);
        assert!(w.resolve(&[3], &[4], false).is_err());
        assert!(window(&[]).resolve(&[5, 5], &[3], false).is_err());
    }
}
