//! Per-tier SIMD lane primitives, one module per tier with the same names, so a kernel
//! written once as a macro over them (`use crate::simd::avx2::*; engine!(...)`) is
//! instantiated per tier with that tier's vector type and target features.
//!
//! Each module defines `V` (its vector type), `L` (f32 lanes) and `#[inline]`
//! functions compiled with the tier's features: `splat`, `load`, `store`,
//! `store_n` (first `n` lanes), `load_masked` (lanes set in a bit mask, zero
//! elsewhere), `fmadd(a, b, c) = a·b + c` (fused), `vadd`, `mul`,
//! `vmax(x, m) = x > m ? x : m` (NaN in `x` never wins), `div_or_zero`,
//! `relu` and `clip` (exactly `Activation::apply`, NaN and -0.0 included), and the
//! row copies `gather2` (`d[t] = s[2t]`), `split2` / `copy_row` with their per-plane
//! plans. Callers call them only from functions with the same target features
//! enabled (the depthwise window and ring engines, which pooling also runs on).
//!
//! Used by: the depthwise window engine and row ring (`depthwise.rs`), hence pooling.
//! The GEMM micro-kernels, Winograd transforms, activations, GEMV and layer norm do not
//! use them (see the crate docs).

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
