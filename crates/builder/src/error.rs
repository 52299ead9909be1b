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
    #[error("the planned activation arena needs {arena} bytes, more than the --max-memory limit of {limit} bytes")]
    ArenaTooLarge { arena: u64, limit: u64 },
    #[error("internal builder error: {0}")]
    Internal(String),
}
