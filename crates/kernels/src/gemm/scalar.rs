//! Portable micro-kernel: the reference every SIMD tier is tested against, and the
//! fallback on CPUs without one. Plain `acc += a * b` (not fused), like the
//! definition of GEMM; LLVM vectorizes the tile with the baseline SIMD (SSE2 / NEON),
//! which is why this plain code reaches ~40 GFLOP/s on Zen 5.

use super::driver::Tile;
use super::operands::MR;

/// Columns per B panel: two 4-wide vectors per row.
pub(crate) const NR: usize = 8;
const HALF: usize = 4;

/// SAFETY: the tile's pointers must be valid as documented on [`Tile`].
pub(crate) unsafe fn tile(t: &Tile) {
    // SAFETY: the driver passes kc × MR A floats and kc × NR B floats.
    let (a, b) = unsafe { (std::slice::from_raw_parts(t.a, t.kc * MR), std::slice::from_raw_parts(t.b, t.kc * NR)) };
    let mut acc = [[0.0f32; NR]; MR];
    if t.load_c {
        for (r, acc_row) in acc.iter_mut().enumerate().take(t.rows) {
            // SAFETY: row r < rows, columns < cols of the tile are inside C.
            let c_row = unsafe { std::slice::from_raw_parts(t.c.add(r * t.ldc), t.cols) };
            acc_row[..t.cols].copy_from_slice(c_row);
        }
    }
    // Two passes of 4 rows: 4 × 8 accumulators fit the 16 baseline vector registers
    // (SSE2 / NEON) next to the operands; all 8 rows at once spill on every k step.
    for half in 0..MR / HALF {
        let mut part = [[0.0f32; NR]; HALF];
        part.copy_from_slice(&acc[half * HALF..half * HALF + HALF]);
        for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            let bk: &[f32; NR] = bk.try_into().unwrap_or(&[0.0; NR]);
            for (part_row, &ar) in part.iter_mut().zip(&ak[half * HALF..]) {
                for (x, &bv) in part_row.iter_mut().zip(bk) {
                    *x += ar * bv;
                }
            }
        }
        acc[half * HALF..half * HALF + HALF].copy_from_slice(&part);
    }
    for (r, acc_row) in acc.iter().enumerate().take(t.rows) {
        // SAFETY: as above; no other reference to this row segment exists.
        let c_row = unsafe { std::slice::from_raw_parts_mut(t.c.add(r * t.ldc), t.cols) };
        match &t.epi {
            None => c_row.copy_from_slice(&acc_row[..t.cols]),
            Some(e) => {
                // SAFETY: bias holds `rows` floats from the tile's first row.
                let bias = if e.bias.is_null() { None } else { Some(unsafe { *e.bias.add(r) }) };
                let res = if e.res.is_null() {
                    None
                } else {
                    // SAFETY: the residual covers the tile's rows × cols (stride ldr).
                    Some(unsafe { std::slice::from_raw_parts(e.res.add(r * e.ldr), t.cols) })
                };
                for (j, (out, &x)) in c_row.iter_mut().zip(acc_row).enumerate() {
                    let mut v = x;
                    if let Some(bv) = bias {
                        v += bv;
                    }
                    if let Some(res) = res {
                        v += res[j];
                    }
                    *out = e.act.apply(v);
                }
            }
        }
    }
}
