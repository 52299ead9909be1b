//! The graph while it is being optimized, laid out so that one rewrite costs about what
//! it touches rather than the size of the graph.
//!
//! Nodes live in stable slots (a slot id is what [`Ctx`](crate::Ctx) hands to rules and
//! what a [`Patch`] removes), so a rewrite does not renumber the rest of the graph. The
//! topological order is kept as sparse integer keys: new nodes take keys between their
//! neighbours, and the keys are respread only when a gap runs out. Producers, consumers
//! and facts are updated per patch: a patch's new and rewired nodes are re-inferred, and
//! inference runs on downstream only while the facts it computes change.

use crate::Patch;
use sinter_ir::{infer::infer_node, Fact, Graph, IrError, Node};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Distance between consecutive order keys after (re)numbering: room for 32 halvings
/// between two neighbours before a respread, and for 2^32 nodes.
const GAP: u64 = 1 << 32;

/// Why a patch could not be applied.
pub(crate) enum PatchError {
    /// The patch leaves the graph inconsistent (a value produced twice, read but never
    /// defined, a cycle, an output no longer produced).
    Inconsistent(IrError),
    /// Shape and dtype inference fails on a node the patch inserted or changed, or downstream.
    Infer(IrError),
}

/// What a patch changed, for the driver.
pub(crate) struct Change {
    /// Live nodes whose rule outcomes may differ now: new and rewired nodes, the producers
    /// and readers of every value whose readers changed, and the nodes re-inferred.
    pub affected: Vec<usize>,
    /// Among them, the nodes that are new or read something new (their downstream may
    /// see a different graph when it looks upstream).
    pub changed: Vec<usize>,
    /// Graph outputs whose fact changed.
    pub outputs_changed: Vec<String>,
}

pub(crate) struct Work {
    /// The graph without its nodes: name, inputs, outputs, initializers.
    shell: Graph,
    slots: Vec<Option<Node>>,
    /// Order key of each slot (meaningful for live slots only).
    keys: Vec<u64>,
    order: BTreeMap<u64, usize>,
    producers: HashMap<String, usize>,
    /// Readers of each value, each once, in graph order.
    consumers: HashMap<String, Vec<usize>>,
    outputs: HashSet<String>,
    input_names: HashSet<String>,
    /// How many live nodes carry each name (names should be unique, but are not checked).
    node_names: HashMap<String, usize>,
    facts: HashMap<String, Fact>,
    /// Nodes the current sweep still has to visit, by order key.
    agenda: BTreeSet<(u64, usize)>,
    /// Per slot: taken off the agenda in the current sweep.
    visited: Vec<bool>,
}

/// Equal facts; constants are compared by pointer first (most are shared, not recomputed).
fn same_fact(a: &Fact, b: &Fact) -> bool {
    a.dtype == b.dtype
        && a.shape == b.shape
        && match (&a.value, &b.value) {
            (None, None) => true,
            (Some(x), Some(y)) => Arc::ptr_eq(x, y) || **x == **y,
            _ => false,
        }
}

fn undefined(node: &Node, value: &str) -> IrError {
    IrError::Graph(format!(
        "node '{}' ({}) reads '{}', which no graph input, initializer or earlier node defines",
        node.name, node.op_type, value
    ))
}

impl Work {
    /// `graph` (topologically sorted, consistent) with the facts of all its values.
    /// Slot `i` holds `graph.nodes[i]`.
    pub(crate) fn new(graph: &Graph, facts: HashMap<String, Fact>) -> Result<Work, IrError> {
        let mut shell = graph.clone();
        let nodes = std::mem::take(&mut shell.nodes);
        let mut work = Work {
            outputs: shell.outputs.iter().map(|o| o.name.clone()).collect(),
            input_names: shell.inputs.iter().map(|i| i.name.clone()).collect(),
            shell,
            slots: Vec::with_capacity(nodes.len()),
            keys: Vec::with_capacity(nodes.len()),
            order: BTreeMap::new(),
            producers: HashMap::new(),
            consumers: HashMap::new(),
            node_names: HashMap::new(),
            facts,
            agenda: BTreeSet::new(),
            visited: vec![false; nodes.len()],
        };
        for (i, node) in nodes.into_iter().enumerate() {
            let key = (i as u64 + 1) * GAP;
            work.keys.push(key);
            work.order.insert(key, i);
            work.slots.push(Some(node));
            work.register(i)?;
        }
        Ok(work)
    }

    /// Adds the producer, consumer and name entries of live slot `s`, whose key is set.
    /// Fails when one of its outputs is already defined.
    fn register(&mut self, s: usize) -> Result<(), IrError> {
        let Some(node) = self.slots[s].as_ref() else { return Ok(()) };
        *self.node_names.entry(node.name.clone()).or_default() += 1;
        for o in node.outputs.iter().filter(|o| !o.is_empty()) {
            let taken = self.producers.get(o.as_str()).is_some_and(|&p| p != s)
                || self.shell.initializers.contains_key(o)
                || self.input_names.contains(o);
            if taken {
                return Err(IrError::Graph(format!("value '{o}' is produced twice (again by node '{}')", node.name)));
            }
            self.producers.insert(o.clone(), s);
        }
        let inputs: HashSet<&String> = node.inputs.iter().filter(|v| !v.is_empty()).collect();
        for v in inputs {
            let list = self.consumers.entry(v.clone()).or_default();
            let at = list.partition_point(|&c| self.keys[c] < self.keys[s]);
            if list.get(at) != Some(&s) {
                list.insert(at, s);
            }
        }
        Ok(())
    }

    pub(crate) fn node(&self, s: usize) -> Option<&Node> {
        self.slots.get(s).and_then(Option::as_ref)
    }

    pub(crate) fn key(&self, s: usize) -> u64 {
        self.keys[s]
    }

    /// Live node ids in graph order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.values().copied()
    }

    pub(crate) fn producer(&self, value: &str) -> Option<usize> {
        self.producers.get(value).copied()
    }

    pub(crate) fn consumers(&self, value: &str) -> &[usize] {
        self.consumers.get(value).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn is_graph_output(&self, value: &str) -> bool {
        self.outputs.contains(value)
    }

    pub(crate) fn fact(&self, value: &str) -> Option<&Fact> {
        self.facts.get(value)
    }

    /// True when `name` is used by a value or a node.
    pub(crate) fn name_taken(&self, name: &str) -> bool {
        self.producers.contains_key(name)
            || self.shell.initializers.contains_key(name)
            || self.input_names.contains(name)
            || self.node_names.contains_key(name)
    }

    fn defined(&self, value: &str) -> bool {
        self.producers.contains_key(value)
            || self.shell.initializers.contains_key(value)
            || self.input_names.contains(value)
    }

    /// Writes the current nodes (in order) and initializers into `graph`.
    pub(crate) fn materialize(&self, graph: &mut Graph) {
        graph.nodes = self.ids().filter_map(|s| self.node(s).cloned()).collect();
        graph.initializers.clone_from(&self.shell.initializers);
    }

    // ---------- the sweep's agenda ----------

    /// Puts every live node on the agenda.
    pub(crate) fn fill_agenda(&mut self) {
        self.agenda = self.order.iter().map(|(&k, &s)| (k, s)).collect();
        self.visited.iter_mut().for_each(|v| *v = false);
    }

    /// Takes the first node off the agenda.
    pub(crate) fn next_on_agenda(&mut self) -> Option<usize> {
        let (_, s) = self.agenda.pop_first()?;
        self.visited[s] = true;
        Some(s)
    }

    pub(crate) fn schedule(&mut self, s: usize) {
        if self.node(s).is_some() {
            self.agenda.insert((self.keys[s], s));
        }
    }

    /// Nodes downstream of `from` (excluded) that the current sweep has visited: they may
    /// look upstream at what changed. Below a node of the graph not visited yet (one
    /// after the sweep's position), nothing is.
    pub(crate) fn visited_downstream(&self, from: &[usize]) -> Vec<usize> {
        let mut seen: HashSet<usize> = from.iter().copied().collect();
        let mut stack: Vec<usize> = from.to_vec();
        let mut found = Vec::new();
        while let Some(s) = stack.pop() {
            let Some(node) = self.node(s) else { continue };
            for o in node.outputs.iter().filter(|o| !o.is_empty()) {
                for &c in self.consumers(o) {
                    if self.visited[c] && seen.insert(c) {
                        found.push(c);
                        stack.push(c);
                    }
                }
            }
        }
        found
    }

    // ---------- order ----------

    /// Gives every live node a fresh key, `GAP` apart, keeping the order.
    fn respread(&mut self) {
        let live: Vec<usize> = self.ids().collect();
        self.order.clear();
        for (rank, &s) in live.iter().enumerate() {
            let key = (rank as u64 + 1).saturating_mul(GAP);
            self.keys[s] = key;
            self.order.insert(key, s);
        }
        self.agenda = std::mem::take(&mut self.agenda).into_iter().map(|(_, s)| (self.keys[s], s)).collect();
    }

    /// Places the (unordered) slots `new`, in that order, between the adjacent live nodes
    /// `after` and `before` (`None`: the start, the end).
    fn place(&mut self, new: &[usize], after: Option<usize>, before: Option<usize>) {
        let count = new.len() as u64;
        if count == 0 {
            return;
        }
        for attempt in 0..2 {
            let lo = after.map_or(0, |a| self.keys[a]);
            let hi = before.map_or_else(|| lo.saturating_add(GAP.saturating_mul(count + 1)), |b| self.keys[b]);
            let step = hi.saturating_sub(lo) / (count + 1);
            if step > 0 || attempt == 1 {
                for (k, &s) in new.iter().enumerate() {
                    let key = lo + step * (k as u64 + 1);
                    self.keys[s] = key;
                    self.order.insert(key, s);
                }
                return;
            }
            self.respread();
        }
    }

    /// The live node just before key `key` (exclusive), and the one at or after it.
    fn neighbours(&self, key: u64) -> (Option<usize>, Option<usize>) {
        (self.order.range(..key).next_back().map(|(_, &s)| s), self.order.range(key..).next().map(|(_, &s)| s))
    }

    /// Moves live nodes `moved` (in that order) to just before live node `before`.
    fn move_before(&mut self, moved: &[usize], before: usize) {
        let mut sched = Vec::new();
        for &s in moved {
            self.order.remove(&self.keys[s]);
            if self.agenda.remove(&(self.keys[s], s)) {
                sched.push(s);
            }
        }
        let (after, _) = self.neighbours(self.keys[before]);
        self.place(moved, after, Some(before));
        for s in sched {
            self.schedule(s);
        }
        // Readers lists are in graph order: re-sort those the moved nodes are in.
        let inputs: HashSet<String> = moved
            .iter()
            .filter_map(|&s| self.node(s))
            .flat_map(|n| n.inputs.iter().filter(|v| !v.is_empty()).cloned())
            .collect();
        for v in inputs {
            if let Some(list) = self.consumers.get_mut(&v) {
                list.sort_by_key(|&c| self.keys[c]);
            }
        }
    }

    /// Restores topological order around node `n` as a whole-graph depth-first sort
    /// reaching `n` would: the not-yet-placed (later) producers `n` depends on move, in
    /// depth-first post-order, to just before it.
    /// Returns the nodes moved.
    fn pull_dependencies(&mut self, n: usize) -> Result<Vec<usize>, IrError> {
        let limit = self.keys[n];
        let mut on_stack: HashSet<usize> = HashSet::from([n]);
        let mut done: HashSet<usize> = HashSet::new();
        let mut stack = vec![(n, 0usize)];
        let mut emitted = Vec::new();
        while let Some(&mut (s, ref mut next)) = stack.last_mut() {
            let Some(node) = self.slots[s].as_ref() else { break };
            if let Some(v) = node.inputs.get(*next) {
                *next += 1;
                let Some(p) = self.producers.get(v.as_str()).copied() else { continue };
                if on_stack.contains(&p) {
                    let name = self.node(p).map_or("?", |x| x.name.as_str());
                    return Err(IrError::Graph(format!("cycle through node '{name}'")));
                }
                if self.keys[p] > limit && !done.contains(&p) {
                    on_stack.insert(p);
                    stack.push((p, 0));
                }
            } else {
                stack.pop();
                on_stack.remove(&s);
                if s != n {
                    done.insert(s);
                    emitted.push(s);
                }
            }
        }
        if !emitted.is_empty() {
            self.move_before(&emitted, n);
        }
        Ok(emitted)
    }

    // ---------- patches ----------

    /// Applies `patch` as `Patch::apply` would to the whole graph (initializers, removals,
    /// insertion at the first removed node, rewiring, topological order), checks what it
    /// touched, and re-infers facts where they may have changed.
    pub(crate) fn apply(&mut self, patch: Patch) -> Result<Change, PatchError> {
        use PatchError::{Inconsistent as Bad, Infer};
        let Patch { remove, insert, rewire, initializers } = patch;
        let mut touched_values: Vec<String> = Vec::new();

        // Initializers.
        let mut new_inits = Vec::new();
        for (name, t) in initializers {
            match self.shell.initializers.get(&name) {
                Some(old) if **old != *t => {
                    return Err(Bad(IrError::Graph(format!("patch redefines initializer '{name}'"))));
                }
                Some(_) => {}
                None => {
                    if self.producers.contains_key(&name) && !remove.iter().any(|&r| self.produces(r, &name)) {
                        return Err(Bad(IrError::Graph(format!(
                            "value '{name}' is produced twice (as an initializer)"
                        ))));
                    }
                    self.shell.initializers.insert(name.clone(), t);
                    new_inits.push(name);
                }
            }
        }

        // Removals.
        let mut remove = remove;
        remove.sort_unstable();
        remove.dedup();
        if remove.iter().any(|&s| self.node(s).is_none()) {
            return Err(Bad(IrError::Graph("patch removes a node that does not exist".into())));
        }
        let first_key = remove.iter().map(|&s| self.keys[s]).min();
        let mut gone: Vec<String> = Vec::new();
        for &s in &remove {
            let key = self.keys[s];
            self.order.remove(&key);
            self.agenda.remove(&(key, s));
            let Some(node) = self.slots[s].take() else { continue };
            if let Some(c) = self.node_names.get_mut(&node.name) {
                *c -= 1;
                if *c == 0 {
                    self.node_names.remove(&node.name);
                }
            }
            for o in node.outputs.iter().filter(|o| !o.is_empty()) {
                if self.producers.get(o) == Some(&s) {
                    self.producers.remove(o);
                }
                gone.push(o.clone());
            }
            let inputs: HashSet<&String> = node.inputs.iter().filter(|v| !v.is_empty()).collect();
            for v in inputs {
                if let Some(list) = self.consumers.get_mut(v) {
                    list.retain(|&c| c != s);
                    if list.is_empty() {
                        self.consumers.remove(v);
                    }
                }
                touched_values.push(v.clone());
            }
        }
        touched_values.extend(gone.iter().cloned());

        // Insertion where the first removed node was (at the end when none was).
        let (after, before) = match first_key {
            Some(k) => self.neighbours(k),
            None => (self.order.last_key_value().map(|(_, &s)| s), None),
        };
        let inserted: Vec<usize> = (self.slots.len()..self.slots.len() + insert.len()).collect();
        for node in insert {
            let values: HashSet<&String> = node.inputs.iter().chain(&node.outputs).filter(|v| !v.is_empty()).collect();
            touched_values.extend(values.into_iter().cloned());
            self.slots.push(Some(node));
            self.keys.push(0);
            self.visited.push(false);
        }
        self.place(&inserted, after, before);
        for &s in &inserted {
            self.register(s).map_err(Bad)?;
        }

        // Rewiring.
        let mut input_changed: Vec<usize> = Vec::new();
        let mut renamed: Vec<usize> = Vec::new();
        let mut new_producer: Vec<String> = inserted
            .iter()
            .filter_map(|&s| self.node(s))
            .flat_map(|n| n.outputs.iter().filter(|o| !o.is_empty()).cloned())
            .collect();
        for (from, to) in rewire {
            touched_values.push(from.clone());
            touched_values.push(to.clone());
            if self.outputs.contains(&from) {
                // Graph outputs keep their names: the new producer takes the old name.
                let p = self.producer(&to).ok_or_else(|| {
                    Bad(IrError::Graph(format!(
                        "cannot redirect graph output '{from}' to '{to}', which no node produces"
                    )))
                })?;
                if let Some(node) = self.slots[p].as_mut() {
                    for o in node.outputs.iter_mut().filter(|o| **o == to) {
                        o.clone_from(&from);
                    }
                }
                self.producers.remove(&to);
                if self.producers.get(&from).is_some_and(|&q| q != p) || self.shell.initializers.contains_key(&from) {
                    let name = self.node(p).map_or("?", |n| n.name.as_str());
                    return Err(Bad(IrError::Graph(format!(
                        "value '{from}' is produced twice (again by node '{name}')"
                    ))));
                }
                self.producers.insert(from.clone(), p);
                renamed.push(p);
                gone.push(to.clone());
                new_producer.push(from.clone());
                self.rename_uses(&to, &from, &mut input_changed);
            } else {
                self.rename_uses(&from, &to, &mut input_changed);
            }
        }

        // Consistency of what the patch touched.
        let live = |w: &Work, s: &usize| w.node(*s).is_some();
        input_changed.retain(|s| live(self, s));
        for &s in inserted.iter().chain(&input_changed) {
            let Some(node) = self.node(s) else { continue };
            if let Some(v) = node.inputs.iter().find(|v| !v.is_empty() && !self.defined(v)) {
                return Err(Bad(undefined(node, v)));
            }
        }
        gone.sort_unstable();
        gone.dedup();
        for v in &gone {
            if self.defined(v) {
                continue;
            }
            if let Some(node) = self.consumers(v).first().and_then(|&c| self.node(c)) {
                return Err(Bad(undefined(node, v)));
            }
            if self.outputs.contains(v) {
                return Err(Bad(IrError::Graph(format!("graph output '{v}' is never produced"))));
            }
            self.facts.remove(v);
        }

        // Topological order: only nodes that are new or read something new can be out of it.
        let mut suspects: Vec<usize> = inserted.iter().chain(&input_changed).chain(&renamed).copied().collect();
        for v in &new_producer {
            suspects.extend_from_slice(self.consumers(v));
        }
        suspects.sort_unstable();
        suspects.dedup();
        suspects.sort_by_key(|&s| self.keys[s]);
        let mut moved = Vec::new();
        for &s in &suspects {
            let Some(node) = self.node(s) else { continue };
            let late = node.inputs.iter().filter_map(|v| self.producer(v)).any(|p| self.keys[p] >= self.keys[s]);
            if late {
                moved.extend(self.pull_dependencies(s).map_err(Bad)?);
            }
        }

        // Facts: new constants, then the new and rewired nodes and, while facts change,
        // what reads them.
        let mut queue: BTreeSet<(u64, usize)> = BTreeSet::new();
        for name in &new_inits {
            let Some(t) = self.shell.initializers.get(name) else { continue };
            let fact = Fact::constant(t.clone());
            if !self.facts.get(name).is_some_and(|f| same_fact(f, &fact)) {
                self.facts.insert(name.clone(), fact);
                queue.extend(self.consumers(name).iter().map(|&c| (self.keys[c], c)));
            }
        }
        queue.extend(suspects.iter().filter(|s| live(self, s)).map(|&s| (self.keys[s], s)));
        let mut reinferred = Vec::new();
        let mut outputs_changed = Vec::new();
        while let Some((_, s)) = queue.pop_first() {
            reinferred.push(s);
            let Some(node) = self.node(s) else { continue };
            let ins = node
                .inputs
                .iter()
                .map(|v| {
                    if v.is_empty() {
                        Ok(None)
                    } else {
                        self.facts.get(v).map(Some).ok_or_else(|| undefined(node, v))
                    }
                })
                .collect::<Result<Vec<_>, IrError>>()
                .map_err(Infer)?;
            let facts = infer_node(node, &ins).map_err(Infer)?;
            let outputs = node.outputs.clone();
            for (name, fact) in outputs.iter().zip(facts).filter(|(n, _)| !n.is_empty()) {
                if self.facts.get(name).is_some_and(|f| same_fact(f, &fact)) {
                    continue;
                }
                self.facts.insert(name.clone(), fact);
                if self.outputs.contains(name) {
                    outputs_changed.push(name.clone());
                }
                queue.extend(self.consumers(name).iter().map(|&c| (self.keys[c], c)));
            }
        }

        // Who may decide differently now. Readers of constants are left out: no rule
        // looks at who else reads a constant, and shared constants have many readers.
        let mut affected: Vec<usize> = suspects.clone();
        affected.extend(moved);
        affected.extend(reinferred);
        touched_values.sort_unstable();
        touched_values.dedup();
        for v in &touched_values {
            affected.extend(self.producer(v));
            if !self.shell.initializers.contains_key(v) {
                affected.extend_from_slice(self.consumers(v));
            }
        }
        affected.sort_unstable();
        affected.dedup();
        affected.retain(|s| live(self, s));
        let mut changed: Vec<usize> = inserted.iter().chain(&input_changed).chain(&renamed).copied().collect();
        changed.retain(|s| live(self, s));
        Ok(Change { affected, changed, outputs_changed })
    }

    fn produces(&self, s: usize, value: &str) -> bool {
        self.node(s).is_some_and(|n| n.outputs.iter().any(|o| o == value))
    }

    /// Every reader of `from` reads `to` instead; the readers are added to `changed`.
    fn rename_uses(&mut self, from: &str, to: &str, changed: &mut Vec<usize>) {
        if from == to {
            return;
        }
        let Some(readers) = self.consumers.remove(from) else { return };
        for &c in &readers {
            if let Some(node) = self.slots[c].as_mut() {
                for i in node.inputs.iter_mut().filter(|i| *i == from) {
                    *i = to.to_string();
                }
            }
            changed.push(c);
        }
        let list = self.consumers.entry(to.to_string()).or_default();
        list.extend(readers);
        list.sort_by_key(|&c| self.keys[c]);
        list.dedup();
    }
}
