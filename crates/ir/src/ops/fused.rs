//! Sinter's own fused ops, produced by the optimizer (not ONNX ops).

use super::OpSpec;

pub(crate) const OPS: &[OpSpec] = &[];
