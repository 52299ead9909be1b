use super::{bypass, other_uses, refuse};
use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::{Attrs, Node, Result, Tensor};
use std::sync::Arc;

/// Ops that change only the shape, never the element order.
const SHAPE_OPS: &[&str] = &["Reshape", "Flatten", "Squeeze", "Unsqueeze"];

/// Merges two consecutive shape-only ops (Reshape, Flatten, Squeeze, Unsqueeze) into
/// one Reshape to the final shape, and removes such an op that leaves the shape as is.
pub struct ReshapeChain;

fn data_io(node: &Node) -> Option<(&String, &String)> {
    let x = node.inputs.first().filter(|x| !x.is_empty())?;
    let y = node.outputs.first().filter(|y| !y.is_empty())?;
    Some((x, y))
}

impl Rule for ReshapeChain {
    fn name(&self) -> &'static str {
        "reshape_chain"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        if !SHAPE_OPS.contains(&node.op_type.as_str()) {
            return Ok(Outcome::NotApplicable);
        }
        let Some((x, y)) = data_io(node) else { return Ok(Outcome::NotApplicable) };
        let (Some(fx), Some(fy)) = (ctx.fact(x), ctx.fact(y)) else { return Ok(Outcome::NotApplicable) };
        if fx.shape == fy.shape {
            return bypass(ctx, i, x, y);
        }
        let Some(p) = ctx.producer(x) else { return Ok(Outcome::NotApplicable) };
        let prev = ctx.node(p);
        if !SHAPE_OPS.contains(&prev.op_type.as_str()) {
            return Ok(Outcome::NotApplicable);
        }
        let Some((src, _)) = data_io(prev).filter(|(_, px)| *px == x) else { return Ok(Outcome::NotApplicable) };
        if let Some(why) = other_uses(ctx, x, i) {
            return refuse(format!("cannot merge with {} '{}': {why}", prev.op_type, prev.name));
        }
        if node.opset < 5 {
            return refuse(format!("opset {} has no Reshape with a shape input (needs opset >= 5)", node.opset));
        }
        if fy.shape.contains(&0) {
            return refuse(format!(
                "the final shape {:?} has a 0 dim, which Reshape (allowzero=0) would copy from the input",
                fy.shape
            ));
        }
        let dims = fy
            .shape
            .iter()
            .map(|&d| i64::try_from(d))
            .collect::<std::result::Result<Vec<i64>, _>>()
            .map_err(|_| sinter_ir::IrError::Shape(format!("shape {:?} does not fit i64", fy.shape)))?;
        let shape_name = ctx.fresh_name(&format!("{}_shape", node.name));
        let shape = Arc::new(Tensor::from_vec(&[dims.len()], dims)?);
        let mut merged = Node::new(
            node.name.clone(),
            "Reshape",
            node.opset,
            Attrs::new(),
            vec![src.clone(), shape_name.clone()],
            vec![y.clone()],
        )?;
        merged.fused_from = prev.sources();
        merged.fused_from.extend(node.sources());
        Ok(Outcome::Rewrite(Patch {
            remove: vec![p, i],
            insert: vec![merged],
            initializers: vec![(shape_name, shape)],
            ..Default::default()
        }))
    }
}
