//! sgemm throughput per available tier. Criterion's throughput is set to the GEMM's
//! flop count (`2·m·n·k`), so its "elem/s" reads as FLOP/s. The measured FMA peak of
//! each tier is printed first so the numbers can be read as a fraction of peak.
//!
//! `cargo bench -p sinter-kernels --bench gemm`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sinter_kernels::gemm::peak::measure_fma_gflops;
use std::time::Duration;

use sinter_kernels::{
    pack_a, packed_a_len, sgemm, sgemm_scratch, Activation, Epilogue, KernelTable, Matrix, PackedA, ThreadPool,
};

/// `(m, n, k)`: square sizes, and ResNet-50-like convolutions as GEMMs
/// (m = out channels, n = output pixels, k = in channels × kernel area).
/// n = 49 and 196 end in a narrow last panel (the tail kernel on x86).
const SHAPES: [(usize, usize, usize); 6] = [
    (1024, 1024, 1024),
    (256, 256, 256),
    (64, 3136, 576),  // conv2_x 3×3, 56×56
    (512, 784, 1152), // conv3_x 3×3 (128·9 = 1152), 28×28
    (256, 196, 2304), // conv4_x 3×3 (256·9 = 2304), 14×14
    (2048, 49, 512),  // conv5_x 1×1 expansion, 7×7
];

fn bench(c: &mut Criterion) {
    for tier in KernelTable::available() {
        match measure_fma_gflops(tier) {
            Ok(peak) => println!("{tier}: measured FMA peak {peak:.1} GFLOP/s on one thread"),
            Err(e) => println!("{tier}: {e}"),
        }
    }
    for threads in [1, 2] {
        let pool = ThreadPool::new(threads);
        let mut group = c.benchmark_group(format!("sgemm_{threads}t"));
        // Few, short samples: 36 benchmarks should finish in under two minutes.
        group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        for &(m, n, k) in &SHAPES {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0).collect();
            let bias: Vec<f32> = (0..m).map(|i| i as f32 / m as f32).collect();
            let mut ap = vec![0.0; packed_a_len(m, k)];
            pack_a(m, k, &a, k, &mut ap).expect("pack_a");
            let pa = PackedA::new(&ap, m, k).expect("packed A");
            let bm = Matrix::new(&b, k, n, n).expect("B");
            let epi = Epilogue { bias: Some(&bias), act: Activation::Relu, ..Epilogue::default() };
            let mut out = vec![0.0; m * n];
            let mut ws = vec![0.0; sgemm_scratch(m, n, k).total(pool.threads())];
            group.throughput(Throughput::Elements((2 * m * n * k) as u64));
            for tier in KernelTable::available() {
                let id = BenchmarkId::new(tier.name(), format!("{m}x{n}x{k}"));
                group.bench_function(id, |bch| {
                    bch.iter(|| sgemm(tier, &pa, &bm, &mut out, n, &epi, &pool, &mut ws).expect("sgemm"))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
