//! Shape and dtype inference over a whole graph. A node whose inputs are all known
//! constants is evaluated on the spot, so shape subgraphs fold as a side effect.

use crate::{Fact, Graph, IrError, Node, Result, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// Facts of a node's outputs from the facts of its inputs, folding it when possible.
pub fn infer_node(node: &Node, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
    let ctx = |e: IrError| e.in_node(&node.name, &node.op_type);
    let mut facts = node.op.infer(inputs).map_err(ctx)?;
    if node.outputs.len() > facts.len() {
        return Err(ctx(IrError::Graph(format!(
            "node declares {} outputs but the op produces {}",
            node.outputs.len(),
            facts.len()
        ))));
    }
    let foldable = node.op.is_deterministic() && inputs.iter().flatten().all(|f| f.value.is_some());
    if foldable {
        let values = eval_node(node, inputs, &facts).map_err(ctx)?;
        for (f, v) in facts.iter_mut().zip(values) {
            f.value = Some(Arc::new(v));
        }
    }
    Ok(facts)
}

/// Evaluates one node on constant inputs, allocating its outputs.
fn eval_node(node: &Node, inputs: &[Option<&Fact>], facts: &[Fact]) -> Result<Vec<Tensor>> {
    let views: Vec<_> = inputs.iter().map(|f| f.and_then(|f| f.value.as_ref()).map(|t| t.view())).collect();
    let mut outs: Vec<Tensor> = facts.iter().map(|f| Tensor::zeros(f.dtype, &f.shape)).collect();
    let mut out_views: Vec<_> = outs.iter_mut().map(|t| t.view_mut()).collect();
    node.op.eval(&views, &mut out_views)?;
    Ok(outs)
}

/// Infers every value of `graph`. `inputs` gives the facts of the runtime inputs
/// (with values for inputs that are frozen or, in the interpreter, all of them).
pub fn infer_graph(graph: &Graph, inputs: &HashMap<String, Fact>) -> Result<HashMap<String, Fact>> {
    let mut facts: HashMap<String, Fact> = HashMap::new();
    for (name, t) in &graph.initializers {
        facts.insert(name.clone(), Fact::constant(t.clone()));
    }
    for vi in graph.runtime_inputs() {
        let f = inputs
            .get(&vi.name)
            .ok_or_else(|| IrError::Graph(format!("no shape given for graph input '{}'", vi.name)))?;
        if f.dtype != vi.dtype {
            return Err(IrError::Graph(format!(
                "input '{}' is {} but the model declares {}",
                vi.name, f.dtype, vi.dtype
            )));
        }
        facts.insert(vi.name.clone(), f.clone());
    }
    for node in &graph.nodes {
        let ins = node
            .inputs
            .iter()
            .map(|n| {
                if n.is_empty() {
                    Ok(None)
                } else {
                    facts.get(n).map(Some).ok_or_else(|| {
                        IrError::Graph(format!("node '{}' reads '{}', which nothing produces", node.name, n))
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let outs = infer_node(node, &ins)?;
        for (name, f) in node.outputs.iter().zip(outs) {
            if !name.is_empty() {
                facts.insert(name.clone(), f);
            }
        }
    }
    Ok(facts)
}
