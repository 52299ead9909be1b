use super::{f32_constant, f32_init, other_uses, refuse};
use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::{AttrValue, DType, Node, Result, Tensor};
use std::sync::Arc;

/// A per-output-channel affine map `y * scale[c] + shift[c]` to fold into a producer.
pub(super) struct ChannelAffine {
    pub scale: Vec<f64>,
    pub shift: Vec<f64>,
}

/// The parts of a patch that replace a Conv or Gemm.
pub(super) struct Folded {
    pub node: Node,
    pub initializers: Vec<(String, Arc<Tensor>)>,
}

/// Rewrites Conv or Gemm node `p` so that it computes `affine` applied to its output
/// per output channel, writing `out`; or says why it cannot. With `only_check`, stops
/// after the checks (before computing new weights) and returns `None`.
/// Conv: `W[m] *= scale[m]`, `B[m] = B[m] * scale[m] + shift[m]`. Gemm (`alpha A' B' + beta C`):
/// column `j` of `B'` scaled, `C' = beta * C * scale + shift` with `beta = 1`; C must not
/// vary along rows. Computed in f64, stored as f32.
pub(super) fn fold_into_producer(
    ctx: &Ctx,
    p: usize,
    affine: &ChannelAffine,
    out: &str,
    sources: &[(String, String)],
    only_check: bool,
) -> Result<std::result::Result<Option<Folded>, String>> {
    let prev = ctx.node(p);
    match prev.op_type.as_str() {
        "Conv" => fold_into_conv(ctx, prev, affine, out, sources, only_check),
        "Gemm" => fold_into_gemm(ctx, prev, affine, out, sources, only_check),
        other => Ok(Err(format!("'{}' is a {other}, not a Conv or Gemm", prev.name))),
    }
}

fn optional_input(node: &Node, k: usize) -> Option<&String> {
    node.inputs.get(k).filter(|v| !v.is_empty())
}

fn fold_into_conv(
    ctx: &Ctx,
    conv: &Node,
    affine: &ChannelAffine,
    out: &str,
    sources: &[(String, String)],
    only_check: bool,
) -> Result<std::result::Result<Option<Folded>, String>> {
    let (Some(x), Some(w_name)) = (optional_input(conv, 0), optional_input(conv, 1)) else {
        return Ok(Err(format!("Conv '{}' lacks its input or weights", conv.name)));
    };
    let w = match f32_constant(ctx, w_name, &format!("the weights of '{}'", conv.name)) {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let m = affine.scale.len();
    if w.shape().first() != Some(&m) || affine.shift.len() != m {
        return Ok(Err(format!("weights of shape {:?} do not have {m} output channels", w.shape())));
    }
    let bias = match optional_input(conv, 2) {
        None => None,
        Some(b) => match f32_constant(ctx, b, &format!("the bias of '{}'", conv.name)) {
            Ok(t) if t.shape() == [m] => Some(t.as_slice::<f32>()?),
            Ok(t) => return Ok(Err(format!("bias of shape {:?} does not match {m} channels", t.shape()))),
            Err(e) => return Ok(Err(e)),
        },
    };
    if only_check {
        return Ok(Ok(None));
    }
    let mut initializers = Vec::new();
    let w_input = if affine.scale.iter().all(|&s| s == 1.0) {
        w_name.clone()
    } else {
        let per = w.len() / m.max(1);
        let wd = w.as_slice::<f32>()?;
        let scaled: Vec<f32> = wd
            .chunks_exact(per.max(1))
            .zip(&affine.scale)
            .flat_map(|(row, &s)| row.iter().map(move |&v| (v as f64 * s) as f32))
            .collect();
        let init = f32_init(ctx, &format!("{}_w_folded", conv.name), w.shape(), scaled)?;
        let name = init.0.clone();
        initializers.push(init);
        name
    };
    let mut inputs = vec![x.clone(), w_input];
    if bias.is_some() || affine.shift.iter().any(|&s| s != 0.0) {
        let b: Vec<f32> = (0..m)
            .map(|c| {
                let b0 = bias.map_or(0.0, |b| b[c] as f64);
                (b0 * affine.scale[c] + affine.shift[c]) as f32
            })
            .collect();
        let init = f32_init(ctx, &format!("{}_b_folded", conv.name), &[m], b)?;
        inputs.push(init.0.clone());
        initializers.push(init);
    }
    let mut node = Node::new(conv.name.clone(), "Conv", conv.opset, conv.attrs.clone(), inputs, vec![out.to_string()])?;
    node.fused_from = sources.to_vec();
    Ok(Ok(Some(Folded { node, initializers })))
}

fn fold_into_gemm(
    ctx: &Ctx,
    gemm: &Node,
    affine: &ChannelAffine,
    out: &str,
    sources: &[(String, String)],
    only_check: bool,
) -> Result<std::result::Result<Option<Folded>, String>> {
    let (Some(a), Some(b_name)) = (optional_input(gemm, 0), optional_input(gemm, 1)) else {
        return Ok(Err(format!("Gemm '{}' lacks an input", gemm.name)));
    };
    let b = match f32_constant(ctx, b_name, &format!("matrix B of '{}'", gemm.name)) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    let trans_b = gemm.attrs.int_or("transB", 0)? != 0;
    let beta = gemm.attrs.float_or("beta", 1.0)? as f64;
    let n = affine.scale.len();
    let (rows, cols) = match b.shape() {
        [r, c] => (*r, *c),
        s => return Ok(Err(format!("matrix B of shape {s:?} is not 2-D"))),
    };
    if (if trans_b { rows } else { cols }) != n || affine.shift.len() != n {
        return Ok(Err(format!(
            "matrix B of shape {:?} (transB={}) does not have {n} columns",
            b.shape(),
            trans_b as u8
        )));
    }
    // C per output column (broadcast along rows), when present and used.
    let c_col: Option<Vec<f64>> = match optional_input(gemm, 2) {
        Some(_) if beta == 0.0 => None,
        None => None,
        Some(c) => {
            let t = match f32_constant(ctx, c, &format!("C of '{}'", gemm.name)) {
                Ok(t) => t,
                Err(e) => return Ok(Err(e)),
            };
            let s = t.shape();
            let per_col = s.len() <= 2
                && (s.len() < 2 || s[0] == 1)
                && match s.last() {
                    None => true,
                    Some(&d) => d == 1 || d == n,
                };
            if !per_col {
                return Ok(Err(format!("C of shape {s:?} varies along the rows, so it is not per output channel")));
            }
            let cd = t.as_slice::<f32>()?;
            let wide = s.last() == Some(&n) && n != 1;
            Some((0..n).map(|j| cd.get(if wide { j } else { 0 }).copied().unwrap_or(0.0) as f64).collect())
        }
    };
    if only_check {
        return Ok(Ok(None));
    }
    let mut initializers = Vec::new();
    let b_input = if affine.scale.iter().all(|&s| s == 1.0) {
        b_name.clone()
    } else {
        let bd = b.as_slice::<f32>()?;
        // Output column j is row j of B when transposed, else column j.
        let scaled: Vec<f32> = bd
            .iter()
            .enumerate()
            .map(|(idx, &v)| {
                let j = if trans_b { idx / cols.max(1) } else { idx % cols.max(1) };
                (v as f64 * affine.scale[j]) as f32
            })
            .collect();
        let init = f32_init(ctx, &format!("{}_b_folded", gemm.name), b.shape(), scaled)?;
        let name = init.0.clone();
        initializers.push(init);
        name
    };
    let c: Vec<f32> = (0..n)
        .map(|j| {
            let c0 = c_col.as_ref().map_or(0.0, |c| beta * c[j]);
            (c0 * affine.scale[j] + affine.shift[j]) as f32
        })
        .collect();
    let c_init = f32_init(ctx, &format!("{}_c_folded", gemm.name), &[n], c)?;
    let mut attrs = gemm.attrs.clone();
    attrs.insert("beta", AttrValue::Float(1.0));
    let inputs = vec![a.clone(), b_input, c_init.0.clone()];
    initializers.push(c_init);
    let mut node = Node::new(gemm.name.clone(), "Gemm", gemm.opset, attrs, inputs, vec![out.to_string()])?;
    node.fused_from = sources.to_vec();
    Ok(Ok(Some(Folded { node, initializers })))
}

/// Folds a Mul or Add by a per-output-channel constant (shape `[C, 1, ...]`, `[1, C, 1, ...]`
/// or a scalar) after a Conv with constant weights into the Conv's weights and bias.
pub struct FoldMulAddIntoConv;

/// The constant as one value per channel of an output of shape `out` (`[N, C, ...]`), or
/// why it is not: it must broadcast to `out` without changing it and vary only along axis 1.
fn per_channel(t: &Tensor, out: &[usize]) -> std::result::Result<Vec<f64>, String> {
    let s = t.shape();
    let bad = || format!("constant of shape {s:?} is not per channel of an output {out:?}");
    if s.len() > out.len() || out.len() < 2 {
        return Err(bad());
    }
    let offset = out.len() - s.len();
    let mut channel_wide = false;
    for (k, &d) in s.iter().enumerate() {
        let axis = offset + k;
        if axis == 1 && d == out[1] {
            channel_wide = d != 1;
        } else if d != 1 {
            return Err(bad());
        }
    }
    let v = t.to_f64_vec();
    let c = out[1];
    let vals: Vec<f64> = if channel_wide { v } else { vec![v.first().copied().unwrap_or(0.0); c] };
    if vals.len() != c {
        return Err(bad());
    }
    if let Some(k) = vals.iter().position(|x| !x.is_finite()) {
        return Err(format!("constant is not finite at channel {k}"));
    }
    Ok(vals)
}

impl Rule for FoldMulAddIntoConv {
    fn name(&self) -> &'static str {
        "fold_mul_add_into_conv"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        let is_mul = match node.op_type.as_str() {
            "Mul" => true,
            "Add" => false,
            _ => return Ok(Outcome::NotApplicable),
        };
        let (Some(a), Some(b), Some(y)) = (node.inputs.first(), node.inputs.get(1), node.outputs.first()) else {
            return Ok(Outcome::NotApplicable);
        };
        // The Conv side and the constant side (Mul and Add commute).
        let conv_of = |v: &str| ctx.producer(v).filter(|&p| ctx.node(p).op_type == "Conv");
        let (p, x, k) = match (conv_of(a), conv_of(b)) {
            (Some(p), _) if ctx.constant(b).is_some() => (p, a, b),
            (_, Some(p)) if ctx.constant(a).is_some() => (p, b, a),
            // A residual Add or a runtime scale is not a candidate.
            _ => return Ok(Outcome::NotApplicable),
        };
        let conv = ctx.node(p);
        if let Some(why) = other_uses(ctx, x, i) {
            return refuse(format!("cannot fold into Conv '{}': {why}", conv.name));
        }
        let (Some(fx), Some(fy)) = (ctx.fact(x), ctx.fact(y)) else { return Ok(Outcome::NotApplicable) };
        if fx.dtype != DType::F32 || fy.dtype != DType::F32 {
            return refuse(format!("'{x}' is {}; only f32 is folded", fx.dtype));
        }
        if fx.shape != fy.shape {
            return refuse(format!("the constant broadcasts the output {:?} to {:?}", fx.shape, fy.shape));
        }
        let t = match f32_constant(ctx, k, "the constant") {
            Ok(t) => t,
            Err(e) => return refuse(e),
        };
        let vals = match per_channel(t, &fx.shape) {
            Ok(v) => v,
            Err(e) => return refuse(e),
        };
        let c = vals.len();
        let affine = if is_mul {
            ChannelAffine { scale: vals, shift: vec![0.0; c] }
        } else {
            ChannelAffine { scale: vec![1.0; c], shift: vals }
        };
        let mut sources = conv.sources();
        sources.extend(node.sources());
        match fold_into_producer(ctx, p, &affine, y, &sources, false)? {
            Ok(None) => Ok(Outcome::NotApplicable),
            Ok(Some(f)) => Ok(Outcome::Rewrite(Patch {
                remove: vec![p, i],
                insert: vec![f.node],
                initializers: f.initializers,
                ..Default::default()
            })),
            Err(e) => refuse(e),
        }
    }
}
