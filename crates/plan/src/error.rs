use crate::header::HEADER_SIZE;
use std::path::PathBuf;

/// Why a plan could not be read, written or accepted.
///
/// Messages say what is wrong in words a user can act on; plan files are untrusted input,
/// so every malformed file ends up here rather than in a panic.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("not a Sinter plan (magic \"{}\", expected \"SINTPLAN\")", found.escape_ascii())]
    NotAPlan { found: Vec<u8> },

    #[error(
        "plan format version {version} is newer than this runtime supports ({supported}); \
         rebuild the plan or upgrade sinter"
    )]
    NewerVersion { version: u32, supported: u32 },

    #[error(
        "plan format version {version} is older than this runtime reads ({supported}); \
         rebuild the plan from its model"
    )]
    OlderVersion { version: u32, supported: u32 },

    #[error("plan is truncated: file has {actual} bytes, less than the {HEADER_SIZE}-byte header")]
    TruncatedHeader { actual: u64 },

    #[error("plan is truncated: header says {expected} bytes, file has {actual}")]
    Truncated { expected: u64, actual: u64 },

    #[error("plan is corrupted: {section} checksum mismatch")]
    ChecksumMismatch { section: &'static str },

    /// Structural damage other than a checksum mismatch (impossible layout, bad padding...).
    #[error("plan is corrupted: {0}")]
    Corrupted(String),

    #[error("plan is corrupted: cannot decode the meta section: {0}")]
    Decode(postcard::Error),

    #[error("cannot encode the plan meta: {0}")]
    Encode(postcard::Error),

    /// The meta decoded but describes something the runtime must not execute
    /// (ids out of range, locations out of bounds, ...). Names the tensor or kernel.
    #[error("invalid plan: {0}")]
    Invalid(String),

    /// A target name that this version does not know (from a user, not from a file:
    /// headers may name targets a newer producer added).
    #[error("unknown target '{name}' (known targets: {known})")]
    UnknownTarget { name: String, known: String },

    #[error("{action} {}: {err}", path.display())]
    Io { action: &'static str, path: PathBuf, err: std::io::Error },
}

pub type Result<T, E = PlanError> = std::result::Result<T, E>;

impl PlanError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> PlanError {
        let path = path.to_path_buf();
        move |err| PlanError::Io { action, path, err }
    }
}
