//! The plan's schedule: what the runtime needs besides the weight bytes.
//! Postcard encodes integers as varints of their fixed-width values, independent of the
//! host's endianness and pointer size, so a plan built on one machine reads the same on any other.

use serde::{Deserialize, Serialize};
use sinter_ir::{Attrs, DType};

/// Index into [`PlanMeta::tensors`].
pub type TensorId = u32;

/// Where a tensor's bytes live at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Location {
    /// In the execution context's activation arena.
    Arena { offset: u64, bytes: u64 },
    /// In the plan's weight blob (read-only, shared by all contexts).
    Weights { offset: u64, bytes: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorDesc {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub location: Location,
}

/// The ONNX node a kernel was built from (for `sinter inspect` and error messages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceNode {
    pub name: String,
    pub op_type: String,
}

/// One step of the schedule: an op (rebuilt and validated from its type and attributes
/// at load time) reading and writing tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelDesc {
    pub op_type: String,
    pub opset: i64,
    pub attrs: Attrs,
    /// `None` is an omitted optional input.
    pub inputs: Vec<Option<TensorId>>,
    pub outputs: Vec<TensorId>,
    pub nodes: Vec<SourceNode>,
    /// Set when one input holds weights pre-packed for the kernel chosen at build time.
    pub packing: Option<Packing>,
    /// The backend's kernel implementation chosen at build time (`cpu.conv2d`, …), or
    /// `reference`: the op's own definition in `sinter-ir`. Loading runs this one.
    pub implementation: String,
    /// The element type the kernel computes in: a property of each kernel, so plans
    /// mix precisions freely.
    pub precision: DType,
    /// Why the backend's fast kernels refused this node (each factory that handles its
    /// op type, with its reason), when it runs `reference` instead.
    pub fallback_reason: Option<String>,
}

/// A weight input stored in a kernel's own layout instead of its logical one. The
/// runtime validates the op against `shape` and the packed bytes against `layout`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Packing {
    /// Which input of the kernel is packed.
    pub input: u32,
    /// The weight's logical shape, as the op defines it.
    pub shape: Vec<u64>,
    pub layout: PackLayout,
}

/// How packed weights are laid out; it also names the tactic the builder chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackLayout {
    /// One GEMM A matrix per group (`M_g × C_g·kh·kw`) in panels of `mr` rows
    /// (`sinter_kernels::pack_a`): convolution as packed GEMM.
    GemmPanels { mr: u32 },
    /// Winograd F(`tile`×`tile`, 3×3): the transformed weights as `(tile + 2)²` GEMM A
    /// matrices (`M × C`) in panels of `mr` rows.
    Winograd { tile: u32, mr: u32 },
}

impl PackLayout {
    /// A short name for `sinter inspect`.
    pub fn tactic(&self) -> String {
        match self {
            PackLayout::GemmPanels { .. } => "gemm".into(),
            PackLayout::Winograd { tile, .. } => format!("winograd F({tile},3)"),
        }
    }
}

/// A named graph input or output bound to a tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub name: String,
    pub tensor: TensorId,
}

/// One rewrite the optimizer applied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppliedRewrite {
    pub pass: String,
    pub rule: String,
    /// Nodes removed or merged.
    pub nodes: Vec<String>,
    /// Nodes created.
    pub created: Vec<String>,
}

/// A candidate an optimizer rule refused, with the reason.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RefusedRewrite {
    pub pass: String,
    pub rule: String,
    pub node: String,
    pub reason: String,
}

/// What the optimizer did to build this plan (`sinter inspect` shows it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OptimizerLog {
    pub applied: Vec<AppliedRewrite>,
    pub refused: Vec<RefusedRewrite>,
}

/// A node of the source model's graph, kept so `sinter inspect --dot` can draw the
/// graph before optimization (no weights, a few bytes per node).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    pub name: String,
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// Everything in a plan except the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanMeta {
    /// Name of the source model (graph name or file stem).
    pub model_name: String,
    /// Number of nodes in the source ONNX model, for summaries.
    pub source_nodes: u64,
    pub inputs: Vec<Binding>,
    pub outputs: Vec<Binding>,
    pub tensors: Vec<TensorDesc>,
    pub kernels: Vec<KernelDesc>,
    /// Size of the activation arena one execution context allocates.
    pub arena_bytes: u64,
    pub optimizer: OptimizerLog,
    /// The source model's graph (model nodes after import, without `Constant` nodes).
    pub source_graph: Vec<GraphNode>,
}

impl Location {
    /// Byte offset within the arena or the weight blob.
    pub fn offset(&self) -> u64 {
        match *self {
            Location::Arena { offset, .. } | Location::Weights { offset, .. } => offset,
        }
    }

    /// Length in bytes.
    pub fn bytes(&self) -> u64 {
        match *self {
            Location::Arena { bytes, .. } | Location::Weights { bytes, .. } => bytes,
        }
    }

    pub fn is_arena(&self) -> bool {
        matches!(self, Location::Arena { .. })
    }

    pub fn is_weights(&self) -> bool {
        matches!(self, Location::Weights { .. })
    }
}

impl TensorDesc {
    /// Number of elements, or `None` if it overflows `u64` (shapes come from untrusted files).
    pub fn numel(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// Size of the dense data in bytes, or `None` on overflow.
    pub fn byte_size(&self) -> Option<u64> {
        self.numel()?.checked_mul(self.dtype.size() as u64)
    }
}

impl PlanMeta {
    pub fn tensor(&self, id: TensorId) -> Option<&TensorDesc> {
        self.tensors.get(usize::try_from(id).ok()?)
    }

    /// The graph input bound under `name`.
    pub fn input(&self, name: &str) -> Option<&Binding> {
        self.inputs.iter().find(|b| b.name == name)
    }

    /// The graph output bound under `name`.
    pub fn output(&self, name: &str) -> Option<&Binding> {
        self.outputs.iter().find(|b| b.name == name)
    }

    /// The id of the first tensor called `name`.
    pub fn tensor_id(&self, name: &str) -> Option<TensorId> {
        let i = self.tensors.iter().position(|t| t.name == name)?;
        TensorId::try_from(i).ok()
    }
}
