//! Sinter's plan file format (v3): what the builder writes and the runtime executes.
//!
//! A plan file is a fixed 144-byte little-endian header, the postcard-encoded
//! [`PlanMeta`] (the schedule), and one 64-byte aligned blob holding every constant
//! tensor. [`Plan::load`] memory-maps the file so weights are never copied; every load
//! checks checksums and validates the meta, because plan files are untrusted input.
//! The byte layout and versioning policy are in `docs/plan-format.md`.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod error;
mod format;
mod header;
mod plan;
pub mod schema;
mod target;
mod validate;
mod weights;

pub use error::{PlanError, Result};
pub use header::{Header, Section, ALIGN, DEFAULT_TARGET, FIXED_STR_LEN, FORMAT_VERSION, HEADER_SIZE, MAGIC, PRODUCER};
pub use plan::{read_header, Plan, PlanInfo};
pub use schema::*;
pub use target::{BackendKind, SmList, Target};
pub use validate::MAX_ARENA_BYTES;
pub use weights::WeightsBuilder;
