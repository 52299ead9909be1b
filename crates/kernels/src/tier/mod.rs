//! Kernel tables: every tier-specific primitive of the crate behind one struct of
//! function pointers per ISA tier, filled once (at compile time) and chosen once (at
//! start-up), as tract's linalg `Ops` table is.
//!
//! Entry points ([`crate::sgemm`], [`crate::depthwise_conv2d`], …) take a
//! `&KernelTable` and fetch the pointer they need once per call; their inner loops are
//! monomorphic functions compiled with the tier's target features, so dispatch costs
//! one indirect call per kernel call, never one per row or element.
//!
//! A table is only reachable through [`KernelTable::for_isa`] (or
//! [`KernelTable::selected`], [`KernelTable::scalar`]), which refuses tiers this CPU
//! lacks: holding a `&KernelTable` proves its target features are present, which is
//! the safety argument every call through its (`unsafe fn`) entries rests on.
//!
//! Each tier is one file here: `scalar.rs` fills every entry with the portable
//! reference; each SIMD tier fills the entries it accelerates and takes the rest from
//! the tier below it with `..below::TABLE` (AVX-512 on top of AVX2, NEON on top of
//! scalar). The struct literal must name every field, so an incomplete table does not
//! compile.

use crate::depthwise::{RingFn, WindowFn};
use crate::error::{KernelError, Result};
use crate::gemm::driver::Spec;
use crate::gemm::peak::PeakFn;
use crate::isa::Isa;
#[cfg(test)]
use crate::isa::ALL;
use crate::{activation, gemv, norm, pooling, winograd};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;

/// The kernels of one ISA tier (see the module docs). Opaque: obtained only from
/// [`KernelTable::for_isa`] and friends, never built outside this crate.
pub struct KernelTable {
    pub(crate) isa: Isa,
    /// GEMM micro-kernels and their block sizes.
    pub(crate) gemm: Spec,
    /// Panels of the matrix–vector product.
    pub(crate) gemv: gemv::PanelsFn,
    /// Row-ring depthwise convolution (3×3 / 5×5, stride 1 or 2), where the tier has one.
    pub(crate) dw_ring: Option<RingFn>,
    /// The window engine (depthwise convolution and pooling); `None` runs the scalar
    /// reference loops, which need no scratch.
    pub(crate) window: Option<WindowFn>,
    /// Sum or max of a plane (global pooling).
    pub(crate) reduce_plane: pooling::ReduceFn,
    /// Winograd input transforms, indexed by [`winograd::WinogradTile`] (F2, F4).
    pub(crate) wino_input: [winograd::InputFn; 2],
    /// Winograd output transforms, indexed like `wino_input`.
    pub(crate) wino_output: [winograd::OutputFn; 2],
    /// Packing of a transformed input as a GEMM B operand.
    pub(crate) wino_pack: winograd::PackFn,
    /// Element-wise activations in place.
    pub(crate) unary: activation::UnaryFn,
    pub(crate) softmax: activation::SoftmaxFn,
    pub(crate) layer_norm: norm::RowFn,
    /// The FMA loop behind [`crate::gemm::peak`].
    pub(crate) fma_peak: PeakFn,
}

impl KernelTable {
    /// The table of `isa`, or an error if this CPU (or architecture) cannot run it.
    pub fn for_isa(isa: Isa) -> Result<&'static KernelTable> {
        match compiled_for(isa) {
            Some(t) if isa.supported() => Ok(t),
            _ => Err(KernelError::UnsupportedTier {
                tier: isa.name(),
                available: Isa::available().iter().map(|i| i.name()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// The table of [`Isa::selected`] (`SINTER_CPU`, else the best tier here).
    pub fn selected() -> Result<&'static KernelTable> {
        KernelTable::for_isa(Isa::selected()?)
    }

    /// The tables of the tiers this CPU supports, slowest first.
    pub fn available() -> Vec<&'static KernelTable> {
        Isa::available().into_iter().filter_map(|i| KernelTable::for_isa(i).ok()).collect()
    }

    /// The portable reference tier, which runs everywhere.
    pub fn scalar() -> &'static KernelTable {
        &scalar::TABLE
    }

    /// The tier.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The tier's name (as `SINTER_CPU` spells it).
    pub fn name(&self) -> &'static str {
        self.isa.name()
    }
}

impl std::fmt::Display for KernelTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.isa.name())
    }
}

impl std::fmt::Debug for KernelTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KernelTable({})", self.isa.name())
    }
}

impl PartialEq for KernelTable {
    /// Tables are per tier, so the tier's name identifies one.
    fn eq(&self, other: &KernelTable) -> bool {
        self.isa == other.isa
    }
}

/// The table built for `isa` on this architecture, whether or not this CPU runs it —
/// the one line per tier of the selection. Private: callers go through
/// [`KernelTable::for_isa`], which checks the CPU.
fn compiled_for(isa: Isa) -> Option<&'static KernelTable> {
    match isa {
        Isa::Scalar => Some(&scalar::TABLE),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some(&avx2::TABLE),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(&avx512::TABLE),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Some(&neon::TABLE),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Every table compiled for this architecture (for tests of their static contents,
/// such as block sizes; never to run one).
#[cfg(test)]
pub(crate) fn compiled() -> impl Iterator<Item = &'static KernelTable> {
    ALL.into_iter().filter_map(compiled_for)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_name_their_tier() {
        for t in compiled() {
            assert_eq!(compiled_for(t.isa).map(|t| t.isa), Some(t.isa));
        }
        assert!(compiled().any(|t| t.isa == Isa::Scalar));
    }

    #[test]
    fn unsupported_tiers_have_no_table() {
        for isa in ALL {
            assert_eq!(KernelTable::for_isa(isa).is_ok(), isa.supported(), "{isa}");
        }
    }
}
