use super::affine::{fold_into_producer, ChannelAffine};
use super::{f32_init, other_uses, refuse};
use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::{Attrs, DType, Node, Result};

/// BatchNormalization (inference) as `y = x * scale + shift`, per channel or, for the
/// `spatial = 0` layout of opsets 7-8, per activation.
struct BnAffine {
    affine: ChannelAffine,
    per_channel: bool,
}

/// The BatchNormalization node `bn` as an affine map, or why it cannot be rewritten.
fn bn_affine(ctx: &Ctx, bn: &Node) -> Result<std::result::Result<BnAffine, String>> {
    let names: Vec<&str> = (0..5).filter_map(|k| bn.inputs.get(k)).map(String::as_str).collect();
    if names.len() < 5 || names.iter().any(|n| n.is_empty()) {
        return Ok(Err("it lacks one of its five inputs".into()));
    }
    if let Some(o) =
        bn.outputs.iter().skip(1).find(|o| !o.is_empty() && (ctx.is_graph_output(o) || !ctx.consumers(o).is_empty()))
    {
        return Ok(Err(format!("its training output '{o}' is used")));
    }
    let Some(x) = ctx.fact(names[0]) else { return Ok(Err(format!("nothing is known of its input '{}'", names[0]))) };
    if x.dtype != DType::F32 {
        return Ok(Err(format!("input '{}' is {}; only f32 is rewritten", names[0], x.dtype)));
    }
    if x.shape.len() < 2 {
        return Ok(Err(format!("input of shape {:?} has no channel axis", x.shape)));
    }
    let eps = bn.attrs.float_or("epsilon", 1e-5)? as f64;
    let what = ["scale", "bias B", "mean", "variance"];
    let mut params = Vec::with_capacity(4);
    for (name, what) in names[1..].iter().zip(what) {
        match super::f32_constant(ctx, name, what) {
            Ok(t) => params.push(t),
            Err(e) => return Ok(Err(e)),
        }
    }
    let c = x.shape[1];
    let per_channel = params.iter().all(|t| t.shape() == [c]);
    if !per_channel && !params.iter().all(|t| t.shape() == &x.shape[1..]) {
        return Ok(Err(format!("parameters do not match the input {:?}", x.shape)));
    }
    let [s, b, mean, var] = [0, 1, 2, 3].map(|k| params[k].to_f64_vec());
    let mut affine = ChannelAffine { scale: Vec::with_capacity(s.len()), shift: Vec::with_capacity(s.len()) };
    for k in 0..s.len() {
        let a = s[k] / (var[k] + eps).sqrt();
        let sh = b[k] - mean[k] * a;
        if !a.is_finite() || !sh.is_finite() {
            return Ok(Err(format!(
                "entry {k} gives a non-finite scale or shift (variance {} + epsilon {eps})",
                var[k]
            )));
        }
        affine.scale.push(a);
        affine.shift.push(sh);
    }
    Ok(Ok(BnAffine { affine, per_channel }))
}

/// Folds an inference BatchNormalization into the weights and bias of the Conv or Gemm
/// before it, when that node's output feeds only the BatchNormalization.
pub struct FoldBatchNorm;

impl Rule for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold_batchnorm"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        FoldBatchNorm::run(ctx, i, false)
    }
}

impl FoldBatchNorm {
    /// Whether the rewrite would apply to node `i` (without computing new weights).
    fn foldable(ctx: &Ctx, i: usize) -> Result<bool> {
        Ok(matches!(FoldBatchNorm::run(ctx, i, true)?, Outcome::Rewrite(_)))
    }

    /// The rewrite; with `only_check`, an empty patch (seen only by `foldable`) when it applies.
    fn run(ctx: &Ctx, i: usize, only_check: bool) -> Result<Outcome> {
        let bn = ctx.node(i);
        if bn.op_type != "BatchNormalization" {
            return Ok(Outcome::NotApplicable);
        }
        let (Some(x), Some(y)) = (bn.inputs.first(), bn.outputs.first()) else { return Ok(Outcome::NotApplicable) };
        let Some(p) = ctx.producer(x).filter(|&p| matches!(ctx.node(p).op_type.as_str(), "Conv" | "Gemm")) else {
            return Ok(Outcome::NotApplicable);
        };
        let prev = ctx.node(p);
        if let Some(why) = other_uses(ctx, x, i) {
            return refuse(format!("cannot fold into {} '{}': {why}", prev.op_type, prev.name));
        }
        let bn_map = match bn_affine(ctx, bn)? {
            Ok(m) => m,
            Err(e) => return refuse(e),
        };
        if !bn_map.per_channel {
            return refuse("its parameters are per activation (spatial=0), not per channel");
        }
        let mut sources = prev.sources();
        sources.extend(bn.sources());
        match fold_into_producer(ctx, p, &bn_map.affine, y, &sources, only_check)? {
            Ok(None) if only_check => Ok(Outcome::Rewrite(Patch::default())),
            Ok(None) => Ok(Outcome::NotApplicable),
            Ok(Some(f)) => Ok(Outcome::Rewrite(Patch {
                remove: vec![p, i],
                insert: vec![f.node],
                initializers: f.initializers,
                ..Default::default()
            })),
            Err(e) => refuse(format!("cannot fold into {} '{}': {e}", prev.op_type, prev.name)),
        }
    }
}

/// Rewrites a BatchNormalization that cannot be folded into its producer as `Mul` and
/// `Add` by constants shaped `[C, 1, ...]` (broadcasting over `[N, C, ...]`), which later
/// rules can fold or fuse. Exact: BatchNormalization itself computes `x * scale + shift`
/// with both rounded to f32.
pub struct BatchNormToScaleShift;

impl Rule for BatchNormToScaleShift {
    fn name(&self) -> &'static str {
        "batchnorm_to_scale_shift"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let bn = ctx.node(i);
        if bn.op_type != "BatchNormalization" {
            return Ok(Outcome::NotApplicable);
        }
        let (Some(x), Some(y)) = (bn.inputs.first(), bn.outputs.first()) else { return Ok(Outcome::NotApplicable) };
        if FoldBatchNorm::foldable(ctx, i)? {
            let p = ctx.producer(x).map_or("", |p| ctx.node(p).name.as_str());
            return refuse(format!("foldable into '{p}' by fold_batchnorm, which is better"));
        }
        let m = match bn_affine(ctx, bn)? {
            Ok(m) => m,
            Err(e) => return refuse(e),
        };
        if bn.opset < 7 {
            return refuse(format!("opset {} has no broadcasting Mul and Add (needs opset >= 7)", bn.opset));
        }
        let Some(fx) = ctx.fact(x) else { return Ok(Outcome::NotApplicable) };
        // [C, 1, ...] right-aligns with [N, C, spatial...]; per-activation params are [C, spatial...].
        let shape: Vec<usize> = if m.per_channel {
            let mut s = vec![fx.shape[1]];
            s.resize(fx.shape.len() - 1, 1);
            s
        } else {
            fx.shape[1..].to_vec()
        };
        let to_f32 = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let scale = f32_init(ctx, &format!("{}_scale", bn.name), &shape, to_f32(&m.affine.scale))?;
        let shift = f32_init(ctx, &format!("{}_shift", bn.name), &shape, to_f32(&m.affine.shift))?;
        let scaled = ctx.fresh_name(&format!("{}_scaled", bn.name));
        let mul_name = ctx.fresh_name(&format!("{}_mul", bn.name));
        let add_name = ctx.fresh_name(&format!("{}_add", bn.name));
        let mut mul =
            Node::new(mul_name, "Mul", bn.opset, Attrs::new(), vec![x.clone(), scale.0.clone()], vec![scaled.clone()])?;
        let mut add =
            Node::new(add_name, "Add", bn.opset, Attrs::new(), vec![scaled, shift.0.clone()], vec![y.clone()])?;
        mul.fused_from = bn.sources();
        add.fused_from = bn.sources();
        Ok(Outcome::Rewrite(Patch {
            remove: vec![i],
            insert: vec![mul, add],
            initializers: vec![scale, shift],
            ..Default::default()
        }))
    }
}
