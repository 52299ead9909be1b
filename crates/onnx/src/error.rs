use sinter_ir::IrError;
use std::fmt;
use std::path::PathBuf;

/// Why an ONNX model (or serialized tensor) could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot read '{}': {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes do not decode as the expected protobuf message, or lack what every model has.
    #[error("{what} is not an ONNX {kind}: {detail}")]
    NotOnnx { what: String, kind: &'static str, detail: String },
    /// A tensor, input or output whose element type Sinter cannot represent.
    #[error("{what} has dtype {dtype}, which Sinter does not support")]
    UnsupportedDType { what: String, dtype: String },
    /// Malformed tensor contents: bad dims, data of the wrong length, bad external data keys.
    #[error("{what}: {msg}")]
    Tensor { what: String, msg: String },
    /// External data that cannot be used: missing file, a path escaping the model directory…
    #[error("{what}: external data '{location}': {msg}")]
    ExternalData { what: String, location: String, msg: String },
    #[error("{0}")]
    Opset(String),
    /// Every node whose op Sinter cannot run, reported together before anything runs.
    #[error("unsupported operators: {}", UnsupportedList(.0))]
    UnsupportedOps(Vec<UnsupportedOp>),
    /// A malformed model: missing names, bad attributes, bad value infos…
    #[error("{0}")]
    Model(String),
    /// Errors from building ops or checking the graph; they name the node and value.
    #[error(transparent)]
    Ir(#[from] IrError),
}

/// One unsupported op type (with its domain when not the default one) and the nodes using it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedOp {
    /// Empty for the default ONNX domain.
    pub domain: String,
    pub op_type: String,
    pub nodes: Vec<String>,
}

/// Most node names listed per op type; a graph can use an op hundreds of times.
const MAX_LISTED_NODES: usize = 5;

struct UnsupportedList<'a>(&'a [UnsupportedOp]);

impl fmt::Display for UnsupportedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if op.domain.is_empty() {
                write!(f, "{}", op.op_type)?;
            } else {
                write!(f, "{}::{}", op.domain, op.op_type)?;
            }
            let shown = &op.nodes[..op.nodes.len().min(MAX_LISTED_NODES)];
            write!(f, " (nodes: {}", shown.join(", "))?;
            if op.nodes.len() > shown.len() {
                write!(f, " and {} more", op.nodes.len() - shown.len())?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}
