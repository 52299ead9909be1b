//! The format's constants: what every other part of the crate agrees on (a leaf: it
//! uses nothing else of the crate).

pub const MAGIC: [u8; 8] = *b"SINTPLAN";
/// The newest (and only) format version this crate reads and writes. Version 3 added
/// the workspace fields and, per kernel, its implementation, precision and fallback.
pub const FORMAT_VERSION: u32 = 3;
pub const HEADER_SIZE: usize = 144;
/// Alignment of the weight section in the file and of every tensor inside it.
pub const ALIGN: u64 = 64;
/// Size of the zero-padded UTF-8 target field: the longest target name a plan can record.
pub const FIXED_STR_LEN: usize = 24;
/// Size of the zero-padded UTF-8 producer field (a crate version such as "0.1.0").
pub const PRODUCER_LEN: usize = 16;
/// The version of the crate that wrote a plan.
pub const PRODUCER: &str = env!("CARGO_PKG_VERSION");
/// Target of plans that run on any machine.
pub const DEFAULT_TARGET: &str = "generic";
