use super::refuse;
use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::Result;

/// Replaces a node whose outputs inference already computed (all inputs constant) by
/// initializers holding those values. Shape subgraphs fold away this way.
pub struct FoldConstants;

impl Rule for FoldConstants {
    fn name(&self) -> &'static str {
        "fold_constants"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        let outs: Vec<&String> = node.outputs.iter().filter(|o| !o.is_empty()).collect();
        if outs.is_empty() {
            return Ok(Outcome::NotApplicable);
        }
        // An unread node is left to dead_nodes rather than turned into unused constants.
        if outs.iter().all(|o| ctx.consumers(o).is_empty() && !ctx.is_graph_output(o)) {
            return Ok(Outcome::NotApplicable);
        }
        let mut values = Vec::with_capacity(outs.len());
        for o in &outs {
            match ctx.constant(o) {
                Some(t) => values.push(((*o).clone(), t.clone())),
                None => return Ok(Outcome::NotApplicable),
            }
        }
        if let Some(o) = outs.iter().find(|o| ctx.is_graph_output(o)) {
            return refuse(format!("its output '{o}' is a graph output; graph outputs stay produced by nodes"));
        }
        Ok(Outcome::Rewrite(Patch { remove: vec![i], initializers: values, ..Default::default() }))
    }
}

/// Removes a node none of whose outputs is read by a node or is a graph output.
pub struct DeadNodes;

impl Rule for DeadNodes {
    fn name(&self) -> &'static str {
        "dead_nodes"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let live = ctx
            .node(i)
            .outputs
            .iter()
            .filter(|o| !o.is_empty())
            .any(|o| ctx.is_graph_output(o) || !ctx.consumers(o).is_empty());
        if live {
            return Ok(Outcome::NotApplicable);
        }
        Ok(Outcome::Rewrite(Patch { remove: vec![i], ..Default::default() }))
    }
}
