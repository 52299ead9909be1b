//! Sinter's core IR: typed tensors, a graph of ONNX-semantics ops, shape and
//! dtype inference (which also folds constants) and a reference interpreter
//! that defines what every op means.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub use half;

pub mod attrs;
pub mod check;
pub mod dtype;
pub mod error;
pub mod fact;
pub mod graph;
pub mod infer;
pub mod interp;
pub mod ops;
pub mod tensor;

pub use attrs::{AttrValue, Attrs};
pub use dtype::{DType, Elem};
pub use error::{IrError, Result};
pub use fact::Fact;
pub use graph::{Dim, Graph, Node, ValueInfo};
pub use ops::Op;
pub use tensor::{Tensor, View, ViewMut};
