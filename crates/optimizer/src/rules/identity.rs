use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::Result;

/// Removes ops that return their input unchanged at inference: Identity, Dropout
/// (inference mode, mask unused), and Cast to the input's own dtype.
pub struct RemoveIdentity;

impl Rule for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove_identity"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        let (Some(x), Some(y)) = (node.inputs.first(), node.outputs.first()) else {
            return Ok(Outcome::NotApplicable);
        };
        let is_noop = match node.op_type.as_str() {
            "Identity" => true,
            "Dropout" => node
                .outputs
                .iter()
                .skip(1)
                .all(|m| m.is_empty() || ctx.consumers(m).is_empty() && !ctx.is_graph_output(m)),
            "Cast" => ctx.fact(x).zip(ctx.fact(y)).is_some_and(|(a, b)| a.dtype == b.dtype),
            _ => return Ok(Outcome::NotApplicable),
        };
        if !is_noop {
            return Ok(Outcome::Refused("changes its input (Dropout mask used, or a real Cast)".into()));
        }
        if x.is_empty() {
            return Ok(Outcome::NotApplicable);
        }
        if ctx.is_graph_output(y) && (ctx.producer(x).is_none() || ctx.is_graph_output(x) || ctx.consumers(x).len() > 1)
        {
            return Ok(Outcome::Refused(format!("its output '{y}' is a graph output that '{x}' cannot be renamed to")));
        }
        Ok(Outcome::Rewrite(Patch { remove: vec![i], rewire: vec![(y.clone(), x.clone())], ..Default::default() }))
    }
}
