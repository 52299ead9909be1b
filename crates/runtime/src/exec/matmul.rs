//! f32 `MatMul` / `FusedMatMul` of two activations (attention's `Q·Kᵀ` and `P·V`),
//! batched where A's batch dims match B's or one side is a single matrix. Each batch
//! matrix is one `matrixmultiply` GEMM (both operands change every run, so there is
//! nothing to pack ahead), batches spread over the context's threads; a fused op's
//! bias and epilogue steps (attention's scale and mask) run on each finished row through
//! the convolutions' [`conv::finish_row`].

use super::conv::{self, epilogue_inputs, Operand, MAX_EPILOGUE_INPUTS};
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::fused::{BaseKind, Step, BASE_SLOTS};
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};
use sinter_kernels::Isa;

/// A, B and the optional bias of a run.
type Operands<'a> = (&'a [f32], &'a [f32], Option<&'a [f32]>);

#[derive(Debug)]
pub(crate) struct MatMul {
    name: &'static str,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    /// Element stride between batches of A and B (0 when broadcast).
    a_batch_stride: usize,
    b_batch_stride: usize,
    /// A fused op's per-column bias (input 2).
    has_bias: bool,
    steps: Vec<Step>,
    operands: Vec<Operand>,
    /// The output shape left-padded to `[n, m, h, w]` (what `operands` map onto).
    dims: [usize; 4],
}

impl MatMul {
    pub(crate) fn new(op: &dyn Op, op_type: &str, inputs: &[Option<Slot>], outputs: &[Slot]) -> Option<MatMul> {
        let (_, steps, name) = super::base_op::<sinter_ir::ops::nn::MatMul>(op, op_type, BaseKind::MatMul)?;
        let a = inputs.first()?.as_ref()?;
        let b = inputs.get(1)?.as_ref()?;
        let y = outputs.first()?;
        if a.shape.len() < 2 || b.shape.len() < 2 || y.shape.len() < 2 {
            return None; // 1-D promotion: leave it to the reference op
        }
        let (m, k) = (a.shape[a.shape.len() - 2], a.shape[a.shape.len() - 1]);
        let (k2, n) = (b.shape[b.shape.len() - 2], b.shape[b.shape.len() - 1]);
        if k != k2 {
            return None;
        }
        let prod = |d: &[usize]| d.iter().try_fold(1usize, |acc, &x| acc.checked_mul(x));
        let batch = prod(&y.shape[..y.shape.len() - 2])?;
        let a_batch = prod(&a.shape[..a.shape.len() - 2])?;
        let b_batch = prod(&b.shape[..b.shape.len() - 2])?;
        // Only the simple cases: full batch or a single broadcast matrix.
        let stride = |count: usize, size: usize| match count {
            _ if count == batch => Some(size),
            1 => Some(0),
            _ => None,
        };
        let bias = inputs.get(2).and_then(Option::as_ref);
        if bias.is_some_and(|c| c.dtype != DType::F32 || c.shape != [n]) {
            return None;
        }
        let dims = if steps.is_empty() { [1; 4] } else { conv::dims4(&y.shape)? };
        let operands = conv::epilogue_operands(&steps, inputs.get(BASE_SLOTS..).unwrap_or(&[]), &dims)?;
        batch.checked_mul(m)?.checked_mul(n)?;
        Some(MatMul {
            name,
            batch,
            m,
            k,
            n,
            a_batch_stride: stride(a_batch, m.checked_mul(k)?)?,
            b_batch_stride: stride(b_batch, k.checked_mul(n)?)?,
            has_bias: bias.is_some(),
            steps,
            operands,
            dims,
        })
    }
}

impl Exec for MatMul {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        let missing = |index| IrError::MissingInput { op: self.name.into(), index };
        let input = |i: usize| inputs.get(i).copied().flatten().ok_or_else(|| missing(i));
        let a = input(0)?.as_slice::<f32>()?;
        let b = input(1)?.as_slice::<f32>()?;
        let bias = if self.has_bias { Some(input(2)?.as_slice::<f32>()?) } else { None };
        let mut extras: [&[f32]; MAX_EPILOGUE_INPUTS] = [&[]; MAX_EPILOGUE_INPUTS];
        let count = epilogue_inputs(self.name, inputs, BASE_SLOTS, &self.operands, &mut extras)?;
        let extras = &extras[..count];
        let y = outputs.first_mut().ok_or_else(|| missing(0))?.as_slice_mut::<f32>()?;
        let (m, k, n) = (self.m, self.k, self.n);
        let span = |stride: usize, size: usize| (self.batch - 1) * stride + size;
        if a.len() < span(self.a_batch_stride, m * k)
            || b.len() < span(self.b_batch_stride, k * n)
            || y.len() != self.batch * m * n
            || bias.is_some_and(|c| c.len() != n)
        {
            return Err(IrError::Data(format!("{}: operand sizes do not match the plan", self.name)));
        }
        if m * n == 0 {
            return Ok(());
        }
        let per_task = self.batch.div_ceil(cx.pool.threads() * 4);
        cx.pool.par_chunks(y, m * n, per_task, &|first, ys| {
            for (i, yb) in (first..).zip(ys.chunks_exact_mut(m * n)) {
                self.batch_matrix(cx.isa, i, (a, b, bias), extras, yb);
            }
        });
        Ok(())
    }
}

impl MatMul {
    /// Batch matrix `i` into `yb`, then its bias and epilogue row by row.
    fn batch_matrix(&self, isa: Isa, i: usize, (a, b, bias): Operands, extras: &[&[f32]], yb: &mut [f32]) {
        let (m, k, n) = (self.m, self.k, self.n);
        sgemm(m, k, n, &a[i * self.a_batch_stride..][..m * k], &b[i * self.b_batch_stride..][..k * n], yb);
        let [_, channels, h, w] = self.dims;
        for (r, row) in (i * m..).zip(yb.chunks_exact_mut(n)) {
            if let Some(c) = bias {
                row.iter_mut().zip(c).for_each(|(v, c)| *v += c);
            }
            if !self.steps.is_empty() {
                // Output row `r` is `w` (= n) floats of plane `r / h` of the padded shape.
                let p = r / h;
                conv::finish_row(
                    isa,
                    &self.steps,
                    &self.operands,
                    w,
                    (p / channels, p % channels, (r % h) * w),
                    row,
                    None,
                    extras,
                );
            }
        }
    }
}

/// `y = a·b` for row-major `a` (`m × k`), `b` (`k × n`) and `y` (`m × n`), all nonempty
/// but `k`, which may be 0 (then `y` is zero).
fn sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], y: &mut [f32]) {
    if k == 0 {
        y.fill(0.0);
        return;
    }
    assert!(a.len() >= m * k && b.len() >= k * n && y.len() >= m * n, "sgemm operands are too short");
    // SAFETY: the slices cover the row-major m×k, k×n and m×n matrices (asserted above).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            y.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
