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
    #[error("pass '{pass}' left an inconsistent graph (after rule '{rule}' on node '{node}'): {source}")]
    Inconsistent {
        pass: String,
        rule: String,
        node: String,
        #[source]
        source: Box<sinter_ir::IrError>,
    },
    #[error("shape inference failed before pass '{pass}': {source}")]
    Infer {
        pass: String,
        #[source]
        source: Box<sinter_ir::IrError>,
    },
    #[error("unknown rule '{0}' (see `sinter build --list-rules`)")]
    UnknownRule(String),
}
