//! Horizontal fusion: sibling convolutions reading the same input become one wider
//! convolution (weights and biases concatenated along output channels) followed by a
//! Split that gives each old output back under its old name. One pass over the input
//! instead of several, and at batch 1 the builder turns the Split into views (no copy).
//! Fused convolutions merge too when their epilogues are the same elementwise steps
//! without extra inputs (an activation acts on each channel alike).

use crate::{Ctx, Outcome, Patch, Rule};
use sinter_ir::ops::fused::{EPILOGUE, EPILOGUE_PARAMS};
use sinter_ir::{AttrValue, Attrs, DType, Node, Result, Tensor};
use std::sync::Arc;

/// Merges sibling `Conv`s (or `FusedConv`s) that share their input X (see the module doc).
pub struct HorizontalConv;

/// The op types this rule merges.
fn is_conv(op_type: &str) -> bool {
    matches!(op_type, "Conv" | "FusedConv")
}

/// What must be equal for two convolutions to share one kernel: every geometry attribute,
/// with ONNX defaults filled in so `strides` omitted and `strides=[1,1]` compare equal.
#[derive(Debug, PartialEq)]
struct Geometry {
    kernel: Vec<usize>,
    strides: Vec<i64>,
    pads: Vec<i64>,
    dilations: Vec<i64>,
    auto_pad: String,
    group: i64,
    /// The op type and, for fused convolutions, the epilogue attributes.
    op_type: String,
    epilogue: (Option<AttrValue>, Option<AttrValue>),
}

/// A Conv that could join a horizontal group: its geometry and constant operands.
struct Candidate<'a> {
    index: usize,
    node: &'a Node,
    geom: Geometry,
    w: &'a Arc<Tensor>,
    b: Option<&'a Arc<Tensor>>,
}

/// `Ok(candidate)`, or `Err(reason)` when `index` is a Conv on its input that cannot be merged.
fn candidate<'a>(ctx: &Ctx<'a>, index: usize) -> Result<std::result::Result<Candidate<'a>, String>> {
    let node = ctx.node(index);
    let name = &node.name;
    let [x, w_name, rest @ ..] = &node.inputs[..] else {
        return Ok(Err(format!("'{name}' has fewer than two inputs")));
    };
    let (Some(xf), Some(w)) = (ctx.fact(x), ctx.constant(w_name)) else {
        return Ok(Err(format!("'{name}' has non-constant weights '{w_name}'")));
    };
    if xf.dtype != DType::F32 || w.dtype() != DType::F32 {
        return Ok(Err(format!("'{name}' is {} (only f32 is merged)", xf.dtype)));
    }
    let b = match rest.first().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => match ctx.constant(b) {
            Some(t) if t.dtype() == DType::F32 && t.shape() == [w.shape()[0]] => Some(t),
            _ => return Ok(Err(format!("'{name}' has a bias '{b}' that is not a constant f32 vector"))),
        },
    };
    if node.inputs.len() > 3 {
        return Ok(Err(format!("'{name}' has an epilogue reading extra inputs")));
    }
    if node.outputs.len() != 1 || node.outputs[0].is_empty() {
        return Ok(Err(format!("'{name}' does not have exactly one output")));
    }
    let rank = w.shape().len();
    if rank < 3 || xf.shape.len() != rank {
        return Ok(Err(format!("'{name}' has weights of shape {:?} for an input of shape {:?}", w.shape(), xf.shape)));
    }
    let spatial = rank - 2;
    let a = &node.attrs;
    let ints = |key: &str, default: i64| -> Result<Vec<i64>> {
        Ok(a.ints(key)?
            .map(<[i64]>::to_vec)
            .unwrap_or_else(|| vec![default; if key == "pads" { 2 * spatial } else { spatial }]))
    };
    let geom = Geometry {
        kernel: w.shape()[2..].to_vec(),
        strides: ints("strides", 1)?,
        pads: ints("pads", 0)?,
        dilations: ints("dilations", 1)?,
        auto_pad: a.string_or("auto_pad", "NOTSET")?.to_string(),
        group: a.int_or("group", 1)?,
        op_type: node.op_type.clone(),
        epilogue: (a.get(EPILOGUE).cloned(), a.get(EPILOGUE_PARAMS).cloned()),
    };
    if geom.group != 1 {
        return Ok(Err(format!("'{name}' is a grouped convolution (group={})", geom.group)));
    }
    Ok(Ok(Candidate { index, node, geom, w, b }))
}

/// Why `other` cannot share a kernel with `me`, if it cannot.
fn mismatch(me: &Candidate, other: &Candidate) -> Option<String> {
    let (a, b) = (&me.geom, &other.geom);
    let field = if a.op_type != b.op_type {
        format!("op {} vs {}", a.op_type, b.op_type)
    } else if a.epilogue != b.epilogue {
        format!("epilogue {:?} vs {:?}", a.epilogue.0, b.epilogue.0)
    } else if a.kernel != b.kernel {
        format!("kernel {:?} vs {:?}", a.kernel, b.kernel)
    } else if a.strides != b.strides {
        format!("strides {:?} vs {:?}", a.strides, b.strides)
    } else if a.pads != b.pads {
        format!("pads {:?} vs {:?}", a.pads, b.pads)
    } else if a.dilations != b.dilations {
        format!("dilations {:?} vs {:?}", a.dilations, b.dilations)
    } else if a.auto_pad != b.auto_pad {
        format!("auto_pad {} vs {}", a.auto_pad, b.auto_pad)
    } else if me.w.shape()[1..] != other.w.shape()[1..] {
        format!("weights {:?} vs {:?}", me.w.shape(), other.w.shape())
    } else {
        return None;
    };
    Some(format!("sibling '{}' differs: {field}", other.node.name))
}

/// `parts` concatenated along axis 0 (all f32, equal trailing dims).
fn concat0(parts: &[&Tensor]) -> Result<Tensor> {
    let mut data = Vec::new();
    for p in parts {
        data.extend_from_slice(p.as_slice::<f32>()?);
    }
    let mut shape = parts.first().map(|p| p.shape().to_vec()).unwrap_or_default();
    if let Some(d) = shape.first_mut() {
        *d = parts.iter().map(|p| p.shape()[0]).sum();
    }
    Tensor::from_vec(&shape, data)
}

/// Node `i`'s first input and the other nodes of the same kind reading it as their first
/// input, when node `i` is of that kind and has any.
fn siblings<'a>(ctx: &Ctx<'a>, i: usize, is_kind: fn(&str) -> bool) -> Option<(&'a String, Vec<usize>)> {
    let node = ctx.node(i);
    if !is_kind(&node.op_type) {
        return None;
    }
    let x = node.inputs.first().filter(|x| !x.is_empty())?;
    let siblings: Vec<usize> = ctx
        .consumers(x)
        .iter()
        .copied()
        .filter(|&j| j != i && is_kind(&ctx.node(j).op_type) && ctx.node(j).inputs.first() == Some(x))
        .collect();
    (!siblings.is_empty()).then_some((x, siblings))
}

impl Rule for HorizontalConv {
    fn name(&self) -> &'static str {
        "horizontal_conv"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        let Some((x, siblings)) = siblings(ctx, i, is_conv) else { return Ok(Outcome::NotApplicable) };
        let me = match candidate(ctx, i)? {
            Ok(c) => c,
            Err(reason) => return Ok(Outcome::Refused(reason)),
        };
        let mut group = vec![me];
        let mut reasons = Vec::new();
        for j in siblings {
            match candidate(ctx, j)? {
                Ok(c) => match mismatch(&group[0], &c) {
                    None => group.push(c),
                    Some(r) => reasons.push(r),
                },
                Err(r) => reasons.push(format!("sibling {r}")),
            }
        }
        if group.len() < 2 {
            return Ok(Outcome::Refused(reasons.join("; ")));
        }
        // The group is rewritten once, from its first node.
        if group.iter().any(|c| ctx.before(c.index, i)) {
            return Ok(Outcome::NotApplicable);
        }
        group.sort_by(|a, b| ctx.order(a.index, b.index));

        let ws: Vec<&Tensor> = group.iter().map(|c| c.w.as_ref()).collect();
        let weights = concat0(&ws)?;
        let with_bias = group.iter().any(|c| c.b.is_some());
        let bias = if with_bias {
            let zeros: Vec<Tensor> = group.iter().map(|c| Tensor::zeros(DType::F32, &[c.w.shape()[0]])).collect();
            let parts: Vec<&Tensor> =
                group.iter().zip(&zeros).map(|(c, z)| c.b.map(|b| b.as_ref()).unwrap_or(z)).collect();
            Some(concat0(&parts)?)
        } else {
            None
        };

        let base = ctx.fresh_name(&format!("{}_horizontal", node.name));
        let w_name = ctx.fresh_name(&format!("{base}_w"));
        let b_name = ctx.fresh_name(&format!("{base}_b"));
        let y_name = ctx.fresh_name(&format!("{base}_y"));
        let sizes_name = ctx.fresh_name(&format!("{base}_sizes"));
        let split_name = ctx.fresh_name(&format!("{base}_split"));
        let mut inputs = vec![x.clone(), w_name.clone()];
        let mut initializers = vec![(w_name, Arc::new(weights))];
        if let Some(b) = bias {
            inputs.push(b_name.clone());
            initializers.push((b_name, Arc::new(b)));
        }
        let mut conv = Node::new(base, &node.op_type, node.opset, node.attrs.clone(), inputs, vec![y_name.clone()])?;
        conv.fused_from = group.iter().flat_map(|c| c.node.sources()).collect();

        let sizes: Vec<i64> = group.iter().map(|c| c.w.shape()[0] as i64).collect();
        let outputs: Vec<String> = group.iter().map(|c| c.node.outputs[0].clone()).collect();
        let mut split_attrs = Attrs::new().with("axis", AttrValue::Int(1));
        let mut split_inputs = vec![y_name];
        if node.opset >= 13 {
            split_inputs.push(sizes_name.clone());
            let n = sizes.len();
            initializers.push((sizes_name, Arc::new(Tensor::from_vec(&[n], sizes)?)));
        } else {
            split_attrs.insert("split", AttrValue::Ints(sizes));
        }
        let split = Node::new(split_name, "Split", node.opset, split_attrs, split_inputs, outputs)?;
        Ok(Outcome::Rewrite(Patch {
            remove: group.iter().map(|c| c.index).collect(),
            insert: vec![conv, split],
            rewire: Vec::new(),
            initializers,
        }))
    }
}

/// Merges sibling `MatMul`s or `Gemm`s (plain or fused, all attributes equal) that share
/// their input A and multiply it by constant 2-D matrices: B's are concatenated along N
/// (rows of B when Gemm's transB=1), biases likewise, and a Split on the last axis gives
/// each old output back.
pub struct HorizontalMatMul;

fn is_matmul(op_type: &str) -> bool {
    matches!(op_type, "MatMul" | "FusedMatMul" | "Gemm" | "FusedGemm")
}

/// A MatMul that could join a group: its B, optional bias, and what must match.
struct MatMulCandidate<'a> {
    index: usize,
    node: &'a Node,
    b: &'a Arc<Tensor>,
    bias: Option<&'a Arc<Tensor>>,
    /// Gemm with transB=1: B is [N, K].
    trans_b: bool,
    n: usize,
}

/// `Ok(candidate)`, or `Err(reason)` when `index` is a MatMul on A that cannot be merged.
fn matmul_candidate<'a>(ctx: &Ctx<'a>, index: usize) -> std::result::Result<MatMulCandidate<'a>, String> {
    let node = ctx.node(index);
    let name = &node.name;
    let [a, b_name, rest @ ..] = &node.inputs[..] else {
        return Err(format!("'{name}' has fewer than two inputs"));
    };
    let (Some(af), Some(b)) = (ctx.fact(a), ctx.constant(b_name)) else {
        return Err(format!("'{name}' has a non-constant B '{b_name}'"));
    };
    if af.dtype != DType::F32 || b.dtype() != DType::F32 {
        return Err(format!("'{name}' is {} (only f32 is merged)", af.dtype));
    }
    let (&[b0, b1], Some(&ak)) = (b.shape(), af.shape.last()) else {
        return Err(format!("'{name}' has a B of shape {:?} (only 2-D B is merged)", b.shape()));
    };
    let gemm = node.op_type.ends_with("Gemm");
    let flag = |key: &str| gemm && node.attrs.int_or(key, 0).map_or(true, |v| v != 0);
    let trans_b = flag("transB");
    if flag("transA") {
        return Err(format!("'{name}' has transA=1"));
    }
    let (k, n) = if trans_b { (b1, b0) } else { (b0, b1) };
    if af.shape.len() < 2 || (gemm && af.shape.len() != 2) || ak != k {
        return Err(format!("'{name}' multiplies A {:?} by B {:?}", af.shape, b.shape()));
    }
    if rest.len() > 1 {
        return Err(format!("'{name}' has an epilogue reading extra inputs"));
    }
    let bias = match rest.first().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match ctx.constant(s) {
            Some(t) if t.dtype() == DType::F32 && t.shape() == [n] => Some(t),
            _ => return Err(format!("'{name}' has a bias '{s}' that is not a constant f32 vector of {n}")),
        },
    };
    if node.outputs.len() != 1 || node.outputs[0].is_empty() {
        return Err(format!("'{name}' does not have exactly one output"));
    }
    Ok(MatMulCandidate { index, node, b, bias, trans_b, n })
}

/// `parts` (f32 matrices with equal row counts) side by side: concatenation along axis 1.
fn concat_columns(parts: &[&Tensor]) -> Result<Tensor> {
    let rows = parts.first().map_or(0, |p| p.shape()[0]);
    let cols: usize = parts.iter().map(|p| p.shape()[1]).sum();
    let mut data = Vec::with_capacity(rows * cols);
    let slices = parts.iter().map(|p| p.as_slice::<f32>()).collect::<Result<Vec<_>>>()?;
    for r in 0..rows {
        for (p, s) in parts.iter().zip(&slices) {
            let n = p.shape()[1];
            data.extend_from_slice(&s[r * n..(r + 1) * n]);
        }
    }
    Tensor::from_vec(&[rows, cols], data)
}

impl Rule for HorizontalMatMul {
    fn name(&self) -> &'static str {
        "horizontal_matmul"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        let Some((a, siblings)) = siblings(ctx, i, is_matmul) else { return Ok(Outcome::NotApplicable) };
        let me = match matmul_candidate(ctx, i) {
            Ok(c) => c,
            Err(reason) => return Ok(Outcome::Refused(reason)),
        };
        let mut group = vec![me];
        let mut reasons = Vec::new();
        for j in siblings {
            match matmul_candidate(ctx, j) {
                Ok(c) => {
                    let first = &group[0];
                    let (fa, ca) = (&first.node.attrs.0, &c.node.attrs.0);
                    let why = if c.node.op_type != first.node.op_type {
                        Some(format!("op {} vs {}", first.node.op_type, c.node.op_type))
                    } else if fa != ca {
                        let key = fa.keys().chain(ca.keys()).find(|k| fa.get(*k) != ca.get(*k));
                        Some(format!(
                            "attribute '{}' {:?} vs {:?}",
                            key.map_or("", |k| k.as_str()),
                            key.and_then(|k| fa.get(k)),
                            key.and_then(|k| ca.get(k))
                        ))
                    } else {
                        None
                    };
                    match why {
                        None => group.push(c),
                        Some(r) => reasons.push(format!("sibling '{}' differs: {r}", c.node.name)),
                    }
                }
                Err(r) => reasons.push(format!("sibling {r}")),
            }
        }
        if group.len() < 2 {
            return Ok(Outcome::Refused(reasons.join("; ")));
        }
        if group.iter().any(|c| ctx.before(c.index, i)) {
            return Ok(Outcome::NotApplicable);
        }
        group.sort_by(|a, b| ctx.order(a.index, b.index));

        let bs: Vec<&Tensor> = group.iter().map(|c| c.b.as_ref()).collect();
        // Group members have equal attributes, so equal transB.
        let b = if group[0].trans_b { concat0(&bs)? } else { concat_columns(&bs)? };
        let bias = if group.iter().any(|c| c.bias.is_some()) {
            let zeros: Vec<Tensor> = group.iter().map(|c| Tensor::zeros(DType::F32, &[c.n])).collect();
            let parts: Vec<&Tensor> =
                group.iter().zip(&zeros).map(|(c, z)| c.bias.map(|b| b.as_ref()).unwrap_or(z)).collect();
            Some(concat0(&parts)?)
        } else {
            None
        };
        let rank = ctx.fact(a).map_or(2, |f| f.shape.len());
        let base = ctx.fresh_name(&format!("{}_horizontal", node.name));
        let b_name = ctx.fresh_name(&format!("{base}_b"));
        let bias_name = ctx.fresh_name(&format!("{base}_bias"));
        let y_name = ctx.fresh_name(&format!("{base}_y"));
        let sizes_name = ctx.fresh_name(&format!("{base}_sizes"));
        let split_name = ctx.fresh_name(&format!("{base}_split"));
        let mut inputs = vec![a.clone(), b_name.clone()];
        let mut initializers = vec![(b_name, Arc::new(b))];
        if let Some(t) = bias {
            inputs.push(bias_name.clone());
            initializers.push((bias_name, Arc::new(t)));
        }
        let mut mm = Node::new(base, &node.op_type, node.opset, node.attrs.clone(), inputs, vec![y_name.clone()])?;
        mm.fused_from = group.iter().flat_map(|c| c.node.sources()).collect();

        let sizes: Vec<i64> = group.iter().map(|c| c.n as i64).collect();
        let outputs: Vec<String> = group.iter().map(|c| c.node.outputs[0].clone()).collect();
        let mut split_attrs = Attrs::new().with("axis", AttrValue::Int(rank as i64 - 1));
        let mut split_inputs = vec![y_name];
        if node.opset >= 13 {
            split_inputs.push(sizes_name.clone());
            let n = sizes.len();
            initializers.push((sizes_name, Arc::new(Tensor::from_vec(&[n], sizes)?)));
        } else {
            split_attrs.insert("split", AttrValue::Ints(sizes));
        }
        let split = Node::new(split_name, "Split", node.opset, split_attrs, split_inputs, outputs)?;
        Ok(Outcome::Rewrite(Patch {
            remove: group.iter().map(|c| c.index).collect(),
            insert: vec![mm, split],
            rewire: Vec::new(),
            initializers,
        }))
    }
}
