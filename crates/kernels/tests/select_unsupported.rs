//! `SINTER_CPU` naming a tier this CPU lacks is an error, not a table that would raise
//! SIGILL later. Its own test binary: the selection is read once per process.

use sinter_kernels::{isa, KernelError, KernelTable};

#[test]
fn sinter_cpu_with_an_unsupported_tier_is_an_error() {
    // There is always one: NEON on x86_64, the x86 tiers on aarch64.
    let missing = isa::ALL.into_iter().find(|i| !i.supported()).expect("a tier this CPU lacks");
    std::env::set_var("SINTER_CPU", missing.name());
    let r = KernelTable::selected();
    assert!(matches!(r, Err(KernelError::UnsupportedTier { .. })), "{r:?}");
    // Nor can its table be had directly.
    assert!(KernelTable::for_isa(missing).is_err());
}
