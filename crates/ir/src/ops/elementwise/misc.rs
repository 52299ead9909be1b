//! Identity, Dropout (inference only) and Clip.

use super::num::Num;
use super::{check_dtype, check_same_dtype, copy, dispatch_num, elems, map, output, FLOATS, NUMERIC};
use crate::ops::util::{const_f64s, const_i64s, req, req_view};
use crate::ops::Op;
use crate::{Attrs, DType, Elem, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// `Identity`: the input, unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity;

impl Op for Identity {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Identity")?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        copy(req_view(inputs, 0, "Identity")?, output(outputs, 0, "Identity")?)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(super) fn identity(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(Identity))
}

/// `Dropout` at inference: the input unchanged, and an all-true mask for the optional
/// second output. Training mode (a `training_mode` input that is true) is deterministic
/// only with a zero `ratio`; otherwise it is rejected, as Sinter does not draw random
/// masks. Both inputs must therefore be known at build time.
#[derive(Clone, Debug, PartialEq)]
pub struct Dropout {
    /// Before opset 10 the mask has the input's dtype (ones); from 10 on it is bool.
    pub mask_like_input: bool,
}

impl Dropout {
    /// Fails for training mode with a non-zero ratio (ONNX's default ratio is 0.5).
    fn check_deterministic(ratio: Option<Vec<f64>>, training: Option<Vec<i64>>) -> Result<()> {
        let training = training.is_some_and(|t| t.iter().any(|&v| v != 0));
        let ratio = ratio.and_then(|r| r.first().copied()).unwrap_or(0.5);
        if training && ratio != 0.0 {
            return Err(IrError::Unsupported(format!(
                "Dropout in training mode with ratio {ratio} (random masks are not supported)"
            )));
        }
        Ok(())
    }
}

impl Op for Dropout {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Dropout")?;
        check_dtype("Dropout", x.dtype, FLOATS)?;
        Dropout::check_deterministic(
            const_f64s(inputs, 1, "Dropout", "ratio")?,
            const_i64s(inputs, 2, "Dropout", "training_mode")?,
        )?;
        let mask = if self.mask_like_input { x.dtype } else { DType::Bool };
        Ok(vec![Fact::new(x.dtype, x.shape.clone()), Fact::new(mask, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Dropout")?;
        let ratio = inputs.get(1).copied().flatten().map(|r| r.to_f64_vec());
        let training = inputs.get(2).copied().flatten().map(|t| t.to_i64_vec()).transpose()?;
        Dropout::check_deterministic(ratio, training)?;
        copy(x, output(outputs, 0, "Dropout")?)?;
        // The mask output is optional: fill it only when the caller asked for it.
        if let Some(mask) = outputs.get_mut(1) {
            match mask.dtype {
                DType::Bool | DType::U8 | DType::I8 => mask.data.fill(1),
                dtype => dispatch_num!(dtype, "Dropout", T => {
                    mask.as_slice_mut::<T>()?.fill(T::ONE);
                    Ok(())
                })?,
            }
        }
        Ok(())
    }

    fn const_inputs(&self) -> &[usize] {
        &[1, 2]
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(super) fn dropout(a: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    if a.int_or("is_test", 1)? == 0 {
        return Err(IrError::Unsupported("Dropout in training mode (is_test = 0)".into()));
    }
    Ok(Arc::new(Dropout { mask_like_input: opset < 10 }))
}

/// Where a [`Clip`] takes its bounds from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClipBounds {
    /// Before opset 11: the `min` and `max` attributes (defaulting to the f32 range).
    Attrs { min: f32, max: f32 },
    /// From opset 11: optional one-element inputs 1 (min) and 2 (max) of the input's
    /// dtype; an omitted bound does not clip.
    Inputs,
}

/// `Clip`: `min(max(x, lo), hi)`, so `hi` wins when `lo > hi` (as in ONNX); NaN passes.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    pub bounds: ClipBounds,
}

impl Op for Clip {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Clip")?;
        check_dtype("Clip", x.dtype, NUMERIC)?;
        if self.bounds == ClipBounds::Inputs {
            for (i, what) in [(1, "min"), (2, "max")] {
                if let Some(b) = inputs.get(i).copied().flatten() {
                    check_same_dtype(x, i, b)?;
                    if b.numel() != 1 {
                        return Err(IrError::Shape(format!(
                            "Clip {what} (input {i}) must hold one value, got shape {:?}",
                            b.shape
                        )));
                    }
                }
            }
        }
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        fn bound<T: Num>(inputs: &[Option<View>], i: usize, default: T) -> Result<T> {
            match inputs.get(i).copied().flatten() {
                None => Ok(default),
                Some(v) => {
                    elems::<T>(&v)?.first().copied().ok_or_else(|| IrError::Shape(format!("Clip input {i} is empty")))
                }
            }
        }
        let x = req_view(inputs, 0, "Clip")?;
        let out = output(outputs, 0, "Clip")?;
        dispatch_num!(x.dtype, "Clip", T => {
            let (lo, hi) = match self.bounds {
                ClipBounds::Attrs { min, max } => (T::from_f64(min as f64), T::from_f64(max as f64)),
                ClipBounds::Inputs => (bound(inputs, 1, T::LOWEST)?, bound(inputs, 2, T::HIGHEST)?),
            };
            map::<T, T>(x, out, |v| {
                let v = if v < lo { lo } else { v };
                if v > hi {
                    hi
                } else {
                    v
                }
            })
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(super) fn clip(a: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    let bounds = if opset < 11 {
        ClipBounds::Attrs { min: a.float_or("min", f32::MIN)?, max: a.float_or("max", f32::MAX)? }
    } else {
        ClipBounds::Inputs
    };
    Ok(Arc::new(Clip { bounds }))
}
