use crate::DType;

/// Errors of the IR: malformed graphs, unsupported attributes, shape or dtype mismatches.
#[derive(Debug, thiserror::Error)]
pub enum IrError {
    #[error("attribute '{name}': {msg}")]
    Attr { name: String, msg: String },
    #[error("dtype mismatch: expected {expected}, found {found}")]
    DType { expected: String, found: DType },
    #[error("unsupported dtype {dtype} for {op}")]
    UnsupportedDType { op: String, dtype: DType },
    #[error("shape error: {0}")]
    Shape(String),
    #[error("input {index} of {op} must be a constant known at build time ({what})")]
    NotConstant { op: String, index: usize, what: String },
    #[error("{op}: missing required input {index}")]
    MissingInput { op: String, index: usize },
    #[error("invalid tensor data: {0}")]
    Data(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("graph: {0}")]
    Graph(String),
    #[error("node '{node}' ({op}): {source}")]
    Node {
        node: String,
        op: String,
        #[source]
        source: Box<IrError>,
    },
}

pub type Result<T, E = IrError> = std::result::Result<T, E>;

impl IrError {
    /// Adds the node name and op type to an error raised inside an op.
    pub fn in_node(self, node: &str, op: &str) -> IrError {
        match self {
            e @ IrError::Node { .. } => e,
            e => IrError::Node { node: node.to_string(), op: op.to_string(), source: Box::new(e) },
        }
    }
}

/// Shorthand for a shape error.
pub fn shape_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(IrError::Shape(msg.into()))
}
