//! The GEMM's operands: A packed into `MR`-row panels, and B as any [`BSource`] (a
//! row-major [`Matrix`], or a convolution's implicit im2col). A leaf of the module:
//! the driver and every tier's micro-kernel use these, and they use nothing of theirs.

use crate::error::{KernelError, Result};

/// Rows per packed A panel, the same on every target so a packed plan is portable.
pub const MR: usize = 8;

/// Floats of A (`m × k`) packed into `MR`-row panels.
///
/// Saturates instead of overflowing: no slice is `usize::MAX` floats long, so an
/// absurd size can never pass a length check.
pub fn packed_a_len(m: usize, k: usize) -> usize {
    m.div_ceil(MR).saturating_mul(MR).saturating_mul(k)
}

/// Packs row-major `a` (`m × k`, row stride `lda`) into `out` (`packed_a_len(m, k)`
/// floats): panel `p` holds, for each `kk` in `0..k`, rows `p·MR .. p·MR + MR` of column
/// `kk`, zero past row `m`.
pub fn pack_a(m: usize, k: usize, a: &[f32], lda: usize, out: &mut [f32]) -> Result<()> {
    let needed = if m > 0 && k > 0 { (m - 1).checked_mul(lda).and_then(|x| x.checked_add(k)) } else { Some(0) };
    if out.len() != packed_a_len(m, k) || !matches!(needed, Some(need) if need <= a.len()) {
        return Err(KernelError::Shape(format!(
            "pack_a: {m}x{k} (lda {lda}) from {} floats into {}",
            a.len(),
            out.len()
        )));
    }
    for (p, panel) in out.chunks_exact_mut(MR * k.max(1)).enumerate().take(m.div_ceil(MR)) {
        for kk in 0..k {
            for r in 0..MR {
                let row = p * MR + r;
                panel[kk * MR + r] = if row < m { a[row * lda + kk] } else { 0.0 };
            }
        }
    }
    Ok(())
}

/// A packed by [`pack_a`].
#[derive(Clone, Copy, Debug)]
pub struct PackedA<'a> {
    pub(super) data: &'a [f32],
    pub(super) m: usize,
    pub(super) k: usize,
}

impl<'a> PackedA<'a> {
    pub fn new(data: &'a [f32], m: usize, k: usize) -> Result<PackedA<'a>> {
        if data.len() != packed_a_len(m, k) {
            return Err(KernelError::Shape(format!(
                "packed A {m}x{k} needs {} floats, has {}",
                packed_a_len(m, k),
                data.len()
            )));
        }
        Ok(PackedA { data, m, k })
    }
    pub fn m(&self) -> usize {
        self.m
    }
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
    /// Element `(row, kk)` of the unpacked matrix.
    pub fn get(&self, row: usize, kk: usize) -> f32 {
        self.data[(row / MR) * MR * self.k + kk * MR + row % MR]
    }
}

/// A `k × n` B operand, packed on demand into `nr`-column panels.
pub trait BSource: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    /// Writes rows `k0..k0 + kc` and columns `n0..n0 + nc` into `dst` as consecutive
    /// panels of `nr` columns: panel `q` holds, for each row `kk`, columns
    /// `n0 + q·nr .. n0 + q·nr + nr`, zero past `n0 + nc`. `dst` holds exactly
    /// `kc · nc.div_ceil(nr) · nr` floats.
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]);
    /// The operand as a row-major matrix `(data, row stride)`, if it is one: kernels that
    /// take a row stride then read its full-width panels in place instead of packing
    /// them (a 1×1 convolution's input; the copy would cost as much as ~1/4 of its FMAs).
    fn direct(&self) -> Option<(&[f32], usize)> {
        None
    }
}

/// A row-major matrix view (row stride `ld`).
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    pub(super) data: &'a [f32],
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) ld: usize,
}

impl<'a> Matrix<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize, ld: usize) -> Result<Matrix<'a>> {
        let needed =
            if rows > 0 && cols > 0 { (rows - 1).checked_mul(ld).and_then(|x| x.checked_add(cols)) } else { Some(0) };
        if cols > ld || !matches!(needed, Some(need) if need <= data.len()) {
            return Err(KernelError::Shape(format!("matrix {rows}x{cols} (ld {ld}) over {} floats", data.len())));
        }
        Ok(Matrix { data, rows, cols, ld })
    }
    /// Row `r` (`cols` values).
    pub fn row(&self, r: usize) -> &'a [f32] {
        &self.data[r * self.ld..][..self.cols]
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.ld + c]
    }
}

impl BSource for Matrix<'_> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn direct(&self) -> Option<(&[f32], usize)> {
        Some((self.data, self.ld))
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        if kc == 0 || nr == 0 {
            return;
        }
        // Row-major B: each panel row is a contiguous run of the source row, so copy
        // runs (memcpy-speed) instead of single floats; only the tail panel pads.
        for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate().take(nc.div_ceil(nr)) {
            let c0 = n0 + q * nr;
            let w = nr.min(n0 + nc - c0);
            for (kk, out) in panel.chunks_exact_mut(nr).enumerate() {
                let start = (k0 + kk) * self.ld + c0;
                out[..w].copy_from_slice(&self.data[start..start + w]);
                out[w..].fill(0.0);
            }
        }
    }
}
