//! Element-size generic copy kernels: every layout op reduces to reading the input
//! through (possibly negative or zero) strides into a dense row-major output.

use crate::tensor::checked_numel;
use crate::{IrError, Result};

/// Runs `$body` with `$t` bound to `[u8; N]` for an element size `N` of 1, 2, 4 or 8.
macro_rules! with_elem_size {
    ($es:expr, $t:ident => $body:expr) => {
        match $es {
            1 => {
                type $t = [u8; 1];
                $body
            }
            2 => {
                type $t = [u8; 2];
                $body
            }
            4 => {
                type $t = [u8; 4];
                $body
            }
            8 => {
                type $t = [u8; 8];
                $body
            }
            n => Err($crate::IrError::Unsupported(format!("element size {n}"))),
        }
    };
}
pub(super) use with_elem_size;

/// Views bytes as whole elements (byte arrays have alignment 1, so only the length can fail).
pub(super) fn elems<T: bytemuck::Pod>(b: &[u8]) -> Result<&[T]> {
    bytemuck::try_cast_slice(b).map_err(|e| IrError::Data(format!("cannot split {} bytes into elements: {e}", b.len())))
}

/// Mutable counterpart of [`elems`].
pub(super) fn elems_mut<T: bytemuck::Pod>(b: &mut [u8]) -> Result<&mut [T]> {
    let len = b.len();
    bytemuck::try_cast_slice_mut(b).map_err(|e| IrError::Data(format!("cannot split {len} bytes into elements: {e}")))
}

/// Fills `dst` with copies of the element `value` (its bytes).
pub(super) fn fill(dst: &mut [u8], value: &[u8]) -> Result<()> {
    if value.iter().all(|&b| b == 0) {
        dst.fill(0);
        return Ok(());
    }
    with_elem_size!(value.len(), T => {
        let v: T = *elems::<T>(value)?.first().ok_or_else(|| IrError::Data("empty fill value".into()))?;
        elems_mut::<T>(dst)?.fill(v);
        Ok(())
    })
}

/// Copies `dst[j] = src[base + Σ_k idx_k(j) · strides[k]]` (in elements of `es` bytes),
/// walking `shape` in row-major order. Strides may be zero (broadcast) or negative
/// (reversed slices). Every read is bounds-checked up front, so bad parameters give an
/// error rather than a panic.
pub(super) fn strided_copy(
    es: usize,
    src: &[u8],
    base: usize,
    shape: &[usize],
    strides: &[isize],
    dst: &mut [u8],
) -> Result<()> {
    if shape.len() != strides.len() {
        return Err(IrError::Shape(format!("strided copy: {} dims but {} strides", shape.len(), strides.len())));
    }
    let total = checked_numel(shape)?;
    if total.checked_mul(es) != Some(dst.len()) {
        return Err(IrError::Shape(format!("strided copy: output of {} bytes for shape {shape:?}", dst.len())));
    }
    if total == 0 {
        return Ok(());
    }
    let dims = coalesce(shape, strides);
    let src_len = (src.len() / es.max(1)) as i128;
    let (mut lo, mut hi) = (base as i128, base as i128);
    for &(n, s) in &dims {
        let span = (n as i128 - 1) * s as i128;
        if span < 0 {
            lo += span;
        } else {
            hi += span;
        }
    }
    if lo < 0 || hi >= src_len {
        return Err(IrError::Shape(format!(
            "strided copy reads elements {lo}..={hi} of an input with {src_len} (shape {shape:?}, strides {strides:?})"
        )));
    }
    with_elem_size!(es, T => {
        walk::<T>(elems(src)?, base as isize, &dims, elems_mut(dst)?);
        Ok(())
    })
}

/// Drops unit dims and merges neighbours that are contiguous with each other, so the
/// inner loop runs over runs as long as possible.
fn coalesce(shape: &[usize], strides: &[isize]) -> Vec<(usize, isize)> {
    let mut dims: Vec<(usize, isize)> = Vec::with_capacity(shape.len());
    for (&n, &s) in shape.iter().zip(strides) {
        if n == 1 {
            continue;
        }
        match dims.last_mut() {
            Some(last) if last.1 == s * n as isize => *last = (last.0 * n, s),
            _ => dims.push((n, s)),
        }
    }
    dims
}

fn walk<T: Copy>(src: &[T], base: isize, dims: &[(usize, isize)], dst: &mut [T]) {
    let Some((&(n, st), outer)) = dims.split_last() else {
        // every dim has size 1: a single element
        dst[0] = src[base as usize];
        return;
    };
    let mut idx = vec![0usize; outer.len()];
    let mut off = base;
    for row in dst.chunks_exact_mut(n) {
        let o = off as usize;
        match st {
            1 => row.copy_from_slice(&src[o..o + n]),
            0 => row.fill(src[o]),
            _ => {
                let mut p = off;
                for d in row.iter_mut() {
                    *d = src[p as usize];
                    p += st;
                }
            }
        }
        for k in (0..outer.len()).rev() {
            idx[k] += 1;
            off += outer[k].1;
            if idx[k] < outer[k].0 {
                break;
            }
            off -= outer[k].1 * outer[k].0 as isize;
            idx[k] = 0;
        }
    }
}

/// Row-major strides of `shape` as signed element counts.
pub(super) fn istrides(shape: &[usize]) -> Vec<isize> {
    crate::ops::util::strides(shape).into_iter().map(|s| s as isize).collect()
}

/// Copies a tensor read as `in_shape` with its axes permuted by `perm`: the building block
/// of Transpose, DepthToSpace and SpaceToDepth (reshape, transpose, reshape).
pub(super) fn permute_copy(es: usize, src: &[u8], in_shape: &[usize], perm: &[usize], dst: &mut [u8]) -> Result<()> {
    let st = istrides(in_shape);
    let mut shape = Vec::with_capacity(perm.len());
    let mut strides = Vec::with_capacity(perm.len());
    for &p in perm {
        let (&n, &s) = in_shape
            .get(p)
            .zip(st.get(p))
            .ok_or_else(|| IrError::Shape(format!("permutation {perm:?} does not fit shape {in_shape:?}")))?;
        shape.push(n);
        strides.push(s);
    }
    strided_copy(es, src, 0, &shape, &strides, dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_copy_reverses_broadcasts_and_checks_bounds() {
        let src: Vec<u8> = (0..6).collect(); // 2x3 of u8
        let mut dst = vec![0u8; 6];
        // transpose to 3x2
        strided_copy(1, &src, 0, &[3, 2], &[1, 3], &mut dst).unwrap();
        assert_eq!(dst, [0, 3, 1, 4, 2, 5]);
        // reverse both axes
        strided_copy(1, &src, 5, &[2, 3], &[-3, -1], &mut dst).unwrap();
        assert_eq!(dst, [5, 4, 3, 2, 1, 0]);
        // broadcast a row
        strided_copy(1, &src, 3, &[2, 3], &[0, 1], &mut dst).unwrap();
        assert_eq!(dst, [3, 4, 5, 3, 4, 5]);
        // out of bounds is an error, not a panic
        assert!(strided_copy(1, &src, 4, &[2, 3], &[3, 1], &mut dst).is_err());
        assert!(strided_copy(1, &src, 0, &[2, 3], &[-3, 1], &mut dst).is_err());
        // 4-byte elements keep their bytes together
        let src4: Vec<u8> = (0..8).collect();
        let mut dst4 = vec![0u8; 8];
        strided_copy(4, &src4, 1, &[2], &[-1], &mut dst4).unwrap();
        assert_eq!(dst4, [4, 5, 6, 7, 0, 1, 2, 3]);
    }
}
