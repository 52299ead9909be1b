//! The `Reduce*` operators.

use super::{axes_mask, check_len, check_out_shape, flag, reduced_shape, Rows};
use crate::ops::util::{const_i64s, req, req_view};
use crate::ops::Op;
use crate::{Attrs, DType, Elem, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// What a reduction computes over the selected elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

impl ReduceKind {
    pub fn op_type(self) -> &'static str {
        match self {
            ReduceKind::Sum => "ReduceSum",
            ReduceKind::Mean => "ReduceMean",
            ReduceKind::Max => "ReduceMax",
            ReduceKind::Min => "ReduceMin",
            ReduceKind::Prod => "ReduceProd",
            ReduceKind::L1 => "ReduceL1",
            ReduceKind::L2 => "ReduceL2",
            ReduceKind::LogSum => "ReduceLogSum",
            ReduceKind::LogSumExp => "ReduceLogSumExp",
            ReduceKind::SumSquare => "ReduceSumSquare",
        }
    }

    /// The opset from which axes are an input rather than an attribute.
    fn axes_input_since(self) -> i64 {
        if self == ReduceKind::Sum {
            13
        } else {
            18
        }
    }
}

/// Where a reduction's axes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReduceAxes {
    /// The `axes` attribute (before ReduceSum-13 and the others' opset 18); empty means all.
    Attr(Vec<i64>),
    /// The optional constant input 1.
    Input,
}

/// `ReduceSum`, `ReduceMean`, … with ONNX semantics: negative axes count from the
/// back, empty axes reduce everything (or nothing with `noop_with_empty_axes`),
/// and reducing an empty set yields the reduction's identity.
#[derive(Clone, Debug)]
pub struct Reduce {
    pub kind: ReduceKind,
    pub axes: ReduceAxes,
    pub keepdims: bool,
    pub noop_with_empty_axes: bool,
    /// Default-domain opset: ReduceMax/Min accept int8/uint8 from 12 and bool from 20.
    pub opset: i64,
}

fn build(kind: ReduceKind, attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    let keepdims = flag(attrs, "keepdims", true)?;
    let (axes, noop_with_empty_axes) = if opset >= kind.axes_input_since() {
        if attrs.contains("axes") {
            return Err(Attrs::unsupported(
                "axes",
                format!(
                    "{} takes axes as an input since opset {}, not as an attribute",
                    kind.op_type(),
                    kind.axes_input_since()
                ),
            ));
        }
        (ReduceAxes::Input, flag(attrs, "noop_with_empty_axes", false)?)
    } else {
        (ReduceAxes::Attr(attrs.ints("axes")?.unwrap_or_default().to_vec()), false)
    };
    Ok(Arc::new(Reduce { kind, axes, keepdims, noop_with_empty_axes, opset }))
}

pub(super) fn build_sum(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::Sum, a, o)
}
pub(super) fn build_mean(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::Mean, a, o)
}
pub(super) fn build_max(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::Max, a, o)
}
pub(super) fn build_min(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::Min, a, o)
}
pub(super) fn build_prod(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::Prod, a, o)
}
pub(super) fn build_l1(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::L1, a, o)
}
pub(super) fn build_l2(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::L2, a, o)
}
pub(super) fn build_log_sum(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::LogSum, a, o)
}
pub(super) fn build_log_sum_exp(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::LogSumExp, a, o)
}
pub(super) fn build_sum_square(a: &Attrs, o: i64) -> Result<Arc<dyn Op>> {
    build(ReduceKind::SumSquare, a, o)
}

impl Reduce {
    fn name(&self) -> &'static str {
        self.kind.op_type()
    }

    fn check_dtype(&self, dtype: DType) -> Result<()> {
        let ok = match dtype {
            DType::F32 | DType::F16 | DType::I32 | DType::I64 => true,
            DType::I8 | DType::U8 => matches!(self.kind, ReduceKind::Max | ReduceKind::Min) && self.opset >= 12,
            DType::Bool => matches!(self.kind, ReduceKind::Max | ReduceKind::Min) && self.opset >= 20,
        };
        if ok {
            Ok(())
        } else {
            Err(IrError::UnsupportedDType { op: format!("{} (opset {})", self.name(), self.opset), dtype })
        }
    }

    fn check_axes_dtype(&self, dtype: DType, shape: &[usize]) -> Result<()> {
        if dtype != DType::I64 {
            return Err(IrError::DType { expected: format!("i64 axes for {}", self.name()), found: dtype });
        }
        if shape.len() > 1 {
            return Err(IrError::Shape(format!("{}: axes must be 1-D, got shape {shape:?}", self.name())));
        }
        Ok(())
    }

    /// Which dimensions are reduced. Empty axes mean all of them, or none with
    /// `noop_with_empty_axes`: then every element is "reduced" on its own, so ReduceL1
    /// still takes `abs`, ReduceLogSum `log`, ReduceSumSquare the square (as onnxruntime
    /// and the ops' ONNX function bodies do).
    fn mask(&self, rank: usize, input_axes: Option<Vec<i64>>) -> Result<Vec<bool>> {
        let axes = match &self.axes {
            ReduceAxes::Attr(a) => a.clone(),
            ReduceAxes::Input => input_axes.unwrap_or_default(),
        };
        if axes.is_empty() {
            return Ok(vec![!self.noop_with_empty_axes; rank]);
        }
        axes_mask(&axes, rank, self.name())
    }
}

impl Op for Reduce {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, self.name())?;
        self.check_dtype(x.dtype)?;
        let input_axes = match self.axes {
            ReduceAxes::Attr(_) => None,
            ReduceAxes::Input => {
                if let Some(f) = inputs.get(1).copied().flatten() {
                    self.check_axes_dtype(f.dtype, &f.shape)?;
                }
                const_i64s(inputs, 1, self.name(), "axes")?
            }
        };
        let shape = reduced_shape(&x.shape, &self.mask(x.rank(), input_axes)?, self.keepdims);
        Ok(vec![Fact::new(x.dtype, shape)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, self.name())?;
        self.check_dtype(x.dtype)?;
        let input_axes = match self.axes {
            ReduceAxes::Attr(_) => None,
            ReduceAxes::Input => match inputs.get(1).copied().flatten() {
                Some(v) => {
                    self.check_axes_dtype(v.dtype, v.shape)?;
                    Some(v.to_i64_vec()?)
                }
                None => None,
            },
        };
        let y = outputs.first_mut().ok_or_else(|| IrError::Graph(format!("{}: no output buffer", self.name())))?;
        if y.dtype != x.dtype {
            return Err(IrError::DType { expected: x.dtype.to_string(), found: y.dtype });
        }
        let mask = self.mask(x.shape.len(), input_axes)?;
        check_out_shape(y.shape, &reduced_shape(x.shape, &mask, self.keepdims), self.name())?;
        crate::tensor::checked_numel(x.shape)?;
        let rows = Rows::new(x.shape, &mask);
        let count = x.shape.iter().zip(&mask).filter(|(_, &r)| r).map(|(&d, _)| d).product::<usize>();
        let kind = self.kind;
        let exact_int = !matches!(kind, ReduceKind::L2 | ReduceKind::LogSum | ReduceKind::LogSumExp);
        match x.dtype {
            DType::F32 => reduce_float::<f32>(kind, &rows, count, x, y),
            DType::F16 => reduce_float::<half::f16>(kind, &rows, count, x, y),
            DType::I32 if exact_int => reduce_int::<i32>(kind, &rows, count, x, y, (i32::MIN.into(), i32::MAX.into())),
            DType::I64 if exact_int => reduce_int::<i64>(kind, &rows, count, x, y, (i64::MIN, i64::MAX)),
            DType::I8 if exact_int => reduce_int::<i8>(kind, &rows, count, x, y, (i8::MIN.into(), i8::MAX.into())),
            DType::U8 if exact_int => reduce_int::<u8>(kind, &rows, count, x, y, (0, u8::MAX.into())),
            DType::Bool if exact_int => reduce_int::<u8>(kind, &rows, count, x, y, (0, 1)),
            DType::I32 => reduce_float::<i32>(kind, &rows, count, x, y),
            DType::I64 => reduce_float::<i64>(kind, &rows, count, x, y),
            DType::I8 => reduce_float::<i8>(kind, &rows, count, x, y),
            DType::U8 | DType::Bool => reduce_float::<u8>(kind, &rows, count, x, y),
        }
    }

    fn const_inputs(&self) -> &[usize] {
        match self.axes {
            ReduceAxes::Attr(_) => &[],
            ReduceAxes::Input => &[1],
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Reduces in f64 (floats, and the integer forms of L2/LogSum/LogSumExp, whose
/// results are rounded toward zero like numpy's `astype`).
fn reduce_float<T: Elem>(kind: ReduceKind, rows: &Rows, count: usize, x: View, y: &mut ViewMut) -> Result<()> {
    let xs = x.as_slice::<T>()?;
    check_len(xs.len(), x.shape, "input")?;
    let ys = y.as_slice_mut::<T>()?;
    let f = |v: T| v.to_f64();
    let add = |a: f64, b: f64| a + b;
    let init = match kind {
        ReduceKind::Max | ReduceKind::LogSumExp => f64::NEG_INFINITY,
        ReduceKind::Min => f64::INFINITY,
        ReduceKind::Prod => 1.0,
        _ => 0.0,
    };
    let mut acc = vec![init; ys.len()];
    match kind {
        ReduceKind::Sum | ReduceKind::Mean | ReduceKind::LogSum => rows.fold(xs, &mut acc, f, add),
        // Plain comparisons skip NaNs, as onnxruntime does.
        ReduceKind::Max => rows.fold(xs, &mut acc, f, |a, b| if b > a { b } else { a }),
        ReduceKind::Min => rows.fold(xs, &mut acc, f, |a, b| if b < a { b } else { a }),
        ReduceKind::Prod => rows.fold(xs, &mut acc, f, |a, b| a * b),
        ReduceKind::L1 => rows.fold(xs, &mut acc, |v| v.to_f64().abs(), add),
        ReduceKind::L2 | ReduceKind::SumSquare => rows.fold(xs, &mut acc, |v| v.to_f64() * v.to_f64(), add),
        ReduceKind::LogSumExp => {
            // max + log(sum(exp(x - max))), so large inputs do not overflow.
            rows.fold(xs, &mut acc, f, |a, b| if b > a { b } else { a });
            let mut sums = vec![0.0f64; ys.len()];
            let len = rows.row_len;
            rows.for_each(|i, o| {
                let row = &xs[i..i + len];
                if rows.last_reduced {
                    let m = acc[o];
                    sums[o] += row.iter().map(|v| (v.to_f64() - m).exp()).sum::<f64>();
                } else {
                    for ((s, v), &m) in sums[o..o + len].iter_mut().zip(row).zip(&acc[o..o + len]) {
                        *s += (v.to_f64() - m).exp();
                    }
                }
            });
            for (m, s) in acc.iter_mut().zip(sums) {
                // An infinite max (all -inf, an empty set, or some +inf) is the answer itself.
                if m.is_finite() {
                    *m += s.ln();
                }
            }
        }
    }
    let n = count as f64;
    for (d, a) in ys.iter_mut().zip(acc) {
        let r = match kind {
            ReduceKind::Mean => a / n,
            ReduceKind::L2 => a.sqrt(),
            ReduceKind::LogSum => a.ln(),
            _ => a,
        };
        *d = T::from_f64(r);
    }
    Ok(())
}

/// An integer element, accumulated exactly in i64 with wrapping arithmetic: the
/// final narrowing cast gives the same bits as wrapping arithmetic in `Self`.
trait IntElem: Elem {
    fn widen(self) -> i64;
    fn narrow(v: i64) -> Self;
}

macro_rules! int_elem {
    ($($t:ty),*) => {$(
        impl IntElem for $t {
            fn widen(self) -> i64 {
                self as i64
            }
            fn narrow(v: i64) -> Self {
                v as $t
            }
        }
    )*};
}
int_elem!(i8, u8, i32, i64);

/// Exact integer reductions. `bounds` are the type's (min, max), the identities of
/// Max and Min (bool is stored as u8 with bounds (0, 1)).
fn reduce_int<T: IntElem>(
    kind: ReduceKind,
    rows: &Rows,
    count: usize,
    x: View,
    y: &mut ViewMut,
    bounds: (i64, i64),
) -> Result<()> {
    let xs = x.as_slice::<T>()?;
    check_len(xs.len(), x.shape, "input")?;
    let ys = y.as_slice_mut::<T>()?;
    let f = |v: T| v.widen();
    let add = |a: i64, b: i64| a.wrapping_add(b);
    let init = match kind {
        ReduceKind::Max => bounds.0,
        ReduceKind::Min => bounds.1,
        ReduceKind::Prod => 1,
        _ => 0,
    };
    let mut acc = vec![init; ys.len()];
    match kind {
        ReduceKind::Sum | ReduceKind::Mean => rows.fold(xs, &mut acc, f, add),
        ReduceKind::Max => rows.fold(xs, &mut acc, f, i64::max),
        ReduceKind::Min => rows.fold(xs, &mut acc, f, i64::min),
        ReduceKind::Prod => rows.fold(xs, &mut acc, f, i64::wrapping_mul),
        ReduceKind::L1 => rows.fold(xs, &mut acc, |v| v.widen().wrapping_abs(), add),
        ReduceKind::SumSquare => rows.fold(xs, &mut acc, |v| v.widen().wrapping_mul(v.widen()), add),
        ReduceKind::L2 | ReduceKind::LogSum | ReduceKind::LogSumExp => {
            return Err(IrError::Unsupported(format!("{} on integers is computed in floating point", kind.op_type())))
        }
    }
    let n = i64::try_from(count).unwrap_or(i64::MAX);
    for (d, a) in ys.iter_mut().zip(acc) {
        // Integer mean truncates toward zero like onnxruntime; an empty mean is 0.
        let r = if kind == ReduceKind::Mean { a.checked_div(n).unwrap_or(0) } else { a };
        *d = T::narrow(r);
    }
    Ok(())
}
