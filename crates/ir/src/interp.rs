//! The reference interpreter: with every input known, inference folds the whole graph.
//! Slow and simple on purpose; it is the meaning that optimized graphs are checked against.

use crate::{infer::infer_graph, Fact, Graph, IrError, Result, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// Runs `graph` on named inputs and returns its outputs in graph order.
pub fn run(graph: &Graph, inputs: &[(&str, Tensor)]) -> Result<Vec<Tensor>> {
    let facts: HashMap<String, Fact> =
        inputs.iter().map(|(n, t)| (n.to_string(), Fact::constant(Arc::new(t.clone())))).collect();
    let all = infer_graph(graph, &facts)?;
    graph
        .outputs
        .iter()
        .map(|o| {
            all.get(&o.name)
                .and_then(|f| f.value.as_ref())
                .map(|t| (**t).clone())
                .ok_or_else(|| IrError::Graph(format!("output '{}' was not computed", o.name)))
        })
        .collect()
}
