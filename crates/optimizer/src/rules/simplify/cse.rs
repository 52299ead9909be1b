use super::refuse;
use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::{Node, Result};
use std::sync::Arc;

/// Common subexpression elimination: a node computing exactly what an earlier node
/// computes (same op type, opset and attributes; each input the same value, or a
/// constant equal to the other's) is removed and its readers read the earlier one.
pub struct Cse;

/// True when inputs `a` and `b` carry the same value.
fn same_input(ctx: &Ctx, a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.is_empty() || b.is_empty() {
        return false;
    }
    match (ctx.constant(a), ctx.constant(b)) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y) || **x == **y,
        _ => false,
    }
}

fn same_computation(ctx: &Ctx, a: &Node, b: &Node) -> bool {
    a.op_type == b.op_type
        && a.opset == b.opset
        && a.inputs.len() == b.inputs.len()
        && a.outputs.len() == b.outputs.len()
        && a.attrs == b.attrs
        && a.inputs.iter().zip(&b.inputs).all(|(x, y)| same_input(ctx, x, y))
}

impl Rule for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        if !node.op.is_deterministic() || node.outputs.iter().all(|o| o.is_empty()) {
            return Ok(Outcome::NotApplicable);
        }
        // An equal node reads the same non-constant input, if there is one.
        let candidates: Vec<usize> = match node.inputs.iter().find(|v| !v.is_empty() && ctx.constant(v).is_none()) {
            Some(v) => ctx.consumers(v).iter().copied().filter(|&j| ctx.before(j, i)).collect(),
            None => ctx.nodes().take_while(|&j| j != i).collect(),
        };
        let mut refusal = None;
        for j in candidates {
            let first = ctx.node(j);
            if !same_computation(ctx, node, first) {
                continue;
            }
            let mut rewire = Vec::new();
            let mut blocked = None;
            for (dup, kept) in node.outputs.iter().zip(&first.outputs).filter(|(d, _)| !d.is_empty()) {
                if kept.is_empty() {
                    blocked = Some(format!("'{}' does not produce the output that '{dup}' is", first.name));
                    break;
                }
                if ctx.is_graph_output(dup) && ctx.is_graph_output(kept) {
                    blocked = Some(format!("'{dup}' and '{kept}' of '{}' are both graph outputs", first.name));
                    break;
                }
                rewire.push((dup.clone(), kept.clone()));
            }
            if let Some(b) = blocked {
                refusal.get_or_insert(b);
                continue;
            }
            // The kept node now also stands for the removed one.
            let mut kept = first.clone();
            kept.fused_from = first.sources();
            kept.fused_from.extend(node.sources());
            return Ok(Outcome::Rewrite(Patch {
                remove: vec![j, i],
                insert: vec![kept],
                rewire,
                ..Default::default()
            }));
        }
        match refusal {
            Some(r) => refuse(format!("same as an earlier node, but {r}")),
            None => Ok(Outcome::NotApplicable),
        }
    }
}
