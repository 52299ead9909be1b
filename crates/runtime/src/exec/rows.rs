//! Ops that normalize rows of their input (the innermost axes): `Softmax` and
//! `LayerNormalization` as in transformer encoders, rows spread over the context's
//! threads, each row by a vectorized kernel of `sinter-kernels` (no scratch, no
//! allocation per run).

use super::refusal::{need, Accept, Why};
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::reduce::{LayerNorm, Softmax, SoftmaxKind};
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};

/// Rows per task: about 16 K floats, or a share of the rows.
fn rows_per_task(rows: usize, n: usize, threads: usize) -> usize {
    (16384 / n.max(1)).clamp(1, rows.div_ceil(threads * 4).max(1))
}

/// `shape` split at `axis` (negative counts from the end) into (rows, row shape), or
/// `None` when the axis is out of range or the row count overflows.
fn split(shape: &[usize], axis: i64) -> Option<(usize, &[usize])> {
    let rank = shape.len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return None;
    }
    let (outer, inner) = shape.split_at(axis as usize);
    Some((outer.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?, inner))
}

/// Elements of `shape`, or `None` on overflow.
fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// `shape` without its leading 1s.
fn strip_ones(shape: &[usize]) -> &[usize] {
    &shape[shape.iter().take_while(|&&d| d == 1).count()..]
}

/// f32 `Softmax` over the innermost axis.
#[derive(Debug)]
pub(crate) struct LastAxisSoftmax {
    rows: usize,
    n: usize,
}

impl LastAxisSoftmax {
    pub(crate) fn new(op: &dyn Op, inputs: &[Option<Slot>], outputs: &[Slot]) -> Accept<LastAxisSoftmax> {
        let s = op.as_any().downcast_ref::<Softmax>().why("the op is not a softmax")?;
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let y = outputs.first().why("no output")?;
        need(s.kind == SoftmaxKind::Softmax, "LogSoftmax and Hardmax run the reference")?;
        need(
            x.dtype == DType::F32 && y.shape == x.shape && !x.shape.is_empty(),
            "not an f32 tensor of rank 1 or more",
        )?;
        // Opset < 13 flattens everything from `axis` on into one row; later opsets
        // normalize one axis, a row only when it is the last.
        let last = (s.axis == -1 || s.axis + 1 == x.shape.len() as i64) || s.coerce_2d;
        need(last, "the softmax axis is not the last")?;
        let (rows, row) = split(&x.shape, s.axis).why("axis out of range")?;
        let n = numel(row).why("sizes overflow")?;
        need(n > 0, "empty rows")?;
        Ok(LastAxisSoftmax { rows, n })
    }
}

impl Exec for LastAxisSoftmax {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        let missing = || IrError::MissingInput { op: "Softmax".into(), index: 0 };
        let x = inputs.first().copied().flatten().ok_or_else(missing)?.as_slice::<f32>()?;
        let y = outputs.first_mut().ok_or_else(missing)?.as_slice_mut::<f32>()?;
        if x.len() != self.rows * self.n || y.len() != x.len() {
            return Err(IrError::Data("Softmax: operand sizes do not match the plan".into()));
        }
        let (n, tier) = (self.n, cx.tier);
        let failed = std::sync::atomic::AtomicBool::new(false);
        cx.pool.par_chunks(y, n, rows_per_task(self.rows, n, cx.pool.threads()), &|first, ys| {
            for (r, yr) in (first..).zip(ys.chunks_exact_mut(n)) {
                if sinter_kernels::activation::softmax_row(tier, &x[r * n..][..n], yr).is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        if failed.into_inner() {
            return Err(IrError::Data("Softmax: the row kernel refused its operands".into()));
        }
        Ok(())
    }
}

/// f32 `LayerNormalization` whose `Scale` (and `B`) hold one value per element of the
/// normalized row; the optional `Mean` and `InvStdDev` outputs are written too.
#[derive(Debug)]
pub(crate) struct RowLayerNorm {
    rows: usize,
    n: usize,
    eps: f32,
    has_bias: bool,
}

impl RowLayerNorm {
    pub(crate) fn new(op: &dyn Op, inputs: &[Option<Slot>], outputs: &[Slot]) -> Accept<RowLayerNorm> {
        let ln = op.as_any().downcast_ref::<LayerNorm>().why("the op is not a LayerNormalization")?;
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let y = outputs.first().why("no output")?;
        let scale = inputs.get(1).and_then(Option::as_ref).why("no scale")?;
        let bias = inputs.get(2).and_then(Option::as_ref);
        need(
            x.dtype == DType::F32 && y.shape == x.shape && !x.shape.is_empty(),
            "not an f32 tensor of rank 1 or more",
        )?;
        let (rows, row) = split(&x.shape, ln.axis).why("axis out of range")?;
        // The statistics outputs the plan binds (all of them, used or not): one f32 per row.
        let stats = outputs[1..].iter().all(|s| s.dtype == DType::F32 && numel(&s.shape) == Some(rows));
        need(stats, "the Mean/InvStdDev outputs are not one f32 per row")?;
        let n = numel(row).why("sizes overflow")?;
        // One parameter value per row element (numpy broadcasting adds only leading 1s).
        let per_element = |p: &Slot| p.dtype == DType::F32 && strip_ones(&p.shape) == strip_ones(row);
        need(n > 0, "empty rows")?;
        need(per_element(scale) && bias.is_none_or(per_element), "scale or bias is not one value per row element")?;
        Ok(RowLayerNorm { rows, n, eps: ln.epsilon, has_bias: bias.is_some() })
    }
}

impl Exec for RowLayerNorm {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        const OP: &str = "LayerNormalization";
        let missing = |index| IrError::MissingInput { op: OP.into(), index };
        let input = |i: usize| inputs.get(i).copied().flatten().ok_or_else(|| missing(i));
        let x = input(0)?.as_slice::<f32>()?;
        let scale = input(1)?.as_slice::<f32>()?;
        let bias = if self.has_bias { Some(input(2)?.as_slice::<f32>()?) } else { None };
        let (n, rows) = (self.n, self.rows);
        let [y, stats @ ..] = outputs else {
            return Err(missing(0));
        };
        let (mut none_mean, mut none_inv) = ([0.0f32; 0], [0.0f32; 0]);
        let (mean, inv_std): (&mut [f32], &mut [f32]) = match stats {
            [] => (&mut none_mean, &mut none_inv),
            [m] => (m.as_slice_mut::<f32>()?, &mut none_inv),
            [m, i, ..] => (m.as_slice_mut::<f32>()?, i.as_slice_mut::<f32>()?),
        };
        let y = y.as_slice_mut::<f32>()?;
        let stat_ok = |s: &[f32]| s.is_empty() || s.len() == rows;
        if x.len() != rows * n || y.len() != x.len() || scale.len() != n || bias.is_some_and(|b| b.len() != n) {
            return Err(IrError::Data(format!("{OP}: operand sizes do not match the plan")));
        }
        if !stat_ok(mean) || !stat_ok(inv_std) {
            return Err(IrError::Data(format!("{OP}: statistics outputs do not hold one value per row")));
        }
        // Absent statistics outputs take part as zero-length items.
        let stat_len = |s: &[f32]| usize::from(!s.is_empty());
        let lens = [n, stat_len(mean), stat_len(inv_std)];
        let (tier, eps) = (cx.tier, self.eps);
        let failed = std::sync::atomic::AtomicBool::new(false);
        let per_task = rows_per_task(rows, n, cx.pool.threads());
        cx.pool.par_chunks3([y, mean, inv_std], lens, per_task, &|first, [ys, means, invs]| {
            for (i, yr) in ys.chunks_exact_mut(n).enumerate() {
                let r = first + i;
                match sinter_kernels::norm::layer_norm_row(tier, &x[r * n..][..n], scale, bias, eps, yr) {
                    Ok((m, s)) => {
                        if let Some(d) = means.get_mut(i) {
                            *d = m;
                        }
                        if let Some(d) = invs.get_mut(i) {
                            *d = s;
                        }
                    }
                    Err(_) => failed.store(true, std::sync::atomic::Ordering::Relaxed),
                }
            }
        });
        if failed.into_inner() {
            return Err(IrError::Data(format!("{OP}: the row kernel refused its operands")));
        }
        Ok(())
    }
}
