//! Matrix products: a plain f32 GEMM shared with the convolutions, and the MatMul,
//! Gemm and MatMulInteger ops.

use super::{f32_input, with_f32_output};
use crate::ops::util::{broadcast_shapes, broadcast_strides, for_each_broadcast, req, req_view};
use crate::ops::Op;
use crate::{Attrs, DType, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// A read-only strided matrix: element `(i, j)` is `data[i * rs + j * cs]`.
/// Strides express transposes without copying.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl Mat<'_> {
    #[inline]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// `C += alpha * A * B` with `A` of `m x k`, `B` of `k x n` and `C` row-major with row
/// stride `ldc`. The reference: a plain i-k-j loop, no blocking (speed lives in
/// `sinter-kernels`). Each row of `A * B` is summed in f64 and rounded once, so the result
/// does not depend on a summation order and is as close to exact as f32 allows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(m: usize, n: usize, k: usize, alpha: f32, a: Mat, b: Mat, c: &mut [f32], ldc: usize) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let mut acc = vec![0f64; n];
    for i in 0..m {
        acc.fill(0.0);
        for p in 0..k {
            let av = f64::from(a.at(i, p));
            let b_row = &b.data[p * b.rs..];
            if b.cs == 1 {
                // A contiguous row of B (the usual case): a slice the compiler vectorizes.
                for (x, &bv) in acc.iter_mut().zip(&b_row[..n]) {
                    *x += av * f64::from(bv);
                }
            } else {
                for (j, x) in acc.iter_mut().enumerate() {
                    *x += av * f64::from(b_row[j * b.cs]);
                }
            }
        }
        for (cv, &x) in c[i * ldc..][..n].iter_mut().zip(&acc) {
            *cv = (f64::from(*cv) + f64::from(alpha) * x) as f32;
        }
    }
}

/// Integer element types of the matrix ops, with two's-complement wrapping arithmetic
/// (as ONNX runtimes behave on overflow) instead of panics.
trait WrapInt: crate::Elem + Copy {
    fn wmul(self, o: Self) -> Self;
    fn wadd(self, o: Self) -> Self;
}

macro_rules! wrap_int {
    ($($t:ty),*) => {$(
        impl WrapInt for $t {
            fn wmul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn wadd(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
        }
    )*};
}
wrap_int!(i32, i64);

/// `out += A * B` for integer matrices (`out` is `m x n`, all row-major, strided A/B
/// given as (data, row stride, column stride)).
#[allow(clippy::too_many_arguments)]
fn int_matmul<T: WrapInt>(
    m: usize,
    n: usize,
    k: usize,
    a: (&[T], usize, usize),
    b: (&[T], usize, usize),
    out: &mut [T],
) {
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        for p in 0..k {
            let av = a.0[i * a.1 + p * a.2];
            for (j, o) in row.iter_mut().enumerate() {
                *o = o.wadd(av.wmul(b.0[p * b.1 + j * b.2]));
            }
        }
    }
}

/// Batch broadcasting and matrix sizes of a numpy-style matmul.
#[derive(Debug)]
struct MatMulPlan {
    m: usize,
    k: usize,
    n: usize,
    batch: Vec<usize>,
    /// Per batch axis, the stride in whole matrices of A and B (0 when broadcast).
    a_strides: Vec<usize>,
    b_strides: Vec<usize>,
    out_shape: Vec<usize>,
}

impl MatMulPlan {
    fn new(op: &str, a: &[usize], b: &[usize]) -> Result<MatMulPlan> {
        if a.is_empty() || b.is_empty() {
            return Err(IrError::Shape(format!("{op} needs inputs of rank >= 1, got {a:?} and {b:?}")));
        }
        let (a_batch, m, k) = match a.len() {
            1 => (&a[..0], 1, a[0]),
            r => (&a[..r - 2], a[r - 2], a[r - 1]),
        };
        let (b_batch, kb, n) = match b.len() {
            1 => (&b[..0], b[0], 1),
            r => (&b[..r - 2], b[r - 2], b[r - 1]),
        };
        if k != kb {
            return Err(IrError::Shape(format!("{op}: inner dimensions of {a:?} and {b:?} differ")));
        }
        let batch = broadcast_shapes(&[a_batch, b_batch])?;
        let mut out_shape = batch.clone();
        if a.len() > 1 {
            out_shape.push(m);
        }
        if b.len() > 1 {
            out_shape.push(n);
        }
        super::checked_len(&out_shape, "MatMul output")?;
        Ok(MatMulPlan {
            m,
            k,
            n,
            a_strides: broadcast_strides(a_batch, &batch),
            b_strides: broadcast_strides(b_batch, &batch),
            batch,
            out_shape,
        })
    }

    /// Calls `f(batch index, A offset, B offset, out offset)` in elements, per matrix product.
    fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        // Saturating: only an empty operand can have a product past usize::MAX, and then
        // no offset is ever used.
        let (mk, kn, mn) =
            (self.m.saturating_mul(self.k), self.k.saturating_mul(self.n), self.m.saturating_mul(self.n));
        for_each_broadcast(&self.batch, [&self.a_strides, &self.b_strides], |o, [ia, ib]| f(ia * mk, ib * kn, o * mn));
    }
}

fn same_dtype(op: &str, a: &Fact, b: &Fact) -> Result<()> {
    if a.dtype != b.dtype {
        return Err(IrError::DType {
            expected: format!("{} (the dtype of {op}'s first input)", a.dtype),
            found: b.dtype,
        });
    }
    Ok(())
}

fn check_matmul_dtype(op: &str, dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F16 | DType::I32 | DType::I64 => Ok(()),
        dtype => Err(IrError::UnsupportedDType { op: op.to_string(), dtype }),
    }
}

/// `MatMul`: numpy matmul (1-D operands promoted, batch axes broadcast).
#[derive(Debug)]
pub struct MatMul;

pub(super) fn build_matmul(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(MatMul))
}

impl Op for MatMul {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (a, b) = (req(inputs, 0, "MatMul")?, req(inputs, 1, "MatMul")?);
        same_dtype("MatMul", a, b)?;
        check_matmul_dtype("MatMul", a.dtype)?;
        let plan = MatMulPlan::new("MatMul", &a.shape, &b.shape)?;
        Ok(vec![Fact::new(a.dtype, plan.out_shape)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let (a, b) = (req_view(inputs, 0, "MatMul")?, req_view(inputs, 1, "MatMul")?);
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph("MatMul has no output".into()))?;
        let plan = MatMulPlan::new("MatMul", a.shape, b.shape)?;
        let (m, k, n) = (plan.m, plan.k, plan.n);
        match a.dtype {
            DType::I32 => run_int_matmul::<i32>(&plan, &a, &b, out),
            DType::I64 => run_int_matmul::<i64>(&plan, &a, &b, out),
            _ => {
                let (ad, bd) = (f32_input("MatMul", &a)?, f32_input("MatMul", &b)?);
                with_f32_output("MatMul", out, |y| {
                    y.fill(0.0);
                    plan.for_each(|oa, ob, oy| {
                        let am = Mat { data: &ad[oa..], rs: k, cs: 1 };
                        let bm = Mat { data: &bd[ob..], rs: n, cs: 1 };
                        sgemm(m, n, k, 1.0, am, bm, &mut y[oy..], n);
                    });
                    Ok(())
                })
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn run_int_matmul<T: WrapInt>(plan: &MatMulPlan, a: &View, b: &View, out: &mut ViewMut) -> Result<()> {
    let (ad, bd) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
    let y = out.as_slice_mut::<T>()?;
    y.fill(T::default());
    let (m, k, n) = (plan.m, plan.k, plan.n);
    plan.for_each(|oa, ob, oy| {
        int_matmul(m, n, k, (&ad[oa..], k, 1), (&bd[ob..], n, 1), &mut y[oy..oy + m * n]);
    });
    Ok(())
}

/// `Gemm`: `alpha * A' * B' + beta * C`, with `A'`/`B'` optionally transposed and C
/// broadcast to the output.
#[derive(Debug)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

pub(super) fn build_gemm(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(Gemm {
        alpha: attrs.float_or("alpha", 1.0)?,
        beta: attrs.float_or("beta", 1.0)?,
        trans_a: attrs.int_or("transA", 0)? != 0,
        trans_b: attrs.int_or("transB", 0)? != 0,
    }))
}

impl Gemm {
    /// (m, k, n) from the shapes of A and B, and the strides of C broadcast to `[m, n]`.
    fn dims(&self, a: &[usize], b: &[usize], c: Option<&[usize]>) -> Result<(usize, usize, usize, Option<Vec<usize>>)> {
        if a.len() != 2 || b.len() != 2 {
            return Err(IrError::Shape(format!("Gemm needs 2-D A and B, got {a:?} and {b:?}")));
        }
        let (m, k) = if self.trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
        let (kb, n) = if self.trans_b { (b[1], b[0]) } else { (b[0], b[1]) };
        if k != kb {
            return Err(IrError::Shape(format!(
                "Gemm: inner dimensions differ (A {a:?} transA={}, B {b:?} transB={})",
                self.trans_a as u8, self.trans_b as u8
            )));
        }
        super::checked_len(&[m, n], "Gemm output")?;
        let c_strides = match c {
            None => None,
            Some(c) => {
                let ok = c.len() <= 2 && broadcast_shapes(&[c, &[m, n]]).map(|s| s == [m, n]).unwrap_or(false);
                if !ok {
                    return Err(IrError::Shape(format!("Gemm: C of shape {c:?} does not broadcast to [{m}, {n}]")));
                }
                Some(broadcast_strides(c, &[m, n]))
            }
        };
        Ok((m, k, n, c_strides))
    }
}

impl Op for Gemm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (a, b) = (req(inputs, 0, "Gemm")?, req(inputs, 1, "Gemm")?);
        same_dtype("Gemm", a, b)?;
        check_matmul_dtype("Gemm", a.dtype)?;
        let c = inputs.get(2).copied().flatten();
        if let Some(c) = c {
            same_dtype("Gemm", a, c)?;
        }
        let (m, _, n, _) = self.dims(&a.shape, &b.shape, c.map(|c| c.shape.as_slice()))?;
        Ok(vec![Fact::new(a.dtype, vec![m, n])])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let (a, b) = (req_view(inputs, 0, "Gemm")?, req_view(inputs, 1, "Gemm")?);
        let c = inputs.get(2).copied().flatten();
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph("Gemm has no output".into()))?;
        let (m, k, n, c_strides) = self.dims(a.shape, b.shape, c.map(|c| c.shape))?;
        // Row and column strides of A' and B' in their stored layouts.
        let (ars, acs) = if self.trans_a { (1, m) } else { (k, 1) };
        let (brs, bcs) = if self.trans_b { (1, k) } else { (n, 1) };
        let c_in = c.zip(c_strides);
        match a.dtype {
            DType::I32 => self.eval_int::<i32>(&a, &b, c_in, out, (m, k, n), (ars, acs), (brs, bcs)),
            DType::I64 => self.eval_int::<i64>(&a, &b, c_in, out, (m, k, n), (ars, acs), (brs, bcs)),
            _ => {
                let (ad, bd) = (f32_input("Gemm", &a)?, f32_input("Gemm", &b)?);
                let cd = c_in.map(|(c, st)| f32_input("Gemm", &c).map(|d| (d, st))).transpose()?;
                let beta = self.beta;
                with_f32_output("Gemm", out, |y| {
                    match &cd {
                        // beta == 0 ignores C entirely (even NaNs in it), as runtimes do.
                        Some((cv, st)) if beta != 0.0 => {
                            for_each_broadcast(&[m, n], [st.as_slice()], |o, [i]| y[o] = beta * cv[i]);
                        }
                        _ => y.fill(0.0),
                    }
                    let am = Mat { data: &ad, rs: ars, cs: acs };
                    let bm = Mat { data: &bd, rs: brs, cs: bcs };
                    sgemm(m, n, k, self.alpha, am, bm, y, n);
                    Ok(())
                })
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Gemm {
    /// Integer Gemm: exact wrapping arithmetic when alpha and beta are 1 (the usual
    /// case); otherwise the scaling goes through f64 and saturates back.
    #[allow(clippy::too_many_arguments)]
    fn eval_int<T: WrapInt>(
        &self,
        a: &View,
        b: &View,
        c: Option<(View, Vec<usize>)>,
        out: &mut ViewMut,
        (m, k, n): (usize, usize, usize),
        (ars, acs): (usize, usize),
        (brs, bcs): (usize, usize),
    ) -> Result<()> {
        let (ad, bd) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
        let y = out.as_slice_mut::<T>()?;
        y.fill(T::default());
        int_matmul(m, n, k, (ad, ars, acs), (bd, brs, bcs), y);
        if self.alpha != 1.0 {
            let alpha = self.alpha as f64;
            y.iter_mut().for_each(|v| *v = T::from_f64(alpha * v.to_f64()));
        }
        if let Some((c, st)) = c {
            let cd = c.as_slice::<T>()?;
            if self.beta == 1.0 {
                for_each_broadcast(&[m, n], [st.as_slice()], |o, [i]| y[o] = y[o].wadd(cd[i]));
            } else if self.beta != 0.0 {
                let beta = self.beta as f64;
                for_each_broadcast(&[m, n], [st.as_slice()], |o, [i]| {
                    y[o] = T::from_f64(y[o].to_f64() + beta * cd[i].to_f64())
                });
            }
        }
        Ok(())
    }
}

/// `MatMulInteger`: i8/u8 matmul with zero points, accumulated in i32.
#[derive(Debug)]
pub struct MatMulInteger;

pub(super) fn build_matmul_integer(_: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(MatMulInteger))
}

/// A zero point: one per tensor, one per row of A (`per` = m) or column of B (`per` = n),
/// or one per row/column of every batch (`[..., m, 1]` / `[..., 1, n]`, `batch * per` values).
fn zero_points(v: Option<View>, per: usize, batch: usize) -> Result<Vec<i32>> {
    let Some(v) = v else { return Ok(vec![0]) };
    let vals: Vec<i32> = match v.dtype {
        DType::U8 => v.as_slice::<u8>()?.iter().map(|&x| x as i32).collect(),
        DType::I8 => v.as_slice::<i8>()?.iter().map(|&x| x as i32).collect(),
        dtype => return Err(IrError::UnsupportedDType { op: "MatMulInteger zero point".into(), dtype }),
    };
    if vals.len() == 1 || vals.len() == per || vals.len() == batch * per {
        Ok(vals)
    } else {
        Err(IrError::Shape(format!(
            "MatMulInteger: a zero point of shape {:?} fits neither the tensor, its {per} rows/columns nor its batches",
            v.shape
        )))
    }
}

impl Op for MatMulInteger {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (a, b) = (req(inputs, 0, "MatMulInteger")?, req(inputs, 1, "MatMulInteger")?);
        for f in inputs.iter().take(4).flatten() {
            if !matches!(f.dtype, DType::U8 | DType::I8) {
                return Err(IrError::UnsupportedDType { op: "MatMulInteger".into(), dtype: f.dtype });
            }
        }
        let plan = MatMulPlan::new("MatMulInteger", &a.shape, &b.shape)?;
        Ok(vec![Fact::new(DType::I32, plan.out_shape)])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let (a, b) = (req_view(inputs, 0, "MatMulInteger")?, req_view(inputs, 1, "MatMulInteger")?);
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph("MatMulInteger has no output".into()))?;
        let plan = MatMulPlan::new("MatMulInteger", a.shape, b.shape)?;
        let widen = |v: &View| -> Result<Vec<i32>> {
            Ok(match v.dtype {
                DType::U8 => v.as_slice::<u8>()?.iter().map(|&x| x as i32).collect(),
                DType::I8 => v.as_slice::<i8>()?.iter().map(|&x| x as i32).collect(),
                dtype => return Err(IrError::UnsupportedDType { op: "MatMulInteger".into(), dtype }),
            })
        };
        let (mut ad, mut bd) = (widen(&a)?, widen(&b)?);
        let (m, k, n) = (plan.m, plan.k, plan.n);
        // Subtract the zero points up front: per tensor, per row of A, per column of B.
        let batches = |s: &[usize]| s[..s.len().saturating_sub(2)].iter().fold(1usize, |a, &d| a.saturating_mul(d));
        let za = zero_points(inputs.get(2).copied().flatten(), m, batches(a.shape))?;
        let zb = zero_points(inputs.get(3).copied().flatten(), n, batches(b.shape))?;
        for (i, v) in ad.iter_mut().enumerate() {
            *v -= za[(i / k) % za.len()];
        }
        for (i, v) in bd.iter_mut().enumerate() {
            let (batch, col) = (i / (k * n), i % n);
            *v -= zb[(batch * n + col) % zb.len()];
        }
        let y = out.as_slice_mut::<i32>()?;
        y.fill(0);
        plan.for_each(|oa, ob, oy| {
            int_matmul(m, n, k, (&ad[oa..], k, 1), (&bd[ob..], n, 1), &mut y[oy..oy + m * n]);
        });
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
