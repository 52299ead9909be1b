//! Rules folding elementwise work into the epilogue of a convolution or matrix product.

use super::{activation_steps, dtype_of, f32_fact, single_output, sources, verify};
use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::ops::elementwise::{Binary, BinaryKind};
use sinter_ir::ops::fused::{base_attrs, BaseKind, BinOp, Epilogue, Fused, FusedElementwise, Step, BASE_SLOTS};
use sinter_ir::{Node, Result, Tensor};
use std::sync::Arc;

/// Checks that the output `y` of `prod` can disappear into its consumer `reader`, and is f32.
fn check_base_output(ctx: &Ctx, rule: &str, prod: &Node, y: &str, reader: usize) -> std::result::Result<(), String> {
    if single_output(prod) != Some(y) {
        return Err(format!("{rule}: '{}' has more than one output", prod.name));
    }
    if ctx.is_graph_output(y) {
        return Err(format!("{rule}: output '{y}' of '{}' is a graph output", prod.name));
    }
    if let Some(&q) = ctx.consumers(y).iter().find(|&&q| q != reader) {
        return Err(format!("{rule}: output '{y}' of '{}' is also read by node '{}'", prod.name, ctx.node(q).name));
    }
    if f32_fact(ctx, y).is_none() {
        return Err(format!("{rule}: '{y}' is {}, only f32 is fused", dtype_of(ctx, y)));
    }
    Ok(())
}

/// `prod` (plain or fused) with `steps` appended to its epilogue, reading `extra` inputs,
/// producing `out`; provenance covers `prod` and `merged`.
fn extend(prod: &Node, kind: BaseKind, steps: &[Step], extra: &[String], out: &str, merged: &[&Node]) -> Result<Node> {
    let fused = prod.op.as_any().downcast_ref::<Fused>();
    let mut epilogue = fused.map_or_else(Epilogue::default, |f| f.epilogue.clone());
    epilogue.steps.extend_from_slice(steps);
    let mut attrs = base_attrs(&prod.attrs);
    epilogue.write_attrs(&mut attrs);
    let mut inputs = prod.inputs.clone();
    if inputs.len() < BASE_SLOTS {
        inputs.resize(BASE_SLOTS, String::new());
    }
    inputs.extend_from_slice(extra);
    let mut node =
        Node::new(prod.name.clone(), kind.fused_op_type(), prod.opset, attrs, inputs, vec![out.to_string()])?;
    let mut all = vec![prod];
    all.extend_from_slice(merged);
    node.fused_from = sources(&all);
    Ok(node)
}

fn refuse(reason: String) -> Result<Outcome> {
    Ok(Outcome::Refused(reason))
}

/// Conv/ConvTranspose/Gemm/MatMul (or a fused one) followed by an activation
/// (Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Gelu, Tanh, or a
/// one-input FusedElementwise of such steps): the activation joins the epilogue.
pub struct EpilogueActivation;

impl Rule for EpilogueActivation {
    fn name(&self) -> &'static str {
        "epilogue_activation"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        const R: &str = "epilogue_activation";
        let node = ctx.node(i);
        // A FusedElementwise brings its binary steps' inputs along.
        let (steps, extras) = match node.op.as_any().downcast_ref::<FusedElementwise>() {
            Some(fe) => (Ok(fe.epilogue.steps.clone()), node.inputs.get(1..).unwrap_or(&[]).to_vec()),
            None => match activation_steps(ctx, node) {
                Some(steps) => (steps, Vec::new()),
                None => return Ok(Outcome::NotApplicable),
            },
        };
        let (Some(x), Some(out)) = (node.inputs.first(), single_output(node)) else {
            return Ok(Outcome::NotApplicable);
        };
        let Some(p) = ctx.producer(x) else { return Ok(Outcome::NotApplicable) };
        let prod = ctx.node(p);
        let Some(kind) = BaseKind::of(&prod.op_type) else { return Ok(Outcome::NotApplicable) };
        let steps = match steps {
            Ok(s) => s,
            Err(why) => return refuse(format!("{R}: {why}")),
        };
        if let Err(why) = check_base_output(ctx, R, prod, x, i) {
            return refuse(why);
        }
        if extras.contains(x) {
            return refuse(format!("{R}: '{}' reads '{x}' again as an operand", node.name));
        }
        let fused = extend(prod, kind, &steps, &extras, out, &[node])?;
        if let Err(why) = verify(ctx, R, &fused, out) {
            return refuse(why);
        }
        Ok(Outcome::Rewrite(Patch { remove: vec![p, i], insert: vec![fused], ..Default::default() }))
    }
}

/// The output of an Add node with two inputs and one output.
fn as_add(node: &Node) -> Option<&str> {
    let b = node.op.as_any().downcast_ref::<Binary>()?;
    if b.kind != BinaryKind::Add || node.inputs.len() != 2 {
        return None;
    }
    single_output(node)
}

/// A convolution or matrix product (plain or fused) whose output is added to another
/// tensor of its shape (a residual) or broadcast to it (per-channel values): the Add
/// becomes an epilogue step, after which further activations can be absorbed.
pub struct EpilogueAdd;

impl Rule for EpilogueAdd {
    fn name(&self) -> &'static str {
        "epilogue_add"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        const R: &str = "epilogue_add";
        let node = ctx.node(i);
        let Some(out) = as_add(node) else { return Ok(Outcome::NotApplicable) };
        let mut reason = None;
        for side in 0..2 {
            let (y, r) = (&node.inputs[side], &node.inputs[1 - side]);
            let Some(p) = ctx.producer(y) else { continue };
            let prod = ctx.node(p);
            let Some(kind) = BaseKind::of(&prod.op_type) else { continue };
            let checked = (|| {
                check_base_output(ctx, R, prod, y, i)?;
                if r == y {
                    return Err(format!("{R}: adds '{y}' to itself"));
                }
                if f32_fact(ctx, r).is_none() {
                    return Err(format!("{R}: the other operand '{r}' is {}", dtype_of(ctx, r)));
                }
                let (ys, os) = (ctx.fact(y).map(|f| &f.shape), ctx.fact(out).map(|f| &f.shape));
                if ys != os {
                    return Err(format!("{R}: the Add broadcasts '{y}' from {ys:?} to {os:?}"));
                }
                let fused = extend(
                    prod,
                    kind,
                    &[Step::Binary { op: BinOp::Add, swapped: false }],
                    std::slice::from_ref(r),
                    out,
                    &[node],
                )
                .map_err(|e| format!("{R}: {e}"))?;
                verify(ctx, R, &fused, out)?;
                Ok((p, fused))
            })();
            match checked {
                Ok((p, fused)) => {
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

/// MatMul followed by an Add of a constant vector of the output's last dimension
/// (`[N]`, or `[1, ..., 1, N]`): the vector becomes the FusedMatMul's bias.
pub struct MatMulBias;

impl Rule for MatMulBias {
    fn name(&self) -> &'static str {
        "matmul_bias"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        const R: &str = "matmul_bias";
        let node = ctx.node(i);
        let Some(out) = as_add(node) else { return Ok(Outcome::NotApplicable) };
        let mut reason = None;
        for side in 0..2 {
            let (y, c) = (&node.inputs[side], &node.inputs[1 - side]);
            let Some(p) = ctx.producer(y) else { continue };
            let prod = ctx.node(p);
            if BaseKind::of(&prod.op_type) != Some(BaseKind::MatMul) {
                continue;
            }
            // A FusedMatMul with a bias or an epilogue is epilogue_add's candidate.
            if let Some(f) = prod.op.as_any().downcast_ref::<Fused>() {
                if !f.epilogue.steps.is_empty() || prod.inputs.get(2).is_some_and(|b| !b.is_empty()) {
                    continue;
                }
            }
            let checked = (|| {
                check_base_output(ctx, R, prod, y, i)?;
                let Some(t) = ctx.constant(c) else {
                    return Err(format!("{R}: '{c}' is not a constant"));
                };
                let ys = ctx.fact(y).map(|f| f.shape.clone()).unwrap_or_default();
                let b_rank = prod.inputs.get(1).and_then(|b| ctx.fact(b)).map_or(0, |f| f.rank());
                let n = match ys.last() {
                    Some(&n) if b_rank >= 2 => n,
                    _ => return Err(format!("{R}: '{}' has no column dimension to add a bias along", prod.name)),
                };
                let lead = t.shape().iter().take_while(|&&d| d == 1).count();
                let stripped = &t.shape()[lead.min(t.shape().len().saturating_sub(1))..];
                if t.dtype() != sinter_ir::DType::F32 || stripped != [n] || t.shape().len() > ys.len() {
                    return Err(format!(
                        "{R}: '{c}' ({} {:?}) is not an f32 vector of the {n} output columns",
                        t.dtype(),
                        t.shape()
                    ));
                }
                if ctx.fact(out).map(|f| &f.shape) != Some(&ys) {
                    return Err(format!("{R}: the Add broadcasts '{y}' beyond {ys:?}"));
                }
                let (bias, init) = if t.shape() == [n] {
                    (c.clone(), None)
                } else {
                    let name = ctx.fresh_name(&format!("{c}_bias"));
                    let v = Tensor::from_slice(&[n], t.as_slice::<f32>().map_err(|e| e.to_string())?)
                        .map_err(|e| e.to_string())?;
                    (name.clone(), Some((name, Arc::new(v))))
                };
                let mut inputs = prod.inputs.clone();
                inputs.resize(BASE_SLOTS, String::new());
                inputs[2] = bias;
                let mut fused = Node::new(
                    prod.name.clone(),
                    BaseKind::MatMul.fused_op_type(),
                    prod.opset,
                    base_attrs(&prod.attrs),
                    inputs,
                    vec![out.to_string()],
                )
                .map_err(|e| format!("{R}: {e}"))?;
                fused.fused_from = sources(&[prod, node]);
                if init.is_none() {
                    verify(ctx, R, &fused, out)?;
                }
                Ok((p, fused, init))
            })();
            match checked {
                Ok((p, fused, init)) => {
                    return Ok(Outcome::Rewrite(Patch {
                        remove: vec![p, i],
                        insert: vec![fused],
                        initializers: init.into_iter().collect(),
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
