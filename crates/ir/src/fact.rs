use crate::{DType, Tensor};
use std::sync::Arc;

/// What is known about a value at build time: its dtype and concrete shape,
/// and its contents when it is a constant (so shape subgraphs fold away).
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub value: Option<Arc<Tensor>>,
}

impl Fact {
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Fact {
        Fact { dtype, shape: shape.into(), value: None }
    }
    pub fn constant(t: Arc<Tensor>) -> Fact {
        Fact { dtype: t.dtype(), shape: t.shape().to_vec(), value: Some(t) }
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn numel(&self) -> usize {
        crate::tensor::numel(&self.shape)
    }
}
