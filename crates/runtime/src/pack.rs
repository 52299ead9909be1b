//! Build-time weight packing: the builder asks which weights a kernel wants in its own
//! layout, so the plan stores them packed and loading does no work.

use crate::error::{Result, RuntimeError};
use crate::kernels::conv::{Conv2d, Weights};
use crate::kernels::conv_transpose::ConvT2d;
use crate::kernels::dense::Dense;
use crate::prepare::Slot;
use sinter_ir::{Attrs, DType, Tensor};
use sinter_plan::{Location, PackLayout};

/// A weight input packed for its kernel.
#[derive(Debug)]
pub struct PackedWeights {
    /// Which input of the op it replaces.
    pub input: usize,
    pub layout: PackLayout,
    pub data: Vec<f32>,
}

/// For an op whose kernel reads pre-packed weights (f32 `Conv` / `FusedConv` that run as
/// packed GEMM), the packed form of its weight `weight` (input 1); `None` for ops that
/// read their weights as they are. `inputs` and `outputs` are (dtype, shape) per operand.
pub fn pack_weights(
    op_type: &str,
    attrs: &Attrs,
    opset: i64,
    inputs: &[Option<(DType, Vec<usize>)>],
    outputs: &[(DType, Vec<usize>)],
    weight: &Tensor,
) -> Result<Option<PackedWeights>> {
    if !matches!(
        op_type,
        "Conv" | "FusedConv" | "ConvTranspose" | "FusedConvTranspose" | "Gemm" | "FusedGemm" | "MatMul" | "FusedMatMul"
    ) {
        return Ok(None);
    }
    let all_f32 = inputs.iter().flatten().chain(outputs).all(|(d, _)| *d == DType::F32);
    if !all_f32 || weight.dtype() != DType::F32 {
        return Ok(None);
    }
    let op = sinter_ir::ops::build(op_type, attrs, opset).map_err(|e| RuntimeError::InvalidPlan(e.to_string()))?;
    let slot = |(dtype, shape): &(DType, Vec<usize>)| Slot {
        loc: Location::Arena { offset: 0, bytes: 0 },
        dtype: *dtype,
        shape: shape.clone(),
    };
    let ins: Vec<Option<Slot>> = inputs.iter().map(|i| i.as_ref().map(slot)).collect();
    let outs: Vec<Slot> = outputs.iter().map(slot).collect();
    let w = weight.as_slice::<f32>().map_err(|e| RuntimeError::InvalidPlan(e.to_string()))?;
    let gemm = PackLayout::GemmPanels { mr: sinter_kernels::MR as u32 };
    if op_type.ends_with("Gemm") || op_type.ends_with("MatMul") {
        let Some(d) = Dense::new(op.as_ref(), op_type, &ins, &outs, Weights::Runtime) else {
            return Ok(None);
        };
        let mut data = vec![0.0; d.packed_len()];
        d.pack(w, &mut data).map_err(|e| RuntimeError::InvalidPlan(e.to_string()))?;
        return Ok(Some(PackedWeights { input: 1, layout: gemm, data }));
    }
    if op_type.ends_with("ConvTranspose") {
        let Some(ct) = ConvT2d::new(op.as_ref(), op_type, &ins, &outs, Weights::Runtime) else {
            return Ok(None);
        };
        let mut data = vec![0.0; ct.packed_len()];
        ct.pack(w, &mut data).map_err(|e| RuntimeError::InvalidPlan(e.to_string()))?;
        return Ok(Some(PackedWeights { input: 1, layout: gemm, data }));
    }
    let Some(conv) = Conv2d::new(op.as_ref(), op_type, &ins, &outs, Weights::Runtime) else {
        return Ok(None);
    };
    if conv.depthwise() {
        return Ok(None);
    }
    let mut data = vec![0.0; conv.packed_len()];
    conv.pack(w, &mut data).map_err(|e| RuntimeError::InvalidPlan(e.to_string()))?;
    Ok(Some(PackedWeights { input: 1, layout: gemm, data }))
}
