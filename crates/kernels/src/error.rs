use thiserror::Error;

#[derive(Debug, Error)]
pub enum KernelError {
    #[error("SINTER_CPU={value:?} is not a CPU tier (expected one of: {expected})")]
    UnknownTier { value: String, expected: String },
    #[error("SINTER_CPU={tier} asks for a tier this CPU does not support (available: {available})")]
    UnsupportedTier { tier: &'static str, available: String },
    #[error("{0}")]
    Shape(String),
    /// A kernel was handed less scratch than its size function declares.
    #[error("{what}: scratch holds {len} floats, needs {need}")]
    Scratch { what: String, len: usize, need: usize },
}

pub type Result<T, E = KernelError> = std::result::Result<T, E>;
