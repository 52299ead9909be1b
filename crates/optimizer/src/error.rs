/// Errors of the optimizer, with the pass, rule and node they happened in.
#[derive(Debug, thiserror::Error)]
pub enum OptError {
    #[error("pass '{pass}', rule '{rule}', node '{node}': {source}")]
    Rule {
        pass: String,
        rule: String,
        node: String,
        #[source]
        source: Box<sinter_ir::IrError>,
    },
    #[error("pass '{pass}', rule '{rule}', node '{node}': the rewrite leaves an inconsistent graph: {source}")]
    Inconsistent {
        pass: String,
        rule: String,
        node: String,
        #[source]
        source: Box<sinter_ir::IrError>,
    },
    /// Inference fails on a node the rewrite inserted or changed, or on one downstream.
    #[error("pass '{pass}', rule '{rule}', node '{node}': shape inference fails after the rewrite: {source}")]
    RewriteInfer {
        pass: String,
        rule: String,
        node: String,
        #[source]
        source: Box<sinter_ir::IrError>,
    },
    /// The whole-graph check after a pass failed although every rewrite's own check passed
    /// (a driver bug rather than a rule's).
    #[error("pass '{pass}' left an inconsistent graph: {source}")]
    Check {
        pass: String,
        #[source]
        source: Box<sinter_ir::IrError>,
    },
    /// A pass changed the dtype or shape of a graph output: callers rely on outputs
    /// keeping what the model declares. `rule` and `node` name the last rewrite that
    /// changed the output's fact, when one did.
    #[error(
        "pass '{pass}' changed graph output '{output}' from {before} to {after}{}",
        by.as_ref().map_or_else(String::new, |r| format!(" (rule '{}' on node '{}')", r.rule, r.node))
    )]
    OutputChanged { pass: String, output: String, before: String, after: String, by: Option<Box<RewriteAt>> },
    /// The graph given to the optimizer is inconsistent or fails shape inference.
    #[error("the graph to optimize is invalid: {source}")]
    Input {
        #[source]
        source: Box<sinter_ir::IrError>,
    },
    #[error("unknown rule '{0}' (see `sinter build --list-rules`)")]
    UnknownRule(String),
}

/// A rewrite an error is attributed to: the rule, and the node it was applied at.
#[derive(Clone, Debug, PartialEq)]
pub struct RewriteAt {
    pub rule: String,
    pub node: String,
}
