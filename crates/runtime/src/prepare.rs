//! Turns a plan's schedule into ready-to-run kernels, validating everything the
//! kernels rely on: ops rebuilt from their attributes, shapes re-inferred and
//! compared. Ranges and aliasing were already checked by the plan's own validation.

use crate::backend::{self, Backend};
use crate::error::{Result, RuntimeError};
use crate::exec::request::Request;
use crate::exec::{self, Exec};
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
}

pub(crate) struct Prepared {
    pub exec: Box<dyn Exec>,
    /// The kernel implementation the plan chose (`cpu.conv2d`, `reference`, …).
    pub implementation: String,
    pub inputs: Vec<Option<Slot>>,
    pub outputs: Vec<Slot>,
    pub op_type: String,
    pub node: String,
}

/// The operand `id`. Its byte range lies inside its buffer and matches its shape: every
/// `Plan` is validated when it is made (`sinter_plan::validate`), which the unsafe views rely on.
pub(crate) fn slot(meta: &PlanMeta, id: u32) -> Result<Slot> {
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

pub(crate) fn prepare(plan: &Plan, backend: &dyn Backend) -> Result<Vec<Prepared>> {
    let meta = plan.meta();
    let mut out = Vec::with_capacity(meta.kernels.len());
    for (index, k) in meta.kernels.iter().enumerate() {
        let node = k.nodes.first().map(|n| n.name.clone()).unwrap_or_default();
        let bad =
            |msg: String| RuntimeError::InvalidKernel { index, op_type: k.op_type.clone(), node: node.clone(), msg };
        let op = sinter_ir::ops::build(&k.op_type, &k.attrs, k.opset).map_err(|e| bad(e.to_string()))?;
        let inputs = k.inputs.iter().map(|i| i.map(|id| slot(meta, id)).transpose()).collect::<Result<Vec<_>>>()?;
        let outputs = k.outputs.iter().map(|&id| slot(meta, id)).collect::<Result<Vec<_>>>()?;
        // The op sees a packed weight under its logical shape.
        let mut logical = inputs.clone();
        let mut packed = None;
        if let Some(p) = &k.packing {
            let i = p.input as usize;
            let s = logical.get_mut(i).and_then(|s| s.as_mut()).ok_or_else(|| bad(format!("no packed input {i}")))?;
            let bytes = s.range().1;
            s.shape = p
                .shape
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad("packed weight shape too large".into()))?;
            packed = Some(exec::PackedInput { input: i, layout: p.layout, bytes });
        }

        // Re-infer from the operands: the kernels trust these shapes, the file does not get to.
        let mut facts = Vec::with_capacity(logical.len());
        for (i, s) in logical.iter().enumerate() {
            facts.push(match s {
                None => None,
                Some(s) => {
                    let mut f = Fact::new(s.dtype, s.shape.clone());
                    if op.const_inputs().contains(&i) {
                        if packed.as_ref().is_some_and(|p| p.input == i) {
                            return Err(bad(format!("input {i} is packed but the op needs its value")));
                        }
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
        }
        let weights = |i: usize| inputs.get(i)?.as_ref().and_then(|s| weight_bytes(plan, s));
        let req =
            Request { op: &op, op_type: &k.op_type, inputs: &logical, outputs: &outputs, packed, weights: &weights };
        let exec = backend::make_kernel(backend.factories(), &k.implementation, &req).map_err(bad)?;
        let implementation = k.implementation.clone();
        out.push(Prepared { exec, implementation, inputs, outputs, op_type: k.op_type.clone(), node });
    }
    Ok(out)
}
