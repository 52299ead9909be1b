//! f32 `MatMul` / `FusedMatMul` of two activations (attention's `Q·Kᵀ` and `P·V`),
//! batched where A's batch dims match B's or one side is a single matrix. Each batch
//! matrix is one `matrixmultiply` GEMM (both operands change every run, so there is
//! nothing to pack ahead), batches spread over the context's threads; a fused op's
//! bias and epilogue steps (attention's scale and mask) run on each finished row.

use super::epilogue::{dims4, epilogue_inputs, post_ops, MAX_EPILOGUE_INPUTS};
use super::refusal::{need, Accept, Refusal, Why};
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::fused::{BaseKind, BASE_SLOTS};
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};
use sinter_kernels::epilogue::PostOps;
use sinter_kernels::KernelTable;

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
    post: PostOps,
    /// The output shape left-padded to `[n, m, h, w]` (what `post`'s operands map onto).
    dims: [usize; 4],
}

impl MatMul {
    pub(crate) fn new(op: &dyn Op, op_type: &str, inputs: &[Option<Slot>], outputs: &[Slot]) -> Accept<MatMul> {
        let (_, steps, name) = super::base_op::<sinter_ir::ops::nn::MatMul>(op, op_type, BaseKind::MatMul)?;
        let a = inputs.first().and_then(Option::as_ref).why("no input A")?;
        let b = inputs.get(1).and_then(Option::as_ref).why("no input B")?;
        let y = outputs.first().why("no output")?;
        // 1-D promotion: left to the reference op.
        need(a.shape.len() >= 2 && b.shape.len() >= 2 && y.shape.len() >= 2, "a 1-D operand")?;
        let (m, k) = (a.shape[a.shape.len() - 2], a.shape[a.shape.len() - 1]);
        let (k2, n) = (b.shape[b.shape.len() - 2], b.shape[b.shape.len() - 1]);
        need(k == k2, "inner dimensions differ")?;
        let prod = |d: &[usize]| d.iter().try_fold(1usize, |acc, &x| acc.checked_mul(x)).why("sizes overflow");
        let batch = prod(&y.shape[..y.shape.len() - 2])?;
        let a_batch = prod(&a.shape[..a.shape.len() - 2])?;
        let b_batch = prod(&b.shape[..b.shape.len() - 2])?;
        // Only the simple cases: full batch or a single broadcast matrix.
        let stride = |count: usize, size: Option<usize>| match (count, size) {
            (_, Some(size)) if count == batch => Ok(size),
            (1, _) => Ok(0),
            _ => Err(Refusal::new("batch axes broadcast other than all or one matrix")),
        };
        let bias = inputs.get(2).and_then(Option::as_ref);
        need(bias.is_none_or(|c| c.dtype == DType::F32 && c.shape == [n]), "the bias is not one value per column")?;
        let dims = if steps.is_empty() { [1; 4] } else { dims4(&y.shape)? };
        let post = post_ops(&steps, inputs.get(BASE_SLOTS..).unwrap_or(&[]), &dims)?;
        batch.checked_mul(m).and_then(|v| v.checked_mul(n)).why("sizes overflow")?;
        let a_batch_stride = stride(a_batch, m.checked_mul(k))?;
        let b_batch_stride = stride(b_batch, k.checked_mul(n))?;
        Ok(MatMul { name, batch, m, k, n, a_batch_stride, b_batch_stride, has_bias: bias.is_some(), post, dims })
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
        let count = epilogue_inputs(self.name, inputs, BASE_SLOTS, &self.post, &mut extras)?;
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
                self.batch_matrix(cx.tier, i, (a, b, bias), extras, yb);
            }
        });
        Ok(())
    }
}

impl MatMul {
    /// Batch matrix `i` into `yb`, then its bias and epilogue row by row.
    fn batch_matrix(&self, tier: &KernelTable, i: usize, (a, b, bias): Operands, extras: &[&[f32]], yb: &mut [f32]) {
        let (m, k, n) = (self.m, self.k, self.n);
        sgemm(m, k, n, &a[i * self.a_batch_stride..][..m * k], &b[i * self.b_batch_stride..][..k * n], yb);
        let [_, channels, h, w] = self.dims;
        for (r, row) in (i * m..).zip(yb.chunks_exact_mut(n)) {
            if let Some(c) = bias {
                row.iter_mut().zip(c).for_each(|(v, c)| *v += c);
            }
            if !self.post.is_empty() {
                // Output row `r` is `w` (= n) floats of plane `r / h` of the padded shape.
                let p = r / h;
                self.post.apply_row(tier, w, (p / channels, p % channels, (r % h) * w), row, extras);
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
