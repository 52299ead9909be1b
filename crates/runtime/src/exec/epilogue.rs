//! What every fused kernel shares about its epilogue: the fused op's steps converted
//! once into `sinter-kernels`' [`PostOps`] (with each extra input's layout checked),
//! and the extra inputs read from a run's operands.

use super::refusal::{need, Accept, Why};
use crate::prepare::Slot;
use sinter_ir::ops::fused as ir;
use sinter_ir::{DType, IrError, Result, View};
use sinter_kernels::epilogue::{BinOp, Operand, PostOps, Step};

/// Most epilogue inputs a fused kernel takes (they are held in a fixed array, so that
/// running allocates nothing).
pub(crate) const MAX_EPILOGUE_INPUTS: usize = 8;

/// The kernels' form of an IR step.
fn step(s: ir::Step) -> Step {
    let op = |op| match op {
        ir::BinOp::Add => BinOp::Add,
        ir::BinOp::Sub => BinOp::Sub,
        ir::BinOp::Mul => BinOp::Mul,
        ir::BinOp::Div => BinOp::Div,
    };
    match s {
        ir::Step::Relu => Step::Relu,
        ir::Step::Clip { min, max } => Step::Clip { min, max },
        ir::Step::LeakyRelu { alpha } => Step::LeakyRelu { alpha },
        ir::Step::Sigmoid => Step::Sigmoid,
        ir::Step::HardSigmoid { alpha, beta } => Step::HardSigmoid { alpha, beta },
        ir::Step::HardSwish => Step::HardSwish,
        ir::Step::Silu => Step::Silu,
        ir::Step::GeluErf => Step::GeluErf,
        ir::Step::GeluTanh => Step::GeluTanh,
        ir::Step::Tanh => Step::Tanh,
        ir::Step::Binary { op: o, swapped } => Step::Binary { op: op(o), swapped },
    }
}

/// The epilogue of a fused op with `steps`, whose extra inputs `extras` (one per binary
/// step, f32, at most [`MAX_EPILOGUE_INPUTS`]) broadcast onto an output of shape `dims`
/// (rank 4), or why they do not.
pub(crate) fn post_ops(steps: &[ir::Step], extras: &[Option<Slot>], dims: &[usize; 4]) -> Accept<PostOps> {
    need(extras.len() == steps.iter().filter(|s| s.is_binary()).count(), "one epilogue input per binary step")?;
    need(extras.len() <= MAX_EPILOGUE_INPUTS, "more than 8 epilogue inputs")?;
    let operands = extras
        .iter()
        .map(|e| {
            let e = e.as_ref().filter(|e| e.dtype == DType::F32).why("an epilogue input is missing or not f32")?;
            Operand::broadcast(&e.shape, dims)
                .why("an epilogue input does not broadcast onto the output as (N, C, H, W)")
        })
        .collect::<Accept<Vec<_>>>()?;
    PostOps::new(steps.iter().copied().map(step).collect(), operands).why("one epilogue input per binary step")
}

/// `shape` (rank at most 4) left-padded with 1s to rank 4.
pub(crate) fn dims4(shape: &[usize]) -> Accept<[usize; 4]> {
    let mut dims = [1usize; 4];
    let tail = 4usize.checked_sub(shape.len()).and_then(|s| dims.get_mut(s..)).why("the output has rank above 4")?;
    tail.copy_from_slice(shape);
    Ok(dims)
}

/// The f32 data of a fused op's epilogue inputs, inputs `first..` of the op, each
/// checked against its operand's size, into `buf`; returns how many there are.
pub(crate) fn epilogue_inputs<'a>(
    name: &str,
    inputs: &[Option<View<'a>>],
    first: usize,
    post: &PostOps,
    buf: &mut [&'a [f32]; MAX_EPILOGUE_INPUTS],
) -> Result<usize> {
    let operands = post.operands();
    if operands.len() > buf.len() {
        return Err(IrError::Unsupported(format!("{name}: more than {MAX_EPILOGUE_INPUTS} epilogue inputs")));
    }
    for (k, o) in operands.iter().enumerate() {
        let index = first + k;
        let v = inputs.get(index).copied().flatten().ok_or_else(|| IrError::MissingInput { op: name.into(), index })?;
        let e = v.as_slice::<f32>()?;
        if e.len() != o.numel {
            return Err(IrError::Data(format!(
                "{name}: epilogue input {k} holds {} floats, expected {}",
                e.len(),
                o.numel
            )));
        }
        buf[k] = e;
    }
    Ok(operands.len())
}
