//! 2-D NCHW f32 convolution, plain or fused with an epilogue.
//!
//! Per image and group, the output is computed in column blocks of `M_g × chunk`
//! (im2col of just that block into scratch, then one `sgemm`), and the bias and the
//! epilogue are applied to each block right after its GEMM, while it is still in cache.
//! Depthwise convolutions (one input and one output channel per group) use a direct
//! loop instead, since their GEMMs would be 1×k.

use super::Exec;
use crate::prepare::Slot;
use sinter_ir::ops::fused::{apply_unary, BaseKind, BinOp, Fused, Step, BASE_SLOTS};
use sinter_ir::ops::nn::Conv;
use sinter_ir::ops::Op;
use sinter_ir::{IrError, Result, View, ViewMut};

/// Bytes of one output block (`M_g × chunk` floats) kept in L2 between the GEMM and
/// the epilogue.
const BLOCK_BYTES: usize = 128 * 1024;

/// How a binary step's operand maps an output element `(n, m, oy, ox)` to its data:
/// `n * sn + m * sm + oy * sh + ox * sw` (0 strides along broadcast axes).
#[derive(Clone, Copy, Debug)]
struct Operand {
    numel: usize,
    sn: usize,
    sm: usize,
    sh: usize,
    sw: usize,
}

/// A convolution with resolved geometry (see the module docs).
#[derive(Debug)]
pub(super) struct Conv2d {
    name: &'static str,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    m: usize,
    groups: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    ph: i64,
    pw: i64,
    oh: usize,
    ow: usize,
    has_bias: bool,
    steps: Vec<Step>,
    operands: Vec<Operand>,
    /// Output columns per block.
    chunk: usize,
}

impl Conv2d {
    /// The kernel for a `Conv` or `FusedConv` (f32 already checked by the caller), or
    /// `None` where the shapes or steps fall outside what it handles.
    pub(super) fn new(op: &dyn Op, op_type: &str, inputs: &[Option<Slot>], outputs: &[Slot]) -> Option<Conv2d> {
        let (conv, steps, name) = match op_type {
            "Conv" => (op.as_any().downcast_ref::<Conv>()?, Vec::new(), "Conv"),
            "FusedConv" => {
                let f = op.as_any().downcast_ref::<Fused>()?;
                if f.kind != BaseKind::Conv {
                    return None;
                }
                (f.base.as_any().downcast_ref::<Conv>()?, f.epilogue.steps.clone(), "FusedConv")
            }
            _ => return None,
        };
        let x = inputs.first()?.as_ref()?;
        let wt = inputs.get(1)?.as_ref()?;
        let y = outputs.first()?;
        if x.shape.len() != 4 || wt.shape.len() != 4 || outputs.len() != 1 {
            return None;
        }
        let win = conv.resolve_window(&x.shape, &wt.shape).ok()?;
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (m, kh, kw) = (wt.shape[0], wt.shape[2], wt.shape[3]);
        let (oh, ow) = (*win.out.first()?, *win.out.get(1)?);
        if y.shape != [n, m, oh, ow] {
            return None;
        }
        let bias = inputs.get(2).and_then(|b| b.as_ref());
        if bias.is_some_and(|b| b.shape != [m]) {
            return None;
        }
        let extras = if name == "FusedConv" { inputs.get(BASE_SLOTS..).unwrap_or(&[]) } else { &[] };
        let binary = steps.iter().filter(|s| s.is_binary()).count();
        if extras.len() != binary {
            return None;
        }
        let out = [n, m, oh, ow];
        let operands = extras.iter().map(|e| operand(&e.as_ref()?.shape, &out)).collect::<Option<Vec<_>>>()?;
        if c == 0 || h == 0 || w == 0 {
            return None; // degenerate: the reference handles it
        }
        let groups = conv.group;
        if groups == 0 || m % groups != 0 || c % groups != 0 {
            return None;
        }
        let mg = m / groups;
        let cols = oh.checked_mul(ow)?;
        let chunk = (BLOCK_BYTES / 4 / mg.max(1)).clamp(64, cols.max(64));
        // Sizes the run loops rely on, checked once here.
        let kdim = (c / groups).checked_mul(kh)?.checked_mul(kw)?;
        kdim.checked_mul(chunk)?;
        h.checked_mul(w.checked_add(*win.strides.get(1)?)?)?;
        n.checked_mul(c)?.checked_mul(h)?.checked_mul(w)?;
        n.checked_mul(m)?.checked_mul(cols)?;
        let conv2d = Conv2d {
            name,
            n,
            c,
            h,
            w,
            m,
            groups,
            kh,
            kw,
            sh: *win.strides.first()?,
            sw: *win.strides.get(1)?,
            dh: *win.dilations.first()?,
            dw: *win.dilations.get(1)?,
            ph: *win.pad_begin.first()?,
            pw: *win.pad_begin.get(1)?,
            oh,
            ow,
            has_bias: bias.is_some(),
            steps,
            operands,
            chunk,
        };
        Some(conv2d)
    }

    fn cg(&self) -> usize {
        self.c / self.groups
    }
    fn mg(&self) -> usize {
        self.m / self.groups
    }
    fn kdim(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    fn cols(&self) -> usize {
        self.oh * self.ow
    }
    fn depthwise(&self) -> bool {
        self.cg() == 1 && self.mg() == 1
    }
    /// A 1x1 kernel with unit strides and no padding: the input is its own im2col matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }

    /// Fills `col` (`[kdim, len]`) with the patches of output columns `j0..j0 + len` of
    /// one group's input `xg` (`[cg, h, w]`); 0 in the padding.
    fn im2col(&self, xg: &[f32], j0: usize, len: usize, col: &mut [f32]) {
        let plane = self.h * self.w;
        let mut rows = col.chunks_exact_mut(len);
        for xc in xg.chunks_exact(plane).take(self.cg()) {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let Some(row) = rows.next() else { return };
                    let off = (kx * self.dw) as i64 - self.pw;
                    let (lo_all, hi_all) = valid_range(off, self.sw, self.w, self.ow);
                    let mut pos = 0;
                    while pos < len {
                        let j = j0 + pos;
                        let (oy, ox0) = (j / self.ow, j % self.ow);
                        let seg = (self.ow - ox0).min(len - pos);
                        let dst = &mut row[pos..pos + seg];
                        pos += seg;
                        let iy = (oy * self.sh + ky * self.dh) as i64 - self.ph;
                        if iy < 0 || iy >= self.h as i64 {
                            dst.fill(0.0);
                            continue;
                        }
                        let xrow = &xc[iy as usize * self.w..][..self.w];
                        let lo = lo_all.clamp(ox0, ox0 + seg);
                        let hi = hi_all.clamp(lo, ox0 + seg);
                        dst[..lo - ox0].fill(0.0);
                        dst[hi - ox0..].fill(0.0);
                        if lo < hi {
                            // lo * sw + off >= 0 by construction of the valid range.
                            let start = (lo as i64 * self.sw as i64 + off) as usize;
                            let dst = &mut dst[lo - ox0..hi - ox0];
                            if self.sw == 1 {
                                dst.copy_from_slice(&xrow[start..start + dst.len()]);
                            } else {
                                for (d, s) in dst.iter_mut().zip(xrow[start..].iter().step_by(self.sw)) {
                                    *d = *s;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds `bias` and applies the epilogue to `row`: output channel `mc` of image
    /// `img`, columns `j0..j0 + row.len()`, with `sinter_ir`'s own step functions so the
    /// values are exactly those of the reference epilogue.
    fn finish_row(&self, img: usize, mc: usize, j0: usize, row: &mut [f32], bias: Option<f32>, extras: &[&[f32]]) {
        if let Some(b) = bias {
            BinOp::Add.apply_scalar(false, row, b);
        }
        let mut k = 0;
        for &step in &self.steps {
            let Step::Binary { op, swapped } = step else {
                apply_unary(step, row);
                continue;
            };
            let (o, data) = (self.operands[k], extras[k]);
            let base = img * o.sn + mc * o.sm;
            k += 1;
            if o.sh == 0 && o.sw == 0 {
                op.apply_scalar(swapped, row, data[base]);
            } else if o.sw == 1 && o.sh == self.ow {
                op.apply_slice(swapped, row, &data[base + j0..]);
            } else {
                for (t, x) in row.iter_mut().enumerate() {
                    let j = j0 + t;
                    let v = data[base + (j / self.ow) * o.sh + (j % self.ow) * o.sw];
                    op.apply_scalar(swapped, std::slice::from_mut(x), v);
                }
            }
        }
    }

    /// Input elements per row phase of a depthwise plane: with stride `sw`, each input
    /// row is split into `sw` phases (elements `p, p + sw, ...`) so that every kernel tap
    /// reads contiguous memory.
    fn phase_len(&self) -> usize {
        self.w.div_ceil(self.sw)
    }

    /// Floats of the phase-split copy of one input plane (none at unit stride).
    fn depthwise_scratch(&self) -> usize {
        if self.sw == 1 {
            0
        } else {
            self.h * self.sw * self.phase_len()
        }
    }

    /// Direct depthwise convolution of one channel plane `xc` into `yc`, bias included.
    /// `split` holds `depthwise_scratch()` floats for the phase-split input.
    fn depthwise_plane(&self, xc: &[f32], wc: &[f32], bias: f32, yc: &mut [f32], split: &mut [f32]) {
        let (sw, pl) = (self.sw, self.phase_len());
        let src: &[f32] = if sw == 1 {
            xc
        } else {
            for (xrow, phases) in xc.chunks_exact(self.w).zip(split.chunks_exact_mut(sw * pl)) {
                for (p, dst) in phases.chunks_exact_mut(pl).enumerate() {
                    for (t, d) in dst.iter_mut().enumerate() {
                        *d = xrow.get(p + t * sw).copied().unwrap_or(0.0);
                    }
                }
            }
            split
        };
        yc.fill(bias);
        for ky in 0..self.kh {
            for kx in 0..self.kw {
                let wv = wc[ky * self.kw + kx];
                let off = (kx * self.dw) as i64 - self.pw;
                let (lo, hi) = valid_range(off, sw, self.w, self.ow);
                if lo >= hi {
                    continue;
                }
                // Input column of output `lo`: >= 0 by construction of the valid range.
                let start = (lo as i64 * sw as i64 + off) as usize;
                let (phase, base) = (start % sw, start / sw);
                for (oy, yrow) in yc.chunks_exact_mut(self.ow).enumerate() {
                    let iy = (oy * self.sh + ky * self.dh) as i64 - self.ph;
                    if iy < 0 || iy >= self.h as i64 {
                        continue;
                    }
                    let xrow = &src[(iy as usize * sw + phase) * pl..][..pl];
                    for (d, &s) in yrow[lo..hi].iter_mut().zip(&xrow[base..]) {
                        *d += wv * s;
                    }
                }
            }
        }
    }

    fn check_len(&self, what: &str, data: &[f32], want: usize) -> Result<()> {
        if data.len() == want {
            Ok(())
        } else {
            Err(IrError::Data(format!("{}: {what} holds {} floats, expected {want}", self.name, data.len())))
        }
    }
}

impl Exec for Conv2d {
    fn scratch_floats(&self) -> usize {
        if self.depthwise() {
            self.depthwise_scratch()
        } else if self.pointwise() {
            0
        } else {
            self.kdim() * self.chunk.min(self.cols())
        }
    }

    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], scratch: &mut [f32]) -> Result<()> {
        let missing = |index| IrError::MissingInput { op: self.name.into(), index };
        let input = |i: usize| inputs.get(i).copied().flatten().ok_or_else(|| missing(i));
        let x = input(0)?.as_slice::<f32>()?;
        let wt = input(1)?.as_slice::<f32>()?;
        let bias = if self.has_bias { Some(input(2)?.as_slice::<f32>()?) } else { None };
        let mut extras = Vec::with_capacity(self.operands.len());
        for (k, o) in self.operands.iter().enumerate() {
            let e = input(BASE_SLOTS + k)?.as_slice::<f32>()?;
            self.check_len("epilogue input", e, o.numel)?;
            extras.push(e);
        }
        let y = outputs.first_mut().ok_or_else(|| missing(0))?.as_slice_mut::<f32>()?;
        let (plane, cols, cg, mg, kdim) = (self.h * self.w, self.cols(), self.cg(), self.mg(), self.kdim());
        self.check_len("input", x, self.n * self.c * plane)?;
        self.check_len("weights", wt, self.m * kdim)?;
        if let Some(b) = bias {
            self.check_len("bias", b, self.m)?;
        }
        self.check_len("output", y, self.n * self.m * cols)?;
        if y.is_empty() {
            return Ok(());
        }
        let have = scratch.len();
        let no_scratch = |need| IrError::Data(format!("{}: scratch of {have} floats, needs {need}", self.name));
        if self.depthwise() {
            let need = self.depthwise_scratch();
            let split = scratch.get_mut(..need).ok_or_else(|| no_scratch(need))?;
            for (i, (xc, yc)) in x.chunks_exact(plane).zip(y.chunks_exact_mut(cols)).enumerate() {
                let mc = i % self.m;
                self.depthwise_plane(xc, &wt[mc * kdim..][..kdim], bias.map_or(0.0, |b| b[mc]), yc, split);
                self.finish_row(i / self.m, mc, 0, yc, None, &extras);
            }
            return Ok(());
        }
        let pointwise = self.pointwise();
        let need = if pointwise { 0 } else { kdim * self.chunk.min(cols) };
        let col = scratch.get_mut(..need).ok_or_else(|| no_scratch(need))?;
        for img in 0..self.n {
            for g in 0..self.groups {
                let xg = &x[(img * self.c + g * cg) * plane..][..cg * plane];
                let wg = &wt[g * mg * kdim..][..mg * kdim];
                let yg = &mut y[(img * self.m + g * mg) * cols..][..mg * cols];
                let mut j0 = 0;
                while j0 < cols {
                    let len = self.chunk.min(cols - j0);
                    let (b, b_st) = if pointwise {
                        (&xg[j0..], (cols, 1))
                    } else {
                        let col = &mut col[..kdim * len];
                        self.im2col(xg, j0, len, col);
                        (&*col, (len, 1))
                    };
                    let yb = &mut yg[j0..];
                    sgemm_block(self.name, (mg, kdim, len), wg, b, b_st.0, yb, cols)?;
                    for (r, row) in yg.chunks_exact_mut(cols).enumerate() {
                        let b = bias.map(|b| b[g * mg + r]);
                        self.finish_row(img, g * mg + r, j0, &mut row[j0..j0 + len], b, &extras);
                    }
                    j0 += len;
                }
            }
        }
        Ok(())
    }
}

/// The operand layout of an epilogue input of `shape`, broadcast to `out` (rank 4), or
/// `None` when it does not broadcast.
fn operand(shape: &[usize], out: &[usize; 4]) -> Option<Operand> {
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

/// Output positions `[lo, hi)` (within `0..ol`) whose input index `o * s + off` lies in
/// `0..il`.
fn valid_range(off: i64, s: usize, il: usize, ol: usize) -> (usize, usize) {
    let s = s as i64;
    // Smallest o with o * s + off >= 0.
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    // Largest o with o * s + off <= il - 1, plus one.
    let last = il as i64 - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let lo = (lo.max(0) as usize).min(ol);
    (lo, (hi.max(0) as usize).clamp(lo, ol))
}

/// `y = a·b` for an `m×k` row-major `a`, a `k×n` `b` of row stride `b_rs`, and a `m×n`
/// block of `y` at row stride `y_rs`, after checking that the slices cover them.
fn sgemm_block(
    name: &str,
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    b: &[f32],
    b_rs: usize,
    y: &mut [f32],
    y_rs: usize,
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    let span = |rows: usize, rs: usize, cols: usize| (rows - 1).checked_mul(rs)?.checked_add(cols);
    let fits = k > 0
        && span(m, k, k).is_some_and(|s| s <= a.len())
        && span(k, b_rs, n).is_some_and(|s| s <= b.len())
        && span(m, y_rs, n).is_some_and(|s| s <= y.len());
    if !fits {
        return Err(IrError::Data(format!("{name}: GEMM block {m}x{k}x{n} out of its buffers")));
    }
    // SAFETY: the checks above keep every strided access of A, B and Y in bounds.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            b_rs as isize,
            1,
            0.0,
            y.as_mut_ptr(),
            y_rs as isize,
            1,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinter_ir::ops::fused::Epilogue;
    use sinter_ir::{AttrValue, Attrs, DType};
    use sinter_plan::Location;

    fn slot(shape: &[usize]) -> Slot {
        Slot { loc: Location::Arena { offset: 0, bytes: 0 }, dtype: DType::F32, shape: shape.to_vec() }
    }

    fn select(op_type: &str, steps: &[Step], x: &[usize], w: &[usize], y: &[usize]) -> Option<Conv2d> {
        let mut attrs = Attrs::new();
        attrs.insert("pads", AttrValue::Ints(vec![1; 2 * (x.len() - 2)]));
        Epilogue { steps: steps.to_vec() }.write_attrs(&mut attrs);
        let op = sinter_ir::ops::build(op_type, &attrs, 17).expect("op builds");
        Conv2d::new(op.as_ref(), op_type, &[Some(slot(x)), Some(slot(w)), None], &[slot(y)])
    }

    #[test]
    fn takes_2d_convs_and_leaves_the_rest_to_the_reference() {
        let (x, w, y) = ([1, 3, 8, 8], [4, 3, 3, 3], [1, 4, 8, 8]);
        assert!(select("Conv", &[], &x, &w, &y).is_some());
        assert!(select("FusedConv", &[Step::Relu, Step::HardSwish, Step::GeluErf], &x, &w, &y).is_some());
        // 3-D convolutions, ConvTranspose, and a mismatched output go to Generic.
        assert!(select("Conv", &[], &[1, 3, 4, 8, 8], &[4, 3, 3, 3, 3], &[1, 4, 4, 8, 8]).is_none());
        assert!(select("ConvTranspose", &[], &x, &[3, 4, 3, 3], &[1, 4, 6, 6]).is_none());
        assert!(select("Conv", &[], &x, &w, &[1, 4, 7, 8]).is_none());
    }

    #[test]
    fn valid_range_keeps_input_indices_in_bounds() {
        // o * s + off in 0..il, for every case of sign and stride, against brute force.
        for off in -5i64..5 {
            for s in 1..4 {
                for il in 0..7 {
                    for ol in 0..7 {
                        let (lo, hi) = valid_range(off, s, il, ol);
                        let ok = |o: usize| (0..il as i64).contains(&(o as i64 * s as i64 + off));
                        let want: Vec<usize> = (0..ol).filter(|&o| ok(o)).collect();
                        let got: Vec<usize> = (lo..hi).collect();
                        assert_eq!(got, want, "off {off} s {s} il {il} ol {ol}");
                    }
                }
            }
        }
    }

    #[test]
    fn operand_layouts() {
        let out = [2, 6, 4, 5];
        let o = operand(&[6, 1, 1], &out).expect("per channel");
        assert_eq!((o.numel, o.sn, o.sm, o.sh, o.sw), (6, 0, 1, 0, 0));
        let o = operand(&[2, 6, 4, 5], &out).expect("full");
        assert_eq!((o.numel, o.sn, o.sm, o.sh, o.sw), (240, 120, 20, 5, 1));
        let o = operand(&[4, 1], &out).expect("rows");
        assert_eq!((o.numel, o.sn, o.sm, o.sh, o.sw), (4, 0, 0, 1, 0));
        assert!(operand(&[3, 1, 1], &out).is_none());
        assert!(operand(&[1, 2, 6, 4, 5], &out).is_none());
    }
}
