//! ONNX import: decodes `.onnx` files (hand-written prost messages, external data files,
//! opsets 7 to 21 of the default domain) into a checked [`sinter_ir::Graph`]. Every size
//! read from a file is checked; malformed or unsupported models give an [`OnnxError`]
//! that names the tensor, node or value concerned.

#![forbid(unsafe_code)]

mod error;
mod load;
pub mod proto;
mod tensor;

pub use error::{OnnxError, UnsupportedOp};
pub use load::{load_model, load_model_bytes, Model, MAX_OPSET, MIN_OPSET};
pub use tensor::{tensor_from_proto, tensor_from_proto_bytes};
