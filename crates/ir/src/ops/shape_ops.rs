use super::OpSpec;

pub(crate) const OPS: &[OpSpec] = &[];
