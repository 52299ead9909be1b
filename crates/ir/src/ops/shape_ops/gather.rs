//! Indexed reads and writes: Gather, GatherElements, GatherND, ScatterElements (and the
//! older Scatter), ScatterND, OneHot. Indices are data, so every one is range-checked and
//! a bad index is an error; negative indices count from the end.

use super::common::{
    check_index_dtype, check_view, fact, index_err, max_nan, min_nan, out, same_dtype, wrap_index, Num,
};
use super::copy::{elems, elems_mut, with_elem_size};
use crate::ops::util::{normalize_axis, normalize_axis_inclusive, req, req_view, strides};
use crate::tensor::checked_numel;
use crate::{Attrs, DType, Fact, IrError, Op, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

/// Checks the data and index facts shared by the gather ops and returns the index rank.
fn check_indices(data: &Fact, indices: &Fact, op: &str) -> Result<()> {
    check_index_dtype(indices.dtype, &format!("{op} indices"))?;
    if data.rank() == 0 {
        return Err(IrError::Shape(format!("{op} needs data of rank >= 1")));
    }
    Ok(())
}

/// Reads index values from a view after checking it.
fn index_values(v: &View, op: &str) -> Result<Vec<i64>> {
    check_index_dtype(v.dtype, &format!("{op} indices"))?;
    check_view(v, op)?;
    v.to_i64_vec()
}

/// `Gather`: picks slices along `axis` by the indices; the output shape is
/// `data[..axis] + indices + data[axis+1..]`.
#[derive(Debug, Clone)]
pub struct Gather {
    pub axis: i64,
}

impl Gather {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(Gather { axis: a.int_or("axis", 0)? }))
    }

    pub fn out_shape(&self, data: &[usize], indices: &[usize]) -> Result<(usize, Vec<usize>)> {
        let axis = normalize_axis(self.axis, data.len())?;
        let shape = [&data[..axis], indices, &data[axis + 1..]].concat();
        Ok((axis, shape))
    }
}

impl Op for Gather {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (d, i) = (req(inputs, 0, "Gather")?, req(inputs, 1, "Gather")?);
        check_indices(d, i, "Gather")?;
        Ok(vec![fact(d.dtype, self.out_shape(&d.shape, &i.shape)?.1)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let (d, i) = (req_view(inputs, 0, "Gather")?, req_view(inputs, 1, "Gather")?);
        check_view(&d, "Gather")?;
        let idx = index_values(&i, "Gather")?;
        let (axis, shape) = self.out_shape(d.shape, i.shape)?;
        let o = out(outputs, 0, d.dtype, &shape, "Gather")?;
        let n = d.shape[axis];
        let inner = checked_numel(&d.shape[axis + 1..])? * d.dtype.size();
        if inner == 0 || o.data.is_empty() {
            return Ok(());
        }
        let rows = idx
            .iter()
            .map(|&j| wrap_index(j, n).ok_or_else(|| index_err("Gather", j, n)))
            .collect::<Result<Vec<_>>>()?;
        let mut dst = o.data.chunks_exact_mut(inner);
        for block in d.data.chunks_exact(n * inner) {
            for &r in &rows {
                if let Some(chunk) = dst.next() {
                    chunk.copy_from_slice(&block[r * inner..(r + 1) * inner]);
                }
            }
        }
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Row-major walk over `shape` yielding each multi-index (allocation-free per step).
fn for_each_index(shape: &[usize], mut f: impl FnMut(usize, &[usize]) -> Result<()>) -> Result<()> {
    let total = checked_numel(shape)?;
    let mut idx = vec![0usize; shape.len()];
    for flat in 0..total {
        f(flat, &idx)?;
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    Ok(())
}

/// Offsets into `data` for the element-wise gather/scatter: for each position of
/// `indices`, the data offset with `axis` replaced by the index value.
fn element_offsets(data: &[usize], ind_shape: &[usize], idx: &[i64], axis: usize, op: &str) -> Result<Vec<usize>> {
    if ind_shape.len() != data.len() {
        return Err(IrError::Shape(format!("{op}: indices {ind_shape:?} must have the rank of data {data:?}")));
    }
    if ind_shape.iter().zip(data).enumerate().any(|(k, (&i, &d))| k != axis && i > d) {
        return Err(IrError::Shape(format!("{op}: indices {ind_shape:?} exceed data {data:?} off axis {axis}")));
    }
    let st = strides(data);
    let n = data[axis];
    let mut offs = Vec::with_capacity(idx.len());
    for_each_index(ind_shape, |flat, pos| {
        let j = idx[flat];
        let r = wrap_index(j, n).ok_or_else(|| index_err(op, j, n))?;
        offs.push(pos.iter().zip(&st).enumerate().map(|(k, (&p, &s))| if k == axis { r * s } else { p * s }).sum());
        Ok(())
    })?;
    Ok(offs)
}

/// `GatherElements`: `out[pos] = data[pos with axis replaced by indices[pos]]`.
#[derive(Debug, Clone)]
pub struct GatherElements {
    pub axis: i64,
}

impl GatherElements {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(GatherElements { axis: a.int_or("axis", 0)? }))
    }
}

impl Op for GatherElements {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (d, i) = (req(inputs, 0, "GatherElements")?, req(inputs, 1, "GatherElements")?);
        check_indices(d, i, "GatherElements")?;
        normalize_axis(self.axis, d.rank())?;
        if i.rank() != d.rank() {
            return Err(IrError::Shape(format!(
                "GatherElements: indices {:?} must have the rank of data {:?}",
                i.shape, d.shape
            )));
        }
        Ok(vec![fact(d.dtype, i.shape.clone())?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let (d, i) = (req_view(inputs, 0, "GatherElements")?, req_view(inputs, 1, "GatherElements")?);
        check_view(&d, "GatherElements")?;
        let idx = index_values(&i, "GatherElements")?;
        let axis = normalize_axis(self.axis, d.shape.len())?;
        let offs = element_offsets(d.shape, i.shape, &idx, axis, "GatherElements")?;
        let o = out(outputs, 0, d.dtype, i.shape, "GatherElements")?;
        with_elem_size!(d.dtype.size(), T => {
            let src = elems::<T>(d.data)?;
            for (dst, &off) in elems_mut::<T>(o.data)?.iter_mut().zip(&offs) {
                *dst = src[off];
            }
            Ok(())
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Geometry of GatherND / ScatterND: index tuples of length `m` address slices of
/// `slice` elements within each of `batches` batches.
struct NdPlan {
    batches: usize,
    /// Index tuples per batch.
    tuples: usize,
    m: usize,
    /// Elements in one addressed slice.
    slice: usize,
    /// Elements of data per batch.
    batch_len: usize,
    /// Dims and strides (in elements) that the tuple indexes.
    dims: Vec<usize>,
    dim_strides: Vec<usize>,
}

impl NdPlan {
    fn new(data: &[usize], ind: &[usize], batch_dims: usize, op: &str) -> Result<NdPlan> {
        let (r, q, b) = (data.len(), ind.len(), batch_dims);
        let m = *ind.last().ok_or_else(|| IrError::Shape(format!("{op}: indices must have rank >= 1")))?;
        if b >= q || b >= r || m < 1 || m > r - b || data[..b] != ind[..b] {
            return Err(IrError::Shape(format!(
                "{op}: data {data:?} and indices {ind:?} do not fit batch_dims {b} (need matching batch dims and 1 <= indices.shape[-1] <= {})",
                r.saturating_sub(b)
            )));
        }
        let st = strides(data);
        Ok(NdPlan {
            batches: checked_numel(&data[..b])?,
            tuples: checked_numel(&ind[b..q - 1])?,
            m,
            slice: checked_numel(&data[b + m..])?,
            batch_len: checked_numel(&data[b..])?,
            dims: data[b..b + m].to_vec(),
            dim_strides: st[b..b + m].to_vec(),
        })
    }

    /// The data offset (in elements) of each index tuple, batch by batch.
    fn offsets(&self, idx: &[i64], op: &str) -> Result<Vec<usize>> {
        if idx.len() != self.batches * self.tuples * self.m {
            return Err(IrError::Shape(format!("{op}: {} index values do not fit the plan", idx.len())));
        }
        let mut offs = Vec::with_capacity(self.batches * self.tuples);
        for (t, tuple) in idx.chunks_exact(self.m).enumerate() {
            let batch = t / self.tuples.max(1);
            let mut off = batch * self.batch_len;
            for ((&j, &n), &s) in tuple.iter().zip(&self.dims).zip(&self.dim_strides) {
                off += wrap_index(j, n).ok_or_else(|| index_err(op, j, n))? * s;
            }
            offs.push(off);
        }
        Ok(offs)
    }
}

/// `GatherND`: reads the data slices addressed by the index tuples in the last axis of
/// `indices`, with `batch_dims` leading axes shared by data and indices (opset 12).
#[derive(Debug, Clone)]
pub struct GatherND {
    pub batch_dims: usize,
}

impl GatherND {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        let b = a.int_or("batch_dims", 0)?;
        let batch_dims =
            usize::try_from(b).map_err(|_| Attrs::unsupported("batch_dims", format!("must be >= 0, got {b}")))?;
        Ok(Arc::new(GatherND { batch_dims }))
    }

    fn out_shape(&self, data: &[usize], ind: &[usize]) -> Result<(NdPlan, Vec<usize>)> {
        let plan = NdPlan::new(data, ind, self.batch_dims, "GatherND")?;
        let shape = [&ind[..ind.len() - 1], &data[self.batch_dims + plan.m..]].concat();
        Ok((plan, shape))
    }
}

impl Op for GatherND {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (d, i) = (req(inputs, 0, "GatherND")?, req(inputs, 1, "GatherND")?);
        check_indices(d, i, "GatherND")?;
        Ok(vec![fact(d.dtype, self.out_shape(&d.shape, &i.shape)?.1)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let (d, i) = (req_view(inputs, 0, "GatherND")?, req_view(inputs, 1, "GatherND")?);
        check_view(&d, "GatherND")?;
        let idx = index_values(&i, "GatherND")?;
        let (plan, shape) = self.out_shape(d.shape, i.shape)?;
        let o = out(outputs, 0, d.dtype, &shape, "GatherND")?;
        let es = d.dtype.size();
        let chunk = plan.slice * es;
        if chunk == 0 {
            return Ok(());
        }
        for (dst, off) in o.data.chunks_exact_mut(chunk).zip(plan.offsets(&idx, "GatherND")?) {
            dst.copy_from_slice(&d.data[off * es..off * es + chunk]);
        }
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// How a scatter combines an update with the existing value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

impl Reduction {
    fn parse(a: &Attrs) -> Result<Reduction> {
        Ok(match a.string_or("reduction", "none")? {
            "none" => Reduction::None,
            "add" => Reduction::Add,
            "mul" => Reduction::Mul,
            "max" => Reduction::Max,
            "min" => Reduction::Min,
            r => return Err(Attrs::unsupported("reduction", format!("must be none, add, mul, max or min, got {r:?}"))),
        })
    }
}

/// Copies `data` to the output, then writes (or combines) `updates[k]` at element offset
/// `offs[k] · slice … + slice` for each k.
fn scatter(
    data: &View,
    updates: &View,
    offs: &[usize],
    slice: usize,
    reduction: Reduction,
    dst: &mut [u8],
    op: &str,
) -> Result<()> {
    same_dtype(data.dtype, updates.dtype, &format!("{op} updates (same type as data)"))?;
    check_view(updates, op)?;
    if offs.len().checked_mul(slice) != Some(updates.len()) {
        return Err(IrError::Shape(format!("{op}: updates {:?} do not match the indices", updates.shape)));
    }
    dst.copy_from_slice(data.data);
    let dtype = data.dtype;
    if reduction != Reduction::None && dtype == DType::Bool {
        return Err(IrError::UnsupportedDType { op: format!("{op} with reduction {reduction:?}"), dtype });
    }
    fn apply<T: Num>(dst: &mut [T], upd: &[T], offs: &[usize], slice: usize, r: Reduction) {
        for (u, &off) in upd.chunks_exact(slice.max(1)).zip(offs) {
            for (d, &u) in dst[off..off + slice].iter_mut().zip(u) {
                *d = match r {
                    Reduction::None => u,
                    Reduction::Add => d.add(u),
                    Reduction::Mul => d.mul(u),
                    Reduction::Max => max_nan(*d, u),
                    Reduction::Min => min_nan(*d, u),
                };
            }
        }
    }
    crate::dispatch_dtype!(dtype, T => {
        apply::<T>(elems_mut_typed::<T>(dst)?, updates.as_slice::<T>()?, offs, slice, reduction)
    });
    Ok(())
}

/// Typed view of an output byte buffer (aligned: output buffers come from tensors/arenas).
fn elems_mut_typed<T: crate::Elem>(b: &mut [u8]) -> Result<&mut [T]> {
    let len = b.len();
    bytemuck::try_cast_slice_mut(b)
        .map_err(|e| IrError::Data(format!("cannot view {len} output bytes as {}: {e}", T::DTYPE)))
}

/// `ScatterElements` (and opset ≤ 10 `Scatter`): a copy of data with
/// `out[pos with axis replaced by indices[pos]] = updates[pos]`, optionally reduced.
#[derive(Debug, Clone)]
pub struct ScatterElements {
    pub axis: i64,
    pub reduction: Reduction,
}

impl ScatterElements {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(ScatterElements { axis: a.int_or("axis", 0)?, reduction: Reduction::parse(a)? }))
    }
    pub(crate) fn build_scatter(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(ScatterElements { axis: a.int_or("axis", 0)?, reduction: Reduction::None }))
    }
}

impl Op for ScatterElements {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let op = "ScatterElements";
        let (d, i, u) = (req(inputs, 0, op)?, req(inputs, 1, op)?, req(inputs, 2, op)?);
        check_indices(d, i, op)?;
        normalize_axis(self.axis, d.rank())?;
        same_dtype(d.dtype, u.dtype, "ScatterElements updates (same type as data)")?;
        if i.shape != u.shape || i.rank() != d.rank() {
            return Err(IrError::Shape(format!(
                "{op}: indices {:?} and updates {:?} must have one shape, of the rank of data {:?}",
                i.shape, u.shape, d.shape
            )));
        }
        Ok(vec![fact(d.dtype, d.shape.clone())?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let op = "ScatterElements";
        let (d, i, u) = (req_view(inputs, 0, op)?, req_view(inputs, 1, op)?, req_view(inputs, 2, op)?);
        check_view(&d, op)?;
        let idx = index_values(&i, op)?;
        if i.shape != u.shape {
            return Err(IrError::Shape(format!("{op}: indices {:?} and updates {:?} differ", i.shape, u.shape)));
        }
        let axis = normalize_axis(self.axis, d.shape.len())?;
        let offs = element_offsets(d.shape, i.shape, &idx, axis, op)?;
        let o = out(outputs, 0, d.dtype, d.shape, op)?;
        scatter(&d, &u, &offs, 1, self.reduction, o.data, op)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `ScatterND`: a copy of data with the slices addressed by the index tuples replaced
/// (or reduced) by `updates`, whose shape is `indices[..-1] + data[m..]`.
#[derive(Debug, Clone)]
pub struct ScatterND {
    pub reduction: Reduction,
}

impl ScatterND {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(ScatterND { reduction: Reduction::parse(a)? }))
    }

    fn plan(data: &[usize], ind: &[usize], upd: &[usize]) -> Result<NdPlan> {
        let plan = NdPlan::new(data, ind, 0, "ScatterND")?;
        let expected = [&ind[..ind.len() - 1], &data[plan.m..]].concat();
        if upd != expected.as_slice() {
            return Err(IrError::Shape(format!(
                "ScatterND: updates have shape {upd:?}, expected {expected:?} for data {data:?} and indices {ind:?}"
            )));
        }
        Ok(plan)
    }
}

impl Op for ScatterND {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let op = "ScatterND";
        let (d, i, u) = (req(inputs, 0, op)?, req(inputs, 1, op)?, req(inputs, 2, op)?);
        check_indices(d, i, op)?;
        same_dtype(d.dtype, u.dtype, "ScatterND updates (same type as data)")?;
        Self::plan(&d.shape, &i.shape, &u.shape)?;
        Ok(vec![fact(d.dtype, d.shape.clone())?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let op = "ScatterND";
        let (d, i, u) = (req_view(inputs, 0, op)?, req_view(inputs, 1, op)?, req_view(inputs, 2, op)?);
        check_view(&d, op)?;
        let idx = index_values(&i, op)?;
        let plan = Self::plan(d.shape, i.shape, u.shape)?;
        let offs = plan.offsets(&idx, op)?;
        let o = out(outputs, 0, d.dtype, d.shape, op)?;
        scatter(&d, &u, &offs, plan.slice, self.reduction, o.data, op)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `OneHot`: inserts a `depth` axis at `axis`; each position holds `values[1]` where the
/// index (negative counts from the end) matches and `values[0]` elsewhere. Out-of-range
/// indices give a row of `values[0]`.
#[derive(Debug, Clone)]
pub struct OneHot {
    pub axis: i64,
}

impl OneHot {
    pub(crate) fn build(a: &Attrs, _opset: i64) -> Result<Arc<dyn Op>> {
        Ok(Arc::new(OneHot { axis: a.int_or("axis", -1)? }))
    }

    fn depth(values: &[i64]) -> Result<usize> {
        match values {
            [d] if *d > 0 => usize::try_from(*d).map_err(|_| IrError::Shape(format!("OneHot depth {d} is too large"))),
            _ => Err(IrError::Shape(format!("OneHot depth must be one positive value, got {values:?}"))),
        }
    }

    fn out_shape(&self, ind: &[usize], depth: usize) -> Result<(usize, Vec<usize>)> {
        let axis = normalize_axis_inclusive(self.axis, ind.len())?;
        Ok((axis, [&ind[..axis], &[depth], &ind[axis..]].concat()))
    }

    /// Depth values may be float; they are truncated to integers.
    fn depth_from_fact(inputs: &[Option<&Fact>]) -> Result<usize> {
        let f = req(inputs, 1, "OneHot")?;
        let t = f.value.as_ref().ok_or_else(|| IrError::NotConstant {
            op: "OneHot".into(),
            index: 1,
            what: "the depth".into(),
        })?;
        Self::depth(&t.to_i64_vec()?)
    }
}

impl Op for OneHot {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (i, v) = (req(inputs, 0, "OneHot")?, req(inputs, 2, "OneHot")?);
        if i.dtype == DType::Bool {
            return Err(IrError::DType { expected: "numeric OneHot indices".into(), found: i.dtype });
        }
        if v.numel() != 2 {
            return Err(IrError::Shape(format!("OneHot values must hold [off, on], has shape {:?}", v.shape)));
        }
        let depth = Self::depth_from_fact(inputs)?;
        Ok(vec![fact(v.dtype, self.out_shape(&i.shape, depth)?.1)?])
    }
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let (i, d, v) =
            (req_view(inputs, 0, "OneHot")?, req_view(inputs, 1, "OneHot")?, req_view(inputs, 2, "OneHot")?);
        check_view(&i, "OneHot")?;
        check_view(&v, "OneHot")?;
        let depth = Self::depth(&d.to_i64_vec()?)?;
        let (axis, shape) = self.out_shape(i.shape, depth)?;
        let es = v.dtype.size();
        if v.data.len() != 2 * es {
            return Err(IrError::Shape(format!("OneHot values must hold [off, on], has shape {:?}", v.shape)));
        }
        let idx = i.to_i64_vec()?;
        let o = out(outputs, 0, v.dtype, &shape, "OneHot")?;
        let inner = checked_numel(&i.shape[axis..])?;
        with_elem_size!(es, T => {
            let vals = elems::<T>(v.data)?;
            let dst = elems_mut::<T>(o.data)?;
            dst.fill(vals[0]);
            for (p, &j) in idx.iter().enumerate() {
                if let Some(k) = wrap_index(j, depth) {
                    let (outer, rest) = (p / inner.max(1), p % inner.max(1));
                    dst[(outer * depth + k) * inner + rest] = vals[1];
                }
            }
            Ok(())
        })
    }
    fn const_inputs(&self) -> &[usize] {
        &[1]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
