use sinter_ir::{DType, IrError};
use sinter_plan::PlanError;

/// Errors of loading or running a plan.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The plan records a target this machine is not (see `sinter_plan::Target`).
    #[error(
        "plan was built for target '{plan}' but this machine is {host}; \
         rebuild it with `sinter build --target {host}` (or `--target generic`)"
    )]
    WrongTarget { plan: String, host: String },
    /// The plan's target runs on a backend this build of the runtime does not have.
    #[error("plan was built for target '{target}', which runs on the {backend} backend; this sinter has only the cpu backend")]
    NoBackend { target: String, backend: &'static str },
    #[error("invalid plan: kernel {index} ({op_type} '{node}'): {msg}")]
    InvalidKernel { index: usize, op_type: String, node: String, msg: String },
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    /// The kernels need more scratch than the plan's header records.
    #[error(
        "invalid plan: its kernels need {needed} bytes of workspace plus {needed_per_thread} per thread, \
         but the header declares {declared} plus {declared_per_thread}; rebuild the plan"
    )]
    WorkspaceTooSmall { needed: u64, needed_per_thread: u64, declared: u64, declared_per_thread: u64 },
    #[error("kernel {index} ({op_type} '{node}') failed: {source}")]
    Kernel {
        index: usize,
        op_type: String,
        node: String,
        #[source]
        source: IrError,
    },
    #[error("unknown input '{name}'; the plan's inputs are: {expected}")]
    UnknownInput { name: String, expected: String },
    #[error("missing input '{name}'; the plan's inputs are: {expected}")]
    MissingInput { name: String, expected: String },
    #[error("input '{name}' must be {expected_dtype}{expected_shape:?}, got {dtype}{shape:?}")]
    InputMismatch { name: String, expected_dtype: DType, expected_shape: Vec<usize>, dtype: DType, shape: Vec<usize> },
    #[error("input '{0}' is given more than once")]
    DuplicateInput(String),
    #[error(transparent)]
    Cpu(#[from] sinter_kernels::KernelError),
    #[error("invalid runtime options: {0}")]
    Options(String),
    #[error("unknown output '{0}'")]
    UnknownOutput(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
