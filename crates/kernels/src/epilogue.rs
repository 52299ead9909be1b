//! The one definition of an epilogue: what a kernel does to its output values after its
//! main computation, while they are still in registers or cache.
//!
//! Two levels, one description:
//! - [`PostOps`]: the fused op's ordered elementwise [`Step`]s and the layouts of the
//!   extra inputs its binary steps read ([`Operand`], broadcast onto an `(N, M, H, W)`
//!   output). Any kernel whose output rows are `(image, channel, columns)` runs them
//!   with [`PostOps::apply_row`].
//! - [`Epilogue`]: what a GEMM or Winograd tile applies in registers (per-row bias, a
//!   full-shaped residual, Relu/Clip), plus a `post` callback for the rest.
//!   [`PostOps::split`] says how much of a [`PostOps`] fits in registers.
//!
//! The graph IR (`sinter-ir`'s fused ops) describes the same steps as attributes; the
//! runtime converts them into a [`PostOps`] once, when a kernel is prepared. Unary and
//! binary steps compute exactly the IR reference's formulas (bit for bit), except the
//! transcendental ones, which run the vectorized [`crate::activation`] kernels (within
//! a few ulp).

use crate::activation::{self, Unary};
use crate::gemm::Matrix;
#[cfg(target_arch = "x86_64")]
use crate::isa::Isa;
use crate::tier::KernelTable;

/// Activation applied to the tile in registers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Activation {
    #[default]
    None,
    /// `max(x, 0)`; NaN stays NaN (as ONNX Relu).
    Relu,
    /// `min(max(x, lo), hi)`; NaN stays NaN (as ONNX Clip).
    Clip { lo: f32, hi: f32 },
}

impl Activation {
    /// The scalar definition every variant must match.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::Clip { lo, hi } => {
                if x < lo {
                    lo
                } else if x > hi {
                    hi
                } else {
                    x
                }
            }
        }
    }
}

/// A callback run on each finished row segment of an output (after bias, residual and
/// activation): `(row, col0, values)`, while the tile is still in cache.
pub type RowFn<'a> = &'a (dyn Fn(usize, usize, &mut [f32]) + Sync);

/// What a GEMM (or Winograd) tile does before it is stored:
/// `act(acc + bias[row] + residual[row, col])`, then `post`. Rows are output channels
/// (features), columns pixels.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// One value per row of the output.
    pub bias: Option<&'a [f32]>,
    /// A matrix of the output's shape added to the result (ResNet's shortcut).
    pub residual: Option<Matrix<'a>>,
    pub act: Activation,
    /// Called on each finished row segment; segments arrive in no particular order,
    /// possibly from several threads.
    pub post: Option<RowFn<'a>>,
}

/// A binary step's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// One elementwise step of a fused op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    Relu,
    /// `min(max(x, min), max)`.
    Clip {
        min: f32,
        max: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    Sigmoid,
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    HardSwish,
    /// `x · sigmoid(x)`.
    Silu,
    /// `0.5 x (1 + erf(x / √2))`.
    GeluErf,
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    GeluTanh,
    Tanh,
    /// `x op v` (`v op x` when `swapped`), `v` read from the step's [`Operand`].
    Binary {
        op: BinOp,
        swapped: bool,
    },
}

impl Step {
    pub fn is_binary(self) -> bool {
        matches!(self, Step::Binary { .. })
    }

    /// The vectorized kernel of a transcendental step.
    fn vectorized(self) -> Option<Unary> {
        Some(match self {
            Step::Sigmoid => Unary::Sigmoid,
            Step::Silu => Unary::Silu,
            Step::Tanh => Unary::Tanh,
            Step::GeluErf => Unary::GeluErf,
            Step::GeluTanh => Unary::GeluTanh,
            _ => return None,
        })
    }
}

/// How a binary step's operand maps an output element `(n, m, y, x)` to its data:
/// `n·sn + m·sm + y·sh + x·sw` (0 strides along broadcast axes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operand {
    pub numel: usize,
    pub sn: usize,
    pub sm: usize,
    pub sh: usize,
    pub sw: usize,
}

impl Operand {
    /// The layout of an operand of `shape` (rank at most 4) broadcast onto `out`
    /// (numpy rules, one direction), or `None` when it does not broadcast.
    pub fn broadcast(shape: &[usize], out: &[usize; 4]) -> Option<Operand> {
        if shape.len() > 4 {
            return None;
        }
        let mut dims = [1usize; 4];
        dims[4 - shape.len()..].copy_from_slice(shape);
        let mut strides = [0usize; 4];
        let mut acc = 1usize;
        for d in (0..4).rev() {
            if dims[d] == out[d] && dims[d] != 1 {
                strides[d] = acc;
            } else if dims[d] != 1 {
                return None;
            }
            acc = acc.checked_mul(dims[d])?;
        }
        Some(Operand { numel: acc, sn: strides[0], sm: strides[1], sh: strides[2], sw: strides[3] })
    }
}

/// How much of a [`PostOps`] a tile applies in registers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InRegisters {
    pub act: Activation,
    /// The steps are `[Add(full-shaped operand 0)]` plus `act`: a residual shortcut.
    pub residual: bool,
    /// Some step cannot run in registers: every step runs per row (`post`) instead.
    pub post: bool,
}

/// A fused op's epilogue: its steps and, per binary step, its operand's layout.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PostOps {
    steps: Vec<Step>,
    operands: Vec<Operand>,
}

impl PostOps {
    /// `None` unless there is exactly one operand per binary step.
    pub fn new(steps: Vec<Step>, operands: Vec<Operand>) -> Option<PostOps> {
        (steps.iter().filter(|s| s.is_binary()).count() == operands.len()).then_some(PostOps { steps, operands })
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn operands(&self) -> &[Operand] {
        &self.operands
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Which steps a tile of an `out`-shaped output can apply in registers: an
    /// optional residual Add of a full-shaped operand, then an optional Relu or Clip.
    pub fn split(&self, out: &[usize; 4]) -> InRegisters {
        let cols = out[2] * out[3];
        let act = |s: Option<&Step>| match s {
            None => Some(Activation::None),
            Some(Step::Relu) => Some(Activation::Relu),
            Some(&Step::Clip { min, max }) => Some(Activation::Clip { lo: min, hi: max }),
            _ => None,
        };
        let full = |o: &Operand| o.sw == 1 && o.sh == out[3] && o.sm == cols && (out[0] == 1 || o.sn == out[1] * cols);
        let (residual, rest) = match self.steps.first() {
            Some(Step::Binary { op: BinOp::Add, .. }) if self.operands.first().is_some_and(full) => {
                (true, &self.steps[1..])
            }
            _ => (false, &self.steps[..]),
        };
        match (rest.len(), act(rest.first())) {
            (0 | 1, Some(act)) => InRegisters { act, residual, post: false },
            _ => InRegisters { act: Activation::None, residual: false, post: true },
        }
    }

    /// Applies the steps to `row`: channel `mc` of image `img`, columns
    /// `j0..j0 + row.len()` of an output `ow` wide. `extras[k]` is the data of binary
    /// step `k`'s operand, at least [`Operand::numel`] long (checked by the caller once
    /// per run).
    pub fn apply_row(
        &self,
        tier: &KernelTable,
        ow: usize,
        (img, mc, j0): (usize, usize, usize),
        row: &mut [f32],
        extras: &[&[f32]],
    ) {
        let mut k = 0;
        for &step in &self.steps {
            let Step::Binary { op, swapped } = step else {
                apply_unary(tier, step, row);
                continue;
            };
            let (o, data) = (self.operands[k], extras[k]);
            let base = img * o.sn + mc * o.sm;
            k += 1;
            if o.sh == 0 && o.sw == 0 {
                apply_scalar(tier, op, swapped, row, data[base]);
            } else if o.sw == 1 && o.sh == ow {
                apply_slice(tier, op, swapped, row, &data[base + j0..]);
            } else {
                for (t, x) in row.iter_mut().enumerate() {
                    let j = j0 + t;
                    let v = data[base + (j / ow) * o.sh + (j % ow) * o.sw];
                    apply_scalar(KernelTable::scalar(), op, swapped, std::slice::from_mut(x), v);
                }
            }
        }
    }
}

/// Whether `tier` lets these loops be compiled for AVX2 (same IEEE operations on wider
/// vectors, no FMA contraction: bit-identical to the portable loops). Holding a table
/// means this CPU has its tier's features.
#[cfg(target_arch = "x86_64")]
#[inline]
fn avx2(tier: &KernelTable) -> bool {
    matches!(tier.isa(), Isa::Avx2 | Isa::Avx512)
}

/// `x[i] = x[i] op v[i]` (`v[i] op x[i]` when `swapped`) over the common length.
pub fn apply_slice(tier: &KernelTable, op: BinOp, swapped: bool, x: &mut [f32], v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2(tier) {
        // SAFETY: the tier is supported here, so the CPU has AVX2 (checked in `avx2`).
        return unsafe { x86::slice(op, swapped, x, v) };
    }
    let _ = tier;
    portable::slice(op, swapped, x, v)
}

/// `x[i] = x[i] op v` (`v op x[i]` when `swapped`): a scalar or per-channel operand.
pub fn apply_scalar(tier: &KernelTable, op: BinOp, swapped: bool, x: &mut [f32], v: f32) {
    #[cfg(target_arch = "x86_64")]
    if avx2(tier) {
        // SAFETY: the tier is supported here, so the CPU has AVX2 (checked in `avx2`).
        return unsafe { x86::scalar(op, swapped, x, v) };
    }
    let _ = tier;
    portable::scalar(op, swapped, x, v)
}

/// A unary step on `row` (binary steps: no-op): the transcendental ones by the
/// vectorized activation kernels, the others by the reference's formulas, exactly.
pub fn apply_unary(tier: &KernelTable, step: Step, row: &mut [f32]) {
    if let Some(f) = step.vectorized() {
        // Infallible: holding a table means this CPU has its tier.
        let _ = activation::apply(tier, f, row);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2(tier) {
        // SAFETY: the tier is supported here, so the CPU has AVX2 (checked in `avx2`).
        return unsafe { x86::unary(step, row) };
    }
    portable::unary(step, row)
}

/// The portable loops, compiled again under AVX2 by `x86`.
mod portable {
    use super::{BinOp, Step};

    #[inline(always)]
    fn zip_slice(x: &mut [f32], v: &[f32], f: impl Fn(f32, f32) -> f32) {
        let n = x.len().min(v.len());
        for (x, &v) in x[..n].iter_mut().zip(&v[..n]) {
            *x = f(*x, v);
        }
    }

    #[inline(always)]
    fn zip_scalar(x: &mut [f32], v: f32, f: impl Fn(f32, f32) -> f32) {
        for x in x {
            *x = f(*x, v);
        }
    }

    #[inline(always)]
    pub(super) fn slice(op: BinOp, swapped: bool, x: &mut [f32], v: &[f32]) {
        match (op, swapped) {
            (BinOp::Add, false) => zip_slice(x, v, |x, v| x + v),
            (BinOp::Add, true) => zip_slice(x, v, |x, v| v + x),
            (BinOp::Mul, false) => zip_slice(x, v, |x, v| x * v),
            (BinOp::Mul, true) => zip_slice(x, v, |x, v| v * x),
            (BinOp::Sub, false) => zip_slice(x, v, |x, v| x - v),
            (BinOp::Sub, true) => zip_slice(x, v, |x, v| v - x),
            (BinOp::Div, false) => zip_slice(x, v, |x, v| x / v),
            (BinOp::Div, true) => zip_slice(x, v, |x, v| v / x),
        }
    }

    #[inline(always)]
    pub(super) fn scalar(op: BinOp, swapped: bool, x: &mut [f32], v: f32) {
        match (op, swapped) {
            (BinOp::Add, false) => zip_scalar(x, v, |x, v| x + v),
            (BinOp::Add, true) => zip_scalar(x, v, |x, v| v + x),
            (BinOp::Mul, false) => zip_scalar(x, v, |x, v| x * v),
            (BinOp::Mul, true) => zip_scalar(x, v, |x, v| v * x),
            (BinOp::Sub, false) => zip_scalar(x, v, |x, v| x - v),
            (BinOp::Sub, true) => zip_scalar(x, v, |x, v| v - x),
            (BinOp::Div, false) => zip_scalar(x, v, |x, v| x / v),
            (BinOp::Div, true) => zip_scalar(x, v, |x, v| v / x),
        }
    }

    #[inline(always)]
    fn map(row: &mut [f32], f: impl Fn(f32) -> f32) {
        for x in row {
            *x = f(*x);
        }
    }

    #[inline(always)]
    fn hard_sigmoid(v: f32, alpha: f32, beta: f32) -> f32 {
        (alpha * v + beta).clamp(0.0, 1.0)
    }

    /// The IR reference's formulas (`sinter_ir::ops::fused`), operation for operation.
    #[inline(always)]
    pub(super) fn unary(step: Step, row: &mut [f32]) {
        match step {
            Step::Relu => map(row, |v| if v < 0.0 { 0.0 } else { v }),
            Step::Clip { min, max } => map(row, |v| {
                let v = if v < min { min } else { v };
                if v > max {
                    max
                } else {
                    v
                }
            }),
            Step::LeakyRelu { alpha } => map(row, |v| if v < 0.0 { alpha * v } else { v }),
            Step::HardSigmoid { alpha, beta } => map(row, |v| hard_sigmoid(v, alpha, beta)),
            Step::HardSwish => map(row, |v| v * hard_sigmoid(v, 1.0 / 6.0, 0.5)),
            // The transcendental steps run the activation kernels (see `apply_unary`).
            Step::Sigmoid | Step::Silu | Step::GeluErf | Step::GeluTanh | Step::Tanh => {}
            Step::Binary { .. } => {}
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{portable, BinOp, Step};

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn slice(op: BinOp, swapped: bool, x: &mut [f32], v: &[f32]) {
        portable::slice(op, swapped, x, v)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scalar(op: BinOp, swapped: bool, x: &mut [f32], v: f32) {
        portable::scalar(op, swapped, x, v)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn unary(step: Step, row: &mut [f32]) {
        portable::unary(step, row)
    }
}
