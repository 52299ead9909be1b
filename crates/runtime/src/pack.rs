//! Build-time weight packing: a kernel that wants its weights in its own layout gets
//! them packed by the builder (through its factory), so the plan stores them packed and
//! loading does no work. Where several tactics fit, they are timed here.

use crate::exec::conv::{Conv2d, Weights};
use crate::exec::refusal::{Accept, Why};
use crate::exec::request::Request;
use crate::exec::{Exec, RunCtx};
use sinter_ir::{DType, Tensor};
use sinter_ir::{View, ViewMut};
use sinter_kernels::winograd::WinogradTile;
use sinter_kernels::{Isa, KernelTable, ThreadPool};
use sinter_plan::PackLayout;
use std::time::Instant;

/// A weight input packed for its kernel.
#[derive(Debug)]
pub struct PackedWeights {
    /// Which input of the op it replaces.
    pub input: usize,
    pub layout: PackLayout,
    pub data: Vec<f32>,
    /// Each candidate tactic's time when they were timed (milliseconds, one thread),
    /// for the build report; empty when the choice was made by heuristic.
    pub timings: Vec<(PackLayout, f64)>,
}

/// How the builder chooses between candidate kernels (tactics).
#[derive(Clone, Copy, Debug)]
pub enum TacticChoice {
    /// Time every candidate on this machine with this tier (the plan targets this CPU).
    Time(Isa),
    /// A deterministic rule (the plan targets another machine).
    Heuristic,
}

impl PackedWeights {
    /// Weights in GEMM panels (input 1), chosen without timing.
    pub(crate) fn gemm(data: Vec<f32>) -> PackedWeights {
        PackedWeights { input: 1, layout: gemm_layout(), data, timings: Vec::new() }
    }
}

fn gemm_layout() -> PackLayout {
    PackLayout::GemmPanels { mr: sinter_kernels::MR as u32 }
}

/// The `cpu.conv2d` factory's packing: the weights of a non-depthwise convolution
/// packed for the fastest tactic (packed GEMM, Winograd F(2,3) or F(4,3)), timed on
/// this machine or chosen by rule.
pub(crate) fn pack_conv(r: &Request, weight: &Tensor, choice: TacticChoice) -> Accept<Option<PackedWeights>> {
    let conv = Conv2d::new(r.op.as_ref(), r.op_type, r.inputs, r.outputs, Weights::Runtime)?;
    if conv.depthwise() {
        return Ok(None);
    }
    let w = weight.as_slice::<f32>().why("weights")?;
    let gemm = gemm_layout();
    // Candidates: packed GEMM always; Winograd where the shape allows it.
    let (c, m, oh, ow) = conv.dims();
    let mut candidates = vec![(gemm, conv.plain())];
    for tile in [WinogradTile::F2, WinogradTile::F4] {
        if let Some(k) = conv.plain().with_winograd(tile) {
            let layout = PackLayout::Winograd { tile: tile.out_tile() as u32, mr: sinter_kernels::MR as u32 };
            candidates.push((layout, k));
        }
    }
    let mut timings = Vec::new();
    let chosen = if candidates.len() == 1 {
        gemm
    } else {
        match choice {
            TacticChoice::Heuristic => match sinter_kernels::winograd::suggest_tile(c, m, oh, ow) {
                Some(t) => PackLayout::Winograd { tile: t.out_tile() as u32, mr: sinter_kernels::MR as u32 },
                None => gemm,
            },
            TacticChoice::Time(isa) => {
                let mut packed = Vec::with_capacity(candidates.len());
                for (_, k) in &candidates {
                    let mut p = vec![0.0; k.packed_len()];
                    k.pack(w, &mut p).why("packing the weights")?;
                    packed.push(p);
                }
                let kernels: Vec<(&Conv2d, &[f32])> =
                    candidates.iter().zip(&packed).map(|((_, k), p)| (k, p.as_slice())).collect();
                let best = time_convs(&kernels, isa).why("timing the tactics")?;
                timings = candidates.iter().map(|(l, _)| *l).zip(best).collect();
                timings.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map_or(gemm, |t| t.0)
            }
        }
    };
    let k = match chosen {
        PackLayout::Winograd { tile, .. } => {
            let tile = if tile == 2 { WinogradTile::F2 } else { WinogradTile::F4 };
            conv.with_winograd(tile).why("the chosen tactic no longer applies")?
        }
        PackLayout::GemmPanels { .. } => conv,
    };
    let mut data = vec![0.0; k.packed_len()];
    k.pack(w, &mut data).why("packing the weights")?;
    Ok(Some(PackedWeights { input: 1, layout: chosen, data, timings }))
}

/// Milliseconds one run of each bare convolution `(kernel, packed weights)` takes on one
/// thread, on the same uniform random input: each candidate's best run, with the
/// candidates interleaved round by round so a burst of noise from elsewhere on the
/// machine hits all of them rather than deciding the choice.
fn time_convs(kernels: &[(&Conv2d, &[f32])], isa: Isa) -> sinter_ir::Result<Vec<f64>> {
    let Some((first, _)) = kernels.first() else { return Ok(Vec::new()) };
    let (xs, ys) = first.io_shapes();
    let mut seed = 0x9e37_79b9_u32;
    let x: Vec<f32> = (0..xs.iter().product::<usize>())
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect();
    let mut y = vec![0.0f32; ys.iter().product()];
    let pool = ThreadPool::new(1);
    let tier = KernelTable::for_isa(isa).map_err(|e| sinter_ir::IrError::Data(format!("timing tactics: {e}")))?;
    let floats = kernels.iter().map(|(k, _)| k.workspace().total(1)).max().unwrap_or(0);
    let mut ws = vec![0.0f32; floats];
    let mut cx = RunCtx { tier, pool: &pool, ws: &mut ws };
    let mut best = vec![f64::INFINITY; kernels.len()];
    let mut total = 0.0;
    // Round 0 warms caches and per-thread scratch; then up to 8 timed rounds, fewer
    // for big layers (about a third of a second in all).
    for round in 0..9 {
        for ((k, packed), best) in kernels.iter().zip(best.iter_mut()) {
            let packed_shape = [packed.len()];
            let inputs = [
                Some(View { dtype: DType::F32, shape: &xs, data: bytemuck::cast_slice(&x) }),
                Some(View { dtype: DType::F32, shape: &packed_shape, data: bytemuck::cast_slice(packed) }),
            ];
            let mut outputs = [ViewMut { dtype: DType::F32, shape: &ys, data: bytemuck::cast_slice_mut(&mut y) }];
            let start = Instant::now();
            k.run(&inputs, &mut outputs, &mut cx)?;
            let t = start.elapsed().as_secs_f64() * 1e3;
            if round > 0 {
                *best = best.min(t);
            }
            total += t;
        }
        if total > 300.0 && round >= 3 {
            break;
        }
    }
    Ok(best)
}
