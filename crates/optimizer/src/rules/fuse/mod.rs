//! Vertical fusion: elementwise work following a convolution or matrix product is
//! folded into its epilogue (`epilogue_activation`, `epilogue_add`, `matmul_bias`),
//! decomposed activations and LayerNormalization written out op by op are recognized
//! (the pattern rules), and remaining elementwise chains become one `FusedElementwise`.
//!
//! The pattern rules run in their own pass before the others, so that
//! `elementwise_chain` cannot swallow part of a pattern first.

mod chain;
mod epilogue;
mod patterns;

pub use chain::ElementwiseChain;
pub use epilogue::{EpilogueActivation, EpilogueAdd, MatMulBias};
pub use patterns::{GeluErfPattern, GeluTanhPattern, HardSwishPattern, LayerNormPattern, SiluPattern};

use crate::{Ctx, Pass, Rule};
use sinter_ir::ops::elementwise::{Clip, ClipBounds, Unary, UnaryKind};
use sinter_ir::ops::fused::Step;
use sinter_ir::{DType, Fact, Node};

/// The fusion passes, run after "simplify": "fuse_patterns", then "fuse".
pub fn passes() -> Vec<Pass> {
    vec![Pass { name: "fuse_patterns", rules: pattern_rules() }, Pass { name: "fuse", rules: fusion_rules() }]
}

/// The pattern rules (pass "fuse_patterns").
pub fn pattern_rules() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(HardSwishPattern),
        Box::new(SiluPattern),
        Box::new(GeluErfPattern),
        Box::new(GeluTanhPattern),
        Box::new(LayerNormPattern),
    ]
}

/// The epilogue and chain rules (pass "fuse"). `matmul_bias` comes first so that a
/// MatMul's bias becomes a bias rather than an epilogue step.
pub fn fusion_rules() -> Vec<Box<dyn Rule>> {
    vec![Box::new(MatMulBias), Box::new(EpilogueActivation), Box::new(EpilogueAdd), Box::new(ElementwiseChain)]
}

/// The value of a one-element f32 constant.
fn scalar(ctx: &Ctx, v: &str) -> Option<f32> {
    let t = ctx.constant(v)?;
    if t.dtype() != DType::F32 || t.len() != 1 {
        return None;
    }
    t.as_slice::<f32>().ok()?.first().copied()
}

/// `a` equals `b` up to f32 rounding of a decimal or computed constant.
fn approx(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1e-6)
}

/// The fact of `v` when it is an f32 value.
fn f32_fact<'a>(ctx: &Ctx<'a>, v: &str) -> Option<&'a Fact> {
    ctx.fact(v).filter(|f| f.dtype == DType::F32)
}

/// Describes the dtype of `v` for refusals.
fn dtype_of(ctx: &Ctx, v: &str) -> String {
    ctx.fact(v).map_or_else(|| "unknown".into(), |f| f.dtype.to_string())
}

/// The single output of a node.
fn single_output(node: &Node) -> Option<&str> {
    match node.outputs.as_slice() {
        [o] if !o.is_empty() => Some(o),
        _ => None,
    }
}

/// The producing node of `v` when it has op type `op_type`.
fn producer_of<'a>(ctx: &Ctx<'a>, v: &str, op_type: &str) -> Option<(usize, &'a Node)> {
    let p = ctx.producer(v)?;
    let n = ctx.node(p);
    (n.op_type == op_type).then_some((p, n))
}

/// The bounds of a Clip node, when they are known at build time.
fn clip_bounds(ctx: &Ctx, node: &Node, clip: &Clip) -> Result<(f32, f32), String> {
    match clip.bounds {
        ClipBounds::Attrs { min, max } => Ok((min, max)),
        ClipBounds::Inputs => {
            let bound = |i: usize, default: f32| match node.inputs.get(i).filter(|s| !s.is_empty()) {
                None => Ok(default),
                Some(v) => scalar(ctx, v).ok_or_else(|| format!("Clip bound '{v}' is not an f32 constant scalar")),
            };
            Ok((bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?))
        }
    }
}

/// The epilogue steps equivalent to a one-input activation node: `None` when the node is
/// not one, an error (the refusal reason) when it is one we cannot express.
fn activation_steps(ctx: &Ctx, node: &Node) -> Option<Result<Vec<Step>, String>> {
    let any = node.op.as_any();
    if let Some(clip) = any.downcast_ref::<Clip>() {
        return Some(clip_bounds(ctx, node, clip).map(|(min, max)| vec![Step::Clip { min, max }]));
    }
    let step = match any.downcast_ref::<Unary>()?.kind {
        UnaryKind::Relu => Step::Relu,
        UnaryKind::Sigmoid => Step::Sigmoid,
        UnaryKind::Tanh => Step::Tanh,
        UnaryKind::LeakyRelu { alpha } => Step::LeakyRelu { alpha },
        UnaryKind::HardSigmoid { alpha, beta } => Step::HardSigmoid { alpha, beta },
        UnaryKind::HardSwish => Step::HardSwish,
        UnaryKind::Gelu { tanh: false } => Step::GeluErf,
        UnaryKind::Gelu { tanh: true } => Step::GeluTanh,
        _ => return None,
    };
    Some(Ok(vec![step]))
}

/// Checks that `node` (a replacement) infers the dtype and shape `like` has.
fn verify(ctx: &Ctx, rule: &str, node: &Node, like: &str) -> Result<(), String> {
    let ins = node
        .inputs
        .iter()
        .map(|v| {
            if v.is_empty() {
                Ok(None)
            } else {
                ctx.fact(v).map(Some).ok_or_else(|| format!("{rule}: no fact for '{v}'"))
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    let facts = node.op.infer(&ins).map_err(|e| format!("{rule}: the fused node would not be valid: {e}"))?;
    match (facts.first(), ctx.fact(like)) {
        (Some(a), Some(b)) if a.dtype == b.dtype && a.shape == b.shape => Ok(()),
        (a, b) => Err(format!(
            "{rule}: the fused node would produce {:?} instead of {:?} for '{like}'",
            a.map(|f| (f.dtype, &f.shape)),
            b.map(|f| (f.dtype, &f.shape))
        )),
    }
}

/// Refuses unless every output of the `nodes` other than `anchor` is read only by
/// `nodes` and is not a graph output: the values a fusion makes disappear.
fn check_internal(ctx: &Ctx, rule: &str, nodes: &[usize], anchor: usize) -> Result<(), String> {
    for &n in nodes.iter().filter(|&&n| n != anchor) {
        let node = ctx.node(n);
        for o in node.outputs.iter().filter(|o| !o.is_empty()) {
            if ctx.is_graph_output(o) {
                return Err(format!("{rule}: '{o}' (of node '{}') is a graph output", node.name));
            }
            if let Some(&q) = ctx.consumers(o).iter().find(|q| !nodes.contains(q)) {
                return Err(format!(
                    "{rule}: '{o}' (of node '{}') is also read by node '{}'",
                    node.name,
                    ctx.node(q).name
                ));
            }
        }
    }
    Ok(())
}

/// The provenance of a node merged from `nodes`.
fn sources(nodes: &[&Node]) -> Vec<(String, String)> {
    nodes.iter().flat_map(|n| n.sources()).collect()
}
