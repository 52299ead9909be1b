//! The implicit im2col matrix of a convolution as a GEMM B operand: patches are packed
//! straight from the input into the GEMM's panels, a cache-sized block at a time, so no
//! im2col buffer of the whole layer is ever written.

use super::{valid_range, Conv2d};
use sinter_kernels::BSource;
use std::cell::RefCell;

/// B = im2col(x) for one image and group: `cg·kh·kw` rows, `oh·ow` columns.
pub(super) struct ConvB<'a> {
    pub conv: &'a Conv2d,
    /// The group's input channels, `[cg, h, w]`, or with `phased` their phase split
    /// (`[cg, h, sw, phase_len]`, see [`split_phases`]).
    pub x: &'a [f32],
    pub phased: bool,
}

/// Splits every row of `x` (`[.., w]` rows) by column phase for stride `sw`: row `r`
/// becomes `sw` rows of `pl = ceil(w / sw)` where phase `p` holds columns `p, p + sw, …`
/// (zero past the end). With it, the input columns `ox·sw + off` of consecutive outputs
/// are consecutive floats of one phase row.
pub(super) fn split_phases(x: &[f32], w: usize, sw: usize, pl: usize, out: &mut [f32]) {
    for (xrow, phases) in x.chunks_exact(w).zip(out.chunks_exact_mut(sw * pl)) {
        for (p, dst) in phases.chunks_exact_mut(pl).enumerate() {
            let src = xrow.get(p..).unwrap_or(&[]);
            let n = src.len().div_ceil(sw).min(pl);
            for (d, s) in dst[..n].iter_mut().zip(src.iter().step_by(sw)) {
                *d = *s;
            }
            dst[n..].fill(0.0);
        }
    }
}

thread_local! {
    /// One im2col row segment (reused; grows to the widest block a thread packs).
    static ROW: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl ConvB<'_> {
    /// Writes row `kk` of the im2col matrix, columns `n0..n0 + row.len()`, into `row`.
    pub(super) fn fill_row(&self, kk: usize, n0: usize, row: &mut [f32]) {
        let cv = self.conv;
        let (c, r) = (kk / (cv.kh * cv.kw), kk % (cv.kh * cv.kw));
        let (ky, kx) = (r / cv.kw, r % cv.kw);
        let (sw, pl) = (cv.sw, cv.phase_len());
        let plane = if self.phased { cv.h * sw * pl } else { cv.h * cv.w };
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
                if self.phased {
                    // Phase row `start % sw` of input row `iy`, from index `start / sw`.
                    let row = &xc[(iy as usize * sw + start % sw) * pl..][..pl];
                    dst.copy_from_slice(&row[start / sw..start / sw + dst.len()]);
                } else if cv.sw == 1 {
                    let xrow = &xc[iy as usize * cv.w..][..cv.w];
                    dst.copy_from_slice(&xrow[start..start + dst.len()]);
                } else {
                    let xrow = &xc[iy as usize * cv.w..][..cv.w];
                    for (d, s) in dst.iter_mut().zip(xrow[start..].iter().step_by(cv.sw)) {
                        *d = *s;
                    }
                }
            }
        }
    }
}

impl BSource for ConvB<'_> {
    fn rows(&self) -> usize {
        self.conv.kdim()
    }

    fn cols(&self) -> usize {
        self.conv.cols()
    }

    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        let panels = nc.div_ceil(nr);
        let width = panels * nr;
        ROW.with(|row| {
            let mut row = row.borrow_mut();
            if row.len() < width {
                row.resize(width, 0.0);
            }
            let row = &mut row[..width];
            row[nc..].fill(0.0);
            for kk in 0..kc {
                self.fill_row(k0 + kk, n0, &mut row[..nc]);
                for (q, src) in row.chunks_exact(nr).enumerate() {
                    dst[(q * kc + kk) * nr..][..nr].copy_from_slice(src);
                }
            }
        });
    }
}
