//! Pattern rules: activations and LayerNormalization written out op by op, as
//! exporters emit them, become one node. Activations become a one-step
//! `FusedElementwise` (which `epilogue_activation` can then absorb).

use super::{approx, clip_bounds};
use super::{check_internal, dtype_of, f32_fact, producer_of, scalar, single_output, sources, verify};
use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::ops::elementwise::{Binary, BinaryKind, Clip, Unary, UnaryKind};
use sinter_ir::ops::fused::{Epilogue, Step};
use sinter_ir::ops::reduce::{Reduce, ReduceAxes, ReduceKind};
use sinter_ir::{AttrValue, Attrs, Node, Result};

/// Most leaves a product is flattened into (patterns have at most five).
const MAX_LEAVES: usize = 8;

/// The binary kind of a two-input, one-output node.
fn binary(node: &Node) -> Option<BinaryKind> {
    let b = node.op.as_any().downcast_ref::<Binary>()?;
    (node.inputs.len() == 2 && single_output(node).is_some()).then_some(b.kind)
}

fn unary(node: &Node) -> Option<UnaryKind> {
    let u = node.op.as_any().downcast_ref::<Unary>()?;
    (node.inputs.len() == 1 && single_output(node).is_some()).then_some(u.kind)
}

/// The node producing `v` when it is a binary op of `kind`.
fn binary_producer<'a>(ctx: &Ctx<'a>, v: &str, kind: BinaryKind) -> Option<(usize, &'a Node)> {
    let p = ctx.producer(v)?;
    let n = ctx.node(p);
    (binary(n) == Some(kind)).then_some((p, n))
}

/// For a binary node with a scalar constant on one side (either side when
/// `commutative`, else the right), the other input and the constant.
fn with_scalar<'a>(ctx: &Ctx, node: &'a Node, commutative: bool) -> Option<(&'a str, f32)> {
    let (a, b) = (&node.inputs[0], &node.inputs[1]);
    if let Some(c) = scalar(ctx, b) {
        return Some((a, c));
    }
    if commutative {
        return scalar(ctx, a).map(|c| (b.as_str(), c));
    }
    None
}

/// `v` scaled by a constant: `Mul(v, c)`, `Mul(c, v)` or `Div(v, c)` (as `1 / c`).
fn scaled(ctx: &Ctx, node: &Node) -> Option<(String, f32)> {
    match binary(node)? {
        BinaryKind::Mul => with_scalar(ctx, node, true).map(|(v, c)| (v.to_string(), c)),
        BinaryKind::Div => with_scalar(ctx, node, false).map(|(v, c)| (v.to_string(), 1.0 / c)),
        _ => None,
    }
}

/// Flattens the product computed by Mul node `m` into its factors, descending into
/// Mul inputs read only by the product; records the Mul nodes in `nodes`.
fn product(ctx: &Ctx, m: usize, nodes: &mut Vec<usize>, leaves: &mut Vec<String>) -> bool {
    nodes.push(m);
    for v in &ctx.node(m).inputs {
        if leaves.len() + nodes.len() > 2 * MAX_LEAVES {
            return false;
        }
        match binary_producer(ctx, v, BinaryKind::Mul) {
            Some((p, _)) if ctx.only_read_by(v, m) => {
                if !product(ctx, p, nodes, leaves) {
                    return false;
                }
            }
            _ => leaves.push(v.clone()),
        }
    }
    leaves.len() <= MAX_LEAVES
}

/// Splits product leaves into the scalar constants' product and the other values.
fn split_constants(ctx: &Ctx, leaves: &[String]) -> (f32, Vec<String>) {
    let mut k = 1.0;
    let mut rest = Vec::new();
    for l in leaves {
        match scalar(ctx, l) {
            Some(c) => k *= c,
            None => rest.push(l.clone()),
        }
    }
    (k, rest)
}

/// A one-step FusedElementwise replacing `nodes` (ending in `anchor`) on input `x`.
fn replace_with_step(ctx: &Ctx, rule: &str, step: Step, x: &str, nodes: Vec<usize>, anchor: usize) -> Result<Outcome> {
    let a = ctx.node(anchor);
    let Some(out) = single_output(a) else { return Ok(Outcome::NotApplicable) };
    if let Err(why) = check_internal(ctx, rule, &nodes, anchor) {
        return Ok(Outcome::Refused(why));
    }
    if f32_fact(ctx, x).is_none() {
        return Ok(Outcome::Refused(format!("{rule}: '{x}' is {}, only f32 is fused", dtype_of(ctx, x))));
    }
    let mut attrs = Attrs::new();
    Epilogue { steps: vec![step] }.write_attrs(&mut attrs);
    let mut node =
        Node::new(a.name.clone(), "FusedElementwise", a.opset, attrs, vec![x.to_string()], vec![out.into()])?;
    let merged: Vec<&Node> = nodes.iter().map(|&n| ctx.node(n)).collect();
    node.fused_from = sources(&merged);
    if let Err(why) = verify(ctx, rule, &node, out) {
        return Ok(Outcome::Refused(why));
    }
    Ok(Outcome::Rewrite(Patch { remove: nodes, insert: vec![node], ..Default::default() }))
}

/// `x * Sigmoid(x)` → SiLU.
pub struct SiluPattern;

impl Rule for SiluPattern {
    fn name(&self) -> &'static str {
        "silu_pattern"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        if binary(node) != Some(BinaryKind::Mul) {
            return Ok(Outcome::NotApplicable);
        }
        for side in 0..2 {
            let (s, x) = (&node.inputs[side], &node.inputs[1 - side]);
            let Some(p) = ctx.producer(s) else { continue };
            let sig = ctx.node(p);
            if unary(sig) == Some(UnaryKind::Sigmoid) && sig.inputs[0] == *x {
                return replace_with_step(ctx, self.name(), Step::Silu, x, vec![p, i], i);
            }
        }
        Ok(Outcome::NotApplicable)
    }
}

/// `min(max(x + 3, 0), 6)` as Add(x, 3) → Clip(0, 6): returns x and the two nodes, or
/// the reason the constants are wrong; `None` when `v` is not computed that way.
fn relu6_plus3(ctx: &Ctx, rule: &str, v: &str) -> Option<std::result::Result<(String, [usize; 2]), String>> {
    let (c, clip_node) = producer_of(ctx, v, "Clip")?;
    let clip = clip_node.op.as_any().downcast_ref::<Clip>()?;
    let (a, add) = binary_producer(ctx, clip_node.inputs.first()?, BinaryKind::Add)?;
    let (x, three) = with_scalar(ctx, add, true)?;
    let checked = (|| {
        let (lo, hi) = clip_bounds(ctx, clip_node, clip).map_err(|e| format!("{rule}: {e}"))?;
        if (lo, hi) != (0.0, 6.0) {
            return Err(format!("{rule}: '{}' clips to ({lo}, {hi}), not (0, 6)", clip_node.name));
        }
        if three != 3.0 {
            return Err(format!("{rule}: '{}' adds {three}, not 3", add.name));
        }
        Ok((x.to_string(), [c, a]))
    })();
    Some(checked)
}

/// HardSwish written out: `x * relu6(x + 3) / 6` (Add → Clip → Mul → Div 6 or Mul 1/6,
/// or the scaling before the Mul), or `x * HardSigmoid(x)` with alpha 1/6, beta 0.5.
pub struct HardSwishPattern;

impl Rule for HardSwishPattern {
    fn name(&self) -> &'static str {
        "hardswish_pattern"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        const R: &str = "hardswish_pattern";
        let node = ctx.node(i);
        let kind = binary(node);
        if kind != Some(BinaryKind::Mul) && kind != Some(BinaryKind::Div) {
            return Ok(Outcome::NotApplicable);
        }
        // x * relu6(x + 3), then scaled by 1/6.
        if let Some((m, k)) = scaled(ctx, node) {
            if let Some((pm, mul)) = binary_producer(ctx, &m, BinaryKind::Mul) {
                for side in 0..2 {
                    let (r, x) = (&mul.inputs[side], &mul.inputs[1 - side]);
                    match relu6_plus3(ctx, R, r) {
                        Some(Ok((x2, [c, a]))) if x2 == *x => {
                            if !approx(k, 1.0 / 6.0) {
                                return Ok(Outcome::Refused(format!("{R}: '{}' scales by {k}, not 1/6", node.name)));
                            }
                            return replace_with_step(ctx, R, Step::HardSwish, x, vec![a, c, pm, i], i);
                        }
                        Some(Err(why)) => return Ok(Outcome::Refused(why)),
                        _ => {}
                    }
                }
            }
        }
        if kind != Some(BinaryKind::Mul) {
            return Ok(Outcome::NotApplicable);
        }
        for side in 0..2 {
            let (h, x) = (&node.inputs[side], &node.inputs[1 - side]);
            let Some(p) = ctx.producer(h) else { continue };
            let hn = ctx.node(p);
            // x * HardSigmoid(x) (PaddlePaddle's hard_swish).
            if let Some(UnaryKind::HardSigmoid { alpha, beta }) = unary(hn) {
                if hn.inputs[0] != *x {
                    continue;
                }
                if !approx(alpha, 1.0 / 6.0) || beta != 0.5 {
                    return Ok(Outcome::Refused(format!(
                        "{R}: '{}' has alpha {alpha}, beta {beta}, not 1/6 and 0.5",
                        hn.name
                    )));
                }
                return replace_with_step(ctx, R, Step::HardSwish, x, vec![p, i], i);
            }
            // x * (relu6(x + 3) / 6).
            if let Some((r, k)) = scaled(ctx, hn) {
                match relu6_plus3(ctx, R, &r) {
                    Some(Ok((x2, [c, a]))) if x2 == *x => {
                        if !approx(k, 1.0 / 6.0) {
                            return Ok(Outcome::Refused(format!("{R}: '{}' scales by {k}, not 1/6", hn.name)));
                        }
                        return replace_with_step(ctx, R, Step::HardSwish, x, vec![a, c, p, i], i);
                    }
                    Some(Err(why)) => return Ok(Outcome::Refused(why)),
                    _ => {}
                }
            }
        }
        Ok(Outcome::NotApplicable)
    }
}

/// `t = 1 + f(...)` as Add(f, 1) / Add(1, f): the Add node and `f`.
fn one_plus(ctx: &Ctx, v: &str) -> Option<(usize, String)> {
    let (p, add) = binary_producer(ctx, v, BinaryKind::Add)?;
    let (f, one) = with_scalar(ctx, add, true)?;
    (one == 1.0).then(|| (p, f.to_string()))
}

/// One reading of `0.5 * x * (1 + g)`: x, the `1 + g` Add node, and g.
struct HalfXOnePlus {
    x: String,
    add: usize,
    g: String,
}

/// Matches `0.5 * x * (1 + g)` on the product ending at Mul node `i`: returns the Mul
/// nodes and a reading for each way of choosing x among the two non-constant factors.
fn half_x_one_plus(ctx: &Ctx, i: usize) -> Option<(Vec<usize>, Vec<HalfXOnePlus>)> {
    let (mut nodes, mut leaves) = (Vec::new(), Vec::new());
    if !product(ctx, i, &mut nodes, &mut leaves) {
        return None;
    }
    let (k, rest) = split_constants(ctx, &leaves);
    let [a, b] = rest.as_slice() else { return None };
    if !approx(k, 0.5) {
        return None;
    }
    let options = [(a, b), (b, a)]
        .into_iter()
        .filter_map(|(x, t)| one_plus(ctx, t).map(|(add, g)| HalfXOnePlus { x: x.clone(), add, g }))
        .collect::<Vec<_>>();
    Some((nodes, options))
}

/// GELU with erf: `0.5 * x * (1 + erf(x / sqrt 2))` in any multiplication order
/// (torch exports Div → Erf → Add → Mul → Mul).
pub struct GeluErfPattern;

impl Rule for GeluErfPattern {
    fn name(&self) -> &'static str {
        "gelu_erf_pattern"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        const R: &str = "gelu_erf_pattern";
        // Any Mul may anchor: only the one computing the whole product has these factors.
        if binary(ctx.node(i)) != Some(BinaryKind::Mul) {
            return Ok(Outcome::NotApplicable);
        }
        let Some((nodes, options)) = half_x_one_plus(ctx, i) else { return Ok(Outcome::NotApplicable) };
        for HalfXOnePlus { x, add, g } in options {
            let Some((e, erf)) = producer_of(ctx, &g, "Erf") else { continue };
            let Some(p) = erf.inputs.first().and_then(|v| ctx.producer(v)) else { continue };
            let Some((s, k)) = scaled(ctx, ctx.node(p)) else { continue };
            if s != x {
                continue;
            }
            if !approx(k, std::f32::consts::FRAC_1_SQRT_2) {
                return Ok(Outcome::Refused(format!("{R}: '{}' scales by {k}, not 1/sqrt(2)", ctx.node(p).name)));
            }
            let mut all = nodes.clone();
            all.extend([add, e, p]);
            return replace_with_step(ctx, R, Step::GeluErf, &x, all, i);
        }
        Ok(Outcome::NotApplicable)
    }
}

/// GELU, tanh form: `0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))` with the
/// cube as Pow(x, 3) or a product of three x.
pub struct GeluTanhPattern;

impl GeluTanhPattern {
    /// Matches `sqrt(2/pi) * (x + 0.044715 x^3)` computed into `u`: the nodes it covers.
    fn inner(ctx: &Ctx, u: &str, x: &str) -> Option<std::result::Result<Vec<usize>, String>> {
        const R: &str = "gelu_tanh_pattern";
        let (pu, _) = binary_producer(ctx, u, BinaryKind::Mul)?;
        let (mut nodes, mut leaves) = (Vec::new(), Vec::new());
        if !product(ctx, pu, &mut nodes, &mut leaves) {
            return None;
        }
        let (k, rest) = split_constants(ctx, &leaves);
        let [w] = rest.as_slice() else { return None };
        let (pw, add) = binary_producer(ctx, w, BinaryKind::Add)?;
        let cube_term = if add.inputs[0] == x {
            &add.inputs[1]
        } else if add.inputs[1] == x {
            &add.inputs[0]
        } else {
            return None;
        };
        nodes.push(pw);
        let (pc, _) = binary_producer(ctx, cube_term, BinaryKind::Mul)?;
        let (mut cnodes, mut cleaves) = (Vec::new(), Vec::new());
        if !product(ctx, pc, &mut cnodes, &mut cleaves) {
            return None;
        }
        nodes.extend(cnodes);
        let (c, cube) = split_constants(ctx, &cleaves);
        let is_cube = match cube.as_slice() {
            [a, b, d] => [a, b, d].iter().all(|v| *v == x),
            [p] => {
                let (pp, pow) = binary_producer(ctx, p, BinaryKind::Pow)?;
                nodes.push(pp);
                pow.inputs[0] == x && scalar(ctx, &pow.inputs[1]) == Some(3.0)
            }
            _ => false,
        };
        if !is_cube {
            return None;
        }
        let want = (2.0 / std::f32::consts::PI).sqrt();
        if !approx(k, want) || !approx(c, 0.044715) {
            return Some(Err(format!("{R}: constants {k} and {c} are not sqrt(2/pi) and 0.044715")));
        }
        Some(Ok(nodes))
    }
}

impl Rule for GeluTanhPattern {
    fn name(&self) -> &'static str {
        "gelu_tanh_pattern"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        const R: &str = "gelu_tanh_pattern";
        if binary(ctx.node(i)) != Some(BinaryKind::Mul) {
            return Ok(Outcome::NotApplicable);
        }
        let Some((nodes, options)) = half_x_one_plus(ctx, i) else { return Ok(Outcome::NotApplicable) };
        for HalfXOnePlus { x, add, g } in options {
            let Some((t, tanh)) = producer_of(ctx, &g, "Tanh") else { continue };
            match tanh.inputs.first().and_then(|u| Self::inner(ctx, u, &x)) {
                Some(Ok(inner)) => {
                    let mut all = nodes.clone();
                    all.extend([add, t]);
                    all.extend(inner);
                    return replace_with_step(ctx, R, Step::GeluTanh, &x, all, i);
                }
                Some(Err(why)) => return Ok(Outcome::Refused(why)),
                None => {}
            }
        }
        Ok(Outcome::NotApplicable)
    }
}

/// LayerNormalization written out (opset 17 semantics over the last axis):
/// `m = ReduceMean(x); d = x - m; v = ReduceMean(d^2); y = d / sqrt(v + eps) * gamma + beta`.
pub struct LayerNormPattern;

impl LayerNormPattern {
    /// True when `node` is a ReduceMean over exactly the last axis of its rank-`rank`
    /// input, keeping dims.
    fn mean_last(ctx: &Ctx, node: &Node, rank: usize) -> bool {
        let Some(r) = node.op.as_any().downcast_ref::<Reduce>() else { return false };
        if r.kind != ReduceKind::Mean || !r.keepdims {
            return false;
        }
        let axes = match &r.axes {
            ReduceAxes::Attr(a) => a.clone(),
            ReduceAxes::Input => match node.inputs.get(1).and_then(|a| ctx.constant(a)) {
                Some(t) => match t.to_i64_vec() {
                    Ok(v) => v,
                    Err(_) => return false,
                },
                None => return false,
            },
        };
        rank > 0 && matches!(axes.as_slice(), [a] if *a == -1 || *a == rank as i64 - 1)
    }
}

impl Rule for LayerNormPattern {
    fn name(&self) -> &'static str {
        "layernorm_pattern"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        const R: &str = "layernorm_pattern";
        let node = ctx.node(i);
        if binary(node) != Some(BinaryKind::Add) {
            return Ok(Outcome::NotApplicable);
        }
        let Some(out) = single_output(node) else { return Ok(Outcome::NotApplicable) };
        for side in 0..2 {
            let (y, beta) = (&node.inputs[side], &node.inputs[1 - side]);
            let Some((pm, mul)) = binary_producer(ctx, y, BinaryKind::Mul) else { continue };
            for mside in 0..2 {
                let (n, gamma) = (&mul.inputs[mside], &mul.inputs[1 - mside]);
                let Some((pdiv, div)) = binary_producer(ctx, n, BinaryKind::Div) else { continue };
                let (d, s) = (&div.inputs[0], &div.inputs[1]);
                let Some((psub, sub)) = binary_producer(ctx, d, BinaryKind::Sub) else { continue };
                let Some((psqrt, sqrt)) = ctx.producer(s).map(|p| (p, ctx.node(p))) else { continue };
                if unary(sqrt) != Some(UnaryKind::Sqrt) {
                    continue;
                }
                let Some((peps, add_eps)) = binary_producer(ctx, &sqrt.inputs[0], BinaryKind::Add) else { continue };
                // The variance is the ReduceMean side; the other side is epsilon.
                let Some((pvar, var, eps)) = (0..2).find_map(|k| {
                    let (pvar, var) = producer_of(ctx, &add_eps.inputs[k], "ReduceMean")?;
                    Some((pvar, var, &add_eps.inputs[1 - k]))
                }) else {
                    continue;
                };
                let Some((ppow, pow)) = var.inputs.first().and_then(|v| binary_producer(ctx, v, BinaryKind::Pow))
                else {
                    continue;
                };
                let (x, m) = (&sub.inputs[0], &sub.inputs[1]);
                let Some((pmean, mean)) = producer_of(ctx, m, "ReduceMean") else { continue };
                if pow.inputs[0] != *d || mean.inputs.first() != Some(x) {
                    continue;
                }
                // The structure matches: every remaining difference is a refusal.
                let Some(xf) = f32_fact(ctx, x) else {
                    return Ok(Outcome::Refused(format!("{R}: '{x}' is {}, only f32 is fused", dtype_of(ctx, x))));
                };
                let rank = xf.rank();
                if !Self::mean_last(ctx, mean, rank) || !Self::mean_last(ctx, var, rank) {
                    return Ok(Outcome::Refused(format!(
                        "{R}: '{}' or '{}' is not a ReduceMean over the last axis keeping dims",
                        mean.name, var.name
                    )));
                }
                let Some(eps) = scalar(ctx, eps) else {
                    return Ok(Outcome::Refused(format!("{R}: epsilon '{eps}' is not an f32 constant scalar")));
                };
                if scalar(ctx, &pow.inputs[1]) != Some(2.0) {
                    return Ok(Outcome::Refused(format!("{R}: '{}' is not a square (exponent 2)", pow.name)));
                }
                let d_last = xf.shape.last().copied().unwrap_or(0);
                for p in [gamma, beta] {
                    let ok = f32_fact(ctx, p).is_some_and(|f| {
                        let lead = f.shape.iter().take_while(|&&s| s == 1).count().min(f.rank().saturating_sub(1));
                        f.shape[lead..] == [d_last]
                    });
                    if !ok {
                        return Ok(Outcome::Refused(format!(
                            "{R}: '{p}' is not an f32 vector over the last axis ({d_last})"
                        )));
                    }
                }
                let nodes = vec![pmean, psub, ppow, pvar, peps, psqrt, pdiv, pm, i];
                if let Err(why) = check_internal(ctx, R, &nodes, i) {
                    return Ok(Outcome::Refused(why));
                }
                let attrs = Attrs::new().with("axis", AttrValue::Int(-1)).with("epsilon", AttrValue::Float(eps));
                let mut ln = Node::new(
                    node.name.clone(),
                    "LayerNormalization",
                    node.opset.max(17),
                    attrs,
                    vec![x.clone(), gamma.clone(), beta.clone()],
                    vec![out.to_string()],
                )?;
                let merged: Vec<&Node> = nodes.iter().map(|&n| ctx.node(n)).collect();
                ln.fused_from = sources(&merged);
                if let Err(why) = verify(ctx, R, &ln, out) {
                    return Ok(Outcome::Refused(why));
                }
                return Ok(Outcome::Rewrite(Patch { remove: nodes, insert: vec![ln], ..Default::default() }));
            }
        }
        Ok(Outcome::NotApplicable)
    }
}
