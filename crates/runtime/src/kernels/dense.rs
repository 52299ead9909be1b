//! Fully connected layers: `Gemm` / `MatMul` (and their fused forms) whose second
//! operand is a weight matrix. They run as `Yᵀ = W' · Xᵀ` with `W'` (`N × K`, alpha
//! folded in) packed once as the GEMM's A operand, so the per-output-feature bias and
//! activation apply in registers; a single-row input (batch 1 classifiers) needs no
//! transpose at all, others are transposed back through a small scratch.

use super::conv::Weights;
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::fused::{BaseKind, BinOp, Fused, Step, BASE_SLOTS};
use sinter_ir::ops::nn::{Gemm, MatMul};
use sinter_ir::ops::Op;
use sinter_ir::{IrError, Result, View, ViewMut};
use sinter_kernels::{Activation, BSource, Epilogue, PackedA};
use std::cell::RefCell;

#[derive(Debug)]
pub(crate) struct Dense {
    name: &'static str,
    /// Rows of X (all leading axes flattened), inner size, output features.
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    /// W is stored `N × K` (Gemm with transB) rather than `K × N`.
    w_is_nk: bool,
    /// A per-feature bias (`[N]` or `[1, N]`): (input index, scale): Gemm's C scaled
    /// by beta, or a fused MatMul's Add operand.
    bias: Option<(usize, f32)>,
    act: Activation,
    weights: Weights,
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static RUNTIME_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `Xᵀ` (`K × M`) of a row-major `M × K` X, packed straight into the GEMM's panels.
struct Transposed<'a> {
    x: &'a [f32],
    m: usize,
    k: usize,
}

impl BSource for Transposed<'_> {
    fn rows(&self) -> usize {
        self.k
    }
    fn cols(&self) -> usize {
        self.m
    }
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
            for c in 0..nr {
                let col = q * nr + c;
                if col < nc {
                    let src = &self.x[(n0 + col) * self.k + k0..][..kc];
                    for (kk, &v) in src.iter().enumerate() {
                        panel[kk * nr + c] = v;
                    }
                } else {
                    for kk in 0..kc {
                        panel[kk * nr + c] = 0.0;
                    }
                }
            }
        }
    }
}

impl Dense {
    /// The kernel for an f32 `Gemm`/`MatMul` (plain or fused with at most a Relu/Clip)
    /// whose B is 2-D and whose A needs no transpose, or `None`.
    pub(crate) fn new(
        op: &dyn Op,
        op_type: &str,
        inputs: &[Option<Slot>],
        outputs: &[Slot],
        weights: Weights,
    ) -> Option<Dense> {
        let (base, steps, kind): (&dyn Op, &[Step], BaseKind) = match op_type {
            "Gemm" => (op, &[], BaseKind::Gemm),
            "MatMul" => (op, &[], BaseKind::MatMul),
            "FusedGemm" | "FusedMatMul" => {
                let f = op.as_any().downcast_ref::<Fused>()?;
                (f.base.as_ref(), &f.epilogue.steps, f.kind)
            }
            _ => return None,
        };
        // An optional Add of a per-feature vector (a bias), then an optional Relu/Clip.
        let (add, rest) = match steps {
            [Step::Binary { op: BinOp::Add, .. }, rest @ ..] => (true, rest),
            _ => (false, steps),
        };
        let act = match rest {
            [] => Activation::None,
            [Step::Relu] => Activation::Relu,
            [Step::Clip { min, max }] => Activation::Clip { lo: *min, hi: *max },
            _ => return None,
        };
        let x = inputs.first()?.as_ref()?;
        let w = inputs.get(1)?.as_ref()?;
        let y = outputs.first()?;
        if w.shape.len() != 2 || x.shape.is_empty() || outputs.len() != 1 {
            return None;
        }
        let (name, alpha, w_is_nk, beta, c) = match kind {
            BaseKind::Gemm => {
                let g = base.as_any().downcast_ref::<Gemm>()?;
                if g.trans_a || x.shape.len() != 2 {
                    return None;
                }
                (
                    if steps.is_empty() { "Gemm" } else { "FusedGemm" },
                    g.alpha,
                    g.trans_b,
                    g.beta,
                    inputs.get(2).and_then(|c| c.as_ref()),
                )
            }
            BaseKind::MatMul => {
                base.as_any().downcast_ref::<MatMul>()?;
                if x.shape.len() < 2 {
                    return None;
                }
                // FusedMatMul's input 2 is a bias added before its epilogue steps.
                let name = if op_type == "FusedMatMul" { "FusedMatMul" } else { "MatMul" };
                (name, 1.0, false, 1.0, inputs.get(2).and_then(|c| c.as_ref()))
            }
            _ => return None,
        };
        let k = *x.shape.last()?;
        let m = x.shape[..x.shape.len() - 1].iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        let (wk, n) = if w_is_nk { (w.shape[1], w.shape[0]) } else { (w.shape[0], w.shape[1]) };
        let mut want = x.shape[..x.shape.len() - 1].to_vec();
        want.push(n);
        if wk != k || y.shape != want || m == 0 || n == 0 || k == 0 {
            return None;
        }
        let per_feature = |s: &Slot| s.dtype == sinter_ir::DType::F32 && (s.shape == [n] || s.shape == [1, n]);
        let bias = match (c, add) {
            (None, false) => None,
            (Some(c), false) if per_feature(c) => Some((2, beta)),
            (None, true) => {
                let operand = inputs.get(BASE_SLOTS)?.as_ref()?;
                if !per_feature(operand) || inputs.len() != BASE_SLOTS + 1 {
                    return None;
                }
                Some((BASE_SLOTS, 1.0))
            }
            _ => return None,
        };
        m.checked_mul(n)?;
        sinter_kernels::packed_a_len(n, k);
        Some(Dense { name, m, k, n, alpha, w_is_nk, bias, act, weights })
    }

    pub(crate) fn packed_len(&self) -> usize {
        sinter_kernels::packed_a_len(self.n, self.k)
    }

    /// Packs `alpha · W'` (`N × K`) from W as stored.
    pub(crate) fn pack(&self, w: &[f32], out: &mut [f32]) -> Result<()> {
        let (n, k) = (self.n, self.k);
        if w.len() != n * k {
            return Err(IrError::Data(format!("{}: weights hold {} floats, expected {}", self.name, w.len(), n * k)));
        }
        let t: Vec<f32> = if self.w_is_nk {
            w.iter().map(|v| v * self.alpha).collect()
        } else {
            let mut t = vec![0.0; n * k];
            for (kk, row) in w.chunks_exact(n).enumerate() {
                for (j, v) in row.iter().enumerate() {
                    t[j * k + kk] = v * self.alpha;
                }
            }
            t
        };
        sinter_kernels::pack_a(n, k, &t, k, out).map_err(|e| IrError::Data(format!("{}: {e}", self.name)))
    }

    pub(crate) fn load_weights(&mut self, w: &[f32]) -> Result<()> {
        let mut packed = vec![0.0; self.packed_len()];
        self.pack(w, &mut packed)?;
        self.weights = Weights::Loaded(packed);
        Ok(())
    }
}

impl Exec for Dense {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        let missing = |index| IrError::MissingInput { op: self.name.into(), index };
        let input = |i: usize| inputs.get(i).copied().flatten().ok_or_else(|| missing(i));
        let x = input(0)?.as_slice::<f32>()?;
        let w = input(1)?.as_slice::<f32>()?;
        let y = outputs.first_mut().ok_or_else(|| missing(0))?.as_slice_mut::<f32>()?;
        let (m, k, n) = (self.m, self.k, self.n);
        if x.len() != m * k || y.len() != m * n {
            return Err(IrError::Data(format!("{}: operand sizes do not match the plan", self.name)));
        }
        let kerr = |e: sinter_kernels::KernelError| IrError::Data(format!("{}: {e}", self.name));
        let c = match self.bias {
            Some((i, _)) => Some(input(i)?.as_slice::<f32>()?).filter(|c| c.len() == n),
            None => None,
        };
        if self.bias.is_some() && c.is_none() {
            return Err(IrError::Data(format!("{}: bias does not hold {n} floats", self.name)));
        }
        SCRATCH.with(|scaled| {
            YT.with(|yt| {
                let (mut scaled, mut yt) = (scaled.borrow_mut(), yt.borrow_mut());
                // beta · C, unless beta is 1.
                let bias = match (c, self.bias) {
                    (Some(c), Some((_, beta))) if beta != 1.0 => {
                        scaled.clear();
                        scaled.extend(c.iter().map(|v| v * beta));
                        Some(&scaled[..])
                    }
                    (c, _) => c,
                };
                let epi = Epilogue { bias, act: self.act, ..Epilogue::default() };
                let b = Transposed { x, m, k };
                let run = |packed: &[f32], y: &mut [f32], yt: &mut Vec<f32>| -> Result<()> {
                    let a = PackedA::new(packed, n, k).map_err(kerr)?;
                    if m == 1 {
                        return sinter_kernels::gemv::sgemv(cx.isa, &a, x, epi.bias, self.act, y, cx.pool)
                            .map_err(kerr);
                    }
                    yt.resize(n * m, 0.0);
                    sinter_kernels::sgemm(cx.isa, &a, &b, yt, m, &epi, cx.pool).map_err(kerr)?;
                    for (j, col) in yt.chunks_exact(m).enumerate() {
                        for (i, &v) in col.iter().enumerate() {
                            y[i * n + j] = v;
                        }
                    }
                    Ok(())
                };
                match &self.weights {
                    Weights::Plan => run(w, y, &mut yt),
                    Weights::Loaded(p) => run(p, y, &mut yt),
                    Weights::Runtime => RUNTIME_PACK.with(|p| {
                        let mut p = p.borrow_mut();
                        p.resize(self.packed_len(), 0.0);
                        self.pack(w, &mut p)?;
                        run(&p, y, &mut yt)
                    }),
                }
            })
        })
    }
}

thread_local! {
    /// `Yᵀ` of multi-row inputs before it is transposed into Y.
    static YT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}
