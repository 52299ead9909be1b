//! Ops that reorder or repeat elements through strides: Transpose, DepthToSpace,
//! SpaceToDepth, Expand, Tile.

use super::common::{check_view, fact, out, req_fact_i64s, req_view_i64s, to_dims};
use super::copy::{istrides, permute_copy, strided_copy};
use crate::ops::util::{broadcast_shapes, broadcast_strides, req, req_view};
use crate::{Attrs, Fact, IrError, Op, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// `Transpose`: permutes the axes by `perm` (reversed when absent).
#[derive(Debug, Clone)]
pub struct Transpose {
    pub perm: Option<Vec<i64>>,
}

impl Transpose {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Transpose { perm: a.ints("perm")?.map(<[i64]>::to_vec) }))
    }

    /// The validated permutation for a tensor of `rank` axes.
    pub fn perm_for(&self, rank: usize) -> Result<Vec<usize>> {
        let Some(perm) = &self.perm else { return Ok((0..rank).rev().collect()) };
        let bad = || IrError::Shape(format!("Transpose perm {perm:?} is not a permutation of 0..{rank}"));
        if perm.len() != rank {
            return Err(bad());
        }
        let mut seen = vec![false; rank];
        perm.iter()
            .map(|&p| {
                let p = usize::try_from(p).ok().filter(|&p| p < rank).ok_or_else(bad)?;
                if std::mem::replace(&mut seen[p], true) {
                    return Err(bad());
                }
                Ok(p)
            })
            .collect()
    }
}

impl Op for Transpose {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Transpose")?;
        let perm = self.perm_for(x.rank())?;
        Ok(vec![fact(x.dtype, perm.iter().map(|&p| x.shape[p]).collect())?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Transpose")?;
        check_view(&x, "Transpose")?;
        let perm = self.perm_for(x.shape.len())?;
        let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
        let o = out(outputs, 0, x.dtype, &shape, "Transpose")?;
        permute_copy(x.dtype.size(), x.data, x.shape, &perm, o.data)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Checks an NCHW input of a block rearrangement and splits its dims.
fn nchw(shape: &[usize], op: &str) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(shape)
        .map_err(|_| IrError::Shape(format!("{op} needs a 4-D NCHW input, got shape {shape:?}")))
}

fn blocksize(a: &Attrs) -> Result<usize> {
    let b = a.int("blocksize")?.ok_or_else(|| Attrs::unsupported("blocksize", "is required"))?;
    usize::try_from(b)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| Attrs::unsupported("blocksize", format!("must be positive, got {b}")))
}

/// `DepthToSpace`: moves channel blocks into `blocksize`×`blocksize` spatial tiles, in
/// DCR (depth-column-row, the default) or CRD order.
#[derive(Debug, Clone)]
pub struct DepthToSpace {
    pub blocksize: usize,
    /// CRD mode (channels outermost) instead of DCR.
    pub crd: bool,
}

impl DepthToSpace {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        let crd = match a.string_or("mode", "DCR")? {
            "DCR" => false,
            "CRD" => true,
            m => return Err(Attrs::unsupported("mode", format!("must be DCR or CRD, got {m:?}"))),
        };
        Ok(Arc::new(DepthToSpace { blocksize: blocksize(a)?, crd }))
    }

    /// The input viewed as 6-D, the permutation to apply, and the output shape.
    fn plan(&self, shape: &[usize]) -> Result<([usize; 6], [usize; 6], Vec<usize>)> {
        let [n, c, h, w] = nchw(shape, "DepthToSpace")?;
        let b = self.blocksize;
        let bb = b.checked_mul(b).filter(|&bb| c % bb == 0).ok_or_else(|| {
            IrError::Shape(format!("DepthToSpace: {c} channels are not divisible by blocksize² ({b}²)"))
        })?;
        let c2 = c / bb;
        let too_big = || IrError::Shape(format!("DepthToSpace output of {shape:?} is too large"));
        let out = vec![n, c2, h.checked_mul(b).ok_or_else(too_big)?, w.checked_mul(b).ok_or_else(too_big)?];
        Ok(if self.crd {
            ([n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3], out)
        } else {
            ([n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2], out)
        })
    }
}

impl Op for DepthToSpace {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "DepthToSpace")?;
        Ok(vec![fact(x.dtype, self.plan(&x.shape)?.2)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "DepthToSpace")?;
        check_view(&x, "DepthToSpace")?;
        let (six, perm, shape) = self.plan(x.shape)?;
        let o = out(outputs, 0, x.dtype, &shape, "DepthToSpace")?;
        permute_copy(x.dtype.size(), x.data, &six, &perm, o.data)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `SpaceToDepth`: the inverse of DCR DepthToSpace.
#[derive(Debug, Clone)]
pub struct SpaceToDepth {
    pub blocksize: usize,
}

impl SpaceToDepth {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(SpaceToDepth { blocksize: blocksize(a)? }))
    }

    fn plan(&self, shape: &[usize]) -> Result<([usize; 6], Vec<usize>)> {
        let [n, c, h, w] = nchw(shape, "SpaceToDepth")?;
        let b = self.blocksize;
        if h % b != 0 || w % b != 0 {
            return Err(IrError::Shape(format!("SpaceToDepth: spatial dims of {shape:?} are not divisible by {b}")));
        }
        let c2 = b
            .checked_mul(b)
            .and_then(|bb| bb.checked_mul(c))
            .ok_or_else(|| IrError::Shape(format!("SpaceToDepth output of {shape:?} is too large")))?;
        Ok(([n, c, h / b, b, w / b, b], vec![n, c2, h / b, w / b]))
    }
}

impl Op for SpaceToDepth {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "SpaceToDepth")?;
        Ok(vec![fact(x.dtype, self.plan(&x.shape)?.1)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "SpaceToDepth")?;
        check_view(&x, "SpaceToDepth")?;
        let (six, shape) = self.plan(x.shape)?;
        let o = out(outputs, 0, x.dtype, &shape, "SpaceToDepth")?;
        permute_copy(x.dtype.size(), x.data, &six, &[0, 3, 5, 1, 2, 4], o.data)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `Expand`: broadcasts the input against the constant shape input (bidirectionally, so
/// a 1 in the shape keeps the input's dim).
#[derive(Debug, Clone)]
pub struct Expand;

impl Expand {
    pub(crate) fn build(_a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Expand))
    }

    pub fn out_shape(input: &[usize], shape: &[i64]) -> Result<Vec<usize>> {
        let target = to_dims(shape, "Expand's shape input")?;
        broadcast_shapes(&[input, &target])
    }
}

impl Op for Expand {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Expand")?;
        let shape = req_fact_i64s(inputs, 1, "Expand", "the target shape")?;
        Ok(vec![fact(x.dtype, Self::out_shape(&x.shape, &shape)?)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Expand")?;
        check_view(&x, "Expand")?;
        let shape = Self::out_shape(x.shape, &req_view_i64s(inputs, 1, "Expand")?)?;
        let o = out(outputs, 0, x.dtype, &shape, "Expand")?;
        let strides: Vec<isize> = broadcast_strides(x.shape, &shape).into_iter().map(|s| s as isize).collect();
        strided_copy(x.dtype.size(), x.data, 0, &shape, &strides, o.data)
    }
    fn const_inputs(&self) -> &[usize] {
        &[1]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `Tile`: repeats the input `repeats[i]` times along each axis.
#[derive(Debug, Clone)]
pub struct Tile;

impl Tile {
    pub(crate) fn build(_a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Tile))
    }

    pub fn out_shape(input: &[usize], repeats: &[i64]) -> Result<Vec<usize>> {
        let reps = to_dims(repeats, "Tile's repeats")?;
        if reps.len() != input.len() {
            return Err(IrError::Shape(format!("Tile: {} repeats for an input of rank {}", reps.len(), input.len())));
        }
        input
            .iter()
            .zip(&reps)
            .map(|(&d, &r)| {
                d.checked_mul(r).ok_or_else(|| IrError::Shape(format!("Tile of {input:?} by {reps:?} is too large")))
            })
            .collect()
    }
}

impl Op for Tile {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = req(inputs, 0, "Tile")?;
        let reps = req_fact_i64s(inputs, 1, "Tile", "the repeats")?;
        Ok(vec![fact(x.dtype, Self::out_shape(&x.shape, &reps)?)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let x = req_view(inputs, 0, "Tile")?;
        check_view(&x, "Tile")?;
        let shape = Self::out_shape(x.shape, &req_view_i64s(inputs, 1, "Tile")?)?;
        let o = out(outputs, 0, x.dtype, &shape, "Tile")?;
        // Output index q·d + r along each axis is row-major over [reps, d] pairs, so the
        // output is the input read with shape [r0, d0, r1, d1, …] and strides [0, s0, 0, s1, …].
        let st = istrides(x.shape);
        let mut shape2 = Vec::with_capacity(2 * shape.len());
        let mut strides2 = Vec::with_capacity(2 * shape.len());
        for ((&d, &n), &s) in x.shape.iter().zip(&shape).zip(&st) {
            shape2.extend([n.checked_div(d).unwrap_or(0), d]);
            strides2.extend([0, s]);
        }
        strided_copy(x.dtype.size(), x.data, 0, &shape2, &strides2, o.data)
    }
    fn const_inputs(&self) -> &[usize] {
        &[1]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
