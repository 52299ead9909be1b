use crate::{Attrs, DType, Op, Tensor};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A dimension of a graph input: fixed, or symbolic until the user gives a shape at build time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    Sym(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(d) => write!(f, "{d}"),
            Dim::Sym(s) if s.is_empty() => f.write_str("?"),
            Dim::Sym(s) => f.write_str(s),
        }
    }
}

/// A named, typed graph input or output.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: DType,
    /// `None` when the model does not declare a shape.
    pub dims: Option<Vec<Dim>>,
}

/// One operation. `op` is built (and its attributes validated) from `op_type` and `attrs`.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    /// The opset version of the default domain the model was exported with.
    pub opset: i64,
    pub attrs: Attrs,
    /// Input value names; an empty name is an omitted optional input.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub op: Arc<dyn Op>,
    /// The model nodes (name, op type) this node was fused from; empty for a node
    /// straight from the model. Plans list them per kernel.
    pub fused_from: Vec<(String, String)>,
}

impl Node {
    /// Builds a node, parsing and validating its attributes.
    pub fn new(
        name: impl Into<String>,
        op_type: &str,
        opset: i64,
        attrs: Attrs,
        inputs: Vec<String>,
        outputs: Vec<String>,
    ) -> crate::Result<Node> {
        let name = name.into();
        let op = crate::ops::build(op_type, &attrs, opset).map_err(|e| e.in_node(&name, op_type))?;
        Ok(Node { name, op_type: op_type.to_string(), opset, attrs, inputs, outputs, op, fused_from: Vec::new() })
    }

    /// The model nodes this node covers: itself, or what it was fused from.
    pub fn sources(&self) -> Vec<(String, String)> {
        if self.fused_from.is_empty() {
            vec![(self.name.clone(), self.op_type.clone())]
        } else {
            self.fused_from.clone()
        }
    }
}

/// A computation graph with ONNX value semantics, nodes in topological order.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: String,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    pub initializers: BTreeMap<String, Arc<Tensor>>,
    pub nodes: Vec<Node>,
    /// Nodes in the source model, counting `Constant` nodes that import turned into
    /// initializers (what `sinter build` reports as the model's size).
    pub source_nodes: usize,
}

impl Graph {
    /// Graph inputs that are not initializers (those the user feeds).
    pub fn runtime_inputs(&self) -> impl Iterator<Item = &ValueInfo> {
        self.inputs.iter().filter(|i| !self.initializers.contains_key(&i.name))
    }

    /// Node count by op type, for summaries.
    pub fn op_histogram(&self) -> BTreeMap<String, usize> {
        let mut h = BTreeMap::new();
        for n in &self.nodes {
            *h.entry(n.op_type.clone()).or_insert(0) += 1;
        }
        h
    }
}
