//! The portable tier: every entry, and the reference the SIMD tiers are tested against.

use super::KernelTable;
use crate::gemm::{driver::Spec, peak, scalar};
use crate::isa::Isa;
use crate::{activation, gemv, norm, pooling, winograd};

pub(super) const TABLE: KernelTable = KernelTable {
    isa: Isa::Scalar,
    gemm: Spec {
        nr: scalar::NR,
        kc: 256,
        nc: 512,
        whole_k_floats: 0,
        kernel: scalar::tile,
        lanes: 8,
        tail: None,
        direct_b: false,
    },
    gemv: gemv::panels_scalar,
    dw_ring: None,
    window: None,
    reduce_plane: pooling::reduce_scalar,
    wino_input: winograd::INPUT_PORTABLE,
    wino_output: winograd::OUTPUT_PORTABLE,
    wino_pack: winograd::pack_portable,
    unary: activation::apply_scalar,
    softmax: activation::softmax_scalar,
    layer_norm: norm::row_scalar,
    fma_peak: peak::run_scalar,
};
