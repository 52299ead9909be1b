//! Turns a plan's schedule into ready-to-run kernels, validating everything the
//! kernels rely on: ops rebuilt from their attributes, shapes re-inferred and
//! compared, every range inside its buffer, no kernel writing over its own inputs.

use crate::error::{Result, RuntimeError};
use crate::kernels::{self, Exec};
use sinter_ir::{DType, Fact, Tensor};
use sinter_plan::{Location, Plan, PlanMeta, TensorDesc};
use std::sync::Arc;

/// Where a kernel operand lives, with its dtype and shape.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub loc: Location,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl Slot {
    pub(crate) fn range(&self) -> (u64, u64) {
        match self.loc {
            Location::Arena { offset, bytes } | Location::Weights { offset, bytes } => (offset, bytes),
        }
    }
    pub(crate) fn is_arena(&self) -> bool {
        matches!(self.loc, Location::Arena { .. })
    }
}

pub(crate) struct Prepared {
    pub exec: Box<dyn Exec>,
    pub inputs: Vec<Option<Slot>>,
    pub outputs: Vec<Slot>,
    pub op_type: String,
    pub node: String,
}

pub(crate) fn slot(meta: &PlanMeta, weights_len: u64, id: u32) -> Result<Slot> {
    let t: &TensorDesc = meta
        .tensors
        .get(id as usize)
        .ok_or_else(|| RuntimeError::InvalidPlan(format!("tensor id {id} out of range")))?;
    let shape = t
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| RuntimeError::InvalidPlan(format!("tensor '{}' has a dimension too large", t.name)))?;
    let numel = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
    let need = numel.and_then(|n| n.checked_mul(t.dtype.size() as u64));
    let (offset, bytes, limit) = match t.location {
        Location::Arena { offset, bytes } => (offset, bytes, meta.arena_bytes),
        Location::Weights { offset, bytes } => (offset, bytes, weights_len),
    };
    if need != Some(bytes) || offset.checked_add(bytes).is_none_or(|end| end > limit) {
        return Err(RuntimeError::InvalidPlan(format!(
            "tensor '{}' ({}{:?}) has a bad location {:?}",
            t.name, t.dtype, shape, t.location
        )));
    }
    Ok(Slot { loc: t.location, dtype: t.dtype, shape })
}

/// The bytes of a weight slot.
pub(crate) fn weight_bytes<'a>(plan: &'a Plan, s: &Slot) -> Option<&'a [u8]> {
    match s.loc {
        Location::Weights { offset, bytes } => {
            let start = usize::try_from(offset).ok()?;
            let end = start.checked_add(usize::try_from(bytes).ok()?)?;
            plan.weights().get(start..end)
        }
        Location::Arena { .. } => None,
    }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.1 > 0 && b.1 > 0 && a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

pub(crate) fn prepare(plan: &Plan) -> Result<Vec<Prepared>> {
    let meta = plan.meta();
    let wlen = plan.weights().len() as u64;
    let mut out = Vec::with_capacity(meta.kernels.len());
    for (index, k) in meta.kernels.iter().enumerate() {
        let node = k.nodes.first().map(|n| n.name.clone()).unwrap_or_default();
        let bad =
            |msg: String| RuntimeError::InvalidKernel { index, op_type: k.op_type.clone(), node: node.clone(), msg };
        let op = sinter_ir::ops::build(&k.op_type, &k.attrs, k.opset).map_err(|e| bad(e.to_string()))?;
        let inputs =
            k.inputs.iter().map(|i| i.map(|id| slot(meta, wlen, id)).transpose()).collect::<Result<Vec<_>>>()?;
        let outputs = k.outputs.iter().map(|&id| slot(meta, wlen, id)).collect::<Result<Vec<_>>>()?;

        // Re-infer from the operands: the kernels trust these shapes, the file does not get to.
        let mut facts = Vec::with_capacity(inputs.len());
        for (i, s) in inputs.iter().enumerate() {
            facts.push(match s {
                None => None,
                Some(s) => {
                    let mut f = Fact::new(s.dtype, s.shape.clone());
                    if op.const_inputs().contains(&i) {
                        let bytes = weight_bytes(plan, s).ok_or_else(|| bad(format!("input {i} must be a weight")))?;
                        let t = Tensor::from_bytes(s.dtype, &s.shape, bytes).map_err(|e| bad(e.to_string()))?;
                        f.value = Some(Arc::new(t));
                    }
                    Some(f)
                }
            });
        }
        let refs: Vec<Option<&Fact>> = facts.iter().map(|f| f.as_ref()).collect();
        let inferred = op.infer(&refs).map_err(|e| bad(e.to_string()))?;
        if inferred.len() != outputs.len() {
            return Err(bad(format!("op produces {} outputs, plan binds {}", inferred.len(), outputs.len())));
        }
        for (i, (f, s)) in inferred.iter().zip(&outputs).enumerate() {
            if f.dtype != s.dtype || f.shape != s.shape {
                return Err(bad(format!(
                    "output {i} is {}{:?} in the plan but the op computes {}{:?}",
                    s.dtype, s.shape, f.dtype, f.shape
                )));
            }
            if !s.is_arena() {
                return Err(bad(format!("output {i} is not in the activation arena")));
            }
        }
        for (i, o) in outputs.iter().enumerate() {
            let clash_out = outputs[..i].iter().any(|p| overlaps(p.range(), o.range()));
            let clash_in = inputs.iter().flatten().any(|s| s.is_arena() && overlaps(s.range(), o.range()));
            if clash_out || clash_in {
                return Err(bad(format!("output {i} overlaps another operand of the same kernel")));
            }
        }
        let exec = kernels::select(op, &k.op_type, &inputs, &outputs).map_err(|e| bad(e.to_string()))?;
        out.push(Prepared { exec, inputs, outputs, op_type: k.op_type.clone(), node });
    }
    Ok(out)
}
