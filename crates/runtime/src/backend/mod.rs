//! Backends: where a plan's kernels run. A backend owns its kernel factory table (which
//! kernel takes which node, and why the others refuse), packs weights for its kernels
//! at build time, and turns a plan's schedule into ready-to-run kernels at load time.
//! The CPU backend is the only one today; a CUDA backend plugs in here behind a cargo
//! feature, with its own table, and the builder, plan, CLI and Lite API stay as they are.

mod cpu;

pub use cpu::Cpu;

use crate::error::{Result, RuntimeError};
use crate::exec::registry::{self, Factory, REFERENCE};
use crate::exec::request::Request;
use crate::exec::{Exec, Generic};
use crate::pack::{PackedWeights, TacticChoice};
use crate::prepare::Slot;
use sinter_ir::{Attrs, DType, Tensor};
use sinter_plan::{BackendKind, Location, Target};
use std::sync::Arc;

/// One node as the builder hands it to a backend: its op, operand types and shapes,
/// and the values of its constant inputs.
pub struct NodeSpec<'a> {
    pub op_type: &'a str,
    pub attrs: &'a Attrs,
    pub opset: i64,
    /// `(dtype, shape)` per input; `None` for an omitted optional input.
    pub inputs: &'a [Option<(DType, Vec<usize>)>],
    pub outputs: &'a [(DType, Vec<usize>)],
    /// The value of each input that is a constant (weights), by input index.
    pub constants: &'a [Option<Arc<Tensor>>],
}

/// The kernel a backend chose for one node at build time.
#[derive(Debug)]
pub struct KernelChoice {
    /// The factory's name (`cpu.conv2d`, …), or `reference`.
    pub implementation: &'static str,
    /// The element type the kernel computes in.
    pub precision: DType,
    /// Every factory that handles the node's op type but refused this node, with why.
    pub refusals: Vec<(&'static str, String)>,
    /// The weight input packed for the kernel, when it reads its weights packed.
    pub packed: Option<PackedWeights>,
}

impl KernelChoice {
    /// Why the node runs the reference evaluator although fast kernels exist for its
    /// op type (`None` when a fast kernel took it, or none exists for the op).
    pub fn fallback_reason(&self) -> Option<String> {
        if self.implementation != REFERENCE || self.refusals.is_empty() {
            return None;
        }
        Some(self.refusals.iter().map(|(f, why)| format!("{f}: {why}")).collect::<Vec<_>>().join("; "))
    }
}

/// A place kernels run: the CPU, or (behind a feature, later) a CUDA device.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// The kernel implementations, in the order they are tried.
    fn factories(&self) -> &'static [Factory];

    /// Build time: the first factory that takes `node` (packing its weights for the
    /// kernel, timing tactics per `tactics`), or the reference evaluator with every
    /// refusal on record.
    fn choose_kernel(&self, node: &NodeSpec, tactics: TacticChoice) -> Result<KernelChoice> {
        choose(self.factories(), node, tactics)
    }
}

/// The backend that runs plans for `target` in this build of the runtime.
pub fn for_target(target: Target) -> Result<&'static dyn Backend> {
    static CPU: Cpu = Cpu;
    match target.backend() {
        BackendKind::Cpu => Ok(&CPU),
        kind => Err(RuntimeError::NoBackend { target: target.name(), backend: kind.name() }),
    }
}

fn choose(table: &'static [Factory], node: &NodeSpec, tactics: TacticChoice) -> Result<KernelChoice> {
    let op = sinter_ir::ops::build(node.op_type, node.attrs, node.opset)
        .map_err(|e| RuntimeError::InvalidPlan(format!("{} node: {e}", node.op_type)))?;
    let slot = |(dtype, shape): &(DType, Vec<usize>)| Slot {
        loc: Location::Arena { offset: 0, bytes: 0 },
        dtype: *dtype,
        shape: shape.clone(),
    };
    let inputs: Vec<Option<Slot>> = node.inputs.iter().map(|i| i.as_ref().map(slot)).collect();
    let outputs: Vec<Slot> = node.outputs.iter().map(slot).collect();
    let weights = |i: usize| node.constants.get(i)?.as_ref().map(|t| t.bytes());
    let req =
        Request { op: &op, op_type: node.op_type, inputs: &inputs, outputs: &outputs, packed: None, weights: &weights };
    let mut refusals = Vec::new();
    for f in table.iter().filter(|f| f.ops.contains(&node.op_type)) {
        let taken =
            f.check_dtypes(&req).and_then(|()| match (f.pack, node.constants.get(1).and_then(Option::as_ref)) {
                (Some(pack), Some(w)) => pack(&req, w, tactics),
                _ => (f.make)(&req).map(|_| None),
            });
        match taken {
            Ok(packed) => {
                return Ok(KernelChoice { implementation: f.name, precision: f.precision(&req), refusals, packed })
            }
            Err(why) => refusals.push((f.name, why.to_string())),
        }
    }
    let precision = outputs.first().map_or(DType::F32, |s| s.dtype);
    Ok(KernelChoice { implementation: REFERENCE, precision, refusals, packed: None })
}

/// Load time: the kernel the plan names for one node, from `table`.
pub(crate) fn make_kernel(
    table: &'static [Factory],
    implementation: &str,
    req: &Request,
) -> std::result::Result<Box<dyn Exec>, String> {
    if implementation == REFERENCE {
        if req.packed.is_some() {
            return Err("the reference evaluator reads no packed weights".into());
        }
        return Ok(Box::new(Generic(req.op.clone())));
    }
    let Some(f) = registry::find(table, implementation) else {
        let known: Vec<&str> = table.iter().map(|f| f.name).collect();
        return Err(format!("unknown kernel '{implementation}' (this runtime has {REFERENCE}, {})", known.join(", ")));
    };
    if !f.ops.contains(&req.op_type) {
        return Err(format!("kernel '{implementation}' does not run {}", req.op_type));
    }
    f.check_dtypes(req)
        .and_then(|()| (f.make)(req))
        .map_err(|why| format!("kernel '{implementation}' refuses it: {why}"))
}
