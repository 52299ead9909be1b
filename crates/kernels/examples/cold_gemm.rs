//! SGEMM with cold weights, as inside a network: every call reads a different copy of
//! A, with 64 MiB of copies so none is still in L3. This is where A streaming from
//! memory shows (small feature maps reuse each weight panel for few tiles); the warm
//! `gemm_peak` example hides it.
//!
//! `[SINTER_CPU=tier] cargo run --release -p sinter-kernels --example cold_gemm -- [THREADS [m n k ...]]`
//! (default: 2 threads, ResNet-50's 1×1 and 3×3 shapes on 14×14 and 7×7 maps).

use sinter_kernels::{pack_a, packed_a_len, sgemm, sgemm_scratch, Epilogue, KernelTable, Matrix, PackedA, ThreadPool};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let threads = args.first().copied().unwrap_or(2);
    let shapes: Vec<(usize, usize, usize)> = if args.len() >= 4 {
        args[1..].chunks_exact(3).map(|s| (s[0], s[1], s[2])).collect()
    } else {
        vec![(512, 49, 4608), (2048, 49, 512), (512, 49, 2048), (256, 196, 1024), (1024, 196, 256), (64, 3136, 256)]
    };
    let pool = ThreadPool::new(threads);
    let tier = KernelTable::selected()?;
    for (m, n, k) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
        let mut packed = vec![0.0; packed_a_len(m, k)];
        pack_a(m, k, &a, k, &mut packed)?;
        let copies = (64usize << 20).div_ceil(packed.len().max(1) * 4).max(2);
        let copies: Vec<Vec<f32>> = (0..copies).map(|_| packed.clone()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0).collect();
        let b = Matrix::new(&b, k, n, n)?;
        let mut c = vec![0.0; m * n];
        let mut ws = vec![0.0; sgemm_scratch(m, n, k).total(pool.threads())];
        let mut times = Vec::new();
        for i in 0..(copies.len() * 4).max(40) {
            let a = PackedA::new(&copies[i % copies.len()], m, k)?;
            let start = Instant::now();
            sgemm(tier, &a, &b, &mut c, n, &Epilogue::default(), &pool, &mut ws)?;
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{tier} {threads}T {m:>5}x{n:<5}x{k:<5} median {:.3} ms  {:6.1} GFLOP/s  A streamed at {:.1} GB/s",
            median * 1e3,
            2.0 * (m * n * k) as f64 / median / 1e9,
            (packed.len() * 4) as f64 / median / 1e9
        );
    }
    Ok(())
}
