//! Simplifications run before fusion: constant folding (its own pass, "fold"), dead
//! code, reshape chains, common subexpressions, and folding per-channel affine ops into
//! the weights before them (BatchNormalization into a Conv or Gemm, Mul and Add into a Conv).

mod affine;
mod batchnorm;
mod cse;
mod fold;
mod reshape;

pub use affine::FoldMulAddIntoConv;
pub use batchnorm::{BatchNormToScaleShift, FoldBatchNorm};
pub use cse::Cse;
pub use fold::{DeadNodes, FoldConstants};
pub use reshape::ReshapeChain;

use crate::{Ctx, Outcome, Patch};
use sinter_ir::{DType, Result, Tensor};
use std::sync::Arc;

fn refuse(reason: impl Into<String>) -> Result<Outcome> {
    Ok(Outcome::Refused(reason.into()))
}

/// Why `value` cannot be folded into its reader `reader`, or `None` when it can
/// (only `reader` reads it and it is not a graph output).
fn other_uses(ctx: &Ctx, value: &str, reader: usize) -> Option<String> {
    if ctx.is_graph_output(value) {
        return Some(format!("'{value}' is a graph output"));
    }
    let others: Vec<String> =
        ctx.consumers(value).iter().filter(|&&c| c != reader).map(|&c| format!("'{}'", ctx.node(c).name)).collect();
    if others.is_empty() {
        None
    } else {
        Some(format!("'{value}' is also read by node {}", others.join(", ")))
    }
}

/// The values of constant `value` as f32, or why not.
fn f32_constant<'a>(ctx: &Ctx<'a>, value: &str, what: &str) -> std::result::Result<&'a Tensor, String> {
    let t = ctx.constant(value).ok_or_else(|| format!("{what} '{value}' is not a constant"))?;
    if t.dtype() != DType::F32 {
        return Err(format!("{what} '{value}' is {}; only f32 is folded", t.dtype()));
    }
    Ok(t)
}

/// Removes node `i`, which passes its input `x` through unchanged as `y`. When `y` is
/// a graph output, `x`'s producer takes the name `y` instead, which needs `x` to be
/// produced by a node and not itself a graph output.
fn bypass(ctx: &Ctx, i: usize, x: &str, y: &str) -> Result<Outcome> {
    if ctx.is_graph_output(y) && (ctx.producer(x).is_none() || ctx.is_graph_output(x)) {
        return refuse(format!("its output '{y}' is a graph output that '{x}' cannot be renamed to"));
    }
    Ok(Outcome::Rewrite(Patch { remove: vec![i], rewire: vec![(y.to_string(), x.to_string())], ..Default::default() }))
}

/// A new f32 initializer named after `base`.
fn f32_init(ctx: &Ctx, base: &str, shape: &[usize], data: Vec<f32>) -> Result<(String, Arc<Tensor>)> {
    Ok((ctx.fresh_name(base), Arc::new(Tensor::from_vec(shape, data)?)))
}
