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
    (0..out.len())
        .map(|i| if i < off || shape[i - off] == 1 { 0 } else { st[i - off] })
        .collect()
}

/// Calls `f(out_index, [in offsets])` for every element of `out`, walking each input
/// with its own strides. Used by broadcasting elementwise ops.
pub fn for_each_broadcast<const N: usize>(out: &[usize], in_strides: [&[usize]; N], mut f: impl FnMut(usize, [usize; N])) {
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
}
