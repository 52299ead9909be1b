//! The harness every kernel test battery runs under: one test module per ISA tier.

use sinter_kernels::{Isa, KernelTable};

/// The table of `isa` when this CPU runs it; otherwise says so, and the tier's tests
/// check nothing (the tier is tested on machines that have it, and under qemu for NEON).
pub fn tier(isa: Isa) -> Option<&'static KernelTable> {
    match KernelTable::for_isa(isa) {
        Ok(t) => Some(t),
        Err(e) => {
            println!("skipping {isa}: {e}");
            None
        }
    }
}

/// One module per tier (`scalar`, `avx2`, `avx512`, `neon`), each with a `#[test]` per
/// `test => battery` pair that runs `battery(tier)` (a function of the test file) with
/// the tier's kernel table when this CPU has the tier:
/// `per_tier! { sizes => sizes_battery, nan_inf => non_finite }`.
macro_rules! per_tier {
    ($($test:ident => $battery:ident),* $(,)?) => {
        per_tier!(@tier scalar, Scalar; $($test => $battery),*);
        per_tier!(@tier avx2, Avx2; $($test => $battery),*);
        per_tier!(@tier avx512, Avx512; $($test => $battery),*);
        per_tier!(@tier neon, Neon; $($test => $battery),*);
    };
    (@tier $tier:ident, $isa:ident; $($test:ident => $battery:ident),*) => {
        mod $tier {
            $(
                #[test]
                fn $test() {
                    if let Some(tier) = super::common::tier(sinter_kernels::Isa::$isa) {
                        super::$battery(tier);
                    }
                }
            )*
        }
    };
}
