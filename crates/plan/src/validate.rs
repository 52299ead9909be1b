//! Checks that a decoded [`PlanMeta`] is safe to execute: a plan file is untrusted, and the
//! runtime slices the arena and the weight blob with these numbers and hands kernels
//! `&mut` views of their outputs next to `&` views of their inputs.

use crate::error::{PlanError, Result};
use crate::format::ALIGN;
use crate::schema::{Binding, KernelDesc, Location, PlanMeta, TensorDesc, TensorId};
use std::collections::HashSet;

/// The largest activation arena a plan may ask for (64 GiB). Anything bigger is
/// a corrupt or hostile file rather than a real model.
pub const MAX_ARENA_BYTES: u64 = 64 << 30;

fn invalid(msg: String) -> PlanError {
    PlanError::Invalid(msg)
}

fn tensor_label(id: usize, t: &TensorDesc) -> String {
    format!("tensor {id} {:?}", t.name)
}

fn kernel_label(i: usize, k: &KernelDesc) -> String {
    match k.nodes.first() {
        Some(n) => format!("kernel {i} ({} {:?})", k.op_type, n.name),
        None => format!("kernel {i} ({})", k.op_type),
    }
}

/// Rejects arena sizes no real model needs or this machine cannot address. Shared by the
/// meta validation and the header decoder, so both report an oversized arena alike.
pub(crate) fn check_arena_size(arena_bytes: u64) -> Result<()> {
    if arena_bytes > MAX_ARENA_BYTES || usize::try_from(arena_bytes).is_err() {
        return Err(invalid(format!(
            "arena of {arena_bytes} bytes is larger than the limit of {MAX_ARENA_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Rejects workspace sizes beyond the arena's limit, so a hostile header cannot make a
/// context allocate unbounded memory. The per-thread part is multiplied by the thread
/// count at run time (the runtime allocates what its kernels declare, at most these).
pub(crate) fn check_workspace_size(shared: u64, per_thread: u64) -> Result<()> {
    for (what, bytes) in [("workspace", shared), ("per-thread workspace", per_thread)] {
        if bytes > MAX_ARENA_BYTES || usize::try_from(bytes).is_err() {
            return Err(invalid(format!(
                "{what} of {bytes} bytes is larger than the limit of {MAX_ARENA_BYTES} bytes"
            )));
        }
    }
    Ok(())
}

/// Validates `meta` against a weight blob of `weights_len` bytes.
pub(crate) fn validate(meta: &PlanMeta, weights_len: u64) -> Result<()> {
    check_arena_size(meta.arena_bytes)?;
    for (i, t) in meta.tensors.iter().enumerate() {
        check_tensor(i, t, meta.arena_bytes, weights_len)?;
    }
    check_bindings(meta, "input", &meta.inputs)?;
    check_bindings(meta, "output", &meta.outputs)?;

    for (i, k) in meta.kernels.iter().enumerate() {
        let label = || kernel_label(i, k);
        let mut inputs = Vec::with_capacity(k.inputs.len());
        for (j, id) in k.inputs.iter().enumerate() {
            if let Some(id) = *id {
                inputs.push((id, lookup(meta, id, || format!("{} input {j}", label()))?));
            }
        }
        let mut outputs = Vec::with_capacity(k.outputs.len());
        for (j, &id) in k.outputs.iter().enumerate() {
            let t = lookup(meta, id, || format!("{} output {j}", label()))?;
            if !t.location.is_arena() {
                return Err(invalid(format!(
                    "{} output {j} is {}, which is in the read-only weights",
                    label(),
                    tensor_label(id as usize, t)
                )));
            }
            outputs.push((id, t));
        }
        if let Some(p) = &k.packing {
            check_packing(meta, k, p).map_err(|msg| invalid(format!("{}: packed weights: {msg}", label())))?;
        }
        // A context's graph inputs stay set across runs: nothing may write over them.
        for &(id, t) in &outputs {
            for b in &meta.inputs {
                let input = lookup(meta, b.tensor, || format!("graph input {:?}", b.name))?;
                if overlaps(&t.location, &input.location) {
                    return Err(invalid(format!(
                        "{} writes {} over graph input {:?}, which must keep its value for later runs \
                         (rebuild the plan with this version of Sinter)",
                        label(),
                        tensor_label(id as usize, t),
                        b.name
                    )));
                }
            }
        }
        // Outputs are written through `&mut` views while inputs are read: none may alias.
        for (a, &(ida, ta)) in outputs.iter().enumerate() {
            for &(idb, tb) in outputs[..a].iter().chain(&inputs) {
                if ida == idb || overlaps(&ta.location, &tb.location) {
                    return Err(invalid(format!(
                        "{} writes {} over {}, which it also uses",
                        label(),
                        tensor_label(ida as usize, ta),
                        tensor_label(idb as usize, tb)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The packed input exists and is an f32 weight; the op's logical weight shape has a size.
/// (Whether its length fits the layout is for the kernel that reads it to check.)
fn check_packing(meta: &PlanMeta, k: &KernelDesc, p: &crate::schema::Packing) -> std::result::Result<(), String> {
    let id = usize::try_from(p.input)
        .ok()
        .and_then(|i| k.inputs.get(i).copied().flatten())
        .ok_or_else(|| format!("input {} does not exist", p.input))?;
    let t = meta.tensor(id).ok_or_else(|| format!("tensor id {id} is out of range"))?;
    if !t.location.is_weights() || t.dtype != sinter_ir::DType::F32 {
        return Err(format!("input {} ({:?}) must be f32 weights", p.input, t.name));
    }
    if p.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).is_none() {
        return Err(format!("logical shape {:?} is too large", p.shape));
    }
    Ok(())
}

fn check_tensor(i: usize, t: &TensorDesc, arena_bytes: u64, weights_len: u64) -> Result<()> {
    let label = || tensor_label(i, t);
    let need = t.byte_size().ok_or_else(|| invalid(format!("{}: shape {:?} is too large", label(), t.shape)))?;
    let (offset, bytes) = (t.location.offset(), t.location.bytes());
    let (space, limit) = match t.location {
        Location::Arena { .. } => ("arena", arena_bytes),
        Location::Weights { .. } => ("weights", weights_len),
    };
    if bytes != need {
        return Err(invalid(format!(
            "{}: {} {:?} needs {need} bytes but its location has {bytes}",
            label(),
            t.dtype,
            t.shape
        )));
    }
    // Typed views need element alignment only; arena tensors may sit inside an aliased
    // buffer (a Concat's slice) at any element boundary. Weights are always 64-aligned.
    let align = match t.location {
        Location::Arena { .. } => t.dtype.size().max(1) as u64,
        Location::Weights { .. } => ALIGN,
    };
    if offset % align != 0 {
        return Err(invalid(format!("{}: {space} offset {offset} is not {align}-byte aligned", label())));
    }
    if !matches!(offset.checked_add(bytes), Some(end) if end <= limit) {
        return Err(invalid(format!(
            "{}: bytes {offset}..{offset}+{bytes} are outside the {space} ({limit} bytes)",
            label()
        )));
    }
    Ok(())
}

fn lookup(meta: &PlanMeta, id: TensorId, what: impl FnOnce() -> String) -> Result<&TensorDesc> {
    meta.tensor(id).ok_or_else(|| {
        invalid(format!("{}: tensor id {id} is out of range (plan has {} tensors)", what(), meta.tensors.len()))
    })
}

/// Names are unique (the runtime looks bindings up by name); graph inputs live in the
/// arena because the caller's data is copied there.
fn check_bindings(meta: &PlanMeta, kind: &str, bindings: &[Binding]) -> Result<()> {
    let mut names = HashSet::new();
    for b in bindings {
        let t = lookup(meta, b.tensor, || format!("graph {kind} {:?}", b.name))?;
        if kind == "input" && !t.location.is_arena() {
            return Err(invalid(format!(
                "graph input {:?} is bound to {}, which is in the weights, not the arena",
                b.name,
                tensor_label(b.tensor as usize, t)
            )));
        }
        if !names.insert(b.name.as_str()) {
            return Err(invalid(format!("graph {kind} name {:?} appears twice", b.name)));
        }
    }
    Ok(())
}

/// Whether two non-empty arena ranges share a byte (weights are never written, so a
/// weights tensor overlaps nothing that matters here).
fn overlaps(a: &Location, b: &Location) -> bool {
    match (*a, *b) {
        (Location::Arena { offset: oa, bytes: ba }, Location::Arena { offset: ob, bytes: bb }) => {
            // Validated: offset + bytes does not overflow.
            ba > 0 && bb > 0 && oa < ob.saturating_add(bb) && ob < oa.saturating_add(ba)
        }
        _ => false,
    }
}
