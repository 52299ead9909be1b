//! What a rule may look at: the graph, every value's fact, and who produces and
//! consumes each value.
//!
//! Nodes are named by ids that stay valid while the driver rewrites other parts of the
//! graph; an id says nothing about position (use [`Ctx::before`] and [`Ctx::nodes`]).

use crate::work::Work;
use sinter_ir::{Fact, Node, Tensor};
use std::sync::Arc;

/// A read-only view of the graph being optimized, handed to [`Rule::apply`](crate::Rule::apply).
pub struct Ctx<'a> {
    work: &'a Work,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(work: &'a Work) -> Ctx<'a> {
        Ctx { work }
    }

    /// Node `i`. Ids come from the driver, [`Ctx::producer`], [`Ctx::consumers`] and
    /// [`Ctx::nodes`], and are live while a rule runs.
    ///
    /// # Panics
    /// When `i` is not such an id (a bug in the rule).
    pub fn node(&self, i: usize) -> &'a Node {
        match self.work.node(i) {
            Some(n) => n,
            None => panic!("node id {i} is not a node of the graph (ids come from the driver and the Ctx)"),
        }
    }

    /// Every node id, in topological order.
    pub fn nodes(&self) -> impl Iterator<Item = usize> + 'a {
        self.work.ids()
    }

    /// True when node `a` comes before node `b` in the graph's topological order.
    pub fn before(&self, a: usize, b: usize) -> bool {
        self.work.key(a) < self.work.key(b)
    }

    /// How nodes `a` and `b` compare in topological order (for sorting ids).
    pub fn order(&self, a: usize, b: usize) -> std::cmp::Ordering {
        self.work.key(a).cmp(&self.work.key(b))
    }

    /// The id of the node producing `value`, if a node does.
    pub fn producer(&self, value: &str) -> Option<usize> {
        self.work.producer(value)
    }

    /// Ids of the nodes reading `value` (each once), in graph order.
    pub fn consumers(&self, value: &str) -> &'a [usize] {
        self.work.consumers(value)
    }

    pub fn is_graph_output(&self, value: &str) -> bool {
        self.work.is_graph_output(value)
    }

    /// True when only node `reader` reads `value` and the graph does not output it:
    /// the condition for folding `value` away into its consumer.
    pub fn only_read_by(&self, value: &str, reader: usize) -> bool {
        self.consumers(value) == [reader] && !self.is_graph_output(value)
    }

    pub fn fact(&self, value: &str) -> Option<&'a Fact> {
        self.work.fact(value)
    }

    /// The value of `value` when it is a build-time constant.
    pub fn constant(&self, value: &str) -> Option<&'a Arc<Tensor>> {
        self.fact(value).and_then(|f| f.value.as_ref())
    }

    /// A name not used by any value or node yet, derived from `base`.
    pub fn fresh_name(&self, base: &str) -> String {
        if !self.work.name_taken(base) {
            return base.to_string();
        }
        (1..).map(|i| format!("{base}_{i}")).find(|n| !self.work.name_taken(n)).unwrap_or_else(|| base.to_string())
    }
}
