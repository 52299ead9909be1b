//! CPU kernels, separate from the runtime so they are tested and benchmarked alone.
//!
//! Every kernel has a portable scalar implementation (the reference) and, where it pays,
//! ISA-specific variants. The variant is chosen at run time from [`Isa::selected`]
//! (CPU feature detection, or the `SINTER_CPU` environment variable for tests and
//! emulators); nothing is compiled for a fixed `target-cpu`.

pub mod activation;
pub mod depthwise;
pub mod error;
pub mod gemm;
pub mod gemv;
pub mod isa;
pub mod norm;
pub mod pooling;
pub mod scratch;
pub mod thread_pool;
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
