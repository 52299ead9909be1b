//! aarch64 Advanced SIMD: 4-lane vectors, 32 registers. No row-ring depthwise, and the
//! GEMV, pooling reductions, layer norm and Winograd transforms are the scalar tier's
//! (NEON is part of the aarch64 baseline, so those are already compiled for it).

use super::KernelTable;
use crate::gemm::driver::Spec;
use crate::gemm::{neon, peak};
use crate::isa::Isa;
use crate::{activation, depthwise};

pub(super) const TABLE: KernelTable = KernelTable {
    isa: Isa::Neon,
    gemm: Spec {
        nr: neon::NR,
        kc: 256,
        nc: 576,
        whole_k_floats: 0,
        kernel: neon::tile,
        lanes: 12,
        tail: None,
        direct_b: false,
    },
    window: Some(depthwise::neon::run),
    unary: activation::apply_neon,
    softmax: activation::softmax_neon,
    fma_peak: peak::run_neon,
    ..super::scalar::TABLE
};
