//! `elementwise_chain`: consecutive activations and elementwise arithmetic become one
//! `FusedElementwise`, one pass over memory instead of one per op.

use super::{activation_steps, dtype_of, f32_fact, single_output, sources, verify};
use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::ops::elementwise::{Binary, BinaryKind};
use sinter_ir::ops::fused::{BinOp, Epilogue, FusedElementwise, Step};
use sinter_ir::{Attrs, Node, Result};

/// A node seen as a chain: a main input, steps, and the extra inputs the binary steps read.
struct Chain {
    main: String,
    steps: Vec<Step>,
    extras: Vec<String>,
}

/// The binary step of an Add/Sub/Mul/Div node whose main input is `side`.
fn binary_step(node: &Node, side: usize) -> Option<Step> {
    let b = node.op.as_any().downcast_ref::<Binary>()?;
    if node.inputs.len() != 2 || single_output(node).is_none() {
        return None;
    }
    let op = match b.kind {
        BinaryKind::Add => BinOp::Add,
        BinaryKind::Sub => BinOp::Sub,
        BinaryKind::Mul => BinOp::Mul,
        BinaryKind::Div => BinOp::Div,
        _ => return None,
    };
    let swapped = side == 1 && matches!(op, BinOp::Sub | BinOp::Div);
    Some(Step::Binary { op, swapped })
}

/// `node` as a chain whose main input is input `side`, when it is an elementwise op the
/// chain can express and its output has the main input's shape (a chain never broadcasts
/// its main operand). `Err` is a refusal reason.
fn as_chain(ctx: &Ctx, node: &Node, side: usize) -> Option<std::result::Result<Chain, String>> {
    const R: &str = "elementwise_chain";
    let out = single_output(node)?;
    let main = node.inputs.get(side)?.clone();
    let chain = if let Some(fe) = node.op.as_any().downcast_ref::<FusedElementwise>() {
        if side != 0 {
            return None;
        }
        Chain { main, steps: fe.epilogue.steps.clone(), extras: node.inputs[1..].to_vec() }
    } else if let Some(step) = binary_step(node, side) {
        // Reading the main input again (x * x) is fine for a chain's first node; a node
        // merged into its producer must not read the vanishing value twice (checked below).
        Chain { main, steps: vec![step], extras: vec![node.inputs[1 - side].clone()] }
    } else {
        if side != 0 {
            return None;
        }
        match activation_steps(ctx, node)? {
            Ok(steps) => Chain { main, steps, extras: Vec::new() },
            Err(why) => return Some(Err(format!("{R}: {why}"))),
        }
    };
    if f32_fact(ctx, out).is_none() {
        return Some(Err(format!("{R}: '{out}' is {}, only f32 is fused", dtype_of(ctx, out))));
    }
    if ctx.fact(&chain.main).map(|f| &f.shape) != ctx.fact(out).map(|f| &f.shape) {
        return Some(Err(format!("{R}: '{}' broadcasts '{}' to a larger shape", node.name, chain.main)));
    }
    Some(Ok(chain))
}

/// Merges an elementwise node into the elementwise node producing its main input.
pub struct ElementwiseChain;

impl Rule for ElementwiseChain {
    fn name(&self) -> &'static str {
        "elementwise_chain"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        const R: &str = "elementwise_chain";
        let node = ctx.node(i);
        let Some(out) = single_output(node) else { return Ok(Outcome::NotApplicable) };
        let mut reason = None;
        for side in 0..2 {
            let Some(this) = as_chain(ctx, node, side) else { continue };
            let Some(p) = node.inputs.get(side).and_then(|v| ctx.producer(v)) else { continue };
            let prod = ctx.node(p);
            // The producer's own main input: its first input that works.
            let prev = (0..2).find_map(|s| as_chain(ctx, prod, s).filter(|c| c.is_ok()));
            let Some(prev) = prev.or_else(|| as_chain(ctx, prod, 0)) else { continue };
            let checked = (|| {
                let (this, prev) = (this?, prev?);
                if this.extras.contains(&this.main) {
                    return Err(format!("{R}: '{}' reads '{}' twice", node.name, this.main));
                }
                if !ctx.only_read_by(&this.main, i) {
                    let why = match ctx.consumers(&this.main).iter().find(|&&q| q != i) {
                        Some(&q) => format!("also read by node '{}'", ctx.node(q).name),
                        None => "a graph output".to_string(),
                    };
                    return Err(format!("{R}: '{}' (of node '{}') is {why}", this.main, prod.name));
                }
                let mut steps = prev.steps;
                steps.extend(this.steps);
                let mut attrs = Attrs::new();
                Epilogue { steps }.write_attrs(&mut attrs);
                let mut inputs = vec![prev.main];
                inputs.extend(prev.extras);
                inputs.extend(this.extras);
                let mut fused =
                    Node::new(node.name.clone(), "FusedElementwise", node.opset, attrs, inputs, vec![out.into()])
                        .map_err(|e| format!("{R}: {e}"))?;
                fused.fused_from = sources(&[prod, node]);
                verify(ctx, R, &fused, out)?;
                Ok(fused)
            })();
            match checked {
                Ok(fused) => {
                    return Ok(Outcome::Rewrite(Patch {
                        remove: vec![p, i],
                        insert: vec![fused],
                        ..Default::default()
                    }))
                }
                Err(why) => {
                    reason.get_or_insert(why);
                }
            }
        }
        Ok(reason.map_or(Outcome::NotApplicable, Outcome::Refused))
    }
}
