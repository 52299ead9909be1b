//! The kernel factory table: each factory says which ops and operand dtype it handles
//! and either builds a kernel for a node or refuses it with a reason. The builder asks
//! the table once per node and records the chosen factory (or the reference
//! evaluator, with every refusal that sent the node there) in the plan; loading a plan
//! asks the recorded factory only.

pub(crate) use super::refusal::Refusal;
use super::refusal::{need, Accept, Why};
pub(crate) use super::request::Request;
use super::request::{gemm_panels, packed_bytes_match};
use super::{binary, chain, PackedInput};
use super::{conv, conv_transpose, dense, matmul, pooling, resize, rows, small, Exec};
use crate::pack::{PackedWeights, TacticChoice};
use sinter_ir::{DType, Tensor};

/// Builds a kernel for a node (at build time to check that it takes it, at load time
/// to run it).
pub(crate) type MakeFn = fn(&Request) -> Accept<Box<dyn Exec>>;
/// At build time: the node's weight input packed for the kernel (choosing a tactic),
/// `Ok(None)` when the kernel reads its weights as they are.
pub(crate) type PackFn = fn(&Request, &Tensor, TacticChoice) -> Accept<Option<PackedWeights>>;

/// A kernel implementation of a backend, as the table lists it.
pub struct Factory {
    /// Recorded in plans and shown by `sinter inspect` (`impl`).
    pub name: &'static str,
    /// The op types it handles.
    pub ops: &'static [&'static str],
    /// The dtype every operand must have (its precision); `None`: any (byte copies).
    pub dtype: Option<DType>,
    pub(crate) make: MakeFn,
    pub(crate) pack: Option<PackFn>,
}

/// The name recorded for nodes that run the op's own definition in `sinter-ir`.
pub const REFERENCE: &str = "reference";

impl Factory {
    /// Whether every operand has this factory's dtype.
    pub(crate) fn check_dtypes(&self, req: &Request) -> Accept<()> {
        let Some(want) = self.dtype else { return Ok(()) };
        let slots = req.inputs.iter().flatten().chain(req.outputs);
        match slots.map(|s| s.dtype).find(|&d| d != want) {
            None => Ok(()),
            Some(d) => Err(Refusal::new(format!("an operand is {d}; this kernel computes in {want}"))),
        }
    }

    /// The compute precision of this factory's kernel on `req`.
    pub(crate) fn precision(&self, req: &Request) -> DType {
        self.dtype.or_else(|| req.outputs.first().map(|s| s.dtype)).unwrap_or(DType::F32)
    }
}

/// The CPU backend's kernels, in the order they are tried.
pub(crate) static CPU_FACTORIES: &[Factory] = &[
    Factory {
        name: "cpu.dense",
        ops: &["Gemm", "FusedGemm", "MatMul", "FusedMatMul"],
        dtype: Some(DType::F32),
        make: make_dense,
        pack: Some(pack_dense),
    },
    Factory {
        name: "cpu.matmul",
        ops: &["MatMul", "FusedMatMul"],
        dtype: Some(DType::F32),
        make: |r| Ok(Box::new(matmul::MatMul::new(r.op.as_ref(), r.op_type, r.inputs, r.outputs)?)),
        pack: None,
    },
    Factory {
        name: "cpu.conv2d",
        ops: &["Conv", "FusedConv"],
        dtype: Some(DType::F32),
        make: conv::make,
        pack: Some(crate::pack::pack_conv),
    },
    Factory {
        name: "cpu.conv_transpose2d",
        ops: &["ConvTranspose", "FusedConvTranspose"],
        dtype: Some(DType::F32),
        make: make_conv_transpose,
        pack: Some(pack_conv_transpose),
    },
    Factory {
        name: "cpu.copy",
        ops: &["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"],
        dtype: None,
        make: |r| Ok(Box::new(small::ByteCopy::new(r.inputs, r.outputs)?)),
        pack: None,
    },
    Factory {
        name: "cpu.softmax_rows",
        ops: &["Softmax"],
        dtype: Some(DType::F32),
        make: |r| Ok(Box::new(rows::LastAxisSoftmax::new(r.op.as_ref(), r.inputs, r.outputs)?)),
        pack: None,
    },
    Factory {
        name: "cpu.layernorm_rows",
        ops: &["LayerNormalization"],
        dtype: Some(DType::F32),
        make: |r| Ok(Box::new(rows::RowLayerNorm::new(r.op.as_ref(), r.inputs, r.outputs)?)),
        pack: None,
    },
    Factory {
        name: "cpu.elementwise_chain",
        ops: &["FusedElementwise"],
        dtype: Some(DType::F32),
        make: |r| Ok(Box::new(chain::Chain::new(r.op.as_ref(), r.inputs, r.outputs)?)),
        pack: None,
    },
    Factory {
        name: "cpu.binary",
        ops: &["Add", "Sub", "Mul", "Div"],
        dtype: Some(DType::F32),
        make: |r| Ok(Box::new(binary::FastBinary::new(r.op.as_ref(), r.inputs, r.outputs)?)),
        pack: None,
    },
    Factory {
        name: "cpu.pool2d",
        ops: &["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"],
        dtype: Some(DType::F32),
        make: |r| Ok(Box::new(pooling::Pool2d::new(r.op.as_ref(), r.inputs, r.outputs)?)),
        pack: None,
    },
    Factory {
        name: "cpu.resize_nearest",
        ops: &["Resize", "Upsample"],
        // Its sizes input is i64: the kernel checks its data operands itself.
        dtype: None,
        make: |r| Ok(Box::new(resize::NearestResize::new(r.op.as_ref(), r.inputs, r.outputs, r.weights)?)),
        pack: None,
    },
];

/// The factory a plan names, among `table`.
pub(crate) fn find(table: &'static [Factory], name: &str) -> Option<&'static Factory> {
    table.iter().find(|f| f.name == name)
}

/// The weights of a packing kernel: the plan's packed input, packed now from the
/// plan's plain weights, or packed on every run when they are not constants.
fn weights_for(req: &Request, layout_ok: impl Fn(&PackedInput) -> Accept<()>) -> Accept<conv::Weights> {
    match req.packed {
        Some(p) => {
            need(p.input == 1, "only input 1 (the weights) is ever packed")?;
            layout_ok(&p)?;
            Ok(conv::Weights::Plan)
        }
        None => Ok(conv::Weights::Runtime),
    }
}

fn make_dense(r: &Request) -> Accept<Box<dyn Exec>> {
    let w = r.f32_weight().ok_or(Refusal::new("input 1 is not a weight (two activations run as cpu.matmul)"))??;
    let weights = weights_for(r, gemm_panels)?;
    let mut k = dense::Dense::new(r.op.as_ref(), r.op_type, r.inputs, r.outputs, weights)?;
    packed_bytes_match(r.packed, k.packed_len())?;
    if r.packed.is_none() {
        k.load_weights(w).why("packing the weights")?;
    }
    Ok(Box::new(k))
}

fn pack_dense(r: &Request, w: &Tensor, _: TacticChoice) -> Accept<Option<PackedWeights>> {
    let d = dense::Dense::new(r.op.as_ref(), r.op_type, r.inputs, r.outputs, conv::Weights::Runtime)?;
    let mut data = vec![0.0; d.packed_len()];
    d.pack(w.as_slice::<f32>().why("weights")?, &mut data).why("packing the weights")?;
    Ok(Some(PackedWeights::gemm(data)))
}

fn make_conv_transpose(r: &Request) -> Accept<Box<dyn Exec>> {
    let weights = weights_for(r, gemm_panels)?;
    let mut k = conv_transpose::ConvT2d::new(r.op.as_ref(), r.op_type, r.inputs, r.outputs, weights)?;
    packed_bytes_match(r.packed, k.packed_len())?;
    if let (None, Some(w)) = (r.packed, r.f32_weight()) {
        k.load_weights(w?).why("packing the weights")?;
    }
    Ok(Box::new(k))
}

fn pack_conv_transpose(r: &Request, w: &Tensor, _: TacticChoice) -> Accept<Option<PackedWeights>> {
    let ct = conv_transpose::ConvT2d::new(r.op.as_ref(), r.op_type, r.inputs, r.outputs, conv::Weights::Runtime)?;
    let mut data = vec![0.0; ct.packed_len()];
    ct.pack(w.as_slice::<f32>().why("weights")?, &mut data).why("packing the weights")?;
    Ok(Some(PackedWeights::gemm(data)))
}
