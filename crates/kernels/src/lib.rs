//! CPU kernels, separate from the runtime so they are tested and benchmarked alone.
//!
//! Every kernel has a portable scalar implementation (the reference) and, where it pays,
//! ISA-specific variants. The tier is chosen at run time from [`Isa::selected`] (CPU
//! feature detection, or the `SINTER_CPU` environment variable for tests and
//! emulators); nothing is compiled for a fixed `target-cpu`.
//!
//! A tier's variants are gathered in its [`KernelTable`] (module [`tier`]): a struct of
//! function pointers filled once per tier, obtained once with
//! [`KernelTable::selected`] / [`KernelTable::for_isa`] (which refuse tiers this CPU
//! lacks) and passed to every entry point, which fetches the pointer it needs once per
//! call. [`Isa`] is only the tier's name.
//!
//! # Adding a tier (VNNI, AMX, dotprod, fp16, …)
//!
//! 1. [`Isa`]: a variant, its name in `isa::ALL`/`Isa::name`, its CPU check in
//!    `Isa::supported`, and its rank in `Isa::best`.
//! 2. `tier/<name>.rs`: `const TABLE: KernelTable = KernelTable { isa, <the entries it
//!    accelerates>, ..super::<tier below>::TABLE }` (e.g. VNNI on top of AVX-512).
//! 3. `tier/mod.rs`: `mod <name>;` and one arm of `compiled_for`.
//! 4. The accelerated kernels themselves, next to their siblings (a micro-kernel in
//!    `gemm/<name>.rs`, a `#[target_feature]` instantiation of a generic body, or a
//!    `simd/<name>.rs` lane module for the macro-generated engines); a new kernel
//!    *kind* also adds a field to `KernelTable` (the compiler then lists every table
//!    that must fill it).
//! 5. Tests: a line in `per_tier!` (`tests/common/mod.rs`); `tests/tables.rs` picks the
//!    table up through `KernelTable::available`.
//!
//! No entry point (`sgemm`, `depthwise_conv2d`, …) and no runtime code changes.
//!
//! # Unsafe code
//!
//! SIMD kernels are `unsafe fn`s with `#[target_feature]`: calling one is sound only
//! on a CPU with those features. A `KernelTable` exists only for supported tiers, so
//! a call through one of its entries is the proof; the entries' other contracts
//! (pointer extents) are checked by the safe entry points before the call.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod activation;
pub mod depthwise;
pub mod epilogue;
pub mod error;
pub mod gemm;
pub mod gemv;
pub mod isa;
pub mod norm;
pub mod pooling;
pub mod scratch;
mod simd;
pub mod thread_pool;
pub mod tier;
pub mod winograd;

pub use depthwise::{depthwise_conv2d, DwGeom};
pub use error::KernelError;
pub use gemm::{
    pack_a, packed_a_len, sgemm, sgemm_scratch, sgemm_scratch_upto, Activation, BSource, Epilogue, Matrix, PackedA, MR,
};
pub use isa::Isa;
pub use pooling::{pool2d, PoolGeom, PoolKind};
pub use scratch::Scratch;
pub use thread_pool::ThreadPool;
pub use tier::KernelTable;
