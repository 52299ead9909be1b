//! Static memory planning: every activation gets an offset in one arena, reusing
//! space between tensors whose lifetimes do not overlap (best fit, largest first).
//! Aliased tensors (see [`crate::alias`]) are placed with their group root, which is
//! alive whenever any member is.

use crate::alias::Aliases;
use sinter_plan::{KernelDesc, Location, TensorDesc};
use std::collections::HashMap;

const ALIGN: u64 = 64;

pub(crate) struct ArenaLayout {
    pub offsets: Vec<(u32, u64)>,
    pub arena_bytes: u64,
    /// Sum of every activation's (aligned) size: the arena without reuse.
    pub total_bytes: u64,
}

fn aligned(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// Plans offsets for `arena_ids`. Step 0 is "before the first kernel" (`inputs` are written),
/// kernel k runs at step k+1; graph `inputs` and `outputs` live until the end. Only group roots get
/// their own place; members sit at their offset inside their root.
pub(crate) fn plan_arena(
    tensors: &[TensorDesc],
    kernels: &[KernelDesc],
    arena_ids: &[u32],
    inputs: &[u32],
    outputs: &[u32],
    aliases: &Aliases,
) -> ArenaLayout {
    let end = kernels.len() as u64 + 1;
    let mut own: HashMap<u32, (u64, u64)> = inputs.iter().map(|&id| (id, (0, 0))).collect();
    for (k, kd) in kernels.iter().enumerate() {
        let step = k as u64 + 1;
        for &id in &kd.outputs {
            own.insert(id, (step, step));
        }
        // An eliminated Concat's output is read without being written by a kernel: its
        // members' writes start the group's life.
        for &id in kd.inputs.iter().flatten() {
            own.entry(id).and_modify(|l| l.1 = l.1.max(step)).or_insert((step, step));
        }
    }
    for id in outputs {
        own.entry(*id).and_modify(|l| l.1 = end).or_insert((end, end));
    }
    // Graph inputs keep their bytes for the whole run: a context's inputs stay set
    // across runs (run again without setting them, get the same result).
    for id in inputs {
        own.entry(*id).and_modify(|l| l.1 = end);
    }
    // A group lives from its first member's write to its last member's read.
    let mut life: HashMap<u32, (u64, u64)> = HashMap::new();
    for &id in arena_ids {
        let root = aliases.root(id).0;
        if let Some(&(s, e)) = own.get(&id) {
            life.entry(root).and_modify(|l| *l = (l.0.min(s), l.1.max(e))).or_insert((s, e));
        }
    }
    let roots: Vec<u32> = arena_ids.iter().copied().filter(|&id| aliases.root(id).0 == id).collect();
    for id in &roots {
        // Never written nor read (cannot happen for a built plan): keep it for the whole run.
        life.entry(*id).or_insert((0, end));
    }
    let size = |id: u32| match tensors[id as usize].location {
        Location::Arena { bytes, .. } => aligned(bytes),
        Location::Weights { .. } => 0,
    };
    let mut order: Vec<u32> = roots;
    order.sort_by_key(|&id| (std::cmp::Reverse(size(id)), life[&id].0, id));

    let mut placed: Vec<(u64, u64, u64, u64)> = Vec::new(); // (offset, size, start, end)
    let mut offsets = Vec::with_capacity(order.len());
    let mut arena_bytes = 0;
    for id in order {
        let (s, e) = life[&id];
        let sz = size(id);
        let mut busy: Vec<(u64, u64)> =
            placed.iter().filter(|p| p.2 <= e && s <= p.3).map(|p| (p.0, p.0 + p.1)).collect();
        busy.sort_unstable();
        // Best fit: the smallest gap that holds the tensor, else the end.
        let mut best: Option<(u64, u64)> = None; // (gap size, offset)
        let mut cursor = 0;
        for (b0, b1) in &busy {
            if *b0 > cursor && b0 - cursor >= sz && best.is_none_or(|(g, _)| b0 - cursor < g) {
                best = Some((b0 - cursor, cursor));
            }
            cursor = cursor.max(*b1);
        }
        let offset = best.map(|(_, o)| o).unwrap_or(cursor);
        placed.push((offset, sz, s, e));
        arena_bytes = arena_bytes.max(offset + sz);
        offsets.push((id, offset));
    }
    let root_offsets: HashMap<u32, u64> = offsets.iter().copied().collect();
    for &id in arena_ids {
        let (root, inner) = aliases.root(id);
        if root != id {
            offsets.push((id, root_offsets.get(&root).copied().unwrap_or(0) + inner));
        }
    }
    let total_bytes = arena_ids.iter().map(|&id| size(id)).sum();
    ArenaLayout { offsets, arena_bytes, total_bytes }
}
