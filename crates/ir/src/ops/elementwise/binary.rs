//! Ops over several inputs with multidirectional (numpy) broadcasting: arithmetic,
//! comparison, logic and bitwise ops, Pow, Mod, the variadic Sum/Mean/Min/Max, PRelu
//! (unidirectional) and Where.

use super::num::{int_pow, max_nan, min_nan, Num};
use super::{check_dtype, check_same_dtype, dispatch_int, dispatch_num, output, zip, zip3, zip_into, FLOATS, NUMERIC};
use crate::ops::util::{broadcast_shapes, req, req_view};
use crate::ops::Op;
use crate::{dispatch_dtype, Attrs, DType, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// Which function a [`Binary`] op applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    Add,
    Sub,
    Mul,
    /// Integer division truncates toward zero.
    Div,
    /// The exponent may have another dtype; the result has the base's.
    Pow,
    /// `fmod`: C-style remainder (sign of the dividend) instead of Python-style.
    Mod {
        fmod: bool,
    },
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    And,
    Or,
    Xor,
    BitShift {
        left: bool,
    },
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
}

impl BinaryKind {
    /// The ONNX op type.
    pub fn op_type(self) -> &'static str {
        use BinaryKind::*;
        match self {
            Add => "Add",
            Sub => "Sub",
            Mul => "Mul",
            Div => "Div",
            Pow => "Pow",
            Mod { .. } => "Mod",
            Equal => "Equal",
            Less => "Less",
            Greater => "Greater",
            LessOrEqual => "LessOrEqual",
            GreaterOrEqual => "GreaterOrEqual",
            And => "And",
            Or => "Or",
            Xor => "Xor",
            BitShift { .. } => "BitShift",
            BitwiseAnd => "BitwiseAnd",
            BitwiseOr => "BitwiseOr",
            BitwiseXor => "BitwiseXor",
        }
    }

    /// Dtypes of the first input (and of the second, except for Pow).
    fn dtypes(self) -> &'static [DType] {
        use BinaryKind::*;
        match self {
            Add | Sub | Mul | Div | Mod { .. } | Less | Greater | LessOrEqual | GreaterOrEqual => NUMERIC,
            Pow => &[DType::F32, DType::F16, DType::I32, DType::I64],
            Equal => &DType::ALL,
            And | Or | Xor => &[DType::Bool],
            BitShift { .. } => &[DType::U8],
            BitwiseAnd | BitwiseOr | BitwiseXor => super::INTS,
        }
    }

    fn output_dtype(self, input: DType) -> DType {
        use BinaryKind::*;
        match self {
            Equal | Less | Greater | LessOrEqual | GreaterOrEqual | And | Or | Xor => DType::Bool,
            _ => input,
        }
    }
}

/// An elementwise function of two inputs broadcast against each other.
#[derive(Clone, Debug, PartialEq)]
pub struct Binary {
    pub kind: BinaryKind,
}

impl Op for Binary {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let name = self.kind.op_type();
        let a = req(inputs, 0, name)?;
        let b = req(inputs, 1, name)?;
        check_dtype(name, a.dtype, self.kind.dtypes())?;
        if self.kind == BinaryKind::Pow {
            check_dtype(name, b.dtype, NUMERIC)?;
        } else {
            check_same_dtype(a, 1, b)?;
        }
        if self.kind == (BinaryKind::Mod { fmod: false }) && a.dtype.is_float() {
            return Err(Attrs::unsupported("fmod", "Mod of floating-point inputs requires fmod = 1"));
        }
        let shape = broadcast_shapes(&[&a.shape, &b.shape])?;
        Ok(vec![Fact::new(self.kind.output_dtype(a.dtype), shape)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        use BinaryKind::*;
        let name = self.kind.op_type();
        let a = req_view(inputs, 0, name)?;
        let b = req_view(inputs, 1, name)?;
        let out = output(outputs, 0, name)?;
        if self.kind != Pow && a.dtype != b.dtype {
            return Err(IrError::DType { expected: format!("input 1 to be {} like input 0", a.dtype), found: b.dtype });
        }
        let dt = a.dtype;
        match self.kind {
            Add => dispatch_num!(dt, name, T => zip::<T, T, T>(a, b, out, Num::add)),
            Sub => dispatch_num!(dt, name, T => zip::<T, T, T>(a, b, out, Num::sub)),
            Mul => dispatch_num!(dt, name, T => zip::<T, T, T>(a, b, out, Num::mul)),
            Div => dispatch_num!(dt, name, T => zip::<T, T, T>(a, b, out, Num::div)),
            Mod { fmod: true } => dispatch_num!(dt, name, T => zip::<T, T, T>(a, b, out, Num::rem_trunc)),
            Mod { fmod: false } => dispatch_num!(dt, name, T => zip::<T, T, T>(a, b, out, Num::rem_floor)),
            Pow => pow_kernel(a, b, out),
            Equal => dispatch_dtype!(dt, T => zip::<T, T, u8>(a, b, out, |x, y| (x == y) as u8)),
            Less => dispatch_num!(dt, name, T => zip::<T, T, u8>(a, b, out, |x, y| (x < y) as u8)),
            Greater => dispatch_num!(dt, name, T => zip::<T, T, u8>(a, b, out, |x, y| (x > y) as u8)),
            LessOrEqual => dispatch_num!(dt, name, T => zip::<T, T, u8>(a, b, out, |x, y| (x <= y) as u8)),
            GreaterOrEqual => dispatch_num!(dt, name, T => zip::<T, T, u8>(a, b, out, |x, y| (x >= y) as u8)),
            And => zip::<u8, u8, u8>(a, b, out, |x, y| (x != 0 && y != 0) as u8),
            Or => zip::<u8, u8, u8>(a, b, out, |x, y| (x != 0 || y != 0) as u8),
            Xor => zip::<u8, u8, u8>(a, b, out, |x, y| ((x != 0) != (y != 0)) as u8),
            // Shifting by the bit width or more gives 0, as numpy does.
            BitShift { left: true } => zip::<u8, u8, u8>(a, b, out, |x, s| x.checked_shl(s as u32).unwrap_or(0)),
            BitShift { left: false } => zip::<u8, u8, u8>(a, b, out, |x, s| x.checked_shr(s as u32).unwrap_or(0)),
            BitwiseAnd => dispatch_int!(dt, name, T => zip::<T, T, T>(a, b, out, |x, y| x & y)),
            BitwiseOr => dispatch_int!(dt, name, T => zip::<T, T, T>(a, b, out, |x, y| x | y)),
            BitwiseXor => dispatch_int!(dt, name, T => zip::<T, T, T>(a, b, out, |x, y| x ^ y)),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Pow as ONNX's reference computes it (`np.power(a, b).astype(a.dtype)`): exact integer
/// powers (wrapping) when both are integers, otherwise in f64 and converted to the base's
/// dtype. For a float base, a scalar exponent of 2 (layer norms' variance) is a plain
/// multiply, which gives the same correctly rounded result.
fn pow_kernel(a: View, b: View, out: &mut ViewMut) -> Result<()> {
    fn run<B: Num, E: Num>(a: View, b: View, out: &mut ViewMut) -> Result<()> {
        if B::FLOAT && b.len() == 1 && b.as_slice::<E>()?.first().is_some_and(|e| e.to_f64() == 2.0) {
            return zip::<B, E, B>(a, b, out, |x, _| x.mul(x));
        }
        if B::FLOAT || E::FLOAT {
            zip::<B, E, B>(a, b, out, |x, e| B::from_f64(x.to_f64().powf(e.to_f64())))
        } else {
            zip::<B, E, B>(a, b, out, |x, e| B::from_i64(int_pow(x.to_i64(), e.to_i64())))
        }
    }
    let base = a.dtype;
    match base {
        DType::F32 => dispatch_num!(b.dtype, "Pow", E => run::<f32, E>(a, b, out)),
        DType::F16 => dispatch_num!(b.dtype, "Pow", E => run::<half::f16, E>(a, b, out)),
        DType::I32 => dispatch_num!(b.dtype, "Pow", E => run::<i32, E>(a, b, out)),
        DType::I64 => dispatch_num!(b.dtype, "Pow", E => run::<i64, E>(a, b, out)),
        dtype => Err(IrError::UnsupportedDType { op: "Pow".into(), dtype }),
    }
}

fn binary(kind: BinaryKind) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(Binary { kind }))
}

macro_rules! plain_ctor {
    ($($f:ident => $k:ident),* $(,)?) => {
        $(
            pub(super) fn $f(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
                binary(BinaryKind::$k)
            }
        )*
    };
}
plain_ctor!(
    add => Add, sub => Sub, mul => Mul, div => Div, pow => Pow, equal => Equal, less => Less,
    greater => Greater, less_or_equal => LessOrEqual, greater_or_equal => GreaterOrEqual,
    and => And, or => Or, xor => Xor, bitwise_and => BitwiseAnd, bitwise_or => BitwiseOr,
    bitwise_xor => BitwiseXor,
);

pub(super) fn modulo(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    let fmod = match a.int_or("fmod", 0)? {
        0 => false,
        1 => true,
        v => return Err(Attrs::unsupported("fmod", format!("expected 0 or 1, got {v}"))),
    };
    binary(BinaryKind::Mod { fmod })
}

pub(super) fn bit_shift(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    let left = match a.string("direction")? {
        Some("LEFT") => true,
        Some("RIGHT") => false,
        Some(other) => {
            return Err(Attrs::unsupported("direction", format!("expected \"LEFT\" or \"RIGHT\", got {other:?}")))
        }
        None => return Err(Attrs::unsupported("direction", "BitShift requires it")),
    };
    binary(BinaryKind::BitShift { left })
}

/// Which reduction a [`Variadic`] op folds its inputs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariadicKind {
    Sum,
    Mean,
    /// NaN-propagating, like `np.minimum`.
    Min,
    /// NaN-propagating, like `np.maximum`.
    Max,
}

impl VariadicKind {
    /// The ONNX op type.
    pub fn op_type(self) -> &'static str {
        match self {
            VariadicKind::Sum => "Sum",
            VariadicKind::Mean => "Mean",
            VariadicKind::Min => "Min",
            VariadicKind::Max => "Max",
        }
    }
}

/// An elementwise fold over one or more inputs, all broadcast together.
#[derive(Clone, Debug, PartialEq)]
pub struct Variadic {
    pub kind: VariadicKind,
}

impl Variadic {
    fn dtypes(&self) -> &'static [DType] {
        match self.kind {
            VariadicKind::Sum | VariadicKind::Mean => FLOATS,
            VariadicKind::Min | VariadicKind::Max => NUMERIC,
        }
    }
}

impl Op for Variadic {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let name = self.kind.op_type();
        let first = req(inputs, 0, name)?;
        check_dtype(name, first.dtype, self.dtypes())?;
        let mut shapes = Vec::with_capacity(inputs.len());
        for i in 0..inputs.len() {
            let f = req(inputs, i, name)?;
            check_same_dtype(first, i, f)?;
            shapes.push(f.shape.as_slice());
        }
        Ok(vec![Fact::new(first.dtype, broadcast_shapes(&shapes)?)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let name = self.kind.op_type();
        let first = req_view(inputs, 0, name)?;
        let out = output(outputs, 0, name)?;
        let dt = first.dtype;
        dispatch_num!(dt, name, T => {
            // out = x0 broadcast, then out = f(out, xi) for the others, as numpy folds.
            zip_into::<T>(out, first, |_, x| x)?;
            for i in 1..inputs.len() {
                let x = req_view(inputs, i, name)?;
                match self.kind {
                    VariadicKind::Sum | VariadicKind::Mean => zip_into::<T>(out, x, Num::add)?,
                    VariadicKind::Min => zip_into::<T>(out, x, min_nan)?,
                    VariadicKind::Max => zip_into::<T>(out, x, max_nan)?,
                }
            }
            if self.kind == VariadicKind::Mean {
                let n = T::from_i64(inputs.len() as i64);
                for v in out.as_slice_mut::<T>()? {
                    *v = v.div(n);
                }
            }
            Ok(())
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn variadic(kind: VariadicKind) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(Variadic { kind }))
}

pub(super) fn sum(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    variadic(VariadicKind::Sum)
}
pub(super) fn mean(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    variadic(VariadicKind::Mean)
}
pub(super) fn min(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    variadic(VariadicKind::Min)
}
pub(super) fn max(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    variadic(VariadicKind::Max)
}

/// `PRelu`: `x < 0 ? slope·x : x`, the slope broadcast to X's shape (unidirectionally).
#[derive(Clone, Debug, PartialEq)]
pub struct PRelu;

const PRELU_DTYPES: &[DType] = &[DType::F32, DType::F16, DType::I32, DType::I64];

impl Op for PRelu {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "PRelu")?;
        let slope = req(inputs, 1, "PRelu")?;
        check_dtype("PRelu", x.dtype, PRELU_DTYPES)?;
        check_same_dtype(x, 1, slope)?;
        if broadcast_shapes(&[&x.shape, &slope.shape]).ok().as_ref() != Some(&x.shape) {
            return Err(IrError::Shape(format!(
                "PRelu slope of shape {:?} does not broadcast to X's shape {:?}",
                slope.shape, x.shape
            )));
        }
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "PRelu")?;
        let slope = req_view(inputs, 1, "PRelu")?;
        let out = output(outputs, 0, "PRelu")?;
        check_dtype("PRelu", x.dtype, PRELU_DTYPES)?;
        // The u8 instance (never reached: PRelu excludes u8) compares unsigned with zero.
        #[allow(clippy::absurd_extreme_comparisons)]
        let prelu = dispatch_num!(x.dtype, "PRelu", T => {
            zip::<T, T, T>(x, slope, out, |v, s| if v < T::ZERO { v.mul(s) } else { v })
        });
        prelu
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(super) fn prelu(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(PRelu))
}

/// `Where(cond, x, y)`: `cond ? x : y`, all three broadcast together.
#[derive(Clone, Debug, PartialEq)]
pub struct Where;

impl Op for Where {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let c = req(inputs, 0, "Where")?;
        let x = req(inputs, 1, "Where")?;
        let y = req(inputs, 2, "Where")?;
        if c.dtype != DType::Bool {
            return Err(IrError::DType { expected: "bool condition (input 0)".into(), found: c.dtype });
        }
        if x.dtype != y.dtype {
            return Err(IrError::DType { expected: format!("input 2 to be {} like input 1", x.dtype), found: y.dtype });
        }
        Ok(vec![Fact::new(x.dtype, broadcast_shapes(&[&c.shape, &x.shape, &y.shape])?)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let c = req_view(inputs, 0, "Where")?;
        let x = req_view(inputs, 1, "Where")?;
        let y = req_view(inputs, 2, "Where")?;
        let out = output(outputs, 0, "Where")?;
        dispatch_dtype!(x.dtype, T => zip3::<u8, T, T, T>(c, x, y, out, |c, x, y| if c != 0 { x } else { y }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(super) fn where_(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(Where))
}
