//! One-input ops that keep the shape: math functions, activations, Not, IsNaN/IsInf.

use super::num::{erf as erf_f64, Num};
use super::{check_dtype, dispatch_int, dispatch_num, map, map_float, output, FLOATS, INTS, NUMERIC, SIGNED};
use crate::ops::util::{req, req_view};
use crate::ops::Op;
use crate::{Attrs, DType, Elem, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// Which function a [`Unary`] op applies, with its attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryKind {
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Sqrt,
    Abs,
    Neg,
    Erf,
    Reciprocal,
    Floor,
    Ceil,
    /// Round half to even.
    Round,
    Sign,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    Softplus,
    Softsign,
    Elu {
        alpha: f32,
    },
    Selu {
        alpha: f32,
        gamma: f32,
    },
    Celu {
        alpha: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    ThresholdedRelu {
        alpha: f32,
    },
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    HardSwish,
    /// `tanh`: the tanh approximation instead of the exact erf form.
    Gelu {
        tanh: bool,
    },
    Mish,
    Shrink {
        bias: f32,
        lambd: f32,
    },
    Not,
    BitwiseNot,
}

impl UnaryKind {
    /// The ONNX op type.
    pub fn op_type(self) -> &'static str {
        use UnaryKind::*;
        match self {
            Relu => "Relu",
            Sigmoid => "Sigmoid",
            Tanh => "Tanh",
            Exp => "Exp",
            Log => "Log",
            Sqrt => "Sqrt",
            Abs => "Abs",
            Neg => "Neg",
            Erf => "Erf",
            Reciprocal => "Reciprocal",
            Floor => "Floor",
            Ceil => "Ceil",
            Round => "Round",
            Sign => "Sign",
            Sin => "Sin",
            Cos => "Cos",
            Tan => "Tan",
            Asin => "Asin",
            Acos => "Acos",
            Atan => "Atan",
            Sinh => "Sinh",
            Cosh => "Cosh",
            Asinh => "Asinh",
            Acosh => "Acosh",
            Atanh => "Atanh",
            Softplus => "Softplus",
            Softsign => "Softsign",
            Elu { .. } => "Elu",
            Selu { .. } => "Selu",
            Celu { .. } => "Celu",
            LeakyRelu { .. } => "LeakyRelu",
            ThresholdedRelu { .. } => "ThresholdedRelu",
            HardSigmoid { .. } => "HardSigmoid",
            HardSwish => "HardSwish",
            Gelu { .. } => "Gelu",
            Mish => "Mish",
            Shrink { .. } => "Shrink",
            Not => "Not",
            BitwiseNot => "BitwiseNot",
        }
    }

    fn dtypes(self) -> &'static [DType] {
        use UnaryKind::*;
        match self {
            Relu | Neg => SIGNED,
            Abs | Sign | Erf | Shrink { .. } => NUMERIC,
            Not => &[DType::Bool],
            BitwiseNot => INTS,
            _ => FLOATS,
        }
    }
}

/// An elementwise function of one input; the output has the input's dtype and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Unary {
    pub kind: UnaryKind,
}

impl Op for Unary {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, self.kind.op_type())?;
        check_dtype(self.kind.op_type(), x.dtype, self.kind.dtypes())?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let name = self.kind.op_type();
        let x = req_view(inputs, 0, name)?;
        check_dtype(name, x.dtype, self.kind.dtypes())?;
        apply(self.kind, x, output(outputs, 0, name)?)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `max(0, min(1, alpha·x + beta))`, passing NaN through like numpy.
#[inline]
fn hard_sigmoid_fn(v: f32, alpha: f32, beta: f32) -> f32 {
    (alpha * v + beta).clamp(0.0, 1.0)
}

/// `ln(1 + e^x)` without overflow for large x.
#[inline]
fn softplus_f32(v: f32) -> f32 {
    if v > 0.0 {
        v + (-v).exp().ln_1p()
    } else {
        v.exp().ln_1p()
    }
}

// The u8 instances of the generic arms compare an unsigned value with zero.
#[allow(clippy::absurd_extreme_comparisons)]
fn apply(kind: UnaryKind, x: View, out: &mut ViewMut) -> Result<()> {
    use UnaryKind::*;
    let name = kind.op_type();
    match kind {
        Relu => dispatch_num!(x.dtype, name, T => {
            map::<T, T>(x, out, |v| if v < T::ZERO { T::ZERO } else { v })
        }),
        Abs => dispatch_num!(x.dtype, name, T => map::<T, T>(x, out, Num::abs)),
        Neg => dispatch_num!(x.dtype, name, T => map::<T, T>(x, out, Num::neg)),
        Sign => dispatch_num!(x.dtype, name, T => map::<T, T>(x, out, |v| {
            if v > T::ZERO {
                T::ONE
            } else if v < T::ZERO {
                T::ZERO.sub(T::ONE)
            } else {
                v // zero, or NaN as in numpy
            }
        })),
        Erf => match x.dtype {
            DType::F32 | DType::F16 => map_float(x, out, name, |v| erf_f64(v as f64) as f32),
            _ => dispatch_num!(x.dtype, name, T => map::<T, T>(x, out, |v| T::from_f64(erf_f64(v.to_f64())))),
        },
        Shrink { bias, lambd } => match x.dtype {
            DType::F32 | DType::F16 => map_float(x, out, name, |v| {
                if v < -lambd {
                    v + bias
                } else if v > lambd {
                    v - bias
                } else {
                    0.0
                }
            }),
            // Like ONNX's reference: computed in floating point, then truncated.
            _ => dispatch_num!(x.dtype, name, T => map::<T, T>(x, out, |v| {
                let (v, bias, lambd) = (v.to_f64(), bias as f64, lambd as f64);
                T::from_f64(if v < -lambd { v + bias } else if v > lambd { v - bias } else { 0.0 })
            })),
        },
        Not => map::<u8, u8>(x, out, |v| (v == 0) as u8),
        BitwiseNot => dispatch_int!(x.dtype, name, T => map::<T, T>(x, out, |v| !v)),
        Sigmoid => map_float(x, out, name, |v| 1.0 / (1.0 + (-v).exp())),
        Tanh => map_float(x, out, name, f32::tanh),
        Exp => map_float(x, out, name, f32::exp),
        Log => map_float(x, out, name, f32::ln),
        Sqrt => map_float(x, out, name, f32::sqrt),
        Reciprocal => map_float(x, out, name, f32::recip),
        Floor => map_float(x, out, name, f32::floor),
        Ceil => map_float(x, out, name, f32::ceil),
        Round => map_float(x, out, name, f32::round_ties_even),
        Sin => map_float(x, out, name, f32::sin),
        Cos => map_float(x, out, name, f32::cos),
        Tan => map_float(x, out, name, f32::tan),
        Asin => map_float(x, out, name, f32::asin),
        Acos => map_float(x, out, name, f32::acos),
        Atan => map_float(x, out, name, f32::atan),
        Sinh => map_float(x, out, name, f32::sinh),
        Cosh => map_float(x, out, name, f32::cosh),
        Asinh => map_float(x, out, name, f32::asinh),
        Acosh => map_float(x, out, name, f32::acosh),
        Atanh => map_float(x, out, name, f32::atanh),
        Softplus => map_float(x, out, name, softplus_f32),
        Softsign => map_float(x, out, name, |v| v / (1.0 + v.abs())),
        Elu { alpha } => map_float(x, out, name, |v| if v < 0.0 { alpha * v.exp_m1() } else { v }),
        Selu { alpha, gamma } => {
            map_float(x, out, name, |v| if v > 0.0 { gamma * v } else { gamma * (alpha * v.exp() - alpha) })
        }
        Celu { alpha } => map_float(x, out, name, |v| if v > 0.0 { v } else { alpha * (v / alpha).exp_m1() }),
        LeakyRelu { alpha } => map_float(x, out, name, |v| if v < 0.0 { alpha * v } else { v }),
        ThresholdedRelu { alpha } => map_float(x, out, name, |v| if v > alpha { v } else { 0.0 }),
        HardSigmoid { alpha, beta } => map_float(x, out, name, |v| hard_sigmoid_fn(v, alpha, beta)),
        HardSwish => map_float(x, out, name, |v| v * hard_sigmoid_fn(v, 1.0 / 6.0, 0.5)),
        Gelu { tanh: false } => map_float(x, out, name, |v| {
            let v = v as f64;
            (0.5 * v * (1.0 + erf_f64(v * std::f64::consts::FRAC_1_SQRT_2))) as f32
        }),
        Gelu { tanh: true } => map_float(x, out, name, |v| {
            let v = v as f64;
            let k = (2.0 / std::f64::consts::PI).sqrt();
            (0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())) as f32
        }),
        Mish => map_float(x, out, name, |v| v * softplus_f32(v).tanh()),
    }
}

fn unary(kind: UnaryKind) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(Unary { kind }))
}

macro_rules! plain_ctor {
    ($($f:ident => $k:ident),* $(,)?) => {
        $(
            pub(super) fn $f(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
                unary(UnaryKind::$k)
            }
        )*
    };
}
plain_ctor!(
    relu => Relu, sigmoid => Sigmoid, tanh => Tanh, exp => Exp, log => Log, sqrt => Sqrt,
    abs => Abs, neg => Neg, erf => Erf, reciprocal => Reciprocal, floor => Floor, ceil => Ceil,
    round => Round, sign => Sign, sin => Sin, cos => Cos, tan => Tan, asin => Asin, acos => Acos,
    atan => Atan, sinh => Sinh, cosh => Cosh, asinh => Asinh, acosh => Acosh, atanh => Atanh,
    softplus => Softplus, softsign => Softsign, hard_swish => HardSwish, mish => Mish, not => Not,
    bitwise_not => BitwiseNot,
);

pub(super) fn elu(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    unary(UnaryKind::Elu { alpha: a.float_or("alpha", 1.0)? })
}

pub(super) fn selu(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    unary(UnaryKind::Selu { alpha: a.float_or("alpha", 1.673_263_2)?, gamma: a.float_or("gamma", 1.050_701)? })
}

pub(super) fn celu(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    let alpha = a.float_or("alpha", 1.0)?;
    if alpha == 0.0 || !alpha.is_finite() {
        return Err(Attrs::unsupported("alpha", format!("Celu needs a finite non-zero alpha, got {alpha}")));
    }
    unary(UnaryKind::Celu { alpha })
}

pub(super) fn leaky_relu(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    unary(UnaryKind::LeakyRelu { alpha: a.float_or("alpha", 0.01)? })
}

pub(super) fn thresholded_relu(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    unary(UnaryKind::ThresholdedRelu { alpha: a.float_or("alpha", 1.0)? })
}

pub(super) fn hard_sigmoid(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    unary(UnaryKind::HardSigmoid { alpha: a.float_or("alpha", 0.2)?, beta: a.float_or("beta", 0.5)? })
}

pub(super) fn gelu(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    let tanh = match a.string_or("approximate", "none")? {
        "none" => false,
        "tanh" => true,
        other => {
            return Err(Attrs::unsupported("approximate", format!("expected \"none\" or \"tanh\", got {other:?}")))
        }
    };
    unary(UnaryKind::Gelu { tanh })
}

pub(super) fn shrink(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    unary(UnaryKind::Shrink { bias: a.float_or("bias", 0.0)?, lambd: a.float_or("lambd", 0.5)? })
}

/// `IsNaN`: a bool mask of the NaN elements of a float tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct IsNaN;

impl Op for IsNaN {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "IsNaN")?;
        check_dtype("IsNaN", x.dtype, FLOATS)?;
        Ok(vec![Fact::new(DType::Bool, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "IsNaN")?;
        let out = output(outputs, 0, "IsNaN")?;
        match x.dtype {
            DType::F32 => map::<f32, u8>(x, out, |v| v.is_nan() as u8),
            DType::F16 => map::<half::f16, u8>(x, out, |v| v.is_nan() as u8),
            dtype => Err(IrError::UnsupportedDType { op: "IsNaN".into(), dtype }),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(super) fn is_nan(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(IsNaN))
}

/// `IsInf`: a bool mask of the infinite elements of a float tensor, by sign.
#[derive(Clone, Debug, PartialEq)]
pub struct IsInf {
    pub detect_negative: bool,
    pub detect_positive: bool,
}

impl Op for IsInf {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "IsInf")?;
        check_dtype("IsInf", x.dtype, FLOATS)?;
        Ok(vec![Fact::new(DType::Bool, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "IsInf")?;
        let out = output(outputs, 0, "IsInf")?;
        let (neg, pos) = (self.detect_negative, self.detect_positive);
        let test = move |v: f32| ((v == f32::INFINITY && pos) || (v == f32::NEG_INFINITY && neg)) as u8;
        match x.dtype {
            DType::F32 => map::<f32, u8>(x, out, test),
            DType::F16 => map::<half::f16, u8>(x, out, |v| test(v.to_f32())),
            dtype => Err(IrError::UnsupportedDType { op: "IsInf".into(), dtype }),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(super) fn is_inf(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(IsInf {
        detect_negative: a.int_or("detect_negative", 1)? != 0,
        detect_positive: a.int_or("detect_positive", 1)? != 0,
    }))
}
