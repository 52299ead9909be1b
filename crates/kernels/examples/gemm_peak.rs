//! Prints, per available tier, the measured peak FMA rate and the sgemm rate for a few
//! shapes on 1 and 2 threads, with the percentage of peak.
//!
//! `[SINTER_CPU=avx512] [GEMM_PEAK_MS=300] cargo run --release -p sinter-kernels --example gemm_peak [m n k ...]`
//!
//! Each rate is the best of `GEMM_PEAK_MS` milliseconds of calls: longer runs catch the
//! quiet moments of a shared machine.

use sinter_kernels::gemm::peak::measure_fma_gflops_threads;
use sinter_kernels::{pack_a, packed_a_len, sgemm, sgemm_scratch, Epilogue, KernelTable, Matrix, PackedA, ThreadPool};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let shapes: Vec<(usize, usize, usize)> = if args.len() >= 3 {
        args.chunks_exact(3).map(|s| (s[0], s[1], s[2])).collect()
    } else {
        // The last two end in a narrow last panel (n = 196 = 4·48 + 4, 49 = 48 + 1).
        vec![(1024, 1024, 1024), (256, 256, 256), (512, 784, 4608), (256, 196, 2304), (2048, 49, 512)]
    };
    // SINTER_CPU=<tier> measures only that tier.
    let tiers = if std::env::var_os("SINTER_CPU").is_some() {
        vec![KernelTable::selected()?]
    } else {
        KernelTable::available()
    };
    for tier in tiers {
        for threads in [1, 2] {
            let peak = measure_fma_gflops_threads(tier, threads)?;
            println!("{tier:>6} {threads}T  peak {peak:7.1} GFLOP/s");
            let pool = ThreadPool::new(threads);
            for &(m, n, k) in &shapes {
                let (gflops, per_cpu) = time_gemm(tier, &pool, m, n, k)?;
                print!(
                    "{tier:>6} {threads}T  {m:>5}x{n:<5}x{k:<5} {gflops:7.1} GFLOP/s  {:5.1}% of peak",
                    100.0 * gflops / peak
                );
                if threads > 1 {
                    // Wall-clock scaling needs idle cores; flops per CPU-second shows
                    // what threading itself costs even on a busy machine.
                    print!(
                        "  ({per_cpu:6.1} GFLOP per CPU-second, {:5.1}% of per-thread peak)",
                        100.0 * per_cpu * threads as f64 / peak
                    );
                }
                println!();
            }
        }
    }
    Ok(())
}

/// Best-of rate over `GEMM_PEAK_MS` (default 300) ms of repeated calls (after one warm-up call), and flops per
/// second of process CPU time (all threads) over the same calls. On one thread the
/// time is the thread's CPU time where available, so time slices lost to other
/// processes on a shared machine do not count.
fn time_gemm(
    tier: &KernelTable,
    pool: &ThreadPool,
    m: usize,
    n: usize,
    k: usize,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0).collect();
    let mut ap = vec![0.0; packed_a_len(m, k)];
    pack_a(m, k, &a, k, &mut ap)?;
    let pa = PackedA::new(&ap, m, k)?;
    let bm = Matrix::new(&b, k, n, n)?;
    let mut c = vec![0.0; m * n];
    let epi = Epilogue::default();
    let mut ws = vec![0.0; sgemm_scratch(m, n, k).total(pool.threads())];
    sgemm(tier, &pa, &bm, &mut c, n, &epi, pool, &mut ws)?;
    let clock = if pool.threads() == 1 { || cpu_time(CLOCK_THREAD_CPUTIME_ID) } else { wall_time };
    let mut best = Duration::MAX;
    let ms = std::env::var("GEMM_PEAK_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let deadline = Instant::now() + Duration::from_millis(ms);
    let (cpu0, mut calls) = (cpu_time(CLOCK_PROCESS_CPUTIME_ID), 0);
    while Instant::now() < deadline {
        let start = clock();
        sgemm(tier, &pa, &bm, &mut c, n, &epi, pool, &mut ws)?;
        best = best.min(clock().saturating_sub(start));
        calls += 1;
    }
    let cpu = cpu_time(CLOCK_PROCESS_CPUTIME_ID).saturating_sub(cpu0);
    let flops = 2.0 * (m * n * k) as f64;
    Ok((flops / best.as_secs_f64() / 1e9, flops * calls as f64 / cpu.as_secs_f64() / 1e9))
}

const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

fn wall_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn cpu_time(clock: i32) -> Duration {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid timespec (64-bit Linux layout) for the call to fill.
    if unsafe { clock_gettime(clock, &mut ts) } != 0 {
        return wall_time();
    }
    Duration::new(ts.sec as u64, ts.nsec as u32)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn cpu_time(_clock: i32) -> Duration {
    wall_time()
}
