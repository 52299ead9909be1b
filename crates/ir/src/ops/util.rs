//! Shared helpers for op implementations: input access, axes, broadcasting, strides.

use crate::{Fact, IrError, Result, View};

/// The fact of a required input.
pub fn req<'a>(inputs: &[Option<&'a Fact>], i: usize, op: &str) -> Result<&'a Fact> {
    inputs.get(i).copied().flatten().ok_or_else(|| IrError::MissingInput { op: op.to_string(), index: i })
}

/// The view of a required input.
pub fn req_view<'a>(inputs: &[Option<View<'a>>], i: usize, op: &str) -> Result<View<'a>> {
    inputs.get(i).copied().flatten().ok_or_else(|| IrError::MissingInput { op: op.to_string(), index: i })
}

/// The constant value of an input needed at build time, as i64s; `None` when omitted.
pub fn const_i64s(inputs: &[Option<&Fact>], i: usize, op: &str, what: &str) -> Result<Option<Vec<i64>>> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(f) => match &f.value {
            Some(t) => Ok(Some(t.to_i64_vec()?)),
            None => Err(IrError::NotConstant { op: op.to_string(), index: i, what: what.to_string() }),
        },
    }
}

/// The constant value of an input as f64s; `None` when omitted.
pub fn const_f64s(inputs: &[Option<&Fact>], i: usize, op: &str, what: &str) -> Result<Option<Vec<f64>>> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(f) => match &f.value {
            Some(t) => Ok(Some(t.to_f64_vec())),
            None => Err(IrError::NotConstant { op: op.to_string(), index: i, what: what.to_string() }),
        },
    }
}

/// Maps a possibly negative axis into `0..rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(IrError::Shape(format!("axis {axis} out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// Like [`normalize_axis`] but for insertion points (`0..=rank`).
pub fn normalize_axis_inclusive(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r + 1 } else { axis };
    if a < 0 || a > r {
        return Err(IrError::Shape(format!("axis {axis} out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// Row-major strides of a shape, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The numpy-style broadcast of several shapes.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(IrError::Shape(format!("shapes {shapes:?} do not broadcast")));
            }
        }
    }
    Ok(out)
}

/// Strides for reading a tensor of `shape` as if broadcast to `out` (0 on broadcast axes).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let st = strides(shape);
    let off = out.len() - shape.len();
    (0..out.len()).map(|i| if i < off || shape[i - off] == 1 { 0 } else { st[i - off] }).collect()
}

/// Calls `f(out_index, [in offsets])` for every element of `out`, walking each input
/// with its own strides. Used by broadcasting elementwise ops.
pub fn for_each_broadcast<const N: usize>(
    out: &[usize],
    in_strides: [&[usize]; N],
    mut f: impl FnMut(usize, [usize; N]),
) {
    let total: usize = out.iter().product();
    if total == 0 {
        return;
    }
    let rank = out.len();
    let mut idx = vec![0usize; rank];
    let mut offs = [0usize; N];
    for o in 0..total {
        f(o, offs);
        // increment the multi-index, updating offsets incrementally
        let mut d = rank;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            for k in 0..N {
                offs[k] += in_strides[k][d];
            }
            if idx[d] < out[d] {
                break;
            }
            for k in 0..N {
                offs[k] -= in_strides[k][d] * out[d];
            }
            idx[d] = 0;
        }
    }
}

/// A broadcast traversal cut into contiguous runs, so that kernels loop over plain slices.
///
/// Size-1 output axes are dropped and adjacent axes that every input walks contiguously
/// (or not at all) are merged, so a same-shape op is one run, a scalar operand is one run
/// with step 0, and a per-channel operand (`[C,1,1]` against `[N,C,H,W]`) gives runs of
/// `H*W` elements over which it is constant.
#[derive(Clone, Debug)]
pub struct BroadcastRuns<const N: usize> {
    outer: Vec<usize>,
    outer_strides: [Vec<usize>; N],
    run_len: usize,
    steps: [usize; N],
}

impl<const N: usize> BroadcastRuns<N> {
    /// Plans reading inputs of `shapes` broadcast to `out`. Fails unless every shape
    /// broadcasts to `out` exactly (numpy rules, unidirectionally).
    pub fn new(out: &[usize], shapes: [&[usize]; N]) -> Result<Self> {
        for s in &shapes {
            let ok = s.len() <= out.len() && s.iter().zip(&out[out.len() - s.len()..]).all(|(&d, &o)| d == o || d == 1);
            if !ok {
                return Err(IrError::Shape(format!("shape {s:?} does not broadcast to {out:?}")));
            }
        }
        let full: [Vec<usize>; N] = std::array::from_fn(|k| broadcast_strides(shapes[k], out));
        // Merged axes, innermost first: (size, stride per input).
        let mut dims: Vec<(usize, [usize; N])> = Vec::with_capacity(out.len());
        for i in (0..out.len()).rev() {
            let size = out[i];
            if size == 1 {
                continue;
            }
            let st: [usize; N] = std::array::from_fn(|k| full[k][i]);
            if let Some((inner_size, inner_st)) = dims.last_mut() {
                if (0..N).all(|k| st[k] == inner_st[k] * *inner_size) {
                    *inner_size *= size;
                    continue;
                }
            }
            dims.push((size, st));
        }
        let (mut run_len, mut steps) = (1, [0; N]);
        if let Some(&(size, st)) = dims.first() {
            // Row-major inputs always give an innermost step of 0 or 1; anything else
            // stays an outer axis walked with runs of one element.
            if st.iter().all(|&s| s <= 1) {
                run_len = size;
                steps = st;
                dims.remove(0);
            }
        }
        dims.reverse();
        let outer = dims.iter().map(|d| d.0).collect();
        let outer_strides = std::array::from_fn(|k| dims.iter().map(|d| d.1[k]).collect());
        Ok(BroadcastRuns { outer, outer_strides, run_len, steps })
    }

    /// Elements per run.
    pub fn run_len(&self) -> usize {
        self.run_len
    }

    /// Per input: 1 when it advances along a run, 0 when it stays on one element.
    pub fn steps(&self) -> [usize; N] {
        self.steps
    }

    /// Calls `f(out_start, input_starts)` for every run, in output order.
    pub fn for_each(&self, mut f: impl FnMut(usize, [usize; N])) {
        if self.run_len == 0 {
            return;
        }
        let strides: [&[usize]; N] = std::array::from_fn(|k| self.outer_strides[k].as_slice());
        let len = self.run_len;
        for_each_broadcast(&self.outer, strides, |o, offs| f(o * len, offs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[&[2, 1, 3], &[4, 1]]).unwrap(), vec![2, 4, 3]);
        assert!(broadcast_shapes(&[&[2], &[3]]).is_err());
        let out = [2, 3];
        let a = broadcast_strides(&[3], &out);
        let b = broadcast_strides(&[2, 1], &out);
        let mut seen = vec![];
        for_each_broadcast(&out, [&a, &b], |o, [i, j]| seen.push((o, i, j)));
        assert_eq!(seen, vec![(0, 0, 0), (1, 1, 0), (2, 2, 0), (3, 0, 1), (4, 1, 1), (5, 2, 1)]);
        assert_eq!(normalize_axis(-1, 3).unwrap(), 2);
        assert!(normalize_axis(3, 3).is_err());
    }

    #[test]
    fn broadcast_runs_merge_contiguous_axes() {
        let collect = |out: &[usize], a: &[usize], b: &[usize]| {
            let runs = BroadcastRuns::new(out, [a, b]).unwrap();
            let mut starts = vec![];
            runs.for_each(|o, [i, j]| starts.push((o, i, j)));
            (runs.run_len(), runs.steps(), starts)
        };
        // same shape: a single run
        assert_eq!(collect(&[2, 3, 4], &[2, 3, 4], &[2, 3, 4]), (24, [1, 1], vec![(0, 0, 0)]));
        // scalar operand: one run, step 0
        assert_eq!(collect(&[2, 3], &[2, 3], &[]), (6, [1, 0], vec![(0, 0, 0)]));
        // per-channel [3,1,1] against [2,3,2,2]: runs of H*W with the channel fixed
        let (len, steps, starts) = collect(&[2, 3, 2, 2], &[2, 3, 2, 2], &[3, 1, 1]);
        assert_eq!((len, steps), (4, [1, 0]));
        let want: Vec<_> = (0..6).map(|r| (r * 4, r * 4, r % 3)).collect();
        assert_eq!(starts, want);
        // column against row: runs along the row
        assert_eq!(collect(&[2, 3], &[2, 1], &[3]), (3, [0, 1], vec![(0, 0, 0), (3, 1, 0)]));
        // size-1 axes are dropped before merging
        assert_eq!(collect(&[1, 4, 1], &[4, 1], &[1, 1, 1]), (4, [1, 0], vec![(0, 0, 0)]));
        assert!(BroadcastRuns::new(&[2, 3], [&[3, 3][..]]).is_err());
        assert!(BroadcastRuns::new(&[3], [&[1, 3][..]]).is_err());
        // an empty output has no runs
        let runs = BroadcastRuns::new(&[0, 3], [&[3][..]]).unwrap();
        let mut calls = 0;
        runs.for_each(|_, _| calls += 1);
        assert_eq!(calls, 0);
    }
}
