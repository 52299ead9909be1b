//! Instruction-set tiers and their run-time selection.

use crate::error::{KernelError, Result};
use std::sync::OnceLock;

/// A kernel tier. Variants exist only for the architecture they run on; the scalar
/// tier runs everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    Scalar,
    /// x86_64 with AVX2 and FMA.
    Avx2,
    /// x86_64 with AVX-512F (plus AVX2/FMA).
    Avx512,
    /// aarch64 Advanced SIMD (always present on ARMv8-A).
    Neon,
}

pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        ALL.into_iter().find(|i| i.name() == name)
    }

    /// Whether this CPU can run the tier.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The tiers this CPU supports, slowest first.
    pub fn available() -> Vec<Isa> {
        ALL.into_iter().filter(|i| i.supported()).collect()
    }

    /// The fastest tier this CPU supports.
    pub fn best() -> Isa {
        [Isa::Avx512, Isa::Neon, Isa::Avx2].into_iter().find(|i| i.supported()).unwrap_or(Isa::Scalar)
    }

    /// The tier kernels use: `SINTER_CPU` when set (an error if unknown or unsupported
    /// here, rather than a SIGILL later), otherwise [`Isa::best`]. Read once per process.
    pub fn selected() -> Result<Isa> {
        static SELECTED: OnceLock<std::result::Result<Isa, (String, bool)>> = OnceLock::new();
        let r = SELECTED.get_or_init(|| match std::env::var("SINTER_CPU") {
            Ok(v) if !v.is_empty() => match Isa::from_name(&v) {
                Some(i) if i.supported() => Ok(i),
                Some(_) => Err((v, true)),
                None => Err((v, false)),
            },
            _ => Ok(Isa::best()),
        });
        match r {
            Ok(i) => Ok(*i),
            Err((v, true)) => Err(KernelError::UnsupportedTier {
                tier: Isa::from_name(v).map_or("?", |i| i.name()),
                available: names(&Isa::available()),
            }),
            Err((v, false)) => Err(KernelError::UnknownTier { value: v.clone(), expected: names(&ALL) }),
        }
    }
}

fn names(list: &[Isa]) -> String {
    list.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
