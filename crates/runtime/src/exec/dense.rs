//! Fully connected layers: `Gemm` / `MatMul` (and their fused forms) whose second
//! operand is a weight matrix. They run as `Yᵀ = W' · Xᵀ` with `W'` (`N × K`, alpha
//! folded in) packed once as the GEMM's A operand, so the per-output-feature bias and
//! activation apply in registers; a single-row input (batch 1 classifiers) needs no
//! transpose at all, others are transposed back through a small scratch.

use super::conv::Weights;
use super::epilogue::{dims4, epilogue_inputs, post_ops, MAX_EPILOGUE_INPUTS};
use super::refusal::{need, Accept, Refusal, Why};
use super::{take_ws, Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::fused::{BaseKind, BinOp, Fused, Step, BASE_SLOTS};
use sinter_ir::ops::nn::{Gemm, MatMul};
use sinter_ir::ops::Op;
use sinter_ir::{DType, IrError, Result, View, ViewMut};
use sinter_kernels::epilogue::PostOps;
use sinter_kernels::scratch::round_floats;
use sinter_kernels::{sgemm_scratch, Activation, BSource, Epilogue, PackedA, Scratch};

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
    /// Epilogue steps that do not fit in registers (GELU, a residual Add, …): all of
    /// them run on each finished output row instead; empty when the GEMM applies the
    /// whole epilogue.
    post: PostOps,
    /// The output shape left-padded to `[n, m, h, w]` (what `operands` map onto).
    dims: [usize; 4],
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
    /// The kernel for an f32 `Gemm`/`MatMul`, plain or fused (bias and Relu/Clip in
    /// registers, other steps per row), whose B is 2-D and whose A needs no transpose,
    /// or why not.
    pub(crate) fn new(
        op: &dyn Op,
        op_type: &str,
        inputs: &[Option<Slot>],
        outputs: &[Slot],
        weights: Weights,
    ) -> Accept<Dense> {
        let (base, steps, kind): (&dyn Op, &[Step], BaseKind) = match op_type {
            "Gemm" => (op, &[], BaseKind::Gemm),
            "MatMul" => (op, &[], BaseKind::MatMul),
            "FusedGemm" | "FusedMatMul" => {
                let f = op.as_any().downcast_ref::<Fused>().why("the op is not a fused op")?;
                (f.base.as_ref(), &f.epilogue.steps, f.kind)
            }
            _ => return Err(Refusal::new("not a matrix product")),
        };
        // In registers: an optional Add of a per-feature vector (a bias), then an
        // optional Relu/Clip. Anything else runs per row after the GEMM.
        let (add, rest) = match steps {
            [Step::Binary { op: BinOp::Add, .. }, rest @ ..] => (true, rest),
            _ => (false, steps),
        };
        let act = match rest {
            [] => Some(Activation::None),
            [Step::Relu] => Some(Activation::Relu),
            [Step::Clip { min, max }] => Some(Activation::Clip { lo: *min, hi: *max }),
            _ => None,
        };
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let w = inputs.get(1).and_then(Option::as_ref).why("no weights")?;
        let y = outputs.first().why("no output")?;
        need(w.shape.len() == 2, "the weights are not a matrix")?;
        need(!x.shape.is_empty() && outputs.len() == 1, "a scalar input or several outputs")?;
        let (name, alpha, w_is_nk, beta, c) = match kind {
            BaseKind::Gemm => {
                let g = base.as_any().downcast_ref::<Gemm>().why("the op is not a Gemm")?;
                need(!g.trans_a, "transA is set")?;
                need(x.shape.len() == 2, "the input is not a matrix")?;
                (
                    if steps.is_empty() { "Gemm" } else { "FusedGemm" },
                    g.alpha,
                    g.trans_b,
                    g.beta,
                    inputs.get(2).and_then(|c| c.as_ref()),
                )
            }
            BaseKind::MatMul => {
                base.as_any().downcast_ref::<MatMul>().why("the op is not a MatMul")?;
                need(x.shape.len() >= 2, "a 1-D input (promoted by MatMul's rules)")?;
                // FusedMatMul's input 2 is a bias added before its epilogue steps.
                let name = if op_type == "FusedMatMul" { "FusedMatMul" } else { "MatMul" };
                (name, 1.0, false, 1.0, inputs.get(2).and_then(|c| c.as_ref()))
            }
            _ => return Err(Refusal::new("not a matrix product")),
        };
        let k = *x.shape.last().why("a scalar input")?;
        let m = x.shape[..x.shape.len() - 1].iter().try_fold(1usize, |a, &d| a.checked_mul(d)).why("sizes overflow")?;
        let (wk, n) = if w_is_nk { (w.shape[1], w.shape[0]) } else { (w.shape[0], w.shape[1]) };
        let mut want = x.shape[..x.shape.len() - 1].to_vec();
        want.push(n);
        need(wk == k && y.shape == want, "operand shapes do not match")?;
        need(m != 0 && n != 0 && k != 0, "an empty dimension")?;
        let per_feature = |s: &Slot| s.dtype == DType::F32 && (s.shape == [n] || s.shape == [1, n]);
        let fused_add = || {
            let operand = inputs.get(BASE_SLOTS)?.as_ref()?;
            (per_feature(operand) && inputs.len() == BASE_SLOTS + 1).then_some((BASE_SLOTS, 1.0))
        };
        let in_registers = match (c, add, act) {
            (None, false, Some(act)) => Some((None, act)),
            (Some(c), false, Some(act)) if per_feature(c) => Some((Some((2, beta)), act)),
            (None, true, Some(act)) => fused_add().map(|bias| (Some(bias), act)),
            _ => None,
        };
        m.checked_mul(n).why("sizes overflow")?;
        let mut dense = Dense {
            name,
            m,
            k,
            n,
            alpha,
            w_is_nk,
            bias: None,
            act: Activation::None,
            weights,
            post: PostOps::default(),
            dims: [1, 1, m, n],
        };
        if let Some((bias, act)) = in_registers {
            (dense.bias, dense.act) = (bias, act);
            return Ok(dense);
        }
        // The general epilogue: only C (or FusedMatMul's bias) in registers.
        need(c.is_none_or(per_feature), "C is not one value per output feature")?;
        dense.bias = c.map(|_| (2, beta));
        dense.dims = dims4(&y.shape)?;
        dense.post = post_ops(steps, inputs.get(BASE_SLOTS..).unwrap_or(&[]), &dense.dims)?;
        Ok(dense)
    }

    /// Runs [`Dense::post`] on the finished output `y` (`m × n`), rows in parallel.
    fn finish(&self, y: &mut [f32], extras: &[&[f32]], cx: &RunCtx) {
        let [_, b, h, w] = self.dims;
        // An output row is `w` (= n) floats of plane `r / h` of the padded shape.
        let per_task = self.m.div_ceil(cx.pool.threads() * 4).max(1);
        cx.pool.par_chunks(y, self.n, per_task, &|first, rows| {
            for (r, row) in (first..).zip(rows.chunks_exact_mut(self.n)) {
                let p = r / h;
                self.post.apply_row(cx.tier, w, (p / b, p % b, (r % h) * w), row, extras);
            }
        });
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
        let mut extras: [&[f32]; MAX_EPILOGUE_INPUTS] = [&[]; MAX_EPILOGUE_INPUTS];
        let count = epilogue_inputs(self.name, inputs, BASE_SLOTS, &self.post, &mut extras)?;
        let extras = &extras[..count];
        let kerr = |e: sinter_kernels::KernelError| IrError::Data(format!("{}: {e}", self.name));
        let c = match self.bias {
            Some((i, _)) => Some(input(i)?.as_slice::<f32>()?).filter(|c| c.len() == n),
            None => None,
        };
        if self.bias.is_some() && c.is_none() {
            return Err(IrError::Data(format!("{}: bias does not hold {n} floats", self.name)));
        }
        let (cx, ws) = cx.split();
        let cx = &cx;
        let run = |packed: &[f32], ws: &mut [f32]| -> Result<()> {
            // beta · C, unless beta is 1.
            let (scaled, ws) = take_ws(self.name, ws, self.scaled_len())?;
            let bias = match (c, self.bias) {
                (Some(c), Some((_, beta))) if beta != 1.0 => {
                    for (s, v) in scaled.iter_mut().zip(c) {
                        *s = v * beta;
                    }
                    Some(&scaled[..])
                }
                (c, _) => c,
            };
            let epi = Epilogue { bias, act: self.act, ..Epilogue::default() };
            let a = PackedA::new(packed, n, k).map_err(kerr)?;
            if m == 1 {
                sinter_kernels::gemv::sgemv(cx.tier, &a, x, epi.bias, self.act, y, cx.pool).map_err(kerr)?;
            } else {
                // `Yᵀ` (n × m) first, then transposed into Y.
                let (yt, ws) = take_ws(self.name, ws, n * m)?;
                let b = Transposed { x, m, k };
                sinter_kernels::sgemm(cx.tier, &a, &b, yt, m, &epi, cx.pool, ws).map_err(kerr)?;
                transpose_into(yt, m, n, y, cx);
            }
            if !self.post.is_empty() {
                self.finish(y, extras, cx);
            }
            Ok(())
        };
        self.weights.with_packed(self.name, w, self.packed_len(), ws, |w, out| self.pack(w, out), run)
    }

    /// Shared: weights packed per run (non-constant weights), `beta · C` (unless beta
    /// is 1) and, for several rows, `Yᵀ`. Per thread: the GEMM's packed B block (a
    /// single row runs as a GEMV, which needs none).
    fn workspace(&self) -> Scratch {
        let pack = self.weights.workspace(self.packed_len());
        let yt = if self.m > 1 { round_floats(self.n.saturating_mul(self.m)) } else { 0 };
        let shared = pack.saturating_add(round_floats(self.scaled_len())).saturating_add(yt);
        let gemm = if self.m > 1 { sgemm_scratch(self.n, self.m, self.k).per_thread } else { 0 };
        Scratch::new(shared, gemm)
    }
}

impl Dense {
    /// Floats of `beta · C`: `n` when a bias is scaled, else none.
    fn scaled_len(&self) -> usize {
        match self.bias {
            Some((_, beta)) if beta != 1.0 => self.n,
            _ => 0,
        }
    }
}

/// `y` (`m × n`) = the transpose of `yt` (`n × m`), rows of `y` spread over the
/// context's threads, in square tiles so both sides stream through cache lines (a plain
/// column walk over `y` touches a new line per element).
fn transpose_into(yt: &[f32], m: usize, n: usize, y: &mut [f32], cx: &RunCtx) {
    const TILE: usize = 16;
    let per_task = m.div_ceil(cx.pool.threads() * 4).max(TILE);
    cx.pool.par_chunks(y, n, per_task, &|i0, rows| {
        let i1 = i0 + rows.len() / n;
        for ib in (i0..i1).step_by(TILE) {
            let ie = (ib + TILE).min(i1);
            for jb in (0..n).step_by(TILE) {
                let je = (jb + TILE).min(n);
                for i in ib..ie {
                    let out = &mut rows[(i - i0) * n..][jb..je];
                    for (d, j) in out.iter_mut().zip(jb..je) {
                        *d = yt[j * m + i];
                    }
                }
            }
        }
    });
}
