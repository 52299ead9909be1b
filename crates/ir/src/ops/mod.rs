//! Operators with ONNX semantics. Each op family lives in its own module and exports
//! a table of [`OpSpec`]s; [`build`] looks an op type up and parses its attributes.

use crate::{Attrs, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

pub mod util;

pub mod elementwise;
pub mod fused;
pub mod nn;
pub mod reduce;
pub mod shape_ops;

/// An operator: typed parameters parsed from attributes, shape inference and a
/// straightforward evaluation that defines the op's meaning.
pub trait Op: fmt::Debug + Send + Sync + Any {
    /// Output dtypes and shapes from the inputs' facts (`None` for an omitted optional input).
    /// Inputs listed in [`Op::const_inputs`] carry their value.
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>>;

    /// Computes the outputs into buffers preallocated with the inferred dtypes and shapes.
    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()>;

    /// Indices of inputs whose values must be known at build time (shapes, axes, pads…).
    fn const_inputs(&self) -> &[usize] {
        &[]
    }

    /// False for ops whose outputs must not be folded at build time (random generators).
    fn is_deterministic(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn Any;
}

/// Builds an op from a node's attributes. `opset` is the default-domain opset version.
pub type Ctor = fn(&Attrs, i64) -> Result<Arc<dyn Op>>;

/// One supported op type.
pub struct OpSpec {
    pub op_type: &'static str,
    pub build: Ctor,
}

const TABLES: &[&[OpSpec]] = &[elementwise::OPS, fused::OPS, nn::OPS, reduce::OPS, shape_ops::OPS];

/// The spec of an op type, if Sinter supports it.
pub fn lookup(op_type: &str) -> Option<&'static OpSpec> {
    TABLES.iter().flat_map(|t| t.iter()).find(|s| s.op_type == op_type)
}

/// Every supported op type, sorted.
pub fn supported_ops() -> Vec<&'static str> {
    let mut v: Vec<_> = TABLES.iter().flat_map(|t| t.iter()).map(|s| s.op_type).collect();
    v.sort_unstable();
    v
}

/// Builds the op for `op_type` from its attributes.
pub fn build(op_type: &str, attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    let spec = lookup(op_type).ok_or_else(|| IrError::Unsupported(format!("op type {op_type}")))?;
    (spec.build)(attrs, opset)
}
