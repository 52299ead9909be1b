//! A patch: the whole of one rewrite, applied by the driver in one step.

use sinter_ir::{check, Graph, IrError, Node, Result, Tensor};
use std::sync::Arc;

/// Nodes to remove, nodes to insert, value uses to redirect and constants to add.
#[derive(Default)]
pub struct Patch {
    /// Ids (as [`Ctx`](crate::Ctx) gives them) of the nodes to remove.
    pub remove: Vec<usize>,
    /// New nodes; they take the place of the first removed node, then nodes are re-sorted.
    pub insert: Vec<Node>,
    /// Every use of `.0` (node inputs, graph outputs) becomes `.1`.
    pub rewire: Vec<(String, String)>,
    pub initializers: Vec<(String, Arc<Tensor>)>,
}

impl Patch {
    /// The names of the removed nodes, for the report, when the ids are positions in
    /// `graph` (as for a `Ctx` over a graph's nodes in order).
    pub fn removed_names(&self, graph: &Graph) -> Vec<String> {
        self.remove.iter().filter_map(|&i| graph.nodes.get(i)).map(|n| n.name.clone()).collect()
    }

    /// Applies the patch to the whole of `graph`, reading ids as positions in
    /// `graph.nodes`: what [`optimize_reference`](crate::optimize_reference) does after
    /// every rewrite. The driver applies patches in place, to what they touch.
    pub fn apply(self, graph: &mut Graph) -> Result<()> {
        for (name, t) in self.initializers {
            match graph.initializers.get(&name) {
                Some(old) if **old != *t => {
                    return Err(IrError::Graph(format!("patch redefines initializer '{name}'")));
                }
                _ => {
                    graph.initializers.insert(name, t);
                }
            }
        }
        let mut remove = self.remove;
        remove.sort_unstable();
        remove.dedup();
        if remove.last().is_some_and(|&i| i >= graph.nodes.len()) {
            return Err(IrError::Graph("patch removes a node that does not exist".into()));
        }
        let at = remove.first().copied().unwrap_or(graph.nodes.len());
        for &i in remove.iter().rev() {
            graph.nodes.remove(i);
        }
        let at = at.min(graph.nodes.len());
        graph.nodes.splice(at..at, self.insert);

        for (from, to) in self.rewire {
            if graph.outputs.iter().any(|o| o.name == from) {
                // Graph outputs keep their names: the new producer takes the old name.
                let producer = graph.nodes.iter_mut().find(|n| n.outputs.contains(&to)).ok_or_else(|| {
                    IrError::Graph(format!("cannot redirect graph output '{from}' to '{to}', which no node produces"))
                })?;
                for o in producer.outputs.iter_mut().filter(|o| **o == to) {
                    o.clone_from(&from);
                }
                rename_uses(graph, &to, &from);
            } else {
                rename_uses(graph, &from, &to);
            }
        }
        check::toposort(graph)
    }
}

fn rename_uses(graph: &mut Graph, from: &str, to: &str) {
    for n in &mut graph.nodes {
        for i in n.inputs.iter_mut().filter(|i| *i == from) {
            *i = to.to_string();
        }
    }
}
