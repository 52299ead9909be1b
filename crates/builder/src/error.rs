/// Errors of building a plan.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Onnx(#[from] sinter_onnx::OnnxError),
    #[error(transparent)]
    Ir(#[from] sinter_ir::IrError),
    #[error(transparent)]
    Plan(#[from] sinter_plan::PlanError),
    #[error(transparent)]
    Optimizer(#[from] sinter_optimizer::OptError),
    #[error(transparent)]
    Runtime(#[from] sinter_runtime::RuntimeError),
    #[error("{0}")]
    Shapes(String),
    /// The arena fits, but not with the kernels' workspace for `threads` threads.
    #[error(
        "an execution context on {threads} thread(s) needs {total} bytes: arena {arena} + workspace {workspace} \
         + {per_thread} per thread, more than the --max-memory limit of {limit} bytes"
    )]
    MemoryTooLarge { arena: u64, workspace: u64, per_thread: u64, threads: usize, total: u64, limit: u64 },
    #[error("internal builder error: {0}")]
    Internal(String),
}
