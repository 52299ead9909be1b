//! x86_64 with AVX2 and FMA: 8-lane vectors, 16 registers.

use super::KernelTable;
use crate::gemm::driver::{Spec, TailSpec, WHOLE_K_X86};
use crate::gemm::{avx2, peak, tail};
use crate::isa::Isa;
use crate::{activation, depthwise, gemv, norm, pooling, winograd};

/// GEMM blocks: KC = 256 keeps the 8 KiB A micro-panel in L1 beside the streamed B
/// panel; NC gives a 256 × 576 B block of 576 KiB, about half of a 1 MiB L2. (Measured
/// on Zen 5: KC 128..512 and NC 288..1152 were within noise of each other; KC 128 was
/// worse.)
pub(super) const TABLE: KernelTable = KernelTable {
    isa: Isa::Avx2,
    gemm: Spec {
        nr: avx2::NR,
        kc: 256,
        nc: 576,
        whole_k_floats: WHOLE_K_X86,
        kernel: avx2::tile,
        lanes: 8,
        tail: Some(TailSpec { max_cols: tail::MAX_COLS, kernel: tail::tile, cost: 1 }),
        direct_b: true,
    },
    gemv: gemv::panels_avx2,
    dw_ring: Some(depthwise::avx2::ring_run),
    window: Some(depthwise::avx2::run),
    reduce_plane: pooling::reduce_avx2,
    wino_input: winograd::INPUT_AVX2,
    wino_output: winograd::OUTPUT_AVX2,
    wino_pack: winograd::pack_avx2,
    unary: activation::apply_avx2,
    softmax: activation::softmax_avx2,
    layer_norm: norm::row_avx2,
    fma_peak: peak::run_avx2,
};
