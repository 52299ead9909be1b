//! Sinter's runtime: loads a plan, checks it, and runs its kernels on the CPU.
//!
//! An [`Engine`] holds one loaded plan (weights mapped, shared); each [`Context`]
//! owns one activation arena, so several threads can run the same engine at once.

mod arena;
mod context;
mod engine;
mod error;
mod exec;
mod pack;
mod prepare;

pub use context::{Context, KernelTime};
pub use engine::{check_target, workspace_of_plan, Engine, IoInfo, RuntimeOptions, WorkspaceSize};
pub use error::RuntimeError;
pub use pack::{pack_weights, PackedWeights, TacticChoice};
pub use sinter_ir::{DType, Tensor, View};
pub use sinter_kernels::Isa;
pub use sinter_plan::Plan;
