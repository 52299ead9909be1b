//! What a rule may look at: the graph, every value's fact, and who produces and
//! consumes each value.

use sinter_ir::{Fact, Graph, Node, Tensor};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub struct Ctx<'a> {
    pub graph: &'a Graph,
    pub facts: &'a HashMap<String, Fact>,
    producers: HashMap<&'a str, usize>,
    consumers: HashMap<&'a str, Vec<usize>>,
    outputs: HashSet<&'a str>,
}

impl<'a> Ctx<'a> {
    pub fn new(graph: &'a Graph, facts: &'a HashMap<String, Fact>) -> Ctx<'a> {
        let mut producers = HashMap::new();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in graph.nodes.iter().enumerate() {
            for o in n.outputs.iter().filter(|o| !o.is_empty()) {
                producers.insert(o.as_str(), i);
            }
            for v in n.inputs.iter().filter(|v| !v.is_empty()) {
                let list = consumers.entry(v.as_str()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        let outputs = graph.outputs.iter().map(|o| o.name.as_str()).collect();
        Ctx { graph, facts, producers, consumers, outputs }
    }

    pub fn node(&self, i: usize) -> &'a Node {
        &self.graph.nodes[i]
    }

    /// The index of the node producing `value`, if a node does.
    pub fn producer(&self, value: &str) -> Option<usize> {
        self.producers.get(value).copied()
    }

    /// Indices of the nodes reading `value` (each once).
    pub fn consumers(&self, value: &str) -> &[usize] {
        self.consumers.get(value).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_graph_output(&self, value: &str) -> bool {
        self.outputs.contains(value)
    }

    /// True when only node `reader` reads `value` and the graph does not output it:
    /// the condition for folding `value` away into its consumer.
    pub fn only_read_by(&self, value: &str, reader: usize) -> bool {
        self.consumers(value) == [reader] && !self.is_graph_output(value)
    }

    pub fn fact(&self, value: &str) -> Option<&'a Fact> {
        self.facts.get(value)
    }

    /// The value of `value` when it is a build-time constant.
    pub fn constant(&self, value: &str) -> Option<&'a Arc<Tensor>> {
        self.facts.get(value).and_then(|f| f.value.as_ref())
    }

    /// A name not used by any value or node yet, derived from `base`.
    pub fn fresh_name(&self, base: &str) -> String {
        let taken = |n: &str| {
            self.producers.contains_key(n)
                || self.graph.initializers.contains_key(n)
                || self.graph.inputs.iter().any(|i| i.name == n)
                || self.graph.nodes.iter().any(|x| x.name == n)
        };
        if !taken(base) {
            return base.to_string();
        }
        (1..).map(|i| format!("{base}_{i}")).find(|n| !taken(n)).unwrap_or_else(|| base.to_string())
    }
}
