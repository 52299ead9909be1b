//! Graph consistency: every value produced once, every input defined before use,
//! every output produced. Run after import and after every optimizer pass.

use crate::{Graph, IrError, Result};
use std::collections::{HashMap, HashSet};

/// Checks `graph`, reporting the first inconsistency with the node and value it concerns.
pub fn check(graph: &Graph) -> Result<()> {
    let mut defined: HashSet<&str> = HashSet::new();
    for vi in &graph.inputs {
        if !defined.insert(&vi.name) {
            return Err(IrError::Graph(format!("graph input '{}' is declared twice", vi.name)));
        }
    }
    for name in graph.initializers.keys() {
        defined.insert(name);
    }
    for node in &graph.nodes {
        for i in node.inputs.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(i.as_str()) {
                return Err(IrError::Graph(format!(
                    "node '{}' ({}) reads '{}', which no graph input, initializer or earlier node defines",
                    node.name, node.op_type, i
                )));
            }
        }
        for o in node.outputs.iter().filter(|o| !o.is_empty()) {
            if !defined.insert(o) {
                return Err(IrError::Graph(format!("value '{}' is produced twice (again by node '{}')", o, node.name)));
            }
        }
    }
    for o in &graph.outputs {
        if !defined.contains(o.name.as_str()) {
            return Err(IrError::Graph(format!("graph output '{}' is never produced", o.name)));
        }
    }
    Ok(())
}

/// Sorts nodes topologically (exporters do not always), keeping the original order
/// where possible. Fails on a cycle or on an input nothing defines.
pub fn toposort(graph: &mut Graph) -> Result<()> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            producer.insert(o, i);
        }
    }
    let mut external: HashSet<&str> = graph.inputs.iter().map(|v| v.name.as_str()).collect();
    external.extend(graph.initializers.keys().map(|k| k.as_str()));
    let n = graph.nodes.len();
    let mut state = vec![0u8; n]; // 0 new, 1 visiting, 2 done
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        // iterative DFS: (node, next input index)
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let inputs = &graph.nodes[node].inputs;
            if *next < inputs.len() {
                let inp = inputs[*next].as_str();
                *next += 1;
                if inp.is_empty() || external.contains(inp) {
                    continue;
                }
                match producer.get(inp) {
                    None => {
                        return Err(IrError::Graph(format!(
                            "node '{}' ({}) reads '{}', which no graph input, initializer or node defines",
                            graph.nodes[node].name, graph.nodes[node].op_type, inp
                        )))
                    }
                    Some(&p) if state[p] == 1 => {
                        return Err(IrError::Graph(format!("cycle through node '{}'", graph.nodes[p].name)))
                    }
                    Some(&p) if state[p] == 0 => {
                        state[p] = 1;
                        stack.push((p, 0));
                    }
                    Some(_) => {}
                }
            } else {
                state[node] = 2;
                order.push(node);
                stack.pop();
            }
        }
    }
    let mut nodes: Vec<Option<_>> = std::mem::take(&mut graph.nodes).into_iter().map(Some).collect();
    graph.nodes = order.into_iter().filter_map(|i| nodes[i].take()).collect();
    Ok(())
}
