//! 3×3 stride-1 convolution by Winograd's minimal filtering, F(2,3) and F(4,3).
//!
//! A direct 3×3 convolution is a GEMM of `2·M·C·9` flops per output pixel. Winograd
//! F(m,3) computes an `m × m` output tile from an `α × α` input tile (`α = m + 2`) with
//! `α²` multiplications per (input channel, output channel) instead of `9·m²`: 2.25×
//! fewer for F(2,3), 4× fewer for F(4,3). Per channel pair the products are
//! independent across the `α²` transformed positions `ξ`, so over channels they are
//! `α²` GEMMs (Lavin & Gray, 2015):
//!
//! ```text
//! U[ξ] = (G g Gᵀ)[ξ]          M × C, weights, transformed and packed once (pack_weights)
//! V[ξ] = (Bᵀ d B)[ξ]          C × T, for a block of T output tiles (input transform)
//! M[ξ] = U[ξ] · V[ξ]          M × T, α² sgemm calls
//! y    = Aᵀ M A               per output channel and tile (output transform + epilogue)
//! ```
//!
//! Tiles are processed in blocks of up to 144 (sized so that the block's `V` and `M`
//! stay near L2 while the `α²` GEMMs stream the packed weights). Blocks are spread
//! over the pool's threads, each block's GEMMs then running on its own thread; a layer
//! with too few tiles for that runs as one block whose transforms split the channels
//! and whose GEMMs split their rows over the threads.
//!
//! The transforms are a large part of the cost (the GEMMs are 2.25–4× smaller than a
//! direct convolution, the transforms are not), so they run on 16-lane arrays with one
//! tile per lane, over all the block's tiles at once (a tile row of a 14×14 map is only
//! 4 F(4,3) tiles), which LLVM turns into SIMD code; the same source is compiled again
//! for AVX2 and AVX-512 through `#[target_feature]` wrappers chosen by the tier's [`KernelTable`]. Only
//! the stride-`m` gathers from image rows and the scatters back are per tile row; on
//! AVX-512 those use permute intrinsics (LLVM's code for the portable version goes
//! partly scalar). On aarch64 NEON is the baseline, so the plain build is vectorized.
//!
//! Numerics: the transforms use plain multiply and add (no FMA), so results are the
//! same for every tier up to the GEMM's own (fused or not) accumulation. F(4,3)
//! amplifies rounding (its transform matrices hold 4, 5, 8 and 1/24); see the
//! crate tests and the `winograd_bench` example for measured errors.

use crate::error::{KernelError, Result};
use crate::gemm::{pack_a, packed_a_len, sgemm_scratch_upto, sgemm_serial, Activation, BSource, Epilogue, PackedA};
use crate::scratch::Scratch;
use crate::thread_pool::ThreadPool;
use crate::tier::KernelTable;
use std::ops::{Add, Mul, Sub};
use std::sync::Mutex;

/// Output tile size of the Winograd algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WinogradTile {
    /// F(2×2, 3×3): 4×4 input tiles, 2.25× fewer multiplications, error close to direct.
    F2,
    /// F(4×4, 3×3): 6×6 input tiles, 4× fewer multiplications, a few times the error.
    F4,
}

impl WinogradTile {
    /// Position in a tier's per-tile transform tables.
    pub(crate) fn index(self) -> usize {
        match self {
            WinogradTile::F2 => 0,
            WinogradTile::F4 => 1,
        }
    }
    /// Side of an output tile (`m`).
    pub fn out_tile(self) -> usize {
        match self {
            WinogradTile::F2 => 2,
            WinogradTile::F4 => 4,
        }
    }

    /// Side of an input tile (`α = m + 2`); there are `α²` GEMMs.
    pub fn alpha(self) -> usize {
        self.out_tile() + 2
    }
}

/// Floats of transformed, packed weights for `m` output and `c` input channels:
/// `α²` packed `m × c` GEMM A operands. Saturates instead of overflowing, like
/// [`packed_a_len`], so an absurd size never passes a length check.
pub fn packed_weights_len(tile: WinogradTile, m: usize, c: usize) -> usize {
    packed_a_len(m, c).saturating_mul(tile.alpha() * tile.alpha())
}

/// A starting point for tactic selection (the builder should still time the
/// candidates): the tile to use for a 3×3 stride-1 convolution with `c` input and `m`
/// output channels and an `oh × ow` output, or `None` when the direct convolution is
/// expected to be faster. Winograd's GEMMs have one column per tile, so with few tiles
/// (ResNet-50's 7×7 maps: 4 F(4,3) tiles) they run mostly empty and stream far more
/// transformed weights than a direct GEMM; with few channels the transforms dominate.
/// Measured on Zen 5 (AVX-512): F(4,3) beats direct 2.5–3× on ResNet-50's 56², 28² and
/// 14² layers, while both tiles lose on its 7² layers (c = m = 512).
pub fn suggest_tile(c: usize, m: usize, oh: usize, ow: usize) -> Option<WinogradTile> {
    if c < 16 || m < 16 {
        return None;
    }
    if oh.div_ceil(4) * ow.div_ceil(4) >= 16 {
        Some(WinogradTile::F4)
    } else if oh.div_ceil(2) * ow.div_ceil(2) >= 64 {
        Some(WinogradTile::F2)
    } else {
        None
    }
}

/// Transforms 3×3 weights `w` (`[m, c, 3, 3]`) into `U = G g Gᵀ` and packs them into
/// `out` (`packed_weights_len(tile, m, c)` floats) as `α²` consecutive [`pack_a`]
/// matrices of `m × c`. Done once, at build time; computed in f64 and rounded once.
pub fn pack_weights(tile: WinogradTile, m: usize, c: usize, w: &[f32], out: &mut [f32]) -> Result<()> {
    let a = tile.alpha();
    let w_len = m.checked_mul(c).and_then(|x| x.checked_mul(9));
    if w_len != Some(w.len()) || out.len() != packed_weights_len(tile, m, c) {
        return Err(KernelError::Shape(format!(
            "winograd pack_weights: {m}x{c}x3x3 weights from {} floats into {} (expected {})",
            w.len(),
            out.len(),
            packed_weights_len(tile, m, c)
        )));
    }
    let plen = packed_a_len(m, c);
    if plen == 0 {
        return Ok(());
    }
    // U[ξ] for all ξ, row-major m × c each (m·c·α² floats; the same size as `out`, up
    // to row padding, so this temporary cannot be absurdly large).
    let mc = m * c;
    let mut u = vec![0f32; mc * a * a];
    for (idx, g) in w.chunks_exact(9).enumerate() {
        // G g (α × 3): transform the columns, then the rows: (G g) Gᵀ.
        let mut gg = [[0f64; 3]; 6];
        for col in 0..3 {
            let t = g_transform(tile, [g[col] as f64, g[3 + col] as f64, g[6 + col] as f64]);
            for (row, v) in gg.iter_mut().zip(t) {
                row[col] = v;
            }
        }
        for (i, row) in gg.iter().enumerate().take(a) {
            for (j, v) in g_transform(tile, *row).into_iter().enumerate().take(a) {
                u[(i * a + j) * mc + idx] = v as f32;
            }
        }
    }
    for (ui, oi) in u.chunks_exact(mc).zip(out.chunks_exact_mut(plen)) {
        pack_a(m, c, ui, c, oi)?;
    }
    Ok(())
}

/// `G · g` for one column `g` of a 3×3 filter (only the first `α` results are used).
fn g_transform(tile: WinogradTile, g: [f64; 3]) -> [f64; 6] {
    let [g0, g1, g2] = g;
    match tile {
        WinogradTile::F2 => [g0, (g0 + g1 + g2) / 2.0, (g0 - g1 + g2) / 2.0, g2, 0.0, 0.0],
        WinogradTile::F4 => [
            g0 / 4.0,
            -(g0 + g1 + g2) / 6.0,
            -(g0 - g1 + g2) / 6.0,
            g0 / 24.0 + g1 / 12.0 + g2 / 6.0,
            g0 / 24.0 - g1 / 12.0 + g2 / 6.0,
            g2,
        ],
    }
}

/// A validated 3×3, stride 1, dilation 1, groups 1 convolution of one `[c, h, w]` image
/// into `[m, oh, ow]`, run by Winograd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinogradConv {
    tile: WinogradTile,
    c: usize,
    h: usize,
    w: usize,
    m: usize,
    oh: usize,
    ow: usize,
    /// Zero rows above / columns left of the input (the bottom / right padding follows
    /// from `oh`, `ow`).
    ph: usize,
    pw: usize,
}

/// Largest tensor or scratch dimension product accepted: keeps every index in range
/// with room to spare (`isize::MAX` bytes of f32).
const MAX_FLOATS: usize = (isize::MAX as usize) / 8;

impl WinogradConv {
    /// `pads` are ONNX's `[top, left, bottom, right]`. Errors on zero or absurd sizes and
    /// on an empty output (`h + top + bottom < 3` or likewise for the width).
    pub fn new(tile: WinogradTile, c: usize, h: usize, w: usize, m: usize, pads: [usize; 4]) -> Result<WinogradConv> {
        let bad =
            |why: &str| Err(KernelError::Shape(format!("winograd conv c={c} h={h} w={w} m={m} pads={pads:?}: {why}")));
        if c == 0 || h == 0 || w == 0 || m == 0 {
            return bad("every dimension must be at least 1");
        }
        let [pt, pl, pb, pr] = pads;
        let (Some(hp), Some(wp)) =
            (h.checked_add(pt).and_then(|x| x.checked_add(pb)), w.checked_add(pl).and_then(|x| x.checked_add(pr)))
        else {
            return bad("padded size overflows");
        };
        if hp < 3 || wp < 3 {
            return bad("padded input is smaller than the 3x3 kernel");
        }
        let (oh, ow) = (hp - 2, wp - 2);
        let sizes =
            [c.checked_mul(h).and_then(|x| x.checked_mul(w)), m.checked_mul(oh).and_then(|x| x.checked_mul(ow))];
        // The largest scratch any block plan can ask for (see `Parts`): V, M, the
        // per-position GEMM outputs and a transform temporary, plus the padded input.
        let (a, mt) = (tile.alpha(), tile.out_tile());
        let th = oh.div_ceil(mt);
        let pwp = ow.div_ceil(mt).checked_add(L + 1).and_then(|x| x.checked_mul(mt));
        let rows = (th.min(MAX_PER) + 1) * mt + 2;
        let scratch = c
            .checked_add(m)
            .and_then(|cm| cm.checked_add(m))
            .and_then(|cm| cm.checked_add(1))
            .and_then(|cm| cm.checked_mul(a * a * (MAX_PER + 2 * L)))
            .zip(pwp.and_then(|p| p.checked_mul(rows)).and_then(|p| p.checked_mul(c)))
            .and_then(|(v, t)| v.checked_add(t));
        if sizes.iter().chain([&scratch]).any(|s| !matches!(s, Some(n) if *n <= MAX_FLOATS))
            || packed_weights_len(tile, m, c) > MAX_FLOATS
        {
            return bad("tensor sizes overflow");
        }
        Ok(WinogradConv { tile, c, h, w, m, oh, ow, ph: pt, pw: pl })
    }

    pub fn tile(&self) -> WinogradTile {
        self.tile
    }
    pub fn in_channels(&self) -> usize {
        self.c
    }
    pub fn out_channels(&self) -> usize {
        self.m
    }
    /// Output `(height, width)`.
    pub fn out_size(&self) -> (usize, usize) {
        (self.oh, self.ow)
    }
    /// Floats of packed weights [`WinogradConv::run`] expects.
    pub fn packed_weights_len(&self) -> usize {
        packed_weights_len(self.tile, self.m, self.c)
    }

    /// The scratch [`WinogradConv::run`] needs (floats), for every thread count and
    /// tier: per thread, the transforms' temporaries and one single-thread GEMM, plus a
    /// block's V, M and padded input, which a layer that always runs as one block keeps
    /// in the shared part instead (with its per-position GEMM outputs).
    pub fn scratch(&self) -> Scratch {
        self.parts().scratch()
    }

    fn parts(&self) -> Parts {
        let g = Geo::new(self);
        let tiles = g.th * g.tw;
        let target = block_target(&g);
        // BlockPlan makes a single block for every thread count exactly then; otherwise
        // its blocks have at most `target` tiles.
        let single = tiles <= target && tiles < 2 * MIN_PER;
        let per = tiles.min(target);
        let ld = ld_for(per);
        Parts {
            single,
            block: block_floats(&g, per, ld),
            mt: if single { g.a2().saturating_mul(g.m).saturating_mul(ld) } else { 0 },
            tmp: g.a2() * ld,
            gemm: sgemm_scratch_upto(g.m, per, g.c).total(1),
        }
    }

    /// `y = epi(conv(x, w))` with `packed_u` from [`pack_weights`] of `w`, on `pool`'s
    /// threads, with `tier`'s GEMM and transform code. `scratch` holds at least
    /// [`WinogradConv::scratch`]`().total(pool.threads())` floats (overwritten).
    /// Allocates nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        tier: &KernelTable,
        packed_u: &[f32],
        x: &[f32],
        y: &mut [f32],
        epi: &Epilogue,
        pool: &ThreadPool,
        scratch: &mut [f32],
    ) -> Result<()> {
        let (c, m) = (self.c, self.m);
        let plane = self.oh * self.ow;
        let err = |what: &str, got: usize, want: usize| {
            Err(KernelError::Shape(format!(
                "winograd conv {c}x{}x{} -> {m}x{}x{}: {what} has {got} floats, expected {want}",
                self.h, self.w, self.oh, self.ow
            )))
        };
        if packed_u.len() != self.packed_weights_len() {
            return err("packed weights", packed_u.len(), self.packed_weights_len());
        }
        if x.len() != c * self.h * self.w {
            return err("input", x.len(), c * self.h * self.w);
        }
        if y.len() != m * plane {
            return err("output", y.len(), m * plane);
        }
        if let Some(b) = epi.bias.filter(|b| b.len() != m) {
            return err("bias", b.len(), m);
        }
        if let Some(r) = epi.residual.filter(|r| r.rows() != m || r.cols() != plane) {
            return err("residual", r.rows() * r.cols(), m * plane);
        }
        let parts = self.parts();
        let threads = pool.threads();
        let stride = parts.scratch().per_thread;
        let (shared, slots) = parts.scratch().split("winograd conv", scratch, threads)?;
        let geo = Geo::new(self);
        let plan = BlockPlan::new(&geo, threads);
        let job = Job { geo, tier, packed_u, x, epi, y: SyncPtr(y.as_mut_ptr()), ld: plan.ld, parts };
        if parts.single {
            // Too few tiles to give each thread a block: one block, whose transforms
            // split the channels and whose GEMMs run one per position over the threads.
            let (blk, mt) = shared.split_at_mut(parts.block);
            let work = if threads == 1 {
                Work::Serial(&mut slots[..parts.work()])
            } else {
                Work::Pool { pool, slots, stride, mt: &mut mt[..parts.mt] }
            };
            // SAFETY: the one block covers every tile, and `y` (validated to
            // `m × oh × ow`) stays mutably borrowed during `run`.
            return unsafe { job.block(0, plan.tiles, &mut blk[..plan.scratch], work) };
        }
        if threads == 1 {
            let (work, blk) = slots.split_at_mut(parts.work());
            for b in 0..plan.blocks {
                let (t0, n) = plan.range(b);
                // SAFETY: blocks cover disjoint tiles, run one after another here, and
                // `y` (validated to `m × oh × ow`) stays mutably borrowed during `run`.
                unsafe { job.block(t0, n, &mut blk[..plan.scratch], Work::Serial(work))? };
            }
            return Ok(());
        }
        // Whole blocks per task, each in its thread's slot, its GEMMs on that thread.
        let first_err = Mutex::new(None);
        pool.par_scratch(plan.blocks, slots, stride, &|b, slot| {
            let (t0, n) = plan.range(b);
            let (work, blk) = slot.split_at_mut(parts.work());
            // SAFETY: each task writes only the output pixels of its own tiles, which no
            // other block covers, and `y` stays mutably borrowed until the loop returns.
            if let Err(e) = unsafe { job.block(t0, n, &mut blk[..plan.scratch], Work::Serial(work)) } {
                first_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
            }
        })?;
        match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// How [`WinogradConv::run`] lays out its scratch (floats): the shared part holds
/// `block` then `mt` when `single`, else nothing; each thread's slot holds its `tmp`,
/// its `gemm`, then (unless `single`) its own `block`.
#[derive(Clone, Copy)]
struct Parts {
    /// Every thread count runs the layer as one block (see `BlockPlan`).
    single: bool,
    /// V and M of every position and the padded input, for the largest block.
    block: usize,
    /// The per-position GEMM outputs of a single block split over threads.
    mt: usize,
    /// A transform's `α² × ld` temporaries.
    tmp: usize,
    /// One GEMM of the block on one thread.
    gemm: usize,
}

impl Parts {
    /// The per-thread floats a block's transforms and GEMMs use (`tmp` then `gemm`).
    fn work(&self) -> usize {
        self.tmp + self.gemm
    }

    fn scratch(&self) -> Scratch {
        if self.single {
            Scratch::new(self.block.saturating_add(self.mt), self.work())
        } else {
            Scratch::new(0, self.work().saturating_add(self.block))
        }
    }
}

/// Where a block's transforms and GEMMs run, and their per-thread scratch.
enum Work<'s> {
    /// On the calling thread, with one slot's `tmp` and `gemm` ([`Parts::work`]).
    Serial(&'s mut [f32]),
    /// Over `pool`'s threads, slot `i` (every `stride` floats of `slots`) for thread
    /// `i`, and `mt` for the per-position GEMM outputs.
    Pool { pool: &'s ThreadPool, slots: &'s mut [f32], stride: usize, mt: &'s mut [f32] },
}

/// Most tiles per block.
const MAX_PER: usize = 144;

/// Lanes of the transform vectors: one AVX-512 register, two AVX2 or four NEON ones.
const L: usize = 16;

/// Sizes derived from a [`WinogradConv`], all validated to fit in memory.
#[derive(Clone, Copy)]
pub(crate) struct Geo {
    tile: WinogradTile,
    c: usize,
    h: usize,
    w: usize,
    m: usize,
    oh: usize,
    ow: usize,
    ph: usize,
    pw: usize,
    /// Tile rows and columns.
    th: usize,
    tw: usize,
}

impl Geo {
    fn new(cv: &WinogradConv) -> Geo {
        let mt = cv.tile.out_tile();
        Geo {
            tile: cv.tile,
            c: cv.c,
            h: cv.h,
            w: cv.w,
            m: cv.m,
            oh: cv.oh,
            ow: cv.ow,
            ph: cv.ph,
            pw: cv.pw,
            th: cv.oh.div_ceil(mt),
            tw: cv.ow.div_ceil(mt),
        }
    }
    fn a2(&self) -> usize {
        self.tile.alpha() * self.tile.alpha()
    }
    /// Row stride of the padded input copy: the widest tile row plus the 16-tile
    /// over-read of the de-interleaving gather (see `input_block`).
    fn pwp(&self) -> usize {
        (self.tw + L + 1) * self.tile.out_tile()
    }
}

/// How the tiles are split into blocks.
struct BlockPlan {
    tiles: usize,
    /// Tiles per block (the last may have fewer).
    per: usize,
    blocks: usize,
    /// Row stride of the block's V and M rows: `per` plus room for the last 16-lane
    /// store of a segment to run past the block.
    ld: usize,
    /// Floats of a block's V, M and padded input ([`block_floats`]).
    scratch: usize,
}

/// Fewest tiles a block is cut to: below that the GEMM re-streams its packed weights
/// too often per flop and its 16-column vectors run part empty.
const MIN_PER: usize = 32;

/// Tiles per block that keep V (C × T) and M (M × T) of all α² positions within
/// ~512 KiB (half of L2), within `MIN_PER ..= MAX_PER`.
fn block_target(g: &Geo) -> usize {
    ((128 * 1024) / (g.a2() * (g.c + g.m)).max(1)).clamp(MIN_PER, MAX_PER) / L * L
}

/// Row stride of a block's V and M rows: `per` plus room for the last 16-lane store of
/// a segment to run past the block. Grows with `per`.
fn ld_for(per: usize) -> usize {
    per.div_ceil(L) * L + L
}

/// Floats of the V and M blocks (row stride `ld`) and the padded input of a block of
/// `per` tiles. Grows with `per`, so the largest block bounds every smaller one.
fn block_floats(g: &Geo, per: usize, ld: usize) -> usize {
    // A block of `per` tiles touches at most this many tile rows, and reads MT input
    // rows per tile row plus 2.
    let rows = (per.div_ceil(g.tw) + 1).min(g.th) * g.tile.out_tile() + 2;
    (g.c + g.m) * g.a2() * ld + g.c * rows * g.pwp()
}

impl BlockPlan {
    fn new(g: &Geo, threads: usize) -> BlockPlan {
        let tiles = g.th * g.tw;
        let target = block_target(g);
        let mut blocks = tiles.div_ceil(target).max(1);
        // Whole blocks per thread when there are enough tiles for two of at least 32
        // each; otherwise one block whose work is split inside (see `Job::block`).
        if threads > 1 {
            if blocks == 1 && tiles >= 2 * MIN_PER {
                blocks = threads;
            } else if blocks > 1 {
                blocks = blocks.div_ceil(threads) * threads;
            }
        }
        let per = tiles.div_ceil(blocks).max(1);
        let blocks = tiles.div_ceil(per).max(1);
        let ld = ld_for(per);
        BlockPlan { tiles, per, blocks, ld, scratch: block_floats(g, per, ld) }
    }

    /// First tile and tile count of block `b`.
    fn range(&self, b: usize) -> (usize, usize) {
        let t0 = b * self.per;
        (t0, self.per.min(self.tiles.saturating_sub(t0)))
    }
}

/// The output `y`, which the tasks of parallel blocks write through: a block's pixels
/// are tiles, strided runs in every channel plane, not one chunk of `y` (so not the
/// pool's `par_chunks`).
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(*mut f32);
// SAFETY: only dereferenced by tasks that write the pixels of disjoint tiles (or
// disjoint channels) while the `&mut [f32]` it came from stays borrowed (see `run`).
unsafe impl Send for SyncPtr {}
// SAFETY: as above.
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the field).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// Where the input transform writes row `(ξ, c)` of the block's transformed input:
/// at `ξ·xi_stride + c·c_stride` from `ptr` (the first channel a task handles).
/// Channel-major (`c_stride = α²·ld`, `xi_stride = ld`): a channel's `α²` rows are
/// adjacent, which keeps the transform's 36 store streams apart in the cache sets
/// (ξ-major planes of `C·ld` floats are often a multiple of 4 KiB apart, and then
/// alias); the GEMM's packing then reads each `V[ξ]` with row stride `α²·ld`.
/// A task's channels are not one slice of every plane, hence a pointer.
#[derive(Clone, Copy)]
pub(crate) struct VOut {
    ptr: *mut f32,
    xi_stride: usize,
    c_stride: usize,
}

impl VOut {
    /// Stores 16 tiles at columns `z ..` of row `(xi, c)`.
    ///
    /// SAFETY: the row must be valid for writes of `z + 16` floats and not accessed by
    /// anyone else during the call.
    #[inline(always)]
    unsafe fn store(self, xi: usize, c: usize, z: usize, v: V) {
        // SAFETY: forwarded caller contract.
        unsafe {
            std::ptr::copy_nonoverlapping(v.0.as_ptr(), self.ptr.add(xi * self.xi_stride + c * self.c_stride + z), L)
        }
    }
}

/// Everything a block needs, shared by all tasks.
struct Job<'a> {
    geo: Geo,
    tier: &'a KernelTable,
    packed_u: &'a [f32],
    x: &'a [f32],
    epi: &'a Epilogue<'a>,
    y: SyncPtr,
    ld: usize,
    parts: Parts,
}

impl Job<'_> {
    /// Input transform, α² GEMMs and output transform of tiles `t0 .. t0 + n`, with
    /// `blk` for the block's V, M and padded input, on `work`'s threads (then the
    /// transforms split the channels and the GEMMs run one per position).
    ///
    /// # Safety
    /// `self.y` must point to the validated `m × oh × ow` output, and no other thread
    /// may access the pixels of these tiles during the call.
    unsafe fn block(&self, t0: usize, n: usize, blk: &mut [f32], work: Work) -> Result<()> {
        let g = &self.geo;
        let (a2, ld, pwp, tmp) = (g.a2(), self.ld, g.pwp(), self.parts.tmp);
        let (vbuf, rest) = blk.split_at_mut(g.c * a2 * ld);
        let (mbuf, xpad) = rest.split_at_mut(g.m * a2 * ld);
        let ty0 = t0 / g.tw;
        let rows = ((t0 + n).div_ceil(g.tw) - ty0) * g.tile.out_tile() + 2;
        let xpad = &mut xpad[..g.c * rows * pwp];
        pad_block(g, self.x, ty0, rows, pwp, xpad);
        let xpad = &*xpad;
        let plen = packed_a_len(g.m, g.c);
        let (pool, slots, stride, mt) = match work {
            Work::Serial(work) => {
                let (tmp, gemm) = work.split_at_mut(tmp);
                let vout = VOut { ptr: vbuf.as_mut_ptr(), xi_stride: ld, c_stride: a2 * ld };
                // SAFETY: `vbuf` holds C channels of α² rows of ld floats, ours alone;
                // a `KernelTable` exists only for tiers this CPU supports.
                unsafe { dispatch_input(self.tier, g, xpad, rows, t0, n, ld, vout, tmp) };
                for xi in 0..a2 {
                    let ua = PackedA::new(&self.packed_u[xi * plen..(xi + 1) * plen], g.m, g.c)?;
                    // V[ξ] is row ξ of every channel's α² × ld block: a C × n matrix,
                    // stride α²·ld.
                    let v = VSource::new(&vbuf[xi * ld..], g.c, n, a2 * ld, self.tier)?;
                    sgemm_serial(self.tier, &ua, &v, &mut mbuf[xi * ld..], a2 * ld, &Epilogue::default(), gemm)?;
                }
                // SAFETY: the caller's contract.
                unsafe { dispatch_output(self.tier, g, mbuf, 0, t0, n, ld, self.y, self.epi, tmp) };
                return Ok(());
            }
            Work::Pool { pool, slots, stride, mt } => (pool, slots, stride, mt),
        };
        // A few chunks per thread so uneven progress balances.
        let chunks = pool.threads() * 4;
        let cper = g.c.div_ceil(chunks);
        pool.par_chunks_scratch(vbuf, a2 * ld, cper, slots, stride, &|c0, vchunk, slot| {
            let c1 = c0 + vchunk.len() / (a2 * ld);
            let vout = VOut { ptr: vchunk.as_mut_ptr(), xi_stride: ld, c_stride: a2 * ld };
            let x = &xpad[c0 * rows * pwp..c1 * rows * pwp];
            // SAFETY: `vchunk` holds the α² rows of ld floats of channels c0..c1, this
            // task's alone; a `KernelTable` exists only for tiers this CPU supports.
            unsafe { dispatch_input(self.tier, g, x, rows, t0, n, ld, vout, &mut slot[..tmp]) };
        })?;
        // Few tiles, several threads: one task per ξ, each GEMM whole on one thread
        // (splitting each small GEMM's rows costs more in dispatch and repacking than
        // it saves), into its own M × ld block of `mt`; then mt is copied into mbuf's
        // [m][ξ][ld] layout.
        self.gemms_by_position(vbuf, mbuf, n, pool, mt, slots, stride)?;
        let mbuf = &*mbuf;
        let mper = g.m.div_ceil(chunks);
        pool.par_scratch(g.m.div_ceil(mper), slots, stride, &|i, slot| {
            let (m0, m1) = (i * mper, ((i + 1) * mper).min(g.m));
            let chan = &mbuf[m0 * a2 * ld..m1 * a2 * ld];
            // SAFETY: the caller's contract, and tasks write disjoint output channels.
            unsafe { dispatch_output(self.tier, g, chan, m0, t0, n, ld, self.y, self.epi, &mut slot[..tmp]) };
        })
    }

    /// The α² GEMMs of one block, one per task (see `block`), into `mt`, then copied
    /// into `mbuf`.
    #[allow(clippy::too_many_arguments)]
    fn gemms_by_position(
        &self,
        vbuf: &[f32],
        mbuf: &mut [f32],
        n: usize,
        pool: &ThreadPool,
        mt: &mut [f32],
        slots: &mut [f32],
        stride: usize,
    ) -> Result<()> {
        let g = &self.geo;
        let (a2, ld, tmp) = (g.a2(), self.ld, self.parts.tmp);
        let plen = packed_a_len(g.m, g.c);
        let mt = &mut mt[..a2 * g.m * ld];
        let first_err = Mutex::new(None);
        pool.par_chunks_scratch(mt, g.m * ld, 1, slots, stride, &|xi, c, slot| {
            let r = PackedA::new(&self.packed_u[xi * plen..(xi + 1) * plen], g.m, g.c).and_then(|ua| {
                let v = VSource::new(&vbuf[xi * ld..], g.c, n, a2 * ld, self.tier)?;
                sgemm_serial(self.tier, &ua, &v, c, ld, &Epilogue::default(), &mut slot[tmp..])
            });
            if let Err(e) = r {
                first_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
            }
        })?;
        if let Some(e) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        let mt = &*mt;
        let mper = g.m.div_ceil(pool.threads() * 4);
        pool.par_chunks(&mut mbuf[..g.m * a2 * ld], a2 * ld, mper, &|m0, chans| {
            for (m, chan) in (m0..).zip(chans.chunks_exact_mut(a2 * ld)) {
                for xi in 0..a2 {
                    chan[xi * ld..][..n].copy_from_slice(&mt[(xi * g.m + m) * ld..][..n]);
                }
            }
        });
        Ok(())
    }
}

/// One transformed input matrix `V[ξ]` (`C × n`, row stride `ld`) as a GEMM B
/// operand. Like `gemm::Matrix`, but its rows are short (a block of tiles, often
/// fewer than one 48-column panel), so it copies in fixed 16-float pieces instead of a
/// memcpy call per row, reading into the row padding the transform leaves.
pub(crate) struct VSource<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    ld: usize,
    /// The tier's copy loops (a trait method alone gets baseline SSE2 only).
    pack: PackFn,
}

impl<'a> VSource<'a> {
    fn new(data: &'a [f32], rows: usize, cols: usize, ld: usize, tier: &KernelTable) -> Result<VSource<'a>> {
        let need = rows.checked_sub(1).map_or(Some(0), |r| r.checked_mul(ld).and_then(|x| x.checked_add(cols)));
        if cols > ld || !matches!(need, Some(need) if need <= data.len()) {
            return Err(KernelError::Shape(format!("winograd: V {rows}x{cols} (ld {ld}) over {} floats", data.len())));
        }
        Ok(VSource { data, rows, cols, ld, pack: tier.wino_pack })
    }
}

impl BSource for VSource<'_> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        // SAFETY: `pack` came from a `KernelTable`, which exist only for tiers this CPU
        // supports.
        unsafe { (self.pack)(self, k0, kc, n0, nc, nr, dst) }
    }
}

/// A tier's [`BSource::pack`] of a [`VSource`].
///
/// # Safety
/// The CPU must support the tier the function belongs to.
pub(crate) type PackFn = unsafe fn(&VSource, usize, usize, usize, usize, usize, &mut [f32]);

/// The portable packing.
pub(crate) fn pack_portable(v: &VSource, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
    v.pack_impl(k0, kc, n0, nc, nr, dst)
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn pack_avx512(v: &VSource, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
    v.pack_impl(k0, kc, n0, nc, nr, dst)
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn pack_avx2(v: &VSource, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
    v.pack_impl(k0, kc, n0, nc, nr, dst)
}

impl VSource<'_> {
    #[inline(always)]
    fn pack_impl(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        if kc == 0 || nr == 0 {
            return;
        }
        for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate().take(nc.div_ceil(nr)) {
            let c0 = n0 + q * nr;
            let w = nr.min(n0 + nc - c0);
            for (kk, out) in panel.chunks_exact_mut(nr).enumerate() {
                let start = (k0 + kk) * self.ld + c0;
                let src = &self.data[start..];
                let mut j = 0;
                // Whole 16-float pieces inside the row's valid columns.
                while j + L <= w {
                    out[j..j + L].copy_from_slice(&src[j..j + L]);
                    j += L;
                }
                // The piece holding the last valid column, if 16 floats can be read
                // there: lanes past `w` are zeroed by a select, not a short memcpy.
                if j < w && j + L <= nr {
                    if let Some(piece) = src.get(j..j + L) {
                        let rem = w - j;
                        let mut v = [0f32; L];
                        for (l, (d, s)) in v.iter_mut().zip(piece).enumerate() {
                            *d = if l < rem { *s } else { 0.0 };
                        }
                        out[j..j + L].copy_from_slice(&v);
                        j += L;
                    }
                }
                if j < w {
                    out[j..w].copy_from_slice(&src[j..w]);
                }
                let mut z = j.max(w);
                while z + L <= nr {
                    out[z..z + L].copy_from_slice(&[0.0; L]);
                    z += L;
                }
                if z < nr {
                    out[z..].fill(0.0);
                }
            }
        }
    }
}

/// The consecutive runs of tiles of one tile row inside tiles `t0 .. t0 + n`:
/// `(ty, first tx, count, offset in the block)`.
fn segments(g: &Geo, t0: usize, n: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
    let mut t = t0;
    std::iter::from_fn(move || {
        if t >= t0 + n || g.tw == 0 {
            return None;
        }
        let (ty, tx) = (t / g.tw, t % g.tw);
        let k = (g.tw - tx).min(t0 + n - t);
        let seg = (ty, tx, k, t - t0);
        t += k;
        Some(seg)
    })
}

// ---------------------------------------------------------------------------------
// 16-lane vectors and the transform matrices.

/// 16 lanes, one per tile. Element-wise operations on a fixed-size array are what LLVM
/// vectorizes most reliably (one zmm, two ymm or four q registers).
#[derive(Clone, Copy)]
struct V([f32; L]);

impl V {
    const ZERO: V = V([0.0; L]);
    #[inline(always)]
    fn load(s: &[f32]) -> V {
        let mut v = [0.0; L];
        v.copy_from_slice(&s[..L]);
        V(v)
    }
    #[inline(always)]
    fn store(self, d: &mut [f32]) {
        d[..L].copy_from_slice(&self.0);
    }
}

impl Add for V {
    type Output = V;
    #[inline(always)]
    fn add(self, o: V) -> V {
        let mut r = self.0;
        for (x, y) in r.iter_mut().zip(o.0) {
            *x += y;
        }
        V(r)
    }
}

impl Sub for V {
    type Output = V;
    #[inline(always)]
    fn sub(self, o: V) -> V {
        let mut r = self.0;
        for (x, y) in r.iter_mut().zip(o.0) {
            *x -= y;
        }
        V(r)
    }
}

impl Mul<f32> for V {
    type Output = V;
    #[inline(always)]
    fn mul(self, k: f32) -> V {
        let mut r = self.0;
        for x in r.iter_mut() {
            *x *= k;
        }
        V(r)
    }
}

/// One Winograd variant's data transforms, applied to α (≤ 6) vectors.
trait Kind {
    const MT: usize;
    const A: usize;
    /// `Bᵀ d` on `d[..A]`.
    fn bt(d: &[V; 6]) -> [V; 6];
    /// `Aᵀ m` on `m[..A]`, giving `MT` values.
    fn at(m: &[V; 6]) -> [V; 4];
}

struct K2;
struct K4;

impl Kind for K2 {
    const MT: usize = 2;
    const A: usize = 4;
    #[inline(always)]
    fn bt(d: &[V; 6]) -> [V; 6] {
        [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3], V::ZERO, V::ZERO]
    }
    #[inline(always)]
    fn at(m: &[V; 6]) -> [V; 4] {
        [m[0] + m[1] + m[2], m[1] - m[2] - m[3], V::ZERO, V::ZERO]
    }
}

impl Kind for K4 {
    const MT: usize = 4;
    const A: usize = 6;
    #[inline(always)]
    fn bt(d: &[V; 6]) -> [V; 6] {
        let p = d[4] - d[2] * 4.0;
        let q = d[3] - d[1] * 4.0;
        let r = d[4] - d[2];
        let s = (d[3] - d[1]) * 2.0;
        [d[4] - d[2] * 5.0 + d[0] * 4.0, p + q, p - q, r + s, r - s, d[5] - d[3] * 5.0 + d[1] * 4.0]
    }
    #[inline(always)]
    fn at(m: &[V; 6]) -> [V; 4] {
        let (s12, d12) = (m[1] + m[2], m[1] - m[2]);
        let (s34, d34) = (m[3] + m[4], m[3] - m[4]);
        [m[0] + s12 + s34, d12 + d34 * 2.0, s12 + s34 * 4.0, d12 + d34 * 8.0 + m[5]]
    }
}

// ---------------------------------------------------------------------------------
// Input transform.
//
// Layout: the block's tiles are numbered `z = 0..n` (block order), and every buffer
// row holds one value per tile, so all transform arithmetic runs on full 16-lane
// vectors whatever the image width (a tile row of a 14×14 map is only 4 F(4,3) tiles).
// Only the gathers from / scatters to image rows work per tile row ("segment").

/// Copies the input rows the block reads (tile rows `ty0 ..`, `rows` rows from padded
/// row `ty0·MT`) into `xpad` with their zero padding: channel `c`'s rows at
/// `c·rows·pwp`, each `pwp` wide (room for the transform's 16-tile over-reads), so the
/// transform never tests bounds.
fn pad_block(g: &Geo, x: &[f32], ty0: usize, rows: usize, pwp: usize, xpad: &mut [f32]) {
    // Only the columns valid tiles read, `0 .. tw·MT + 2`, need defined values; the
    // rest of each row is over-read slack whose lanes are discarded. Rows are short (a
    // few dozen floats), so the zeroing avoids per-row memset calls where it can.
    let used = g.tw * g.tile.out_tile() + 2;
    let r0 = ty0 * g.tile.out_tile();
    for (xc, dst) in x.chunks_exact(g.h * g.w).zip(xpad.chunks_exact_mut(rows * pwp)) {
        for (ri, drow) in dst.chunks_exact_mut(pwp).enumerate() {
            match (r0 + ri).checked_sub(g.ph).filter(|&ir| ir < g.h) {
                Some(ir) => {
                    zero(drow, 0, g.pw);
                    drow[g.pw..g.pw + g.w].copy_from_slice(&xc[ir * g.w..(ir + 1) * g.w]);
                    zero(drow, g.pw + g.w, used);
                }
                None => zero(drow, 0, used),
            }
        }
    }
}

/// Zeroes `row[start..end]`, and possibly up to 15 floats more when the row has room
/// (one fixed-size store instead of a memset call for the usual 1–3 floats of padding).
#[inline]
fn zero(row: &mut [f32], start: usize, end: usize) {
    if end <= start {
        return;
    }
    match row.get_mut(start..start + L) {
        Some(chunk) if end - start <= L => chunk.copy_from_slice(&[0.0; L]),
        _ => row[start..end].fill(0.0),
    }
}

/// SAFETY: `vout` must be valid for, and exclusively ours for, the rows of the
/// channels in `xpad` (see [`VOut`]).
#[allow(clippy::too_many_arguments)]
unsafe fn dispatch_input(
    tier: &KernelTable,
    g: &Geo,
    xpad: &[f32],
    rows: usize,
    t0: usize,
    n: usize,
    ld: usize,
    vout: VOut,
    dbuf: &mut [f32],
) {
    let input = tier.wino_input[g.tile.index()];
    // SAFETY: forwarded caller contract; a `KernelTable` exists only for tiers this CPU
    // supports.
    unsafe { input(g, xpad, rows, g.pwp(), t0, n, ld, vout, dbuf) }
}

/// A tier's input transform, `(g, xpad, rows, pwp, t0, n, ld, vout, dbuf)`.
///
/// # Safety
/// As [`input_block`]; the CPU must support the tier the function belongs to.
pub(crate) type InputFn = unsafe fn(&Geo, &[f32], usize, usize, usize, usize, usize, VOut, &mut [f32]);

/// Input transforms of the portable tier, by [`WinogradTile::index`].
pub(crate) const INPUT_PORTABLE: [InputFn; 2] = [input_portable::<K2>, input_portable::<K4>];
#[cfg(target_arch = "x86_64")]
pub(crate) const INPUT_AVX2: [InputFn; 2] = [input_avx2::<K2>, input_avx2::<K4>];
#[cfg(target_arch = "x86_64")]
pub(crate) const INPUT_AVX512: [InputFn; 2] = [input_avx512::<K2>, input_avx512::<K4>];

/// # Safety
/// As [`input_block`] (the portable gather needs no CPU feature).
#[allow(clippy::too_many_arguments)]
unsafe fn input_portable<W: Kind>(
    g: &Geo,
    xpad: &[f32],
    rows: usize,
    pwp: usize,
    t0: usize,
    n: usize,
    ld: usize,
    vout: VOut,
    dbuf: &mut [f32],
) {
    // SAFETY: forwarded caller contract.
    unsafe { input_block::<W, Portable>(g, xpad, rows, pwp, t0, n, ld, vout, dbuf) }
}

/// SAFETY: the CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn input_avx512<W: Kind>(
    g: &Geo,
    xpad: &[f32],
    rows: usize,
    pwp: usize,
    t0: usize,
    n: usize,
    ld: usize,
    vout: VOut,
    dbuf: &mut [f32],
) {
    // SAFETY: AVX-512F is available (caller contract).
    unsafe { input_block::<W, Avx512Gather>(g, xpad, rows, pwp, t0, n, ld, vout, dbuf) }
}

/// SAFETY: the CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn input_avx2<W: Kind>(
    g: &Geo,
    xpad: &[f32],
    rows: usize,
    pwp: usize,
    t0: usize,
    n: usize,
    ld: usize,
    vout: VOut,
    dbuf: &mut [f32],
) {
    // SAFETY: AVX2 is available (caller contract).
    unsafe { input_block::<W, Avx2Gather>(g, xpad, rows, pwp, t0, n, ld, vout, dbuf) }
}

/// `V = Bᵀ d B` of every channel (of `xpad`) and tile of the block, into `vout`: row
/// `(ξ, c)`, tile `z` in column `z`.
///
/// Tile `tx` reads input columns `tx·MT + b` (`b < α`), a stride-`MT` pattern. The
/// gather de-interleaves each input row into `α` phase rows,
/// `D[a][b][z] = row_a[tx·MT + b]`, with the tile index contiguous (in 16-tile chunks
/// of fixed size, which LLVM turns into shuffles); `Bᵀ D B` is then plain 16-lane
/// arithmetic over `z`. A chunk's store may run up to 15 columns past its tile row,
/// into columns the next tile row overwrites (or the row stride's padding).
///
/// SAFETY: the CPU must support the features `G` uses, and `vout` must be valid for,
/// and exclusively ours for, the rows of the channels in `xpad`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn input_block<W: Kind, G: Gather>(
    g: &Geo,
    xpad: &[f32],
    rows: usize,
    pwp: usize,
    t0: usize,
    n: usize,
    ld: usize,
    vout: VOut,
    dbuf: &mut [f32],
) {
    let (mt, a) = (W::MT, W::A);
    let ty0 = t0 / g.tw;
    for (ci, xc) in xpad.chunks_exact(rows * pwp).enumerate() {
        for (ty, tx0, k, off) in segments(g, t0, n) {
            for ai in 0..a {
                let row = &xc[((ty - ty0) * mt + ai) * pwp + tx0 * mt..];
                for s0 in (0..k).step_by(L) {
                    // SAFETY: forwarded caller contract.
                    let (lo, hi) =
                        unsafe { (G::deinterleave::<W>(&row[s0 * mt..]), G::deinterleave::<W>(&row[(s0 + 1) * mt..])) };
                    for b in 0..a {
                        let v = if b < mt { lo[b] } else { hi[b - mt] };
                        dbuf[(ai * a + b) * ld + off + s0..][..L].copy_from_slice(&v);
                    }
                }
            }
        }
        for z in (0..n).step_by(L) {
            // e[i][b] = Σ_a Bᵀ[i][a] D[a][b], then V[i·α + j] = Σ_b Bᵀ[j][b] e[i][b].
            let mut e = [[V::ZERO; 6]; 6];
            for b in 0..a {
                let mut d = [V::ZERO; 6];
                for (ai, v) in d.iter_mut().enumerate().take(a) {
                    *v = V::load(&dbuf[(ai * a + b) * ld + z..]);
                }
                for (ei, r) in e.iter_mut().zip(W::bt(&d)).take(a) {
                    ei[b] = r;
                }
            }
            for (i, ei) in e.iter().enumerate().take(a) {
                for (j, v) in W::bt(ei).iter().enumerate().take(a) {
                    // SAFETY: row (ξ, ci) of `vout` is ours (caller contract) and
                    // `z + 16 ≤ ld` (the row stride leaves room for the last store).
                    unsafe { vout.store(i * a + j, ci, z, *v) };
                }
            }
        }
    }
}

/// The de-interleaving gather of the input transform:
/// `out[p][l] = src[l·MT + p]` for 16 tiles `l` and the `MT` phases `p`.
trait Gather {
    /// SAFETY: the CPU must support the implementation's features.
    unsafe fn deinterleave<W: Kind>(src: &[f32]) -> [[f32; L]; 4];
}

/// Plain Rust on fixed-size chunks; LLVM vectorizes it, if not optimally.
struct Portable;

impl Gather for Portable {
    #[inline(always)]
    unsafe fn deinterleave<W: Kind>(src: &[f32]) -> [[f32; L]; 4] {
        let mut out = [[0f32; L]; 4];
        if W::MT == 2 {
            for (l, pair) in src[..2 * L].chunks_exact(2).enumerate() {
                out[0][l] = pair[0];
                out[1][l] = pair[1];
            }
        } else {
            for (l, quad) in src[..4 * L].chunks_exact(4).enumerate() {
                for (p, v) in quad.iter().enumerate() {
                    out[p][l] = *v;
                }
            }
        }
        out
    }
}

/// Two-source lane permutes: one per phase for MT = 2, two plus a blend for MT = 4
/// (LLVM's version of the portable loop goes partly scalar).
#[cfg(target_arch = "x86_64")]
struct Avx512Gather;

#[cfg(target_arch = "x86_64")]
impl Gather for Avx512Gather {
    #[inline(always)]
    unsafe fn deinterleave<W: Kind>(src: &[f32]) -> [[f32; L]; 4] {
        use std::arch::x86_64::*;
        let src = &src[..W::MT * L];
        let mut out = [[0f32; L]; 4];
        // SAFETY: the caller guarantees AVX-512F; every load reads 16 floats inside
        // `src` (`MT·16` long), every store writes one 16-float row of `out`.
        unsafe {
            let p = src.as_ptr();
            if W::MT == 2 {
                let (a, b) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(L)));
                for (ph, o) in out.iter_mut().enumerate().take(2) {
                    let ph = ph as i32;
                    let idx = _mm512_setr_epi32(
                        ph,
                        ph + 2,
                        ph + 4,
                        ph + 6,
                        ph + 8,
                        ph + 10,
                        ph + 12,
                        ph + 14,
                        ph + 16,
                        ph + 18,
                        ph + 20,
                        ph + 22,
                        ph + 24,
                        ph + 26,
                        ph + 28,
                        ph + 30,
                    );
                    _mm512_storeu_ps(o.as_mut_ptr(), _mm512_permutex2var_ps(a, idx, b));
                }
            } else {
                let (a, b) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(L)));
                let (c, d) = (_mm512_loadu_ps(p.add(2 * L)), _mm512_loadu_ps(p.add(3 * L)));
                for (ph, o) in out.iter_mut().enumerate() {
                    let ph = ph as i32;
                    // Tiles 0..8 come from (a, b) into lanes 0..8, tiles 8..16 from
                    // (c, d) into lanes 8..16, then a blend joins the halves.
                    let idx = _mm512_setr_epi32(
                        ph,
                        ph + 4,
                        ph + 8,
                        ph + 12,
                        ph + 16,
                        ph + 20,
                        ph + 24,
                        ph + 28,
                        ph,
                        ph + 4,
                        ph + 8,
                        ph + 12,
                        ph + 16,
                        ph + 20,
                        ph + 24,
                        ph + 28,
                    );
                    let lo = _mm512_permutex2var_ps(a, idx, b);
                    let hi = _mm512_permutex2var_ps(c, idx, d);
                    _mm512_storeu_ps(o.as_mut_ptr(), _mm512_mask_blend_ps(0xff00, lo, hi));
                }
            }
        }
        out
    }
}

/// AVX2 has no two-source lane permute: 4×4 transposes inside 128-bit lanes
/// (unpack + shuffle), then one cross-lane permute to restore the tile order.
#[cfg(target_arch = "x86_64")]
struct Avx2Gather;

#[cfg(target_arch = "x86_64")]
impl Gather for Avx2Gather {
    #[inline(always)]
    unsafe fn deinterleave<W: Kind>(src: &[f32]) -> [[f32; L]; 4] {
        use std::arch::x86_64::*;
        let src = &src[..W::MT * L];
        let mut out = [[0f32; L]; 4];
        // SAFETY: the caller guarantees AVX2; every load reads 8 floats inside `src`
        // (`MT·16` long), every store writes 8 floats of one row of `out`.
        unsafe {
            let p = src.as_ptr();
            for half in 0..2 {
                // Tiles 8·half .. 8·half + 8.
                let q = p.add(half * 8 * W::MT);
                let o = half * 8;
                if W::MT == 2 {
                    let (r0, r1) = (_mm256_loadu_ps(q), _mm256_loadu_ps(q.add(8)));
                    // Per 128-bit lane: [T0 T1 T4 T5 | T2 T3 T6 T7], then 64-bit
                    // blocks reordered to T0..T7.
                    let fix = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
                    _mm256_storeu_ps(out[0][o..].as_mut_ptr(), fix(_mm256_shuffle_ps::<0x88>(r0, r1)));
                    _mm256_storeu_ps(out[1][o..].as_mut_ptr(), fix(_mm256_shuffle_ps::<0xdd>(r0, r1)));
                } else {
                    let r = [
                        _mm256_loadu_ps(q),
                        _mm256_loadu_ps(q.add(8)),
                        _mm256_loadu_ps(q.add(16)),
                        _mm256_loadu_ps(q.add(24)),
                    ];
                    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                    // Each phase now holds tiles [0 2 4 6 | 1 3 5 7].
                    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
                    let ph = [
                        _mm256_shuffle_ps::<0x44>(t0, t2),
                        _mm256_shuffle_ps::<0xee>(t0, t2),
                        _mm256_shuffle_ps::<0x44>(t1, t3),
                        _mm256_shuffle_ps::<0xee>(t1, t3),
                    ];
                    for (row, v) in out.iter_mut().zip(ph) {
                        _mm256_storeu_ps(row[o..].as_mut_ptr(), _mm256_permutevar8x32_ps(v, order));
                    }
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------
// Output transform.

/// SAFETY: `y` must point to the validated `m × oh × ow` output, and no other thread
/// may access the pixels of tiles `t0 .. t0 + n` during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn dispatch_output(
    tier: &KernelTable,
    g: &Geo,
    mbuf: &[f32],
    m0: usize,
    t0: usize,
    n: usize,
    ld: usize,
    y: SyncPtr,
    epi: &Epilogue,
    ybuf: &mut [f32],
) {
    let output = tier.wino_output[g.tile.index()];
    // SAFETY: forwarded caller contract; a `KernelTable` exists only for tiers this CPU
    // supports.
    unsafe { output(g, mbuf, m0, t0, n, ld, y, epi, ybuf) }
}

/// A tier's output transform, `(g, mbuf, m0, t0, n, ld, y, epi, ybuf)`.
///
/// # Safety
/// As [`output_block`]; the CPU must support the tier the function belongs to.
pub(crate) type OutputFn = unsafe fn(&Geo, &[f32], usize, usize, usize, usize, SyncPtr, &Epilogue, &mut [f32]);

/// Output transforms of the portable tier, by [`WinogradTile::index`].
pub(crate) const OUTPUT_PORTABLE: [OutputFn; 2] = [output_portable::<K2>, output_portable::<K4>];
#[cfg(target_arch = "x86_64")]
pub(crate) const OUTPUT_AVX2: [OutputFn; 2] = [output_avx2::<K2>, output_avx2::<K4>];
#[cfg(target_arch = "x86_64")]
pub(crate) const OUTPUT_AVX512: [OutputFn; 2] = [output_avx512::<K2>, output_avx512::<K4>];

/// # Safety
/// As [`output_block`] (the portable scatter needs no CPU feature).
#[allow(clippy::too_many_arguments)]
unsafe fn output_portable<W: Kind>(
    g: &Geo,
    mbuf: &[f32],
    m0: usize,
    t0: usize,
    n: usize,
    ld: usize,
    y: SyncPtr,
    epi: &Epilogue,
    ybuf: &mut [f32],
) {
    // SAFETY: forwarded caller contract.
    unsafe { output_block::<W, Portable>(g, mbuf, m0, t0, n, ld, y, epi, ybuf) }
}

/// SAFETY: as [`output_block`], and the CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_avx512<W: Kind>(
    g: &Geo,
    mbuf: &[f32],
    m0: usize,
    t0: usize,
    n: usize,
    ld: usize,
    y: SyncPtr,
    epi: &Epilogue,
    ybuf: &mut [f32],
) {
    // SAFETY: forwarded caller contract.
    unsafe { output_block::<W, Avx512Scatter>(g, mbuf, m0, t0, n, ld, y, epi, ybuf) }
}

/// SAFETY: as [`output_block`], and the CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_avx2<W: Kind>(
    g: &Geo,
    mbuf: &[f32],
    m0: usize,
    t0: usize,
    n: usize,
    ld: usize,
    y: SyncPtr,
    epi: &Epilogue,
    ybuf: &mut [f32],
) {
    // SAFETY: forwarded caller contract.
    unsafe { output_block::<W, Avx2Scatter>(g, mbuf, m0, t0, n, ld, y, epi, ybuf) }
}

/// `y = epi(Aᵀ M A)` for output channels `m0 ..` and every tile of the block; `mbuf`
/// holds channel `m0 + i`'s `α² × ld` GEMM results at `i·α²·ld` (row `ξ`, tile
/// column `z`).
/// The transform runs over all the block's tiles into `ybuf` (`MT² × ld`, row
/// `u·MT + v` = pixel `(u, v)` of each tile); then each tile row's pixels are
/// interleaved into the image rows, with the epilogue.
///
/// SAFETY: `y` must point to the validated `m × oh × ow` output, no other thread may
/// access the pixels of tiles `t0 .. t0 + n` during the call, and the CPU must support
/// the features `S` uses.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn output_block<W: Kind, S: Scatter>(
    g: &Geo,
    mbuf: &[f32],
    m0: usize,
    t0: usize,
    n: usize,
    ld: usize,
    y: SyncPtr,
    epi: &Epilogue,
    ybuf: &mut [f32],
) {
    let (mt, a) = (W::MT, W::A);
    let a2 = a * a;
    let plane = g.oh * g.ow;
    for (i, chan) in mbuf.chunks_exact(a2 * ld).enumerate() {
        let mo = m0 + i;
        for z in (0..n).step_by(L) {
            // zt[u][j] = Σ_i Aᵀ[u][i] M[i·α + j], then Y[u][v] = Σ_j Aᵀ[v][j] zt[u][j].
            let mut zt = [[V::ZERO; 6]; 4];
            for j in 0..a {
                let mut col = [V::ZERO; 6];
                for (i, v) in col.iter_mut().enumerate().take(a) {
                    *v = V::load(&chan[(i * a + j) * ld + z..]);
                }
                for (zu, r) in zt.iter_mut().zip(W::at(&col)).take(mt) {
                    zu[j] = r;
                }
            }
            for (u, zu) in zt.iter().enumerate().take(mt) {
                for (v, yv) in W::at(zu).iter().enumerate().take(mt) {
                    yv.store(&mut ybuf[(u * mt + v) * ld + z..]);
                }
            }
        }
        let res = epi.residual.map(|r| r.row(mo));
        let bias = epi.bias.map_or(0.0, |b| b[mo]);
        for (ty, tx0, k, off) in segments(g, t0, n) {
            // The image columns of these tiles (fewer at the right edge).
            let col0 = tx0 * mt;
            let width = (k * mt).min(g.ow - col0);
            let mut rows: [&mut [f32]; 4] = Default::default();
            for (u, row) in rows.iter_mut().enumerate().take(mt) {
                let oy = ty * mt + u;
                if oy >= g.oh {
                    continue; // below the bottom edge
                }
                // SAFETY: (mo, oy, col0 .. col0 + width) lies inside the m × oh × ow
                // output (col0 + width ≤ ow), belongs to this block's tiles, which the
                // caller guarantees no other thread touches, and the rows are
                // distinct, so the slices do not overlap.
                *row = unsafe { std::slice::from_raw_parts_mut(y.ptr().add(mo * plane + oy * g.ow + col0), width) };
                let res = res.map(|r| &r[oy * g.ow + col0..][..width]);
                for s0 in (0..k).step_by(L) {
                    let mut yv = [V::ZERO; 4];
                    for (v, dst) in yv.iter_mut().enumerate().take(mt) {
                        *dst = V::load(&ybuf[(u * mt + v) * ld + off + s0..]);
                    }
                    let c0 = s0 * mt;
                    let cnt = (width - c0).min(L * mt);
                    // SAFETY: forwarded caller contract (the CPU supports `S`).
                    unsafe { S::emit::<W>(&yv, &mut row[c0..c0 + cnt], bias, res.map(|r| &r[c0..c0 + cnt]), epi.act) };
                }
            }
            if let Some(post) = epi.post {
                for (u, row) in rows.iter_mut().enumerate().take(mt) {
                    if !row.is_empty() {
                        post(mo, (ty * mt + u) * g.ow + col0, row);
                    }
                }
            }
        }
    }
}

/// The last step of the output transform: interleaves the `MT` per-pixel-column
/// vectors of 16 tiles (`y[v][l]`, pixel `v` of tile `l` in one output row) into image
/// order, `dst[l·MT + v]`, as `act(value + bias + res)`; `dst` (and `res`) hold the
/// first `dst.len() ≤ 16·MT` of those pixels.
trait Scatter {
    /// SAFETY: the CPU must support the implementation's features.
    unsafe fn emit<W: Kind>(y: &[V; 4], dst: &mut [f32], bias: f32, res: Option<&[f32]>, act: Activation);
}

impl Scatter for Portable {
    #[inline(always)]
    unsafe fn emit<W: Kind>(y: &[V; 4], dst: &mut [f32], bias: f32, res: Option<&[f32]>, act: Activation) {
        let mut px = [0f32; 4 * L];
        for (l, group) in px.chunks_exact_mut(W::MT).take(L).enumerate() {
            for (v, q) in group.iter_mut().enumerate() {
                *q = y[v].0[l];
            }
        }
        finish(&px[..dst.len()], dst, bias, res, act);
    }
}

/// Interleaves with two-source permutes in registers, applies the epilogue there and
/// stores with lane masks: LLVM's version of the portable code stages the pixels on
/// the stack with narrow stores and reloads them wide, which stalls store forwarding.
#[cfg(target_arch = "x86_64")]
struct Avx512Scatter;

#[cfg(target_arch = "x86_64")]
impl Scatter for Avx512Scatter {
    #[inline(always)]
    unsafe fn emit<W: Kind>(y: &[V; 4], dst: &mut [f32], bias: f32, res: Option<&[f32]>, act: Activation) {
        use std::arch::x86_64::*;
        let n = dst.len().min(W::MT * L);
        // SAFETY: the caller guarantees AVX-512F. Loads read whole `V`s; the stores and
        // residual loads are masked to lanes below `n`, inside `dst` and `res` (which
        // has `dst.len()` floats: `output_block` slices both alike).
        unsafe {
            let ld = |v: &V| _mm512_loadu_ps(v.0.as_ptr());
            // Pairs (y0, y1) per tile: tiles 0..8 (`lo`) and 8..16 (`hi`).
            let pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            let pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            let mut out = [_mm512_setzero_ps(); 4];
            let (y0, y1) = (ld(&y[0]), ld(&y[1]));
            let p01 = [_mm512_permutex2var_ps(y0, pair_lo, y1), _mm512_permutex2var_ps(y0, pair_hi, y1)];
            if W::MT == 2 {
                out[0] = p01[0];
                out[1] = p01[1];
            } else {
                let (y2, y3) = (ld(&y[2]), ld(&y[3]));
                let p23 = [_mm512_permutex2var_ps(y2, pair_lo, y3), _mm512_permutex2var_ps(y2, pair_hi, y3)];
                // Quads (y0, y1, y2, y3) per tile: 4 tiles per output vector.
                let quad_a = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
                let quad_b = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
                out[0] = _mm512_permutex2var_ps(p01[0], quad_a, p23[0]);
                out[1] = _mm512_permutex2var_ps(p01[0], quad_b, p23[0]);
                out[2] = _mm512_permutex2var_ps(p01[1], quad_a, p23[1]);
                out[3] = _mm512_permutex2var_ps(p01[1], quad_b, p23[1]);
            }
            let b = _mm512_set1_ps(bias);
            for (k, o) in out.iter().enumerate().take(W::MT) {
                let start = k * L;
                if start >= n {
                    break;
                }
                let rem = n - start;
                let mask: __mmask16 = if rem >= L { 0xffff } else { (1u16 << rem) - 1 };
                let mut v = _mm512_add_ps(*o, b);
                if let Some(r) = res {
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, r.as_ptr().add(start)));
                }
                v = match act {
                    Activation::None => v,
                    // As `Activation::apply`: NaN stays NaN, -0.0 stays -0.0.
                    Activation::Relu => _mm512_max_ps(_mm512_setzero_ps(), v),
                    Activation::Clip { lo, hi } => {
                        let upper = _mm512_min_ps(_mm512_set1_ps(hi), v);
                        let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, _mm512_set1_ps(lo));
                        _mm512_mask_blend_ps(below, upper, _mm512_set1_ps(lo))
                    }
                };
                _mm512_mask_storeu_ps(dst.as_mut_ptr().add(start), mask, v);
            }
        }
    }
}

/// The inverse of [`Avx2Gather`]'s shuffles: unpacks inside 128-bit lanes, then
/// 128-bit halves swapped into place; the epilogue in registers, masked stores.
#[cfg(target_arch = "x86_64")]
struct Avx2Scatter;

#[cfg(target_arch = "x86_64")]
impl Scatter for Avx2Scatter {
    #[inline(always)]
    unsafe fn emit<W: Kind>(y: &[V; 4], dst: &mut [f32], bias: f32, res: Option<&[f32]>, act: Activation) {
        use std::arch::x86_64::*;
        let n = dst.len().min(W::MT * L);
        // SAFETY: the caller guarantees AVX2. Loads read 8 floats inside a `V`; the
        // stores and residual loads are masked to lanes below `n`, inside `dst` and
        // `res` (which has `dst.len()` floats: `output_block` slices both alike).
        unsafe {
            let mut out = [_mm256_setzero_ps(); 8];
            for half in 0..2 {
                let ld = |v: usize| _mm256_loadu_ps(y[v].0[half * 8..].as_ptr());
                let lo = _mm256_unpacklo_ps(ld(0), ld(1));
                let hi = _mm256_unpackhi_ps(ld(0), ld(1));
                if W::MT == 2 {
                    // lo: [T0 T1 | T4 T5] pairs, hi: [T2 T3 | T6 T7].
                    out[half * 2] = _mm256_permute2f128_ps::<0x20>(lo, hi);
                    out[half * 2 + 1] = _mm256_permute2f128_ps::<0x31>(lo, hi);
                } else {
                    let lo23 = _mm256_unpacklo_ps(ld(2), ld(3));
                    let hi23 = _mm256_unpackhi_ps(ld(2), ld(3));
                    // Quads of tiles [0 | 4], [1 | 5], [2 | 6], [3 | 7].
                    let q0 = _mm256_shuffle_ps::<0x44>(lo, lo23);
                    let q1 = _mm256_shuffle_ps::<0xee>(lo, lo23);
                    let q2 = _mm256_shuffle_ps::<0x44>(hi, hi23);
                    let q3 = _mm256_shuffle_ps::<0xee>(hi, hi23);
                    out[half * 4] = _mm256_permute2f128_ps::<0x20>(q0, q1);
                    out[half * 4 + 1] = _mm256_permute2f128_ps::<0x20>(q2, q3);
                    out[half * 4 + 2] = _mm256_permute2f128_ps::<0x31>(q0, q1);
                    out[half * 4 + 3] = _mm256_permute2f128_ps::<0x31>(q2, q3);
                }
            }
            let b = _mm256_set1_ps(bias);
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            for (k, o) in out.iter().enumerate().take(2 * W::MT) {
                let start = k * 8;
                if start >= n {
                    break;
                }
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((n - start).min(8) as i32), lanes);
                let mut v = _mm256_add_ps(*o, b);
                if let Some(r) = res {
                    v = _mm256_add_ps(v, _mm256_maskload_ps(r.as_ptr().add(start), mask));
                }
                v = match act {
                    Activation::None => v,
                    // As `Activation::apply`: NaN stays NaN, -0.0 stays -0.0.
                    Activation::Relu => _mm256_max_ps(_mm256_setzero_ps(), v),
                    Activation::Clip { lo, hi } => {
                        let upper = _mm256_min_ps(_mm256_set1_ps(hi), v);
                        let below = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_set1_ps(lo));
                        _mm256_blendv_ps(upper, _mm256_set1_ps(lo), below)
                    }
                };
                _mm256_maskstore_ps(dst.as_mut_ptr().add(start), mask, v);
            }
        }
    }
}

/// `dst = act(vals + bias + res)`, the activation matched outside the loop.
#[inline(always)]
fn finish(vals: &[f32], dst: &mut [f32], bias: f32, res: Option<&[f32]>, act: Activation) {
    let n = vals.len().min(dst.len());
    let (vals, dst) = (&vals[..n], &mut dst[..n]);
    match res {
        Some(r) => {
            let r = &r[..n];
            for ((d, v), r) in dst.iter_mut().zip(vals).zip(r) {
                *d = *v + bias + *r;
            }
        }
        None => {
            for (d, v) in dst.iter_mut().zip(vals) {
                *d = *v + bias;
            }
        }
    }
    match act {
        Activation::None => {}
        Activation::Relu | Activation::Clip { .. } => {
            for d in dst.iter_mut() {
                *d = act.apply(*d);
            }
        }
    }
}
