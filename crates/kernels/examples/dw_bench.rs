//! Depthwise convolution and pooling throughput per tier on MobileNet / PP-OCR / ResNet
//! shapes. Run: `cargo run -p sinter-kernels --release --example dw_bench`.
//! One thread unless noted; GFLOP/s counts a multiply-add as 2 (conv) and a tap as 1 (pool).

use sinter_kernels::depthwise::{depthwise_conv2d, depthwise_conv2d_channels, scratch_floats, DwGeom};
use sinter_kernels::pooling::{pool2d, pool_scratch_floats, PoolGeom, PoolKind};
use sinter_kernels::{Activation, Isa, KernelTable, ThreadPool};
use std::time::Instant;

/// Seconds this thread has run on a CPU (Linux `CLOCK_THREAD_CPUTIME_ID`), so that
/// single-thread numbers are not skewed by other processes on a busy machine.
#[cfg(target_os = "linux")]
fn cpu_time() -> Option<f64> {
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
    // SAFETY: `ts` is a valid out-pointer of the C layout (64-bit Linux).
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then_some(ts.sec as f64 + ts.nsec as f64 * 1e-9)
}

#[cfg(not(target_os = "linux"))]
fn cpu_time() -> Option<f64> {
    None
}

/// Best-of-5 seconds per call of `f`, each sample long enough to be measured: thread
/// CPU time when `cpu` (one-thread runs), else wall time.
fn time(cpu: bool, mut f: impl FnMut()) -> f64 {
    let now = || if cpu { cpu_time() } else { None }.unwrap_or_else(|| START.with(|s| s.elapsed().as_secs_f64()));
    f();
    // Calibrate with wall time (the CPU clock may only advance at scheduler ticks).
    let t0 = Instant::now();
    f();
    let once = t0.elapsed().as_secs_f64().max(1e-7);
    let reps = ((0.05 / once) as usize).max(1);
    (0..5)
        .map(|_| {
            let t = now();
            for _ in 0..reps {
                f();
            }
            (now() - t) / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

thread_local! {
    static START: Instant = Instant::now();
}

fn main() {
    // An optional argument keeps only the shapes whose label contains it.
    let filter = std::env::args().nth(1).unwrap_or_default();
    // SINTER_DW_TIER=avx512 (say) keeps only that tier.
    let only = std::env::var("SINTER_DW_TIER").unwrap_or_default();
    let tiers: Vec<&KernelTable> =
        KernelTable::available().into_iter().filter(|i| only.is_empty() || i.name() == only).collect();
    let pool = ThreadPool::new(2);
    println!("depthwise conv (3x3 / 5x5, ReLU6), GFLOP/s (thread CPU time), 1 thread per tier, then best tier on 2 threads (wall time)");
    for (c, hw, k, s) in [
        (32, 112, 3, 1),
        (96, 112, 3, 2),
        // Few channels: the planes stay in L2 (the kernel's cost, not that of streaming x).
        (8, 112, 3, 1),
        (8, 112, 3, 2),
        (12, 56, 3, 2),
        (144, 56, 3, 1),
        (144, 56, 3, 2),
        (192, 28, 3, 1),
        (384, 14, 3, 1),
        (576, 14, 3, 1),
        (960, 7, 3, 1),
        (64, 160, 5, 1),
        (256, 40, 5, 2),
    ] {
        if !format!("{c}ch {hw}x{hw} k{k} s{s}").contains(&filter) {
            continue;
        }
        let p = k / 2;
        let o = (hw + 2 * p - k) / s + 1;
        let g = DwGeom::new([hw, hw], [o, o], [k, k], [s, s], [1, 1], [p, p]).unwrap();
        let x: Vec<f32> = (0..c * hw * hw).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let w: Vec<f32> = (0..c * k * k).map(|i| ((i * 31) % 17) as f32 / 17.0 - 0.5).collect();
        let mut y = vec![0.0f32; c * o * o];
        let flops = 2.0 * (c * o * o * k * k) as f64;
        let act = Activation::Clip { lo: 0.0, hi: 6.0 };
        let mut line = format!("{c:4}ch {hw:3}x{hw:<3} k{k} s{s}:");
        for &tier in &tiers {
            let mut scratch = vec![0.0f32; scratch_floats(&g)];
            let t = time(true, || {
                for ((xc, wc), yc) in x.chunks_exact(hw * hw).zip(w.chunks_exact(k * k)).zip(y.chunks_exact_mut(o * o))
                {
                    depthwise_conv2d(tier, &g, xc, wc, 0.1, act, yc, &mut scratch).unwrap();
                }
            });
            // All channels in one call (what the runtime does per task).
            let bias = vec![0.1f32; c];
            let tc = time(true, || {
                depthwise_conv2d_channels(tier, &g, c, &x, &w, Some(&bias), act, &mut y, &mut scratch).unwrap();
            });
            line += &format!(
                "  {tier} {:6.1} ({:7.1} µs; {:7.1} µs per call of all channels)",
                flops / t * 1e-9,
                t * 1e6,
                tc * 1e6
            );
        }
        // Best tier over the pool: one task per chunk of channels, scratch per thread.
        let tier = KernelTable::for_isa(Isa::best()).unwrap();
        let per_thread = scratch_floats(&g).next_multiple_of(16);
        let mut scratch = vec![0.0f32; per_thread * pool.threads()];
        let bias = vec![0.1f32; c];
        let t = time(false, || {
            pool.par_chunks_scratch(&mut y, o * o, c.div_ceil(2), &mut scratch, per_thread, &|c0, yc, s| {
                let n = yc.len() / (o * o);
                let xc = &x[c0 * hw * hw..][..n * hw * hw];
                let wc = &w[c0 * k * k..][..n * k * k];
                depthwise_conv2d_channels(tier, &g, n, xc, wc, Some(&bias[c0..c0 + n]), act, yc, s).unwrap();
            })
            .unwrap()
        });
        line += &format!("  | {tier} x2 threads {:6.1} ({:7.1} µs)", flops / t * 1e-9, t * 1e6);
        println!("{line}");
    }
    println!("pooling, G taps/s, 1 thread");
    for (name, c, hw, k, s, p, kind) in [
        ("maxpool 3x3 s2 (ResNet stem)", 64, 112, 3, 2, 1, PoolKind::Max),
        ("avgpool 3x3 s1", 128, 28, 3, 1, 1, PoolKind::Avg { count_include_pad: false }),
        ("avgpool 2x2 s2", 256, 40, 2, 2, 0, PoolKind::Avg { count_include_pad: true }),
    ] {
        if !name.contains(&filter) {
            continue;
        }
        let o = (hw + 2 * p - k) / s + 1;
        let g = PoolGeom::new([hw, hw], [o, o], [k, k], [s, s], [1, 1], [p, p, p, p]).unwrap();
        let x: Vec<f32> = (0..c * hw * hw).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let mut y = vec![0.0f32; c * o * o];
        let taps = (c * o * o * k * k) as f64;
        let mut line = format!("{name:30} {c}ch {hw}x{hw}:");
        for &tier in &tiers {
            let mut scratch = vec![0.0f32; pool_scratch_floats(&g)];
            let t = time(true, || {
                for (xc, yc) in x.chunks_exact(hw * hw).zip(y.chunks_exact_mut(o * o)) {
                    pool2d(tier, kind, &g, xc, yc, &mut scratch).unwrap();
                }
            });
            line += &format!("  {tier} {:6.1} ({:7.1} µs)", taps / t * 1e-9, t * 1e6);
        }
        println!("{line}");
    }
}
