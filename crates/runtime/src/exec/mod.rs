//! Kernel selection: a fast path on `sinter-kernels` where one exists (convolutions,
//! ConvTranspose and fully connected layers as packed GEMM / Winograd / direct depthwise,
//! pooling, nearest Resize, simple broadcast arithmetic, fused elementwise chains, Softmax,
//! LayerNormalization, reshapes), otherwise the op's own straightforward evaluation in `sinter-ir`.

mod binary;
mod chain;
pub(crate) mod conv;
pub(crate) mod conv_transpose;
pub(crate) mod dense;
mod matmul;
mod pooling;
mod resize;
mod rows;
mod small;

use crate::prepare::Slot;
use sinter_ir::ops::fused::{BaseKind, Fused, Step};
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};
use sinter_kernels::winograd::WinogradTile;
use sinter_kernels::{Isa, Scratch, ThreadPool};
use sinter_plan::PackLayout;
use std::sync::Arc;

/// What a kernel runs with: the CPU tier, the context's thread pool, and the context's
/// workspace (at least [`Exec::workspace`]`.total(pool.threads())` floats, 64-byte
/// aligned, contents unspecified).
pub(crate) struct RunCtx<'a> {
    pub isa: Isa,
    pub pool: &'a ThreadPool,
    pub ws: &'a mut [f32],
}

impl RunCtx<'_> {
    /// The tier and pool (with an empty workspace) beside the workspace itself, so a
    /// kernel can hand both to helpers.
    pub fn split(&mut self) -> (RunCtx<'_>, &mut [f32]) {
        (RunCtx { isa: self.isa, pool: self.pool, ws: &mut [] }, &mut *self.ws)
    }
}

/// A ready-to-run kernel.
pub(crate) trait Exec: Send + Sync {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()>;

    /// The scratch (floats) its runs need from the context's workspace, fixed when it
    /// is prepared and the same for every thread count and tier; none by default.
    fn workspace(&self) -> Scratch {
        Scratch::NONE
    }
}

/// The first `floats` (rounded up to whole cache lines) of `ws`, and the rest: one part
/// of a kernel's workspace, laid out as its `workspace()` adds them up.
pub(crate) fn take_ws<'w>(name: &str, ws: &'w mut [f32], floats: usize) -> Result<(&'w mut [f32], &'w mut [f32])> {
    let len = sinter_kernels::scratch::round_floats(floats);
    if ws.len() < len {
        return Err(IrError::Data(format!("{name}: workspace holds {} floats, needs {len}", ws.len())));
    }
    let (part, rest) = ws.split_at_mut(len);
    Ok((&mut part[..floats], rest))
}

/// Evaluates through the op's definition in `sinter-ir`.
struct Generic(Arc<dyn Op>);

impl Exec for Generic {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], _: &mut RunCtx) -> Result<()> {
        self.0.eval(inputs, outputs)
    }
}

/// A kernel input the builder stored pre-packed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PackedInput {
    pub input: usize,
    pub layout: PackLayout,
    /// Length of the packed data.
    pub bytes: u64,
}

/// For `op_type` = `kind`'s base op (e.g. `Conv`) or its fused form (`FusedConv`): the
/// base op as `T`, the fused epilogue steps (none for the plain op), and the op type.
pub(crate) fn base_op<'a, T: 'static>(
    op: &'a dyn Op,
    op_type: &str,
    kind: BaseKind,
) -> Option<(&'a T, Vec<Step>, &'static str)> {
    if op_type == kind.base_op_type() {
        return Some((op.as_any().downcast_ref::<T>()?, Vec::new(), kind.base_op_type()));
    }
    let f = op.as_any().downcast_ref::<Fused>().filter(|f| op_type == kind.fused_op_type() && f.kind == kind)?;
    Some((f.base.as_any().downcast_ref::<T>()?, f.epilogue.steps.clone(), kind.fused_op_type()))
}

/// A weight's bytes as f32 (weights are 64-byte aligned in every plan).
fn f32_weights(bytes: &[u8]) -> Result<&[f32]> {
    View { dtype: DType::F32, shape: &[], data: bytes }.as_slice::<f32>()
}

/// The kernel for one op, given its operands (packed weights under their logical
/// shape). `weights(i)` gives the bytes of input `i` when it is a weight.
pub(crate) fn select<'a>(
    op: Arc<dyn Op>,
    op_type: &str,
    inputs: &[Option<Slot>],
    outputs: &[Slot],
    packed: Option<PackedInput>,
    weights: &dyn Fn(usize) -> Option<&'a [u8]>,
) -> Result<Box<dyn Exec>> {
    if let Some(p) = packed {
        return select_packed(op.as_ref(), op_type, inputs, outputs, p);
    }
    let all_f32 = inputs.iter().flatten().chain(outputs).all(|s| s.dtype == DType::F32);
    if all_f32 && matches!(op_type, "Gemm" | "FusedGemm" | "MatMul" | "FusedMatMul") {
        if let Some(bytes) = weights(1) {
            if let Some(mut k) = dense::Dense::new(op.as_ref(), op_type, inputs, outputs, conv::Weights::Runtime) {
                k.load_weights(f32_weights(bytes)?)?;
                return Ok(Box::new(k));
            }
        }
    }
    if all_f32 && matches!(op_type, "MatMul" | "FusedMatMul") {
        if let Some(k) = matmul::MatMul::new(op.as_ref(), op_type, inputs, outputs) {
            return Ok(Box::new(k));
        }
    }
    if all_f32 && (op_type == "Conv" || op_type == "FusedConv") {
        if let Some(mut k) = conv::Conv2d::new(op.as_ref(), op_type, inputs, outputs, conv::Weights::Runtime) {
            if let Some(bytes) = weights(1) {
                k.load_weights(f32_weights(bytes)?)?;
            }
            return Ok(Box::new(k));
        }
    }
    if all_f32 && (op_type == "ConvTranspose" || op_type == "FusedConvTranspose") {
        let k = conv_transpose::ConvT2d::new(op.as_ref(), op_type, inputs, outputs, conv::Weights::Runtime);
        if let Some(mut k) = k {
            if let Some(bytes) = weights(1) {
                k.load_weights(f32_weights(bytes)?)?;
            }
            return Ok(Box::new(k));
        }
    }
    if matches!(op_type, "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity") {
        if let Some(k) = small::ByteCopy::new(inputs, outputs) {
            return Ok(Box::new(k));
        }
    }
    if op_type == "Softmax" {
        if let Some(k) = rows::LastAxisSoftmax::new(op.as_ref(), inputs, outputs) {
            return Ok(Box::new(k));
        }
    }
    if op_type == "LayerNormalization" {
        if let Some(k) = rows::RowLayerNorm::new(op.as_ref(), inputs, outputs) {
            return Ok(Box::new(k));
        }
    }
    if op_type == "FusedElementwise" {
        if let Some(k) = chain::Chain::new(op.as_ref(), inputs, outputs) {
            return Ok(Box::new(k));
        }
    }
    if matches!(op_type, "Add" | "Sub" | "Mul" | "Div") {
        if let Some(k) = binary::FastBinary::new(op.as_ref(), inputs, outputs) {
            return Ok(Box::new(k));
        }
    }
    if matches!(op_type, "MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool") {
        if let Some(k) = pooling::Pool2d::new(op.as_ref(), inputs, outputs) {
            return Ok(Box::new(k));
        }
    }
    if matches!(op_type, "Resize" | "Upsample") {
        if let Some(k) = resize::NearestResize::new(op.as_ref(), inputs, outputs, weights) {
            return Ok(Box::new(k));
        }
    }
    Ok(Box::new(Generic(op)))
}

/// The kernel for weights packed at build time: it must be the one they were packed for.
fn select_packed(
    op: &dyn Op,
    op_type: &str,
    inputs: &[Option<Slot>],
    outputs: &[Slot],
    p: PackedInput,
) -> Result<Box<dyn Exec>> {
    let refuse = |why: &str| Err(IrError::Unsupported(format!("weights packed as {:?}: {why}", p.layout)));
    let all_f32 = inputs.iter().flatten().chain(outputs).all(|s| s.dtype == DType::F32);
    if !all_f32 || p.input != 1 {
        return refuse("only the f32 weights (input 1) of convolutions are packed");
    }
    let weights = match p.layout {
        PackLayout::GemmPanels { mr } if mr as usize == sinter_kernels::MR => conv::Weights::Plan,
        PackLayout::GemmPanels { mr } => {
            return refuse(&format!("panels of {mr} rows, this runtime uses {}", sinter_kernels::MR))
        }
        PackLayout::Winograd { mr, .. } if mr as usize == sinter_kernels::MR => conv::Weights::Plan,
        PackLayout::Winograd { mr, .. } => {
            return refuse(&format!("panels of {mr} rows, this runtime uses {}", sinter_kernels::MR))
        }
    };
    let gemm_only = matches!(p.layout, PackLayout::GemmPanels { .. });
    if !gemm_only && !matches!(op_type, "Conv" | "FusedConv") {
        return refuse("only convolutions run by Winograd");
    }
    if matches!(op_type, "Gemm" | "FusedGemm" | "MatMul" | "FusedMatMul") {
        let Some(k) = dense::Dense::new(op, op_type, inputs, outputs, weights) else {
            return refuse("this matrix product does not run as a packed GEMM");
        };
        if p.bytes != (k.packed_len() as u64).saturating_mul(4) {
            return refuse(&format!("{} bytes do not match the matrix product ({} floats)", p.bytes, k.packed_len()));
        }
        return Ok(Box::new(k));
    }
    if matches!(op_type, "ConvTranspose" | "FusedConvTranspose") {
        let Some(k) = conv_transpose::ConvT2d::new(op, op_type, inputs, outputs, weights) else {
            return refuse("this transposed convolution does not run as a packed GEMM");
        };
        if p.bytes != (k.packed_len() as u64).saturating_mul(4) {
            return refuse(&format!("{} bytes do not match the convolution ({} floats)", p.bytes, k.packed_len()));
        }
        return Ok(Box::new(k));
    }
    let k = conv::Conv2d::new(op, op_type, inputs, outputs, weights);
    let k = match (k, p.layout) {
        (Some(k), PackLayout::Winograd { tile: 2, .. }) => k.with_winograd(WinogradTile::F2),
        (Some(k), PackLayout::Winograd { tile: 4, .. }) => k.with_winograd(WinogradTile::F4),
        (Some(_), PackLayout::Winograd { tile, .. }) => return refuse(&format!("no Winograd F({tile},3) kernel")),
        (k, _) => k,
    };
    let Some(k) = k else {
        return refuse("this convolution does not run with that tactic");
    };
    if k.depthwise() || p.bytes != (k.packed_len() as u64).saturating_mul(4) {
        return refuse(&format!("{} bytes do not match the convolution ({} floats)", p.bytes, k.packed_len()));
    }
    Ok(Box::new(k))
}
