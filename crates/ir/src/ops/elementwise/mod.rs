//! Elementwise ops: activations and other unary math, binary arithmetic, comparison
//! and logic with numpy broadcasting, variadic reductions (Sum, Min…), Where, Clip,
//! Cast and the pass-through ops (Identity, Dropout at inference).
//!
//! Dtype checks follow the type constraints of the latest opset (ONNX models only
//! ever narrow them), restricted to the dtypes Sinter has. f16 math is done in f32 and
//! rounded; integer math wraps and never traps (see the `num` module).

mod binary;
mod cast;
mod misc;
mod num;

pub(crate) use num::erf;
mod unary;

pub use binary::{Binary, BinaryKind, PRelu, Variadic, VariadicKind, Where};
pub use cast::{Cast, CastLike};
pub use misc::{Clip, ClipBounds, Dropout, Identity};
pub use unary::{IsInf, IsNaN, Unary, UnaryKind};

use super::util::BroadcastRuns;
use super::OpSpec;
use crate::tensor::checked_numel;
use crate::{DType, Elem, Fact, IrError, Result, View, ViewMut};

pub(crate) const OPS: &[OpSpec] = &[
    // unary math and activations
    OpSpec { op_type: "Relu", build: unary::relu },
    OpSpec { op_type: "Sigmoid", build: unary::sigmoid },
    OpSpec { op_type: "Tanh", build: unary::tanh },
    OpSpec { op_type: "Exp", build: unary::exp },
    OpSpec { op_type: "Log", build: unary::log },
    OpSpec { op_type: "Sqrt", build: unary::sqrt },
    OpSpec { op_type: "Abs", build: unary::abs },
    OpSpec { op_type: "Neg", build: unary::neg },
    OpSpec { op_type: "Erf", build: unary::erf },
    OpSpec { op_type: "Reciprocal", build: unary::reciprocal },
    OpSpec { op_type: "Floor", build: unary::floor },
    OpSpec { op_type: "Ceil", build: unary::ceil },
    OpSpec { op_type: "Round", build: unary::round },
    OpSpec { op_type: "Sign", build: unary::sign },
    OpSpec { op_type: "Sin", build: unary::sin },
    OpSpec { op_type: "Cos", build: unary::cos },
    OpSpec { op_type: "Tan", build: unary::tan },
    OpSpec { op_type: "Asin", build: unary::asin },
    OpSpec { op_type: "Acos", build: unary::acos },
    OpSpec { op_type: "Atan", build: unary::atan },
    OpSpec { op_type: "Sinh", build: unary::sinh },
    OpSpec { op_type: "Cosh", build: unary::cosh },
    OpSpec { op_type: "Asinh", build: unary::asinh },
    OpSpec { op_type: "Acosh", build: unary::acosh },
    OpSpec { op_type: "Atanh", build: unary::atanh },
    OpSpec { op_type: "Softplus", build: unary::softplus },
    OpSpec { op_type: "Softsign", build: unary::softsign },
    OpSpec { op_type: "Elu", build: unary::elu },
    OpSpec { op_type: "Selu", build: unary::selu },
    OpSpec { op_type: "Celu", build: unary::celu },
    OpSpec { op_type: "LeakyRelu", build: unary::leaky_relu },
    OpSpec { op_type: "ThresholdedRelu", build: unary::thresholded_relu },
    OpSpec { op_type: "HardSigmoid", build: unary::hard_sigmoid },
    OpSpec { op_type: "HardSwish", build: unary::hard_swish },
    OpSpec { op_type: "Gelu", build: unary::gelu },
    OpSpec { op_type: "Mish", build: unary::mish },
    OpSpec { op_type: "Shrink", build: unary::shrink },
    OpSpec { op_type: "Not", build: unary::not },
    OpSpec { op_type: "BitwiseNot", build: unary::bitwise_not },
    OpSpec { op_type: "IsNaN", build: unary::is_nan },
    OpSpec { op_type: "IsInf", build: unary::is_inf },
    // pass-through and clipping
    OpSpec { op_type: "Identity", build: misc::identity },
    OpSpec { op_type: "Dropout", build: misc::dropout },
    OpSpec { op_type: "Clip", build: misc::clip },
    // binary with broadcasting
    OpSpec { op_type: "Add", build: binary::add },
    OpSpec { op_type: "Sub", build: binary::sub },
    OpSpec { op_type: "Mul", build: binary::mul },
    OpSpec { op_type: "Div", build: binary::div },
    OpSpec { op_type: "Pow", build: binary::pow },
    OpSpec { op_type: "Mod", build: binary::modulo },
    OpSpec { op_type: "Equal", build: binary::equal },
    OpSpec { op_type: "Less", build: binary::less },
    OpSpec { op_type: "Greater", build: binary::greater },
    OpSpec { op_type: "LessOrEqual", build: binary::less_or_equal },
    OpSpec { op_type: "GreaterOrEqual", build: binary::greater_or_equal },
    OpSpec { op_type: "And", build: binary::and },
    OpSpec { op_type: "Or", build: binary::or },
    OpSpec { op_type: "Xor", build: binary::xor },
    OpSpec { op_type: "BitShift", build: binary::bit_shift },
    OpSpec { op_type: "BitwiseAnd", build: binary::bitwise_and },
    OpSpec { op_type: "BitwiseOr", build: binary::bitwise_or },
    OpSpec { op_type: "BitwiseXor", build: binary::bitwise_xor },
    OpSpec { op_type: "PRelu", build: binary::prelu },
    OpSpec { op_type: "Where", build: binary::where_ },
    // variadic
    OpSpec { op_type: "Sum", build: binary::sum },
    OpSpec { op_type: "Mean", build: binary::mean },
    OpSpec { op_type: "Min", build: binary::min },
    OpSpec { op_type: "Max", build: binary::max },
    // conversions
    OpSpec { op_type: "Cast", build: cast::cast },
    OpSpec { op_type: "CastLike", build: cast::cast_like },
];

/// f32 and f16.
const FLOATS: &[DType] = &[DType::F32, DType::F16];
/// Every dtype but Bool.
const NUMERIC: &[DType] = &[DType::F32, DType::F16, DType::I8, DType::U8, DType::I32, DType::I64];
/// Numeric dtypes that can be negative.
const SIGNED: &[DType] = &[DType::F32, DType::F16, DType::I8, DType::I32, DType::I64];
/// Integer dtypes.
const INTS: &[DType] = &[DType::I8, DType::U8, DType::I32, DType::I64];

/// Runs `$body` with `$t` bound to the element type of a numeric `$dtype`; fails on Bool.
macro_rules! dispatch_num {
    ($dtype:expr, $op:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::DType::F16 => {
                type $t = half::f16;
                $body
            }
            $crate::DType::I8 => {
                type $t = i8;
                $body
            }
            $crate::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::DType::I32 => {
                type $t = i32;
                $body
            }
            $crate::DType::I64 => {
                type $t = i64;
                $body
            }
            dtype @ $crate::DType::Bool => Err($crate::IrError::UnsupportedDType { op: $op.to_string(), dtype }),
        }
    };
}

/// Runs `$body` with `$t` bound to the element type of an integer `$dtype`.
macro_rules! dispatch_int {
    ($dtype:expr, $op:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::DType::I8 => {
                type $t = i8;
                $body
            }
            $crate::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::DType::I32 => {
                type $t = i32;
                $body
            }
            $crate::DType::I64 => {
                type $t = i64;
                $body
            }
            dtype => Err($crate::IrError::UnsupportedDType { op: $op.to_string(), dtype }),
        }
    };
}
pub(crate) use {dispatch_int, dispatch_num};

/// Fails unless `dtype` is one of `allowed`.
fn check_dtype(op: &str, dtype: DType, allowed: &[DType]) -> Result<()> {
    if allowed.contains(&dtype) {
        Ok(())
    } else {
        Err(IrError::UnsupportedDType { op: op.to_string(), dtype })
    }
}

/// Fails unless input `i` has the dtype of input 0, naming both.
fn check_same_dtype(first: &Fact, i: usize, other: &Fact) -> Result<()> {
    if first.dtype == other.dtype {
        Ok(())
    } else {
        Err(IrError::DType { expected: format!("input {i} to be {} like input 0", first.dtype), found: other.dtype })
    }
}

/// The `i`th output buffer.
fn output<'o, 'a>(outputs: &'o mut [ViewMut<'a>], i: usize, op: &str) -> Result<&'o mut ViewMut<'a>> {
    outputs.get_mut(i).ok_or_else(|| IrError::Graph(format!("{op}: no buffer for output {i}")))
}

/// The elements of `v`, checking that the buffer holds exactly its shape.
fn elems<'a, T: Elem>(v: &View<'a>) -> Result<&'a [T]> {
    let s = v.as_slice::<T>()?;
    if s.len() != checked_numel(v.shape)? {
        return Err(IrError::Data(format!("buffer of {} elements for shape {:?}", s.len(), v.shape)));
    }
    Ok(s)
}

/// The elements of an output buffer, checking that it holds exactly its shape.
fn elems_mut<'o, T: Elem>(v: &'o mut ViewMut) -> Result<&'o mut [T]> {
    let shape = v.shape;
    let s = v.as_slice_mut::<T>()?;
    if s.len() != checked_numel(shape)? {
        return Err(IrError::Data(format!("buffer of {} elements for shape {shape:?}", s.len())));
    }
    Ok(s)
}

/// `out[i] = f(x[i])`; `x` and `out` have the same number of elements.
fn map<A: Elem, O: Elem>(x: View, out: &mut ViewMut, f: impl Fn(A) -> O) -> Result<()> {
    let xs = elems::<A>(&x)?;
    let os = elems_mut::<O>(out)?;
    if xs.len() != os.len() {
        return Err(IrError::Shape(format!("input {:?} and output {:?} differ in size", x.shape, out.shape)));
    }
    for (o, &v) in os.iter_mut().zip(xs) {
        *o = f(v);
    }
    Ok(())
}

/// Like [`map`] for a float function of f32, applied to f32 or f16 (through f32).
fn map_float(x: View, out: &mut ViewMut, op: &str, f: impl Fn(f32) -> f32) -> Result<()> {
    match x.dtype {
        DType::F32 => map::<f32, f32>(x, out, f),
        DType::F16 => map::<half::f16, half::f16>(x, out, |v| half::f16::from_f32(f(v.to_f32()))),
        dtype => Err(IrError::UnsupportedDType { op: op.to_string(), dtype }),
    }
}

/// `out = f(a, b)` with `a` and `b` broadcast to `out`'s shape. Contiguous runs of the
/// output are computed by tight loops over slices (or a splat when both operands are
/// constant along the run), so same-shape, scalar and per-channel cases are all fast.
fn zip<A: Elem, B: Elem, O: Elem>(a: View, b: View, out: &mut ViewMut, f: impl Fn(A, B) -> O) -> Result<()> {
    let runs = BroadcastRuns::new(out.shape, [a.shape, b.shape])?;
    let (xa, xb) = (elems::<A>(&a)?, elems::<B>(&b)?);
    let xo = elems_mut::<O>(out)?;
    let n = runs.run_len();
    // In bounds: every shape was checked to broadcast to the output and every buffer to
    // hold its shape, so runs stay inside all three slices.
    match runs.steps() {
        [1, 1] => runs.for_each(|o, [i, j]| {
            for ((o, &x), &y) in xo[o..o + n].iter_mut().zip(&xa[i..i + n]).zip(&xb[j..j + n]) {
                *o = f(x, y);
            }
        }),
        [1, _] => runs.for_each(|o, [i, j]| {
            let y = xb[j];
            for (o, &x) in xo[o..o + n].iter_mut().zip(&xa[i..i + n]) {
                *o = f(x, y);
            }
        }),
        [_, 1] => runs.for_each(|o, [i, j]| {
            let x = xa[i];
            for (o, &y) in xo[o..o + n].iter_mut().zip(&xb[j..j + n]) {
                *o = f(x, y);
            }
        }),
        _ => runs.for_each(|o, [i, j]| xo[o..o + n].fill(f(xa[i], xb[j]))),
    }
    Ok(())
}

/// `acc = f(acc, b)` in place, with `b` broadcast to `acc`'s shape (variadic folds).
fn zip_into<T: Elem>(acc: &mut ViewMut, b: View, f: impl Fn(T, T) -> T) -> Result<()> {
    let runs = BroadcastRuns::new(acc.shape, [b.shape])?;
    let xb = elems::<T>(&b)?;
    let xo = elems_mut::<T>(acc)?;
    let n = runs.run_len();
    match runs.steps() {
        [1] => runs.for_each(|o, [j]| {
            for (o, &y) in xo[o..o + n].iter_mut().zip(&xb[j..j + n]) {
                *o = f(*o, y);
            }
        }),
        _ => runs.for_each(|o, [j]| {
            let y = xb[j];
            for o in &mut xo[o..o + n] {
                *o = f(*o, y);
            }
        }),
    }
    Ok(())
}

/// `out = f(a, b, c)` with all three broadcast to `out`'s shape (Where).
fn zip3<A: Elem, B: Elem, C: Elem, O: Elem>(
    a: View,
    b: View,
    c: View,
    out: &mut ViewMut,
    f: impl Fn(A, B, C) -> O,
) -> Result<()> {
    let runs = BroadcastRuns::new(out.shape, [a.shape, b.shape, c.shape])?;
    let (xa, xb, xc) = (elems::<A>(&a)?, elems::<B>(&b)?, elems::<C>(&c)?);
    let xo = elems_mut::<O>(out)?;
    let n = runs.run_len();
    let [sa, sb, sc] = runs.steps();
    if [sa, sb, sc] == [1, 1, 1] {
        runs.for_each(|o, [i, j, k]| {
            let ins = xa[i..i + n].iter().zip(&xb[j..j + n]).zip(&xc[k..k + n]);
            for (o, ((&x, &y), &z)) in xo[o..o + n].iter_mut().zip(ins) {
                *o = f(x, y, z);
            }
        });
    } else {
        runs.for_each(|o, [i, j, k]| {
            for (t, o) in xo[o..o + n].iter_mut().enumerate() {
                *o = f(xa[i + t * sa], xb[j + t * sb], xc[k + t * sc]);
            }
        });
    }
    Ok(())
}

/// Copies `x` into `out` unchanged (same dtype and size).
fn copy(x: View, out: &mut ViewMut) -> Result<()> {
    if x.dtype != out.dtype || x.data.len() != out.data.len() {
        return Err(IrError::Data(format!("cannot copy {} {:?} into {} {:?}", x.dtype, x.shape, out.dtype, out.shape)));
    }
    out.data.copy_from_slice(x.data);
    Ok(())
}

#[cfg(test)]
mod tests;
