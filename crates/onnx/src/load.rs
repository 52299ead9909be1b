//! ModelProto -> [`Graph`]: opset selection, the unsupported-op report, value infos,
//! initializers and `Constant` nodes (both become initializers), attributes and op building.

use crate::proto::{attribute_type as at, tensor_shape_proto::dimension, type_proto, AttributeProto, GraphProto};
use crate::proto::{ModelProto, NodeProto, ValueInfoProto};
use crate::tensor::{decode, unsupported_dtype};
use crate::{OnnxError, UnsupportedOp};
use prost::Message;
use sinter_ir::{check, ops, AttrValue, Attrs, DType, Dim, Graph, IrError, Node, Tensor, ValueInfo};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Default-domain opsets Sinter implements.
pub const MIN_OPSET: i64 = 7;
/// Opset 22 only added bfloat16 to ops' type lists over 21, so for the types Sinter
/// supports its models mean exactly what they mean at 21.
pub const MAX_OPSET: i64 = 22;

/// An imported model.
#[derive(Clone, Debug)]
pub struct Model {
    pub graph: Graph,
    /// The opset version of the default ONNX domain.
    pub opset: i64,
    pub ir_version: i64,
    /// `producer_name` and `producer_version`, e.g. "pytorch 2.3.0".
    pub producer: String,
}

/// Loads an ONNX model file; external data is resolved relative to the file's directory.
pub fn load_model(path: &Path) -> Result<Model, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io { path: path.to_path_buf(), source })?;
    // The file's bytes go before the weights are converted, to keep peak memory down.
    let model = decode_model(&bytes, &format!("'{}'", path.display()))?;
    drop(bytes);
    convert_model(model, Some(model_dir(path)))
}

/// Loads a serialized ONNX model. `base_dir` resolves external data; without it,
/// a model with external data is an error.
pub fn load_model_bytes(bytes: &[u8], base_dir: Option<&Path>) -> Result<Model, OnnxError> {
    convert_model(decode_model(bytes, "the input")?, base_dir)
}

/// The directory external data is relative to; a bare file name's parent is "", not ".".
fn model_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Decodes the protobuf; `what` names the source in errors.
fn decode_model(bytes: &[u8], what: &str) -> Result<ModelProto, OnnxError> {
    let not_onnx = |detail: &str| OnnxError::NotOnnx { what: what.to_string(), kind: "model", detail: detail.into() };
    if bytes.is_empty() {
        return Err(not_onnx("it is empty"));
    }
    let model = ModelProto::decode(bytes).map_err(|e| not_onnx(&e.to_string()))?;
    // Many byte strings happen to parse as protobuf; a model always has a graph.
    if model.graph.is_none() {
        return Err(not_onnx("it has no graph"));
    }
    Ok(model)
}

fn convert_model(mut model: ModelProto, base_dir: Option<&Path>) -> Result<Model, OnnxError> {
    let opset = default_opset(&model)?;
    let graph = model.graph.take().unwrap_or_default();
    let producer = [model.producer_name.as_deref(), model.producer_version.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Model {
        graph: convert_graph(graph, opset, base_dir)?,
        opset,
        ir_version: model.ir_version.unwrap_or(0),
        producer,
    })
}

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// The opset version imported for the default domain, checked against what Sinter implements.
fn default_opset(model: &ModelProto) -> Result<i64, OnnxError> {
    let mut found: Option<i64> = None;
    for o in model.opset_import.iter().filter(|o| is_default_domain(o.domain.as_deref().unwrap_or(""))) {
        let v = o.version.unwrap_or(0);
        match found {
            Some(f) if f != v => {
                return Err(OnnxError::Opset(format!(
                    "the model imports the default ONNX domain twice, as opsets {f} and {v}"
                )))
            }
            _ => found = Some(v),
        }
    }
    let v = found.ok_or_else(|| {
        OnnxError::Opset("the model imports no opset of the default ONNX domain (\"\" or \"ai.onnx\")".into())
    })?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&v) {
        return Err(OnnxError::Opset(format!(
            "opset {v} of the default ONNX domain is not supported (Sinter supports opsets {MIN_OPSET} to {MAX_OPSET})"
        )));
    }
    Ok(v)
}

/// Takes the graph by value so that each initializer's proto bytes are freed once converted.
fn convert_graph(mut g: GraphProto, opset: i64, base_dir: Option<&Path>) -> Result<Graph, OnnxError> {
    if !g.sparse_initializer.is_empty() {
        return Err(OnnxError::Model("the graph has sparse initializers, which Sinter does not support".into()));
    }
    let names = node_names(&g.node)?;
    // Report every unsupported op at once, before decoding any weights.
    check_ops(&g.node, &names)?;

    let inputs = g.input.iter().map(|v| value_info(v, "graph input")).collect::<Result<Vec<_>, _>>()?;
    let outputs = g.output.iter().map(|v| value_info(v, "graph output")).collect::<Result<Vec<_>, _>>()?;

    let mut initializers = BTreeMap::new();
    for t in std::mem::take(&mut g.initializer) {
        let name = t.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(OnnxError::Model("the graph has an initializer without a name".into()));
        }
        if initializers.contains_key(name) {
            return Err(OnnxError::Model(format!("initializer '{name}' is defined twice")));
        }
        let tensor = decode(&t, base_dir, &format!("initializer '{name}'"))?;
        initializers.insert(name.to_string(), Arc::new(tensor));
    }

    let mut nodes = Vec::with_capacity(g.node.len());
    for (n, name) in g.node.iter().zip(names) {
        let op_type = n.op_type.as_deref().unwrap_or("");
        let mut attrs = node_attrs(n, &name, op_type, base_dir)?;
        if op_type == "Split" && !attrs.contains("split") && !attrs.contains("num_outputs") {
            // Before opset 18 an even Split makes as many parts as the node has outputs.
            attrs.insert("num_outputs", AttrValue::Int(n.output.len() as i64));
        }
        if op_type == "Constant" && is_default_domain(n.domain.as_deref().unwrap_or("")) {
            let (output, tensor) = constant(n, &name, attrs)?;
            if initializers.contains_key(&output) || inputs.iter().any(|i| i.name == output) {
                return Err(OnnxError::Model(format!(
                    "node '{name}' (Constant) defines '{output}', which is already a graph input or initializer"
                )));
            }
            initializers.insert(output, Arc::new(tensor));
            continue;
        }
        let op = ops::build(op_type, &attrs, opset).map_err(|e| e.in_node(&name, op_type))?;
        nodes.push(Node {
            name,
            op_type: op_type.to_string(),
            opset,
            attrs,
            inputs: n.input.clone(),
            outputs: n.output.clone(),
            op,
            fused_from: Vec::new(),
        });
    }

    let mut graph =
        Graph { name: g.name.unwrap_or_default(), inputs, outputs, initializers, nodes, source_nodes: g.node.len() };
    check::toposort(&mut graph)?;
    check::check(&graph)?;
    Ok(graph)
}

/// A unique name per node, since errors and later stages refer to nodes by name. Unnamed
/// nodes get `{op_type}_{index}`; a name already taken (a duplicate in the model, or a
/// generated name some node uses explicitly) gets a `_k` suffix.
fn node_names(nodes: &[NodeProto]) -> Result<Vec<String>, OnnxError> {
    let explicit: HashSet<&str> = nodes.iter().filter_map(|n| n.name.as_deref()).filter(|s| !s.is_empty()).collect();
    let mut used: HashSet<String> = HashSet::with_capacity(nodes.len());
    // Next suffix to try per base name, so many duplicates stay linear.
    let mut next_suffix: HashMap<String, usize> = HashMap::new();
    let mut names = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let op_type = n.op_type.as_deref().unwrap_or("");
        if op_type.is_empty() {
            return Err(OnnxError::Model(format!("node {i} ('{}') has no op_type", n.name.as_deref().unwrap_or(""))));
        }
        let given = n.name.as_deref().unwrap_or("");
        let name = if !given.is_empty() && !used.contains(given) {
            given.to_string()
        } else {
            let base = if given.is_empty() { format!("{op_type}_{i}") } else { given.to_string() };
            let mut candidate = base.clone();
            if used.contains(&candidate) || (given.is_empty() && explicit.contains(candidate.as_str())) {
                let k = next_suffix.entry(base.clone()).or_insert(1);
                loop {
                    candidate = format!("{base}_{k}");
                    *k += 1;
                    if !used.contains(&candidate) && !explicit.contains(candidate.as_str()) {
                        break;
                    }
                }
            }
            candidate
        };
        used.insert(name.clone());
        names.push(name);
    }
    Ok(names)
}

/// Fails with one error listing every op type Sinter cannot run and the nodes using it.
fn check_ops(nodes: &[NodeProto], names: &[String]) -> Result<(), OnnxError> {
    let mut unsupported: Vec<UnsupportedOp> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    for (n, name) in nodes.iter().zip(names) {
        let op_type = n.op_type.as_deref().unwrap_or("");
        let domain = n.domain.as_deref().unwrap_or("");
        let default = is_default_domain(domain);
        if default && (op_type == "Constant" || ops::lookup(op_type).is_some()) {
            continue;
        }
        let domain = if default { "" } else { domain };
        let i = *index.entry((domain, op_type)).or_insert_with(|| {
            unsupported.push(UnsupportedOp {
                domain: domain.to_string(),
                op_type: op_type.to_string(),
                nodes: Vec::new(),
            });
            unsupported.len() - 1
        });
        if let Some(u) = unsupported.get_mut(i) {
            u.nodes.push(name.clone());
        }
    }
    if unsupported.is_empty() {
        Ok(())
    } else {
        Err(OnnxError::UnsupportedOps(unsupported))
    }
}

/// A graph input or output; `kind` names it in errors ("graph input").
fn value_info(v: &ValueInfoProto, kind: &str) -> Result<ValueInfo, OnnxError> {
    let name = v.name.as_deref().unwrap_or("");
    if name.is_empty() {
        return Err(OnnxError::Model(format!("the graph has a {kind} without a name")));
    }
    let what = format!("{kind} '{name}'");
    let not_tensor = |kind: &str| {
        OnnxError::Model(format!("{what} is a {kind}; Sinter supports only tensor graph inputs and outputs"))
    };
    let tensor_type = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        None => return Err(OnnxError::Model(format!("{what} has no type"))),
        Some(type_proto::Value::TensorType(t)) => t,
        Some(type_proto::Value::SequenceType(_)) => return Err(not_tensor("sequence")),
        Some(type_proto::Value::MapType(_)) => return Err(not_tensor("map")),
        Some(type_proto::Value::OptionalType(_)) => return Err(not_tensor("optional")),
        Some(type_proto::Value::SparseTensorType(_)) => return Err(not_tensor("sparse tensor")),
    };
    let code = tensor_type.elem_type.unwrap_or(0);
    let dtype = match DType::from_onnx(code) {
        Some(d) => d,
        None if code == 0 => return Err(OnnxError::Model(format!("{what} has no element type"))),
        None => return Err(unsupported_dtype(&what, code)),
    };
    let dims = tensor_type.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                // Some exporters write -1 for a dynamic dimension: treat it as unknown.
                Some(dimension::Value::DimValue(v)) => usize::try_from(*v).map_or(Dim::Sym(String::new()), Dim::Fixed),
                Some(dimension::Value::DimParam(p)) => Dim::Sym(p.clone()),
                None => Dim::Sym(String::new()),
            })
            .collect()
    });
    Ok(ValueInfo { name: name.to_string(), dtype, dims })
}

fn node_attrs(n: &NodeProto, node: &str, op_type: &str, base_dir: Option<&Path>) -> Result<Attrs, OnnxError> {
    let mut attrs = Attrs::new();
    for a in &n.attribute {
        let name = a.name.as_deref().unwrap_or("");
        let attr_err =
            |msg: String| -> OnnxError { IrError::Attr { name: name.to_string(), msg }.in_node(node, op_type).into() };
        if name.is_empty() {
            return Err(attr_err("the attribute has no name".into()));
        }
        if attrs.contains(name) {
            return Err(attr_err("given twice".into()));
        }
        let value = attr_value(a, base_dir, &format!("node '{node}' ({op_type}) attribute '{name}'"), attr_err)?;
        attrs.insert(name, value);
    }
    Ok(attrs)
}

fn attr_value(
    a: &AttributeProto,
    base_dir: Option<&Path>,
    what: &str,
    err: impl Fn(String) -> OnnxError,
) -> Result<AttrValue, OnnxError> {
    if let Some(r) = a.ref_attr_name.as_deref().filter(|r| !r.is_empty()) {
        return Err(err(format!("refers to function attribute '{r}', which is only valid inside a function")));
    }
    let utf8 = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| err("holds a string that is not UTF-8".into()));
    // Unset scalar fields read as their proto default, as proto3 writers omit them.
    let ty = match a.r#type.unwrap_or(at::UNDEFINED) {
        at::UNDEFINED => infer_type(a),
        t => t,
    };
    Ok(match ty {
        at::UNDEFINED => return Err(err("has neither a type nor a value".into())),
        at::FLOAT => AttrValue::Float(a.f.unwrap_or(0.0)),
        at::INT => AttrValue::Int(a.i.unwrap_or(0)),
        at::STRING => AttrValue::String(utf8(a.s.as_deref().unwrap_or_default())?),
        at::TENSOR => match &a.t {
            Some(t) => AttrValue::Tensor(decode(t, base_dir, what)?),
            None => return Err(err("has type TENSOR but no tensor".into())),
        },
        at::FLOATS => AttrValue::Floats(a.floats.clone()),
        at::INTS => AttrValue::Ints(a.ints.clone()),
        at::STRINGS => AttrValue::Strings(a.strings.iter().map(|s| utf8(s)).collect::<Result<_, _>>()?),
        t => return Err(err(format!("has type {}, which Sinter does not support", at::name(t)))),
    })
}

/// The type of an attribute from an old exporter that did not set `type`: the field that is set.
fn infer_type(a: &AttributeProto) -> i32 {
    if a.f.is_some() {
        at::FLOAT
    } else if a.i.is_some() {
        at::INT
    } else if a.s.is_some() {
        at::STRING
    } else if a.t.is_some() {
        at::TENSOR
    } else if a.g.is_some() {
        at::GRAPH
    } else if a.sparse_tensor.is_some() {
        at::SPARSE_TENSOR
    } else if a.tp.is_some() {
        at::TYPE_PROTO
    } else if !a.floats.is_empty() {
        at::FLOATS
    } else if !a.ints.is_empty() {
        at::INTS
    } else if !a.strings.is_empty() {
        at::STRINGS
    } else if !a.tensors.is_empty() {
        at::TENSORS
    } else if !a.graphs.is_empty() {
        at::GRAPHS
    } else if !a.sparse_tensors.is_empty() {
        at::SPARSE_TENSORS
    } else if !a.type_protos.is_empty() {
        at::TYPE_PROTOS
    } else {
        at::UNDEFINED
    }
}

/// The value of a `Constant` node, which import turns into an initializer named by its output.
fn constant(n: &NodeProto, node: &str, attrs: Attrs) -> Result<(String, Tensor), OnnxError> {
    let err = |msg: String| OnnxError::Model(format!("node '{node}' (Constant): {msg}"));
    if n.input.iter().any(|i| !i.is_empty()) {
        return Err(err("a Constant takes no inputs".into()));
    }
    let output = match n.output.as_slice() {
        [o] if !o.is_empty() => o.clone(),
        _ => return Err(err(format!("needs exactly one output, found {:?}", n.output))),
    };
    if attrs.0.len() != 1 {
        let names: Vec<&str> = attrs.0.keys().map(String::as_str).collect();
        return Err(err(format!("needs exactly one value attribute, found {names:?}")));
    }
    let Some((name, value)) = attrs.0.into_iter().next() else {
        return Err(err("has no value attribute".into()));
    };
    let tensor = match (name.as_str(), value) {
        ("value", AttrValue::Tensor(t)) => Ok(t),
        ("value_float", AttrValue::Float(v)) => Ok(Tensor::scalar(v)),
        ("value_floats", AttrValue::Floats(v)) => Tensor::from_slice(&[v.len()], &v),
        ("value_int", AttrValue::Int(v)) => Ok(Tensor::scalar(v)),
        ("value_ints", AttrValue::Ints(v)) => Tensor::from_slice(&[v.len()], &v),
        ("value_string" | "value_strings", _) => {
            return Err(err(format!("attribute '{name}': string tensors are not supported")))
        }
        ("value" | "value_float" | "value_floats" | "value_int" | "value_ints", v) => {
            return Err(err(format!("attribute '{name}' has the wrong type ({v:?})")))
        }
        _ => return Err(err(format!("unknown attribute '{name}'"))),
    };
    Ok((output, tensor.map_err(|e| err(e.to_string()))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_dir_of_bare_and_nested_paths() {
        assert_eq!(model_dir(Path::new("m.onnx")), Path::new("."));
        assert_eq!(model_dir(Path::new("a/b/m.onnx")), Path::new("a/b"));
        assert_eq!(model_dir(Path::new("/m.onnx")), Path::new("/"));
    }
}
