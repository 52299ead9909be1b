//! Reductions and normalizations: the `Reduce*` family, `ArgMax`/`ArgMin`,
//! `Softmax`/`LogSoftmax`/`Hardmax`, `LayerNormalization`,
//! `MeanVarianceNormalization` and `LpNormalization`.
//!
//! Every kernel walks its input in row-major order through a [`Rows`] plan or an
//! `(outer, n, inner)` split around one axis, so inner loops run over contiguous data
//! and nothing is allocated per element.

use super::OpSpec;
use crate::{tensor::numel, IrError, Result};

mod arg;
mod norm;
mod reduce_ops;
mod softmax;
#[cfg(test)]
mod tests;

pub use arg::{ArgExtreme, ArgKind};
pub use norm::{LayerNorm, LpNorm, MeanVarianceNorm};
pub use reduce_ops::{Reduce, ReduceAxes, ReduceKind};
pub use softmax::{Softmax, SoftmaxKind};

pub(crate) const OPS: &[OpSpec] = &[
    OpSpec { op_type: "ReduceMean", build: reduce_ops::build_mean },
    OpSpec { op_type: "ReduceSum", build: reduce_ops::build_sum },
    OpSpec { op_type: "ReduceMax", build: reduce_ops::build_max },
    OpSpec { op_type: "ReduceMin", build: reduce_ops::build_min },
    OpSpec { op_type: "ReduceProd", build: reduce_ops::build_prod },
    OpSpec { op_type: "ReduceL1", build: reduce_ops::build_l1 },
    OpSpec { op_type: "ReduceL2", build: reduce_ops::build_l2 },
    OpSpec { op_type: "ReduceLogSum", build: reduce_ops::build_log_sum },
    OpSpec { op_type: "ReduceLogSumExp", build: reduce_ops::build_log_sum_exp },
    OpSpec { op_type: "ReduceSumSquare", build: reduce_ops::build_sum_square },
    OpSpec { op_type: "ArgMax", build: arg::build_argmax },
    OpSpec { op_type: "ArgMin", build: arg::build_argmin },
    OpSpec { op_type: "Softmax", build: softmax::build_softmax },
    OpSpec { op_type: "LogSoftmax", build: softmax::build_log_softmax },
    OpSpec { op_type: "Hardmax", build: softmax::build_hardmax },
    OpSpec { op_type: "LayerNormalization", build: norm::build_layer_norm },
    OpSpec { op_type: "MeanVarianceNormalization", build: norm::build_mvn },
    OpSpec { op_type: "LpNormalization", build: norm::build_lp_norm },
];

/// Reads a 0/1 flag attribute, rejecting other values.
fn flag(attrs: &crate::Attrs, name: &str, default: bool) -> Result<bool> {
    match attrs.int_or(name, default as i64)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(IrError::Attr { name: name.to_string(), msg: format!("must be 0 or 1, got {v}") }),
    }
}

/// Which dimensions of a rank-`rank` tensor `axes` select. Axes may be negative;
/// an axis out of range or named twice is an error.
fn axes_mask(axes: &[i64], rank: usize, op: &str) -> Result<Vec<bool>> {
    let mut mask = vec![false; rank];
    for &a in axes {
        let i = super::util::normalize_axis(a, rank)
            .map_err(|_| IrError::Shape(format!("{op}: axis {a} is out of range for an input of rank {rank}")))?;
        if std::mem::replace(&mut mask[i], true) {
            return Err(IrError::Shape(format!("{op}: axis {a} is given more than once in {axes:?}")));
        }
    }
    Ok(mask)
}

/// The shape left after reducing the dimensions in `mask`: kept as 1 or dropped.
fn reduced_shape(shape: &[usize], mask: &[bool], keepdims: bool) -> Vec<usize> {
    shape
        .iter()
        .zip(mask)
        .filter_map(|(&d, &r)| match (r, keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Sizes before, at and after `axis`: the `(outer, n, inner)` split of a tensor
/// for ops that work along one axis. Fails if the shape's element count overflows.
fn split_at(shape: &[usize], axis: usize) -> Result<(usize, usize, usize)> {
    crate::tensor::checked_numel(shape)?;
    Ok((numel(&shape[..axis]), shape[axis], numel(&shape[axis + 1..])))
}

/// Checks that a view's element count matches its shape, so that kernels can index
/// freely within the shape-derived bounds.
fn check_len(len: usize, shape: &[usize], what: &str) -> Result<()> {
    let n = crate::tensor::checked_numel(shape)?;
    if len != n {
        return Err(IrError::Data(format!("{what} holds {len} elements but its shape {shape:?} needs {n}")));
    }
    Ok(())
}

/// Checks that the caller preallocated an output with the shape inference computed.
fn check_out_shape(got: &[usize], want: &[usize], op: &str) -> Result<()> {
    if got != want {
        return Err(IrError::Shape(format!("{op}: output buffer has shape {got:?}, expected {want:?}")));
    }
    Ok(())
}

/// A walk over a tensor being reduced along an arbitrary set of axes.
///
/// Dimensions of size 1 are dropped and neighbouring dimensions that are both reduced
/// or both kept are merged. The input is then visited as rows of the last merged
/// group, each row contiguous in the input. A row maps either onto one output element
/// (the last group is reduced) or onto `row_len` consecutive output elements (it is
/// kept), so both cases run contiguous inner loops.
#[derive(Debug)]
struct Rows {
    row_len: usize,
    last_reduced: bool,
    /// The merged groups before the last: size and stride in the output (0 if reduced).
    outer: Vec<(usize, usize)>,
    rows: usize,
}

impl Rows {
    /// The plan for `shape`, whose element count must already be known not to overflow.
    fn new(shape: &[usize], mask: &[bool]) -> Rows {
        let mut groups: Vec<(usize, bool)> = Vec::new();
        for (&d, &r) in shape.iter().zip(mask) {
            if d == 1 {
                continue;
            }
            match groups.last_mut() {
                Some((size, red)) if *red == r => *size *= d,
                _ => groups.push((d, r)),
            }
        }
        let (row_len, last_reduced) = groups.pop().unwrap_or((1, true));
        let mut kept_after = if last_reduced { 1 } else { row_len };
        let mut outer = vec![(0, 0); groups.len()];
        for (slot, &(size, red)) in outer.iter_mut().zip(&groups).rev() {
            *slot = (size, if red { 0 } else { kept_after });
            if !red {
                kept_after *= size;
            }
        }
        let rows = groups.iter().map(|g| g.0).product::<usize>() * usize::from(row_len > 0);
        Rows { row_len, last_reduced, outer, rows }
    }

    /// Calls `f(input_start, output_start)` for every row, in input order.
    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        let mut idx = vec![0usize; self.outer.len()];
        let mut out = 0usize;
        for r in 0..self.rows {
            f(r * self.row_len, out);
            for (i, &(size, stride)) in idx.iter_mut().zip(&self.outer).rev() {
                *i += 1;
                out += stride;
                if *i < size {
                    break;
                }
                out -= stride * size;
                *i = 0;
            }
        }
    }

    /// Folds every input element into its output's accumulator:
    /// `acc[o] = combine(acc[o], map(x))`.
    fn fold<T: Copy, A: Copy>(&self, x: &[T], acc: &mut [A], map: impl Fn(T) -> A, combine: impl Fn(A, A) -> A) {
        let len = self.row_len;
        self.for_each(|i, o| {
            let row = &x[i..i + len];
            if self.last_reduced {
                acc[o] = row.iter().fold(acc[o], |a, &v| combine(a, map(v)));
            } else {
                for (a, &v) in acc[o..o + len].iter_mut().zip(row) {
                    *a = combine(*a, map(v));
                }
            }
        });
    }

    /// Calls `f(x, &stat)` for every input element with the statistic of its output
    /// slot, writing each result to the matching element of `y` (same shape as `x`).
    fn map_with<T: Copy, S: Copy, U>(&self, x: &[T], stats: &[S], y: &mut [U], f: impl Fn(T, S) -> U) {
        let len = self.row_len;
        self.for_each(|i, o| {
            let (row, out) = (&x[i..i + len], &mut y[i..i + len]);
            if self.last_reduced {
                let s = stats[o];
                for (d, &v) in out.iter_mut().zip(row) {
                    *d = f(v, s);
                }
            } else {
                for ((d, &v), &s) in out.iter_mut().zip(row).zip(&stats[o..o + len]) {
                    *d = f(v, s);
                }
            }
        });
    }
}
