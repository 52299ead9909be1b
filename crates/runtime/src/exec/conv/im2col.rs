//! The implicit im2col matrix of a convolution as a GEMM B operand: patches are packed
//! into the GEMM's panels a cache-sized block at a time, from a padded, phase-split copy
//! of the input (kernels larger than 1×1: straight copies, no bounds checks) or from the
//! input itself (strided or padded 1×1 kernels), so no im2col buffer of a whole large
//! layer is ever written.

use super::geom::{valid_range, ConvGeom};
use sinter_kernels::BSource;

/// B = im2col(x) for one image and group: `cg·kh·kw` rows, `oh·ow` columns.
pub(super) struct ConvB<'a> {
    pub g: &'a ConvGeom,
    /// The group's input channels: `[cg, h, w]` for [`Layout::Plain`], or their padded,
    /// phase-split copy for [`Layout::Padded`].
    pub x: &'a [f32],
    pub layout: Layout,
}

/// How [`ConvB::x`] holds the input.
#[derive(Clone, Copy, Debug)]
pub(super) enum Layout {
    /// The input itself; taps outside it are zero (bounds checked per row segment).
    Plain,
    /// Written by [`pad_split`]: every tap of every output is inside it, and the taps of
    /// consecutive outputs of a row are consecutive floats.
    Padded(Padded),
}

/// The zero-padded, column-phase-split copy of a convolution's input.
///
/// Each channel is `hp` rows of the padded input (exactly the rows the windows read),
/// each row split by column phase for stride `sw`: phase `p` holds the padded columns
/// `p, p + sw, …` (`pl` of them). Tap `(ky, kx)` of output `(oy, ox)` is then float
/// `ox + (kx·dw) / sw` of phase `(kx·dw) % sw` of row `oy·sh + ky·dh`: contiguous in `ox`,
/// with no bounds to check, so packing B is a few straight copies per row of a block.
#[derive(Clone, Copy, Debug)]
pub(super) struct Padded {
    pub hp: usize,
    pub pl: usize,
    pub sw: usize,
}

impl Padded {
    /// The layout for `conv`, or `None` if its size overflows.
    pub fn new(conv: &ConvGeom) -> Option<Padded> {
        let hp = (conv.oh - 1).checked_mul(conv.sh)?.checked_add((conv.kh - 1).checked_mul(conv.dh)?)? + 1;
        let wp = (conv.ow - 1).checked_mul(conv.sw)?.checked_add((conv.kw - 1).checked_mul(conv.dw)?)? + 1;
        let p = Padded { hp, pl: wp.div_ceil(conv.sw), sw: conv.sw };
        hp.checked_mul(p.sw)?.checked_mul(p.pl)?.checked_mul(conv.cg())?;
        Some(p)
    }
    /// Floats of one channel.
    pub fn plane(&self) -> usize {
        self.hp * self.sw * self.pl
    }
}

/// Writes channels of `x` (`[.., h, w]` planes) into `out` (whole planes of `layout`).
pub(super) fn pad_split(conv: &ConvGeom, layout: &Padded, x: &[f32], out: &mut [f32]) {
    let (sw, pl) = (layout.sw, layout.pl);
    let plane = conv.h * conv.w;
    for (xc, oc) in x.chunks_exact(plane).zip(out.chunks_exact_mut(layout.plane())) {
        for (py, orow) in oc.chunks_exact_mut(sw * pl).enumerate() {
            let iy = py as i64 - conv.ph;
            if iy < 0 || iy >= conv.h as i64 {
                orow.fill(0.0);
                continue;
            }
            let xrow = &xc[iy as usize * conv.w..][..conv.w];
            for (p, dst) in orow.chunks_exact_mut(pl).enumerate() {
                // Padded column t·sw + p is input column t·sw + p − pw.
                let off = p as i64 - conv.pw;
                let (lo, hi) = valid_range(off, sw, conv.w, pl);
                dst[..lo].fill(0.0);
                dst[hi..].fill(0.0);
                if lo < hi {
                    let start = (lo as i64 * sw as i64 + off) as usize;
                    let dst = &mut dst[lo..hi];
                    if sw == 1 {
                        dst.copy_from_slice(&xrow[start..start + dst.len()]);
                    } else {
                        for (d, s) in dst.iter_mut().zip(xrow[start..].iter().step_by(sw)) {
                            *d = *s;
                        }
                    }
                }
            }
        }
    }
}

/// One straight copy of a packed block: `len` floats from `src` (relative to a tap's
/// first float) to `dst` (relative to the block row's first float).
#[derive(Clone, Copy)]
struct Seg {
    src: usize,
    dst: usize,
    len: usize,
}

/// Copies of a padded block computed at a time (on the stack: packing runs on any
/// pool thread and gets no scratch). A block of up to `NC` = 576 columns cut at output
/// rows of 3 or more pixels fits in one batch.
const SEG_BATCH: usize = 192;

/// Floats of the on-stack im2col row a plain block is written through before it is
/// split into panels: whole panels of up to `NC` columns at a time.
const ROW_FLOATS: usize = 1152;

impl ConvB<'_> {
    /// Writes row `kk` of the im2col matrix of a [`Layout::Plain`] input, columns
    /// `n0..n0 + row.len()`, into `row`.
    pub(super) fn fill_row(&self, kk: usize, n0: usize, row: &mut [f32]) {
        let cv = self.g;
        let (c, r) = (kk / (cv.kh * cv.kw), kk % (cv.kh * cv.kw));
        let (ky, kx) = (r / cv.kw, r % cv.kw);
        let plane = cv.h * cv.w;
        let xc = &self.x[c * plane..][..plane];
        let off = (kx * cv.dw) as i64 - cv.pw;
        let (lo_all, hi_all) = valid_range(off, cv.sw, cv.w, cv.ow);
        let len = row.len();
        let mut pos = 0;
        // The output position of column n0; later segments start at the next row's 0.
        let (mut oy, mut ox0) = (n0 / cv.ow, n0 % cv.ow);
        while pos < len {
            let seg = (cv.ow - ox0).min(len - pos);
            let dst = &mut row[pos..pos + seg];
            pos += seg;
            let (oy_now, ox_now) = (oy, ox0);
            oy += 1;
            ox0 = 0;
            let (oy, ox0) = (oy_now, ox_now);
            let iy = (oy * cv.sh + ky * cv.dh) as i64 - cv.ph;
            if iy < 0 || iy >= cv.h as i64 {
                dst.fill(0.0);
                continue;
            }
            let lo = lo_all.clamp(ox0, ox0 + seg);
            let hi = hi_all.clamp(lo, ox0 + seg);
            dst[..lo - ox0].fill(0.0);
            dst[hi - ox0..].fill(0.0);
            if lo < hi {
                // lo * sw + off >= 0 by construction of the valid range.
                let start = (lo as i64 * cv.sw as i64 + off) as usize;
                let dst = &mut dst[lo - ox0..hi - ox0];
                let xrow = &xc[iy as usize * cv.w..][..cv.w];
                if cv.sw == 1 {
                    dst.copy_from_slice(&xrow[start..start + dst.len()]);
                } else {
                    for (d, s) in dst.iter_mut().zip(xrow[start..].iter().step_by(cv.sw)) {
                        *d = *s;
                    }
                }
            }
        }
    }

    /// [`BSource::pack`] from a [`Layout::Padded`] input: the block's output positions
    /// cut into runs (at output-row and panel boundaries) once, then for each K row the
    /// same runs copied from that row's tap.
    #[allow(clippy::too_many_arguments)]
    fn pack_padded(&self, p: &Padded, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        let cv = self.g;
        let row = p.sw * p.pl;
        // Columns past nc in the last panel are zero.
        let pad = nc.div_ceil(nr) * nr - nc;
        let pad_at = (nc / nr) * kc * nr + nc % nr;
        let taps = cv.kh * cv.kw;
        let mut segs = [Seg { src: 0, dst: 0, len: 0 }; SEG_BATCH];
        let mut j = 0;
        while j < nc {
            // The next batch of runs, then every K row's copies of them.
            let mut count = 0;
            while j < nc && count < SEG_BATCH {
                let (oy, ox) = ((n0 + j) / cv.ow, (n0 + j) % cv.ow);
                let len = (cv.ow - ox).min(nc - j).min(nr - j % nr);
                segs[count] = Seg { src: oy * cv.sh * row + ox, dst: (j / nr) * kc * nr + j % nr, len };
                count += 1;
                j += len;
            }
            for kk in 0..kc {
                let (c, t) = ((k0 + kk) / taps, (k0 + kk) % taps);
                let (ky, kx) = (t / cv.kw, t % cv.kw);
                let xoff = kx * cv.dw;
                let tap = &self.x[c * p.plane() + ky * cv.dh * row + (xoff % p.sw) * p.pl + xoff / p.sw..];
                let out = &mut dst[kk * nr..];
                for s in &segs[..count] {
                    copy_run(&mut out[s.dst..s.dst + s.len], &tap[s.src..s.src + s.len]);
                }
                if pad > 0 && j == nc {
                    out[pad_at..pad_at + pad].fill(0.0);
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of a packed block (at most a panel
/// wide): fixed 8-float moves, which compile to vector loads and stores, instead of a
/// call to `memcpy` per run.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        d.copy_from_slice(s);
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

impl BSource for ConvB<'_> {
    fn rows(&self) -> usize {
        self.g.kdim()
    }

    fn cols(&self) -> usize {
        self.g.cols()
    }

    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        if let Layout::Padded(p) = self.layout {
            return self.pack_padded(&p, k0, kc, n0, nc, nr, dst);
        }
        let panels = nc.div_ceil(nr);
        if nr > ROW_FLOATS {
            // Panels wider than the row buffer: each row of each panel written in place.
            for kk in 0..kc {
                for q in 0..panels {
                    let w = nr.min(nc - q * nr);
                    let out = &mut dst[(q * kc + kk) * nr..][..nr];
                    self.fill_row(k0 + kk, n0 + q * nr, &mut out[..w]);
                    out[w..].fill(0.0);
                }
            }
            return;
        }
        // A row of up to `per` panels at a time (all of them for blocks up to NC).
        let per = ROW_FLOATS / nr;
        let mut row = [0.0f32; ROW_FLOATS];
        for q0 in (0..panels).step_by(per) {
            let q1 = (q0 + per).min(panels);
            let (c0, c1) = (q0 * nr, (q1 * nr).min(nc));
            let row = &mut row[..(q1 - q0) * nr];
            row[c1 - c0..].fill(0.0);
            for kk in 0..kc {
                self.fill_row(k0 + kk, n0 + c0, &mut row[..c1 - c0]);
                for (q, src) in (q0..).zip(row.chunks_exact(nr)) {
                    dst[(q * kc + kk) * nr..][..nr].copy_from_slice(src);
                }
            }
        }
    }
}
