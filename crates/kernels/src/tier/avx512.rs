//! x86_64 with AVX-512F (plus AVX2/FMA): 16-lane vectors, 32 registers. It has its own
//! variant of every entry; a tier on top of it (VNNI, AMX) would take the ones it does
//! not accelerate with `..super::avx512::TABLE`.

use super::KernelTable;
use crate::gemm::driver::{Spec, TailSpec, WHOLE_K_X86};
use crate::gemm::{avx512, peak, tail};
use crate::isa::Isa;
use crate::{activation, depthwise, gemv, norm, pooling, winograd};

/// GEMM blocks as on AVX2 (see `avx2.rs`).
pub(super) const TABLE: KernelTable = KernelTable {
    isa: Isa::Avx512,
    gemm: Spec {
        nr: avx512::NR,
        kc: 256,
        nc: 576,
        whole_k_floats: WHOLE_K_X86,
        kernel: avx512::tile,
        lanes: 16,
        // ymm FMAs: half the flops of the main kernel's zmm ones.
        tail: Some(TailSpec { max_cols: tail::MAX_COLS, kernel: tail::tile, cost: 2 }),
        direct_b: true,
    },
    gemv: gemv::panels_avx512,
    dw_ring: Some(depthwise::avx512::ring_run),
    window: Some(depthwise::avx512::run),
    reduce_plane: pooling::reduce_avx512,
    wino_input: winograd::INPUT_AVX512,
    wino_output: winograd::OUTPUT_AVX512,
    wino_pack: winograd::pack_avx512,
    unary: activation::apply_avx512,
    softmax: activation::softmax_avx512,
    layer_norm: norm::row_avx512,
    fma_peak: peak::run_avx512,
};
