//! One node as a kernel factory sees it, and the checks every packing kernel makes of a
//! plan's packed weights.

use super::refusal::{Accept, Refusal, Why};
use super::PackedInput;
use crate::prepare::Slot;
use sinter_ir::ops::Op;
use sinter_ir::{DType, View};
use std::sync::Arc;

/// One node as a factory sees it: the op rebuilt from its attributes, its operands
/// (a packed weight under its logical shape), and the bytes of its weight inputs.
pub(crate) struct Request<'a> {
    pub op: &'a Arc<dyn Op>,
    pub op_type: &'a str,
    pub inputs: &'a [Option<Slot>],
    pub outputs: &'a [Slot],
    /// Set when the plan stores an input pre-packed for this factory's kernel.
    pub packed: Option<PackedInput>,
    /// The bytes of input `i` when it is a weight (a constant).
    pub weights: &'a dyn Fn(usize) -> Option<&'a [u8]>,
}

impl Request<'_> {
    /// Input 1 as f32 weights, if it is a weight.
    pub(crate) fn f32_weight(&self) -> Option<Accept<&[f32]>> {
        let bytes = (self.weights)(1)?;
        Some(View { dtype: DType::F32, shape: &[], data: bytes }.as_slice::<f32>().why("weights are not aligned f32"))
    }
}

/// Checks a plan's packed panels against this runtime's panel height.
pub(crate) fn gemm_panels(p: &PackedInput) -> Accept<()> {
    match p.layout {
        sinter_plan::PackLayout::GemmPanels { mr } if mr as usize == sinter_kernels::MR => Ok(()),
        layout => Err(Refusal::new(format!(
            "weights packed as {layout:?}; this kernel reads GEMM panels of {} rows",
            sinter_kernels::MR
        ))),
    }
}

/// The packed length a plan gives must be the kernel's.
pub(crate) fn packed_bytes_match(p: Option<PackedInput>, floats: usize) -> Accept<()> {
    match p {
        Some(p) if p.bytes != (floats as u64).saturating_mul(4) => {
            Err(Refusal::new(format!("{} packed bytes do not match the kernel's {floats} floats", p.bytes)))
        }
        _ => Ok(()),
    }
}
