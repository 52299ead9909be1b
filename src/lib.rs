//! Sinter's Lite API: load a plan, run it.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = sinter::Engine::load("model.plan")?;
//! let input = sinter::Tensor::zeros(sinter::DType::F32, &[1, 3, 48, 192]);
//! let outputs = engine.run(&[("x", input)])?;
//! # Ok(()) }
//! ```
pub use sinter_ir::{DType, Tensor};
