//! Every kernel table this CPU can run, entry by entry, against the scalar table's
//! entry on one small problem (the per-kernel batteries test each entry thoroughly;
//! this proves each table's entries are wired to working code of the right kind), and
//! the selection's refusal of tiers this CPU lacks.

use sinter_kernels::activation::{apply, softmax_row, Unary};
use sinter_kernels::depthwise::{depthwise_conv2d, depthwise_conv2d_channels, scratch_floats, DwGeom};
use sinter_kernels::gemm::peak::measure_fma_gflops;
use sinter_kernels::gemv::sgemv;
use sinter_kernels::norm::layer_norm_row;
use sinter_kernels::pooling::{global_average_pool, global_max_pool, pool2d, pool_scratch_floats, PoolGeom, PoolKind};
use sinter_kernels::winograd::{pack_weights, packed_weights_len, WinogradConv, WinogradTile};
use sinter_kernels::{
    gemm, isa, pack_a, packed_a_len, sgemm, Activation, Epilogue, Isa, KernelError, KernelTable, Matrix, PackedA,
    ThreadPool,
};

/// Deterministic values in about [-1, 1).
fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 2000) as f32 / 1000.0 - 1.0)
        .collect()
}

fn assert_close(tier: &KernelTable, what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{tier} {what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{tier} {what}[{i}]: {g} vs scalar {w}");
    }
}

/// Runs `f` with `tier` and with the scalar table and compares the results.
fn against_scalar(tier: &KernelTable, what: &str, tol: f32, f: impl Fn(&KernelTable) -> Vec<f32>) {
    let want = f(KernelTable::scalar());
    assert_close(tier, what, &f(tier), &want, tol);
}

#[test]
fn every_entry_of_every_available_table_matches_scalar() {
    let pool = ThreadPool::new(2);
    for tier in KernelTable::available() {
        // GEMM: main kernel, plus the x86 narrow-tail kernel (n = 50 leaves 2 or 10
        // columns past the panels), with a bias and an activation.
        let (m, k, n) = (13, 37, 50);
        let mut packed = vec![0.0; packed_a_len(m, k)];
        pack_a(m, k, &data(m * k, 1), k, &mut packed).unwrap();
        let a = PackedA::new(&packed, m, k).unwrap();
        let bdata = data(k * n, 2);
        let bias = data(m, 3);
        against_scalar(tier, "sgemm", 1e-4, |t| {
            let b = Matrix::new(&bdata, k, n, n).unwrap();
            let epi = Epilogue { bias: Some(&bias), act: Activation::Relu, ..Epilogue::default() };
            let mut c = vec![0.0; m * n];
            let mut ws = vec![0.0; sinter_kernels::sgemm_scratch(m, n, k).total(pool.threads())];
            sgemm(t, &a, &b, &mut c, n, &epi, &pool, &mut ws).unwrap();
            c
        });
        assert!(gemm::nr_for(tier) > 0);
        // GEMV.
        let x = data(k, 4);
        against_scalar(tier, "sgemv", 1e-4, |t| {
            let mut y = vec![0.0; m];
            sgemv(t, &a, &x, Some(&bias), Activation::None, &mut y, &pool).unwrap();
            y
        });
        // Depthwise: the ring geometry (3×3 stride 1) over several channels, and one the
        // window engine runs (dilation 2).
        let ring = DwGeom::new([11, 13], [11, 13], [3, 3], [1, 1], [1, 1], [1, 1]).unwrap();
        let (xc, wc) = (data(3 * 11 * 13, 5), data(3 * 9, 6));
        against_scalar(tier, "depthwise ring", 1e-5, |t| {
            let mut y = vec![0.0; 3 * 11 * 13];
            let mut s = vec![0.0; scratch_floats(&ring)];
            depthwise_conv2d_channels(t, &ring, 3, &xc, &wc, Some(&[0.5, -0.5, 0.0]), Activation::None, &mut y, &mut s)
                .unwrap();
            y
        });
        let win = DwGeom::new([11, 13], [7, 9], [3, 3], [1, 1], [2, 2], [0, 0]).unwrap();
        against_scalar(tier, "depthwise window", 1e-5, |t| {
            let mut y = vec![0.0; 7 * 9];
            let mut s = vec![0.0; scratch_floats(&win)];
            depthwise_conv2d(t, &win, &xc[..11 * 13], &wc[..9], 0.25, Activation::Relu, &mut y, &mut s).unwrap();
            y
        });
        // Pooling: window engine (max and average) and the plane reductions.
        let pg = PoolGeom::new([11, 13], [6, 7], [3, 3], [2, 2], [1, 1], [1, 1, 1, 1]).unwrap();
        for kind in [PoolKind::Max, PoolKind::Avg { count_include_pad: false }] {
            against_scalar(tier, &format!("pool2d {kind:?}"), 1e-6, |t| {
                let mut y = vec![0.0; 6 * 7];
                let mut s = vec![0.0; pool_scratch_floats(&pg)];
                pool2d(t, kind, &pg, &xc[..11 * 13], &mut y, &mut s).unwrap();
                y
            });
        }
        against_scalar(tier, "global pools", 1e-5, |t| {
            vec![global_average_pool(t, &xc).unwrap(), global_max_pool(t, &xc).unwrap()]
        });
        // Winograd: both tiles (input and output transforms, V packing, GEMMs).
        for tile in [WinogradTile::F2, WinogradTile::F4] {
            let (c, h, w, mo) = (5, 10, 11, 7);
            let conv = WinogradConv::new(tile, c, h, w, mo, [1, 1, 1, 1]).unwrap();
            let mut u = vec![0.0; packed_weights_len(tile, mo, c)];
            pack_weights(tile, mo, c, &data(mo * c * 9, 7), &mut u).unwrap();
            let xw = data(c * h * w, 8);
            against_scalar(tier, &format!("winograd {tile:?}"), 1e-3, |t| {
                let (oh, ow) = conv.out_size();
                let mut y = vec![0.0; mo * oh * ow];
                let mut ws = vec![0.0; conv.scratch().total(pool.threads())];
                conv.run(t, &u, &xw, &mut y, &Epilogue::default(), &pool, &mut ws).unwrap();
                y
            });
        }
        // Activations, softmax, layer norm.
        for f in [Unary::Sigmoid, Unary::Silu, Unary::Tanh, Unary::GeluErf, Unary::GeluTanh] {
            against_scalar(tier, &format!("{f:?}"), 1e-5, |t| {
                let mut v = data(77, 9);
                apply(t, f, &mut v).unwrap();
                v
            });
        }
        against_scalar(tier, "softmax", 1e-5, |t| {
            let mut y = vec![0.0; 77];
            softmax_row(t, &data(77, 10), &mut y).unwrap();
            y
        });
        against_scalar(tier, "layer norm", 1e-5, |t| {
            let mut y = vec![0.0; 77];
            let (mean, inv) = layer_norm_row(t, &data(77, 11), &data(77, 12), None, 1e-5, &mut y).unwrap();
            y.extend([mean, inv]);
            y
        });
        assert!(measure_fma_gflops(tier).unwrap() > 0.0, "{tier}: FMA peak");
    }
}

#[test]
fn tables_exist_only_for_supported_tiers() {
    for i in isa::ALL {
        match KernelTable::for_isa(i) {
            Ok(t) => {
                assert!(i.supported());
                assert_eq!(t.isa(), i);
            }
            Err(e) => {
                assert!(!i.supported());
                assert!(matches!(e, KernelError::UnsupportedTier { .. }), "{e}");
            }
        }
    }
    assert_eq!(KernelTable::scalar().isa(), Isa::Scalar);
    assert_eq!(KernelTable::available().len(), Isa::available().len());
}
