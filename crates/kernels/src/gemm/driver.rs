//! Blocking, threading and scratch management shared by every tier; the tiers differ
//! only in their micro-kernel and block sizes ([`Spec`]).
//!
//! Loop nest of one task (a rectangle of C):
//!
//! ```text
//! for each NC-column block of the task          (B block kc×nc lives in L2)
//!   for each KC block of k                      (pack B block into thread scratch)
//!     for each MR-row A panel of the task       (A micro-panel kc×MR lives in L1)
//!       for each NR-column B panel of the block (streamed from L2, prefetch-friendly)
//!         micro-kernel: MR×NR tile in registers, epilogue on the last KC block
//!       post() on the panel's finished rows     (still in L1/L2)
//! ```

use super::operands::{BSource, PackedA, MR};
use crate::epilogue::{Activation, Epilogue};
use crate::isa::{Isa, ALL};
use crate::scratch::Scratch;
use crate::thread_pool::ThreadPool;
use crate::tier::KernelTable;

/// One micro-kernel call: an `MR × NR` tile of C over one K block.
///
/// Raw pointers because tiles of one C are written by several threads at once; the
/// driver guarantees that the pointed-to ranges are valid and that no two threads
/// touch the same element (see `run`).
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Tile {
    /// `kc × MR` packed A floats (the K block of one A panel).
    pub a: *const f32,
    /// `kc × nr` packed B floats (one B panel, zero-padded to `nr` columns), or for
    /// the tail kernel `kc × cols` (exactly the tile's columns); or, for the x86 main
    /// kernels, a full-width panel read in place from a row-major B (see `ldb`).
    pub b: *const f32,
    /// Floats from one k step of `b` to the next: `nr` when packed, the matrix's row
    /// stride when read in place (the tail kernel always gets a packed panel).
    pub ldb: usize,
    pub kc: usize,
    /// Null, or the A block the next row of tiles will read (`kc × MR` floats), for
    /// the kernel to prefetch while it computes: weights stream from memory once per
    /// inference, and a panel used by only a few tiles (small feature maps) cannot
    /// hide that latency by itself. A hint: it may point past A.
    pub a_next: *const f32,
    /// C at the tile's first row and column.
    pub c: *mut f32,
    pub ldc: usize,
    /// Valid rows (`1..=MR`) and columns (`1..=nr`) of the tile; the rest is padding
    /// that is computed but never loaded or stored.
    pub rows: usize,
    pub cols: usize,
    /// Continue the chain stored in C by an earlier K block (else start from zero).
    pub load_c: bool,
    /// Present on the last K block only.
    pub epi: Option<TileEpi>,
}

/// The epilogue operands of a tile, already offset to its first row and column.
#[derive(Clone, Copy)]
pub(crate) struct TileEpi {
    /// Null, or `bias[row0..row0 + rows]`.
    pub bias: *const f32,
    /// Null, or the residual at `(row0, col0)` with row stride `ldr`.
    pub res: *const f32,
    pub ldr: usize,
    pub act: Activation,
}

/// A micro-kernel. SAFETY contract for callers: every pointer in the tile is valid for
/// the extents described on [`Tile`], and the tier's CPU features are present.
pub(crate) type KernelFn = unsafe fn(&Tile);

/// A tier's micro-kernel and block sizes.
#[derive(Clone, Copy)]
pub(crate) struct Spec {
    /// Columns per packed B panel (the kernel's register tile width).
    pub nr: usize,
    /// K block: `kc × MR` A floats must sit in L1 next to the streamed B panel.
    pub kc: usize,
    /// N block, a multiple of `nr`: `kc × nc` packed B floats should fill about half of L2.
    pub nc: usize,
    /// A GEMM whose whole `k × n` B (`n` rounded up to panels, at most `nc`) is at most
    /// this many floats runs with one K block instead of `kc`: small feature maps
    /// (ResNet's 14×14 and 7×7 layers) then store and reload C once instead of once per
    /// K block, and stream each A panel contiguously. It depends only on `k` and `n`,
    /// so results stay independent of the thread count. 0 turns it off.
    pub whole_k_floats: usize,
    pub kernel: KernelFn,
    /// Column granularity of `kernel`'s work (for [`split`]): a partial panel costs
    /// whole vectors (masked), or on NEON the whole panel (it computes all 12).
    pub lanes: usize,
    /// The kernel for a narrow last panel (x86); without one every panel runs `kernel`.
    pub tail: Option<TailSpec>,
    /// `kernel` honours [`Tile::ldb`], so a row-major B ([`BSource::direct`]) needs no
    /// packing for its full-width panels.
    pub direct_b: bool,
}

/// A kernel for a narrow last panel, packed exactly `cols` wide (see `tail.rs`),
/// cheaper there than a mostly masked `nr`-wide tile.
#[derive(Clone, Copy)]
pub(crate) struct TailSpec {
    /// Widest last panel it takes.
    pub max_cols: usize,
    pub kernel: KernelFn,
    /// Its time per column in units of a main-kernel column (for [`split`]).
    pub cost: usize,
}

/// `(nr, kc, nc, whole_k_floats)` of every tier's [`Spec`], on every architecture
/// (where a tier is missing its plan still records what it would need): the scratch a
/// GEMM declares is the most any tier needs, so a plan's workspace figures hold on every
/// machine it runs on. The `blocking_matches_spec` test keeps it in step with `spec`.
fn blocking_any(isa: Isa) -> (usize, usize, usize, usize) {
    match isa {
        Isa::Avx512 => (48, 256, 576, 1 << 18),
        Isa::Avx2 => (24, 256, 576, 1 << 18),
        Isa::Neon => (12, 256, 576, 0),
        Isa::Scalar => (8, 256, 512, 0),
    }
}

/// The K block a GEMM with inner size `k` and `n` columns runs with (see
/// [`Spec::whole_k_floats`]).
fn kc_for(nr: usize, kc: usize, nc: usize, whole_k_floats: usize, n: usize, k: usize) -> usize {
    if k.saturating_mul(n.div_ceil(nr).saturating_mul(nr).min(nc)) <= whole_k_floats {
        kc.max(k)
    } else {
        kc
    }
}

/// Floats of the packed-B block one task of a `k × n` B needs on a tier.
fn block_floats((nr, kc, nc, whole_k): (usize, usize, usize, usize), n: usize, k: usize) -> usize {
    kc_for(nr, kc, nc, whole_k, n, k).min(k).saturating_mul(nc.min(n.div_ceil(nr).saturating_mul(nr)))
}

/// The scratch of an `m × n × k` GEMM: one packed-B block per thread (plus room to
/// start it on a cache line), the most any tier needs (see [`blocking_any`]).
pub(super) fn scratch(m: usize, n: usize, k: usize) -> Scratch {
    if m == 0 || n == 0 {
        return Scratch::NONE;
    }
    let block = ALL.into_iter().map(|isa| block_floats(blocking_any(isa), n, k)).max().unwrap_or(0);
    Scratch::new(0, block.saturating_add(ALIGN_PAD))
}

/// [`scratch`] for every GEMM of `m` rows, inner size `k` and at most `n` columns (a
/// smaller `n` may run whole-K, with a larger block than `n` itself needs).
pub(super) fn scratch_upto(m: usize, n: usize, k: usize) -> Scratch {
    if m == 0 || n == 0 {
        return Scratch::NONE;
    }
    let block = |(nr, kc, nc, whole_k): (usize, usize, usize, usize)| {
        let cols = nc.min(n.div_ceil(nr).saturating_mul(nr));
        let blocked = kc.min(k).saturating_mul(cols);
        // Whole-K blocks hold k × (a multiple of nr up to `cols`) floats, at most whole_k.
        let whole = if k.saturating_mul(nr) <= whole_k { k.saturating_mul(cols).min(whole_k) } else { 0 };
        blocked.max(whole)
    };
    let most = ALL.into_iter().map(|isa| block(blocking_any(isa))).max().unwrap_or(0);
    Scratch::new(0, most.saturating_add(ALIGN_PAD))
}

/// [`Spec::whole_k_floats`] on x86_64: 1 MiB of B, a Zen 5 core's whole L2 (half of a
/// Sapphire Rapids one). Even so, on Zen 5 one K block was 4–7 % faster on ResNet-50's
/// 1×1 layers at 14×14 and 7×7 with cold weights (`cold_gemm` example) and no slower
/// where B is larger: each B panel is read once per A panel while the A panel stays in
/// L1. Boards (NEON) have smaller L2s: off.
#[cfg(target_arch = "x86_64")]
pub(crate) const WHOLE_K_X86: usize = 1 << 18;

/// Most rows of A for which a row-major B is read in place rather than packed. Measured
/// with cold weights on Zen 5 (`cold_gemm`): in place is 9–12 % faster at m = 32 and 64
/// (MobileNet's and ResNet's first 1×1 layers), even at 128, and 2–5 % slower from 256
/// rows on, where the packed panels' contiguous loads win.
const DIRECT_B_MAX_M: usize = 64;

/// Columns per packed B panel for `tier` (what [`BSource::pack`] is asked for, except
/// for a narrow last panel of the x86 tiers, packed exactly as wide as it is), so
/// callers can size their own packing tests or caches.
pub fn nr_for(tier: &KernelTable) -> usize {
    tier.gemm.nr
}

/// `c` as a pointer that tasks on other threads may write through. Not a chunk of the
/// pool's `par_chunks`: a task's share of C is a rectangle (rows × a column range), not
/// a contiguous run, and C may have a row stride.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: the pointer is only dereferenced inside `run`'s tasks, which write disjoint
// rectangles of C while `run` holds the `&mut [f32]` borrow it came from.
unsafe impl Send for CPtr {}
// SAFETY: as above.
unsafe impl Sync for CPtr {}

impl CPtr {
    /// A method (not `.0`) so closures capture the whole `Sync` wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Runs the GEMM on `pool`'s threads (`None`: this thread only); all shapes were
/// validated by `sgemm` (and `m, n > 0`), and `scratch` holds [`scratch`]`(m, n, k)`
/// for the pool's threads.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    spec: Spec,
    a: &PackedA,
    b: &dyn BSource,
    c: &mut [f32],
    ldc: usize,
    epi: &Epilogue,
    pool: Option<&ThreadPool>,
    scratch_buf: &mut [f32],
) -> crate::error::Result<()> {
    let (m, n, k) = (a.m, b.cols(), a.k);
    let mut spec = spec;
    spec.kc = kc_for(spec.nr, spec.kc, spec.nc, spec.whole_k_floats, n, k);
    let threads = pool.map_or(1, ThreadPool::threads);
    let (mt, nt) = split(&spec, m, n, k, threads);
    let m_chunk = m.div_ceil(MR).div_ceil(mt) * MR;
    let n_chunk = n.div_ceil(spec.nr).div_ceil(nt) * spec.nr;
    let per_thread = scratch(m, n, k).per_thread;
    // This tier's block: at most the declared one, which has ALIGN_PAD floats to spare.
    let len = spec.kc.min(k) * spec.nc.min(n.div_ceil(spec.nr) * spec.nr);
    let cp = CPtr(c.as_mut_ptr());
    let task = |t: usize, slot: &mut [f32]| {
        let (m0, n0) = ((t / nt) * m_chunk, (t % nt) * n_chunk);
        if m0 < m && n0 < n {
            let (m1, n1) = ((m0 + m_chunk).min(m), (n0 + n_chunk).min(n));
            // Aligned B loads: the block starts on a cache line.
            let off = slot.as_ptr().align_offset(64).min(ALIGN_PAD);
            let block = &mut slot[off..off + len];
            // SAFETY: tasks partition C into the disjoint rectangles
            // [m0, m1) × [n0, n1), inside the validated `m × n` (stride ldc)
            // extent of `c`, which stays borrowed until the loop returns.
            unsafe { run_task(spec, a, b, cp.get(), ldc, epi, (m0, m1), (n0, n1), block) }
        }
    };
    match pool {
        Some(pool) if mt * nt > 1 => pool.par_scratch(mt * nt, scratch_buf, per_thread, &task),
        _ => {
            task(0, &mut scratch_buf[..per_thread]);
            Ok(())
        }
    }
}

/// Chooses an `mt × nt` grid of tasks (at most 4 per thread).
///
/// The pool hands tasks out dynamically, so the makespan is about `total / threads`
/// plus the tail of the largest task, and several smaller tasks per thread also let a
/// worker that wakes late (or is time-sliced away) still take a share. The cost model
/// counts micro-tile work (a partial last panel as the vectors or tail-kernel columns
/// it costs), the B packing that every task of an N range repeats (why splitting N is
/// preferred, and M only when N has too few panels: 1×1 convolutions on 7×7 maps have
/// n = 49, whose second panel is one cheap column), the A streaming that every task
/// of an M range repeats, and a per-task overhead.
fn split(spec: &Spec, m: usize, n: usize, k: usize, threads: usize) -> (usize, usize) {
    let nr = spec.nr;
    let mp = m.div_ceil(MR);
    let np = n.div_ceil(nr);
    let k = k.max(1) as f64;
    // Below ~1 MFLOP a second thread costs more to wake than it saves.
    if threads <= 1 || 2.0 * m as f64 * n as f64 * k < 1e6 {
        return (1, 1);
    }
    // Main-kernel column equivalents of `c` columns starting at a panel boundary.
    let work_cols = |c: usize| -> f64 {
        let rem = c % nr;
        let tail = match spec.tail {
            _ if rem == 0 => 0,
            Some(t) if rem <= t.max_cols => rem * t.cost,
            _ => rem.div_ceil(spec.lanes) * spec.lanes,
        };
        ((c - rem) + tail) as f64
    };
    let max_tasks = 4 * threads;
    let mut best = (1, 1);
    let mut best_cost = f64::INFINITY;
    for nt in 1..=np.min(max_tasks) {
        for mt in 1..=mp.min(max_tasks / nt) {
            // Tasks actually non-empty after rounding chunks up to whole panels.
            let (m_chunk, n_chunk) = (mp.div_ceil(mt), np.div_ceil(nt));
            let (mt_real, nt_real) = (mp.div_ceil(m_chunk), np.div_ceil(n_chunk));
            let rows = (m_chunk * MR) as f64;
            // The widest task: a whole chunk, or the last one (with the tail).
            let last = n - (nt_real - 1) * n_chunk * nr;
            let cols = if nt_real > 1 { work_cols(n_chunk * nr).max(work_cols(last)) } else { work_cols(n) };
            // Packing one B float costs about one cycle, i.e. ~64 flops of FMA peak;
            // streaming one A float from L3 or memory (once per task, as each task
            // sweeps its rows' A panels) about a quarter of that.
            let largest = 2.0 * rows * cols * k + 64.0 * cols * k + 16.0 * rows * k;
            let total = 2.0 * (mp * MR) as f64 * work_cols(n) * k
                + 64.0 * n as f64 * k * mt_real as f64
                + 16.0 * (mp * MR) as f64 * k * nt_real as f64;
            let tasks = (mt_real * nt_real) as f64;
            let cost = total / threads as f64 + largest * (threads - 1) as f64 / threads as f64 + 2e5 * tasks;
            if cost < best_cost {
                best_cost = cost;
                best = (mt, nt);
            }
        }
    }
    best
}

/// Floats of slack so a thread's packed-B block can start on a 64-byte boundary
/// (aligned B loads) wherever its scratch slot starts.
const ALIGN_PAD: usize = 16;

/// Computes the C rectangle `rows × cols` of one task.
///
/// SAFETY: `c` must be valid for writes of rows `rows.0..rows.1`, columns
/// `cols.0..cols.1` (row stride `ldc`), with no other thread accessing that
/// rectangle; `rows.0` is a multiple of `MR`; the tier of `spec` is supported;
/// `a`, `b` and `epi` were validated against `m × n × k` by `sgemm`.
#[allow(clippy::too_many_arguments)]
unsafe fn run_task(
    spec: Spec,
    a: &PackedA,
    b: &dyn BSource,
    c: *mut f32,
    ldc: usize,
    epi: &Epilogue,
    rows: (usize, usize),
    cols: (usize, usize),
    scratch: &mut [f32],
) {
    let k = a.k;
    let nr = spec.nr;
    let a_data = a.data.as_ptr();
    // A row-major B is read in place by kernels that take a row stride, when A is so
    // short that packing B would cost a good part of the FMAs (few A panels reuse it):
    // only a partial last panel is packed (full-width loads would run past its rows).
    let direct = if spec.direct_b && a.m <= DIRECT_B_MAX_M { b.direct() } else { None };
    let mut jc = cols.0;
    while jc < cols.1 {
        let nc = spec.nc.min(cols.1 - jc);
        let panels = nc.div_ceil(nr);
        // Block boundaries are multiples of nr (task and block starts are), so only
        // the last block of C can end in a partial panel: the tail kernel's, if narrow.
        let (full, rem) = (nc / nr, nc % nr);
        let tail = spec.tail.filter(|t| rem > 0 && rem <= t.max_cols).map(|t| t.kernel);
        let mut pc = 0;
        loop {
            let kc = spec.kc.min(k - pc);
            let block = &mut scratch[..kc * panels * nr];
            if kc > 0 {
                if direct.is_some() {
                    if rem > 0 {
                        let width = if tail.is_some() { rem } else { nr };
                        b.pack(pc, kc, jc + full * nr, rem, width, &mut block[..kc * width]);
                    }
                } else if tail.is_some() {
                    let (main, rest) = block.split_at_mut(kc * full * nr);
                    if full > 0 {
                        b.pack(pc, kc, jc, full * nr, nr, main);
                    }
                    b.pack(pc, kc, jc + full * nr, rem, rem, &mut rest[..kc * rem]);
                } else {
                    b.pack(pc, kc, jc, nc, nr, block);
                }
            }
            let last = pc + kc >= k;
            let bp = block.as_ptr();
            // How far ahead A is prefetched: a row of one or two tiles (small maps)
            // computes too briefly to cover a memory round trip for the next one.
            let pf_rows = if panels <= 2 { 2 * MR } else { MR };
            let mut ir = rows.0;
            while ir < rows.1 {
                let tile_rows = MR.min(rows.1 - ir);
                for q in 0..panels {
                    let col0 = jc + q * nr;
                    let tile_epi = last.then(|| TileEpi {
                        bias: epi.bias.map_or(std::ptr::null(), |bias| bias[ir..].as_ptr()),
                        res: epi.residual.map_or(std::ptr::null(), |r| {
                            // SAFETY: residual is at least m × n (validated), so
                            // (ir, col0) is inside it.
                            unsafe { r.data.as_ptr().add(ir * r.ld + col0) }
                        }),
                        ldr: epi.residual.map_or(0, |r| r.ld),
                        act: epi.act,
                    });
                    // The first tile of a row prefetches a later row's A block (or the
                    // first row's next K block); later tiles find this row's in cache.
                    let a_next = if q > 0 {
                        std::ptr::null()
                    } else if ir + pf_rows < rows.1 {
                        a_data.wrapping_add((ir + pf_rows) * k + pc * MR)
                    } else if !last {
                        a_data.wrapping_add(rows.0 * k + (pc + kc) * MR)
                    } else {
                        std::ptr::null()
                    };
                    let kernel = match tail {
                        Some(tail) if q == full => tail,
                        _ => spec.kernel,
                    };
                    let (bq, ldb) = match direct {
                        // SAFETY: rows pc..pc+kc and columns col0..col0+nr of the
                        // validated k × n (row stride ld) B lie inside `data`.
                        Some((data, ld)) if q < full => (unsafe { data.as_ptr().add(pc * ld + col0) }, ld),
                        // Only the partial last panel was packed, at the block's start.
                        Some(_) => (bp, if tail.is_some() { rem } else { nr }),
                        // SAFETY: the packed block holds `panels` panels of kc × nr
                        // (the last one kc × rem when the tail kernel takes it).
                        None => (unsafe { bp.add(q * kc * nr) }, nr),
                    };
                    let tile = Tile {
                        // SAFETY: panel ir/MR of A holds k × MR floats; its K block
                        // pc..pc+kc starts pc·MR floats in.
                        a: unsafe { a_data.add(ir * k + pc * MR) },
                        b: bq,
                        ldb,
                        kc,
                        a_next,
                        // SAFETY: (ir, col0) is inside this task's rectangle of C.
                        c: unsafe { c.add(ir * ldc + col0) },
                        ldc,
                        rows: tile_rows,
                        cols: nr.min(jc + nc - col0),
                        load_c: pc > 0,
                        epi: tile_epi,
                    };
                    if q + 1 < panels {
                        // The next tile's C rows (read on later K blocks, written on
                        // every one) arrive while this tile computes.
                        // SAFETY: (ir, col0 + nr) is inside the task's rectangle.
                        prefetch_tile(
                            unsafe { c.add(ir * ldc + col0 + nr) },
                            ldc,
                            tile_rows,
                            nr.min(jc + nc - col0 - nr),
                        );
                    }
                    // SAFETY: the tile's pointers cover the extents `Tile` documents
                    // (see above) and the caller guarantees the tier is supported.
                    unsafe { kernel(&tile) };
                }
                if last {
                    if let Some(post) = epi.post {
                        for r in ir..ir + tile_rows {
                            // SAFETY: row r, columns jc..jc+nc belong to this task's
                            // rectangle, finished, and no kernel is writing them now.
                            let seg = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc + jc), nc) };
                            post(r, jc, seg);
                        }
                    }
                }
                ir += MR;
            }
            pc += kc;
            if last {
                break;
            }
        }
        jc += nc;
    }
}

/// Prefetches `rows × cols` floats at `p` (row stride `ld`) into L1: one hint per
/// 64-byte line. Hints never fault; this is a no-op off x86_64 (no stable prefetch
/// intrinsic there).
#[inline]
fn prefetch_tile(p: *const f32, ld: usize, rows: usize, cols: usize) {
    #[cfg(target_arch = "x86_64")]
    for r in 0..rows {
        let row = p.wrapping_add(r * ld);
        for j in (0..cols).step_by(16) {
            // SAFETY: `_mm_prefetch` is SSE (baseline on x86_64) and only a hint, so
            // any address is allowed.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(row.wrapping_add(j) as *const i8)
            };
        }
        // The last column's line, when the run is not 16-float aligned.
        if cols > 0 {
            // SAFETY: as above.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    row.wrapping_add(cols - 1) as *const i8
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, ld, rows, cols);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 7×7 maps (n = 49: one full panel and a one-column tail) split M: splitting N
    /// would hand one thread 48 columns and the other the cheap last one. Wide maps
    /// split N, whose tasks share no B packing.
    #[test]
    fn blocking_matches_spec() {
        for t in crate::tier::compiled() {
            let s = t.gemm;
            assert_eq!(blocking_any(t.isa()), (s.nr, s.kc, s.nc, s.whole_k_floats), "{}", t.isa());
        }
    }

    /// Every tier's block (with its alignment slack) fits the declared slot.
    #[test]
    fn declared_scratch_covers_every_tier() {
        for (n, k) in [(1, 1), (49, 4608), (3136, 64), (12544, 27), (100, 10000), (577, 300)] {
            let per = scratch(8, n, k).per_thread;
            for t in crate::tier::compiled() {
                let s = t.gemm;
                let kc = kc_for(s.nr, s.kc, s.nc, s.whole_k_floats, n, k);
                assert!(kc.min(k) * s.nc.min(n.div_ceil(s.nr) * s.nr) + ALIGN_PAD <= per, "{} {n}x{k}", t.isa());
            }
            let upto = scratch_upto(8, n, k).per_thread;
            for n2 in 1..=n.min(700) {
                assert!(scratch(8, n2, k).per_thread <= upto, "{n2} <= {n} columns, k {k}");
            }
        }
    }

    #[test]
    fn split_prefers_balanced_tasks() {
        for isa in crate::tier::compiled() {
            let s = isa.gemm;
            // Narrow panels (scalar, NEON) leave enough of them to split N evenly.
            if s.nr >= 24 {
                for (m, k) in [(512, 4608), (2048, 512), (512, 2048), (1280, 320), (320, 960)] {
                    let (mt, nt) = split(&s, m, 49, k, 2);
                    assert!(mt >= 2 && nt == 1, "{isa} {m}x{k}x49 split {mt}x{nt}");
                }
            }
            for (m, k, n) in [(64, 576, 3136), (96, 16, 12544), (32, 27, 12544)] {
                let (mt, nt) = split(&s, m, n, k, 2);
                assert!(mt == 1 && nt >= 2, "{isa} {m}x{k}x{n} split {mt}x{nt}");
            }
            assert_eq!(split(&s, 8, 8, 8, 2), (1, 1), "tiny GEMMs stay on one thread");
            assert_eq!(split(&s, 512, 49, 4608, 1), (1, 1));
        }
    }
}
