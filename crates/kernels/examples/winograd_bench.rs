//! ResNet-50's 3×3 convolutions (stride 1, pad 1): milliseconds per layer for the
//! direct convolution (implicit-im2col GEMM) against Winograd F(2,3) and F(4,3), on
//! 1 and 2 threads, plus each method's error against an f64 direct convolution.
//!
//! `cargo run --release -p sinter-kernels --example winograd_bench [--no-error] [--layer=i]
//! [--only=direct|f2|f4] [--cold] [tier]`
//!
//! Errors are reported as the largest |y − ref| and as the largest ratio to the
//! project's whole-model tolerance `1e-4 + 1e-3·|ref|` (a ratio ≪ 1 leaves room for
//! errors to grow through the network). Inputs are uniform in [0, 1) (post-ReLU) and
//! weights uniform with He-init variance `2 / (9c)`.

use sinter_kernels::winograd::{pack_weights, packed_weights_len, WinogradConv, WinogradTile};
use sinter_kernels::{
    pack_a, packed_a_len, sgemm, sgemm_scratch, BSource, Epilogue, Isa, KernelTable, PackedA, ThreadPool,
};
use std::time::{Duration, Instant};

/// The implicit im2col matrix of a 3×3 stride-1 convolution (`9c × oh·ow`, row
/// `ci·9 + ky·3 + kx`), packed straight from the image: each packed row is a few
/// contiguous runs of one input row, copied, with zeros for the padding.
struct Im2col<'a> {
    x: &'a [f32],
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    pad: usize,
}

impl BSource for Im2col<'_> {
    fn rows(&self) -> usize {
        self.c * 9
    }
    fn cols(&self) -> usize {
        self.oh * self.ow
    }
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        for kk in 0..kc {
            let r = k0 + kk;
            let (ci, ky, kx) = (r / 9, r % 9 / 3, r % 3);
            for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate().take(nc.div_ceil(nr)) {
                let out = &mut panel[kk * nr..(kk + 1) * nr];
                let c0 = n0 + q * nr;
                let c1 = (c0 + nr).min(n0 + nc);
                out[c1 - c0..].fill(0.0);
                let mut col = c0;
                while col < c1 {
                    let (oy, ox) = (col / self.ow, col % self.ow);
                    let run = (self.ow - ox).min(c1 - col);
                    let dst = &mut out[col - c0..col - c0 + run];
                    let iy = (oy + ky) as isize - self.pad as isize;
                    if iy < 0 || iy >= self.h as isize {
                        dst.fill(0.0);
                    } else {
                        let src = &self.x[(ci * self.h + iy as usize) * self.w..][..self.w];
                        for (i, d) in dst.iter_mut().enumerate() {
                            let ix = (ox + i + kx) as isize - self.pad as isize;
                            *d = if ix >= 0 && (ix as usize) < self.w { src[ix as usize] } else { 0.0 };
                        }
                    }
                    col += run;
                }
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let errors = !args.iter().any(|a| a == "--no-error");
    let cold = args.iter().any(|a| a == "--cold");
    let tier = match args.iter().find(|a| !a.starts_with("--")) {
        Some(name) => KernelTable::for_isa(Isa::from_name(name).ok_or("unknown tier")?)?,
        None => KernelTable::selected()?,
    };
    println!("tier {tier}");
    let method = args.iter().find_map(|a| a.strip_prefix("--only=")).unwrap_or("all").to_string();
    let only: Option<usize> = args.iter().find_map(|a| a.strip_prefix("--layer=")).and_then(|v| v.parse().ok());
    let layers = [(64, 56), (128, 28), (256, 14), (512, 7)];
    let layers = layers.iter().enumerate().filter(|(i, _)| only.is_none_or(|o| o == *i)).map(|(_, l)| *l);
    let pools = [ThreadPool::new(1), ThreadPool::new(2)];
    for (c, hw) in layers {
        let m = c;
        let mut seed = 0x2545_f491_4f6c_dd1du64 ^ (c as u64);
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32
        };
        let x: Vec<f32> = (0..c * hw * hw).map(|_| rnd()).collect();
        let scale = (6.0 / (9.0 * c as f32)).sqrt();
        let wt: Vec<f32> = (0..m * c * 9).map(|_| (2.0 * rnd() - 1.0) * scale).collect();
        let mut wp = vec![0f32; packed_a_len(m, c * 9)];
        pack_a(m, c * 9, &wt, c * 9, &mut wp)?;
        let pa = PackedA::new(&wp, m, c * 9)?;
        let src = Im2col { x: &x, c, h: hw, w: hw, oh: hw, ow: hw, pad: 1 };
        let flops = 2.0 * (m * c * 9 * hw * hw) as f64;
        let mut outs: Vec<(&str, Vec<f32>)> = Vec::new();
        let mut line = format!("c=m={c:<4} {hw:>2}x{hw:<2}");
        for (ti, pool) in pools.iter().enumerate() {
            let mut y = vec![0f32; m * hw * hw];
            let mut ws = vec![0f32; sgemm_scratch(m, hw * hw, c * 9).total(pool.threads())];
            let run_direct = method == "all" || method == "direct";
            let t = if !run_direct {
                Duration::ZERO
            } else {
                time(pool.threads(), cold, || {
                    sgemm(tier, &pa, &src, &mut y, hw * hw, &Epilogue::default(), pool, &mut ws)
                })?
            };
            line +=
                &format!("  {}T direct {:6.3} ms ({:4.0} GF/s)", pool.threads(), ms(t), flops / t.as_secs_f64() / 1e9);
            if ti == 0 {
                outs.push(("direct", y));
            }
            for tile in [WinogradTile::F2, WinogradTile::F4] {
                if method != "all" && method != format!("{tile:?}").to_lowercase() {
                    continue;
                }
                let mut up = vec![0f32; packed_weights_len(tile, m, c)];
                pack_weights(tile, m, c, &wt, &mut up)?;
                let conv = WinogradConv::new(tile, c, hw, hw, m, [1; 4])?;
                let mut y = vec![0f32; m * hw * hw];
                let epi = Epilogue::default();
                let mut ws = vec![0f32; conv.scratch().total(pool.threads())];
                let t = time(pool.threads(), cold, || conv.run(tier, &up, &x, &mut y, &epi, pool, &mut ws))?;
                line += &format!(" {tile:?} {:6.3} ms", ms(t));
                if ti == 0 {
                    outs.push((if tile == WinogradTile::F2 { "F(2,3)" } else { "F(4,3)" }, y));
                }
            }
        }
        println!("{line}");
        if errors {
            let reference = direct_f64(&x, &wt, c, m, hw);
            for (name, y) in &outs {
                let (mut abs, mut ratio) = (0f64, 0f64);
                for (got, want) in y.iter().zip(&reference) {
                    let e = (*got as f64 - want).abs();
                    abs = abs.max(e);
                    ratio = ratio.max(e / (1e-4 + 1e-3 * want.abs()));
                }
                println!("    {name:<7} max |err| {abs:9.2e}   max err/(1e-4+1e-3|ref|) {ratio:7.4}");
            }
        }
    }
    Ok(())
}

/// f64 direct convolution, pad 1, `[m, hw, hw]`.
fn direct_f64(x: &[f32], wt: &[f32], c: usize, m: usize, hw: usize) -> Vec<f64> {
    let mut y = vec![0f64; m * hw * hw];
    for mo in 0..m {
        let out = &mut y[mo * hw * hw..(mo + 1) * hw * hw];
        for ci in 0..c {
            let xc = &x[ci * hw * hw..(ci + 1) * hw * hw];
            for ky in 0..3 {
                for kx in 0..3 {
                    let wv = wt[((mo * c + ci) * 3 + ky) * 3 + kx] as f64;
                    for oy in 0..hw {
                        let iy = oy as isize + ky as isize - 1;
                        if iy < 0 || iy >= hw as isize {
                            continue;
                        }
                        for ox in 0..hw {
                            let ix = ox as isize + kx as isize - 1;
                            if ix >= 0 && ix < hw as isize {
                                out[oy * hw + ox] += wv * xc[iy as usize * hw + ix as usize] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Best-of time over ~0.3 s of calls after a warm-up call; thread CPU time on one
/// thread (time slices lost to other processes on a shared machine do not count).
/// With `cold`, 64 MiB are streamed through the caches before each call, so weights
/// come from DRAM as they do when a whole network runs (a layer's Winograd weights are
/// 16/9 (F(2,3)) or 4× (F(4,3)) the direct ones).
fn time<E>(threads: usize, cold: bool, mut f: impl FnMut() -> Result<(), E>) -> Result<Duration, E> {
    f()?;
    let clock = if threads == 1 { cpu_time } else { wall_time };
    let mut flush = if cold { vec![0u8; 64 << 20] } else { Vec::new() };
    let mut best = Duration::MAX;
    let deadline = Instant::now() + Duration::from_millis(if cold { 600 } else { 300 });
    let mut pass = 0u8;
    while Instant::now() < deadline {
        pass = pass.wrapping_add(1);
        for line in flush.chunks_mut(64) {
            line[0] = pass;
        }
        std::hint::black_box(&flush);
        let start = clock();
        f()?;
        best = best.min(clock().saturating_sub(start));
    }
    Ok(best)
}

fn wall_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

#[cfg(target_os = "linux")]
fn cpu_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid timespec (64-bit Linux layout) for the call to fill.
    if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return wall_time();
    }
    Duration::new(ts.sec as u64, ts.nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn cpu_time() -> Duration {
    wall_time()
}
