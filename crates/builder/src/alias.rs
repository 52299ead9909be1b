//! Concat, Split and Slice without copies. When a Concat's inputs are each one contiguous
//! byte range of its output (every dim before the axis is 1, e.g. a channel concat at
//! batch 1), the producers write straight into their slice of the output and the Concat
//! kernel goes away. Likewise a Split whose parts are contiguous ranges of its input: the
//! parts become views of the input, and so does a Slice that selects one contiguous range.
//! Aliased tensors form groups that share one arena range; the memory planner places only
//! the group's root, alive for the union of its members' lifetimes.

use sinter_ir::ops::shape_ops::Slice;
use sinter_ir::{Attrs, Tensor};
use sinter_plan::{KernelDesc, Location, TensorDesc};
use std::collections::{HashMap, HashSet};

/// Which tensors live inside another tensor's bytes.
#[derive(Default)]
pub(crate) struct Aliases {
    /// Member -> (the tensor it lives in, byte offset inside that tensor).
    parent: HashMap<u32, (u32, u64)>,
    pub concats: usize,
    /// Splits and Slices turned into views.
    pub splits: usize,
}

impl Aliases {
    /// The group root holding `id` and the byte offset of `id` inside it.
    pub fn root(&self, id: u32) -> (u32, u64) {
        let (mut cur, mut offset) = (id, 0u64);
        // Every tensor gets at most one parent: a Concat input its output (later in the
        // schedule), or a fresh Split/Slice output its input; such chains cannot loop.
        // The bound is a guard, not an expected exit.
        for _ in 0..=self.parent.len() {
            match self.parent.get(&cur) {
                Some(&(p, off)) => {
                    cur = p;
                    offset += off;
                }
                None => break,
            }
        }
        (cur, offset)
    }

    /// Every aliased tensor with its group root, sorted by tensor id.
    pub fn members(&self) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = self.parent.keys().map(|&id| (id, self.root(id).0)).collect();
        v.sort_unstable();
        v
    }
}

fn arena_bytes(t: &TensorDesc) -> Option<u64> {
    match t.location {
        Location::Arena { bytes, .. } => Some(bytes),
        Location::Weights { .. } => None,
    }
}

/// The normalized `axis` attribute (default `default`) for a tensor of rank `rank`.
fn axis(attrs: &Attrs, default: Option<i64>, rank: usize) -> Option<usize> {
    let a = attrs.int("axis").ok()?.or(default)?;
    let r = i64::try_from(rank).ok()?;
    let a = if a < 0 { a + r } else { a };
    usize::try_from(a).ok().filter(|&a| a < rank)
}

/// Byte offsets of `parts` inside `whole` when `whole` is their concatenation along the
/// attribute axis and each part is one contiguous range of it; `None` otherwise.
fn contiguous_parts(
    tensors: &[TensorDesc],
    attrs: &Attrs,
    default_axis: Option<i64>,
    whole: u32,
    parts: &[u32],
) -> Option<Vec<u64>> {
    let w = tensors.get(whole as usize)?;
    let ax = axis(attrs, default_axis, w.shape.len())?;
    if w.shape[..ax].iter().any(|&d| d != 1) {
        return None;
    }
    let mut offsets = Vec::with_capacity(parts.len());
    let (mut offset, mut along) = (0u64, 0u64);
    for &p in parts {
        let t = tensors.get(p as usize)?;
        let same_layout = t.dtype == w.dtype
            && t.shape.len() == w.shape.len()
            && t.shape.iter().zip(&w.shape).enumerate().all(|(i, (a, b))| i == ax || a == b);
        if !same_layout {
            return None;
        }
        offsets.push(offset);
        offset = offset.checked_add(arena_bytes(t)?)?;
        along = along.checked_add(t.shape[ax])?;
    }
    (along == w.shape[ax] && offset == arena_bytes(w)?).then_some(offsets)
}

/// Removes the Concat, Split and Slice kernels that aliasing makes copies of nothing.
/// `pinned` are the graph inputs and outputs: a Concat never redirects where they live.
/// `weights` is the plan's weight blob (Slice parameters are read from it).
pub(crate) fn eliminate(
    tensors: &[TensorDesc],
    kernels: Vec<KernelDesc>,
    pinned: &HashSet<u32>,
    weights: &[u8],
) -> (Vec<KernelDesc>, Aliases) {
    let mut aliases = Aliases::default();
    let mut kept = Vec::with_capacity(kernels.len());
    for kd in kernels {
        let removed = match kd.op_type.as_str() {
            "Concat" => try_concat(tensors, &kd, pinned, &mut aliases),
            "Split" => try_split(tensors, &kd, &mut aliases),
            "Slice" => try_slice(tensors, &kd, weights, &mut aliases),
            _ => false,
        };
        if !removed {
            kept.push(kd);
        }
    }
    (kept, aliases)
}

fn try_concat(tensors: &[TensorDesc], kd: &KernelDesc, pinned: &HashSet<u32>, aliases: &mut Aliases) -> bool {
    let [out] = kd.outputs[..] else { return false };
    let Some(inputs) = kd.inputs.iter().copied().collect::<Option<Vec<u32>>>() else { return false };
    let mut seen = HashSet::new();
    let movable = |id: u32| {
        // Arena tensors that are not graph inputs are written by a kernel of this plan
        // (or are an eliminated Concat's output, whose members are).
        !pinned.contains(&id)
            && !aliases.parent.contains_key(&id)
            && tensors.get(id as usize).is_some_and(|t| t.location.is_arena())
    };
    if inputs.is_empty()
        || !inputs.iter().all(|&id| movable(id) && seen.insert(id))
        || aliases.parent.contains_key(&out)
    {
        return false;
    }
    let Some(offsets) = contiguous_parts(tensors, &kd.attrs, None, out, &inputs) else { return false };
    for (&id, off) in inputs.iter().zip(offsets) {
        aliases.parent.insert(id, (out, off));
    }
    aliases.concats += 1;
    true
}

fn try_split(tensors: &[TensorDesc], kd: &KernelDesc, aliases: &mut Aliases) -> bool {
    let Some(&Some(input)) = kd.inputs.first() else { return false };
    let arena = |id: u32| tensors.get(id as usize).is_some_and(|t| t.location.is_arena());
    let mut seen = HashSet::new();
    if !arena(input)
        || kd.outputs.is_empty()
        || !kd
            .outputs
            .iter()
            .all(|&id| arena(id) && id != input && seen.insert(id) && !aliases.parent.contains_key(&id))
    {
        return false;
    }
    let Some(offsets) = contiguous_parts(tensors, &kd.attrs, Some(0), input, &kd.outputs) else { return false };
    for (&id, off) in kd.outputs.iter().zip(offsets) {
        aliases.parent.insert(id, (input, off));
    }
    aliases.splits += 1;
    true
}

/// The i64 values of a weight tensor (Slice parameters), if `id` is one.
fn const_i64s(tensors: &[TensorDesc], weights: &[u8], id: u32) -> Option<Vec<i64>> {
    let t = tensors.get(id as usize)?;
    let Location::Weights { offset, bytes } = t.location else { return None };
    let start = usize::try_from(offset).ok()?;
    let data = weights.get(start..start.checked_add(usize::try_from(bytes).ok()?)?)?;
    let shape = t.shape.iter().map(|&d| usize::try_from(d).ok()).collect::<Option<Vec<_>>>()?;
    Tensor::from_bytes(t.dtype, &shape, data).ok()?.to_i64_vec().ok()
}

fn try_slice(tensors: &[TensorDesc], kd: &KernelDesc, weights: &[u8], aliases: &mut Aliases) -> bool {
    let (Some(&Some(input)), &[out]) = (kd.inputs.first(), &kd.outputs[..]) else { return false };
    let (Some(x), Some(y)) = (tensors.get(input as usize), tensors.get(out as usize)) else { return false };
    if !x.location.is_arena() || !y.location.is_arena() || input == out || aliases.parent.contains_key(&out) {
        return false;
    }
    let Some(shape) = x.shape.iter().map(|&d| usize::try_from(d).ok()).collect::<Option<Vec<usize>>>() else {
        return false;
    };
    // Parameters: attributes before opset 10, constant inputs 1..=4 after.
    let param = |name: &str, index: usize| -> Option<Option<Vec<i64>>> {
        if kd.opset < 10 {
            return Some(kd.attrs.ints(name).ok()?.map(<[i64]>::to_vec));
        }
        match kd.inputs.get(index).copied().flatten() {
            None => Some(None),
            Some(id) => const_i64s(tensors, weights, id).map(Some),
        }
    };
    let (Some(Some(starts)), Some(Some(ends)), Some(axes), Some(steps)) =
        (param("starts", 1), param("ends", 2), param("axes", 3), param("steps", 4))
    else {
        return false;
    };
    let Ok(plan) = Slice::plan(&shape, &starts, &ends, axes.as_deref(), steps.as_deref()) else { return false };
    // Contiguous: every axis longer than 1 steps through memory like a dense array of
    // the output's shape would.
    let mut dense = 1isize;
    for (&len, &stride) in plan.shape.iter().zip(&plan.strides).rev() {
        if len > 1 && stride != dense {
            return false;
        }
        let Some(d) = isize::try_from(len).ok().and_then(|l| dense.checked_mul(l)) else { return false };
        dense = d;
    }
    let out_shape: Vec<u64> = plan.shape.iter().map(|&d| d as u64).collect();
    let size = x.dtype.size() as u64;
    let Some(offset) = (plan.base as u64).checked_mul(size) else { return false };
    let fits = offset.checked_add(arena_bytes(y).unwrap_or(u64::MAX)).is_some_and(|end| Some(end) <= arena_bytes(x));
    if out_shape != y.shape || y.dtype != x.dtype || !fits || plan.shape.contains(&0) {
        return false;
    }
    aliases.parent.insert(out, (input, offset));
    aliases.splits += 1;
    true
}
