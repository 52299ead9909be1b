//! Sinter's runtime: loads a plan, checks it, and runs its kernels on the CPU.
//!
//! An [`Engine`] holds one loaded plan (weights mapped, shared); each [`Context`]
//! owns one activation arena, so several threads can run the same engine at once.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod arena;
pub mod backend;
mod context;
mod engine;
mod error;
mod exec;
mod pack;
mod prepare;

pub use backend::{Backend, KernelChoice, NodeSpec};
pub use context::{Context, KernelTime};
pub use engine::{check_target, workspace_of_plan, Engine, IoInfo, RuntimeOptions, WorkspaceSize};
pub use error::RuntimeError;
pub use exec::refusal::Refusal;
pub use exec::registry::{Factory, REFERENCE};
pub use pack::{PackedWeights, TacticChoice};
pub use sinter_ir::{DType, Tensor, View};
pub use sinter_kernels::Isa;
pub use sinter_plan::Plan;
