//! Sinter's Lite API: load a plan, run it.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = sinter::Engine::load("model.plan")?;
//! let input = sinter::Tensor::zeros(sinter::DType::F32, &[1, 3, 48, 192]);
//! let outputs = engine.run(&[("x", input)])?;
//! for (name, tensor) in &outputs {
//!     println!("{name}: {:?}", tensor.shape());
//! }
//! # Ok(()) }
//! ```
//!
//! For a loop that allocates nothing per run, take an execution [`Context`] from the
//! engine (one per thread), set its inputs and call [`Context::run`].

#![forbid(unsafe_code)]
pub use sinter_ir::{DType, Tensor, View};
pub use sinter_runtime::{Context, Engine, IoInfo, RuntimeError as Error};
