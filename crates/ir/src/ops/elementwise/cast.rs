//! Cast and CastLike between every Sinter dtype.

use super::num::Num;
use super::{copy, map, output};
use crate::ops::util::{req, req_view};
use crate::ops::Op;
use crate::{dispatch_dtype, Attrs, DType, Fact, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// Converts `x` into `out`'s dtype, as numpy's `astype` does: float to integer truncates
/// toward zero (saturating when out of range, where ONNX leaves the result undefined;
/// NaN gives 0), integer to integer wraps, anything to bool is `!= 0` (so NaN is true),
/// and float narrowing rounds to nearest even.
pub(crate) fn cast_into(x: View, out: &mut ViewMut) -> Result<()> {
    fn from<S: Num>(x: View, out: &mut ViewMut) -> Result<()> {
        fn conv<S: Num, D: Num>(v: S) -> D {
            if S::FLOAT {
                D::from_f64(v.to_f64())
            } else {
                D::from_i64(v.to_i64())
            }
        }
        match out.dtype {
            DType::Bool => map::<S, u8>(x, out, |v| (v != S::ZERO) as u8),
            DType::F32 => map::<S, f32>(x, out, conv),
            DType::F16 => map::<S, half::f16>(x, out, conv),
            DType::I8 => map::<S, i8>(x, out, conv),
            DType::U8 => map::<S, u8>(x, out, conv),
            DType::I32 => map::<S, i32>(x, out, conv),
            DType::I64 => map::<S, i64>(x, out, conv),
        }
    }
    if x.dtype == out.dtype {
        return copy(x, out);
    }
    // Bool is stored as 0/1 bytes, so it converts like u8.
    dispatch_dtype!(x.dtype, S => from::<S>(x, out))
}

/// `Cast`: converts to the dtype of the `to` attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Cast {
    pub to: DType,
}

impl Op for Cast {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Cast")?;
        Ok(vec![Fact::new(self.to, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Cast")?;
        cast_into(x, output(outputs, 0, "Cast")?)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The dtype of a Cast's `to` attribute. `saturate` only concerns float8 types,
/// which Sinter does not have, so it is ignored.
pub(super) fn cast(a: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    let code = a.int("to")?.ok_or_else(|| Attrs::unsupported("to", "Cast requires it"))?;
    let to = i32::try_from(code).ok().and_then(DType::from_onnx).ok_or_else(|| {
        let name = i32::try_from(code).map(DType::onnx_name).unwrap_or("unknown");
        Attrs::unsupported("to", format!("cast to {name} (ONNX type {code}) is not supported"))
    })?;
    Ok(Arc::new(Cast { to }))
}

/// `CastLike`: converts input 0 to the dtype of input 1 (whose values are not read).
#[derive(Clone, Debug, PartialEq)]
pub struct CastLike;

impl Op for CastLike {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "CastLike")?;
        let like = req(inputs, 1, "CastLike")?;
        Ok(vec![Fact::new(like.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "CastLike")?;
        cast_into(x, output(outputs, 0, "CastLike")?)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(super) fn cast_like(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(CastLike))
}
