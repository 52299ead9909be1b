//! What a plan records about how it was built: the optimizer's log and the source graph.

use sinter_ir::Graph;
use sinter_plan::{AppliedRewrite, GraphNode, OptimizerLog, RefusedRewrite};

pub(crate) fn optimizer_log(r: &sinter_optimizer::Report) -> OptimizerLog {
    OptimizerLog {
        applied: r
            .applied
            .iter()
            .map(|a| AppliedRewrite {
                pass: a.pass.clone(),
                rule: a.rule.clone(),
                nodes: a.nodes.clone(),
                created: a.created.clone(),
            })
            .collect(),
        refused: r
            .refused
            .iter()
            .map(|x| RefusedRewrite {
                pass: x.pass.clone(),
                rule: x.rule.clone(),
                node: x.node.clone(),
                reason: x.reason.clone(),
            })
            .collect(),
    }
}

pub(crate) fn source_graph(g: &Graph) -> Vec<GraphNode> {
    g.nodes
        .iter()
        .map(|n| GraphNode {
            name: n.name.clone(),
            op_type: n.op_type.clone(),
            inputs: n.inputs.clone(),
            outputs: n.outputs.clone(),
        })
        .collect()
}
