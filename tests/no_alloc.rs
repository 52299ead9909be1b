//! Running a context allocates nothing, from its very first run: no heap allocation, on
//! any thread, during inference. Every kernel's scratch is declared up front and
//! allocated with the context (its workspace), none grows on first use.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use sinter_builder::{build, build_onnx, parse_shapes, BuildOptions};
use sinter_ir::{AttrValue, Attrs, DType, Dim, Graph, Node, Tensor as IrTensor, ValueInfo};
use sinter_runtime::{Engine, Plan, RuntimeOptions, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's `GlobalAlloc::alloc` contract, forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc`/`realloc` above, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as `dealloc`; `new_size` obeys the caller's `realloc` contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919 + seed * 104_729) % 2000) as f32 / 1000.0 - 1.0).collect()
}

fn node(name: &str, op: &str, attrs: &[(&str, AttrValue)], inputs: &[&str], outputs: &[&str]) -> Node {
    let mut a = Attrs::new();
    for (k, v) in attrs {
        a.insert(k, v.clone());
    }
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Node::new(name, op, 17, a, strings(inputs), strings(outputs)).expect("node builds")
}

/// A small network through the kernels with scratch that the bundled model does not
/// reach: a 3×3 convolution run by Winograd, windowed and global pooling, a depthwise
/// convolution, a ConvTranspose, a strided 1×1 convolution (im2col written out), a
/// multi-row MatMul (GEMM into `Yᵀ`) and a Gemm with a scaled bias (GEMV).
fn mixed_graph() -> (Graph, Vec<(&'static str, Tensor)>) {
    let ints = |v: &[i64]| AttrValue::Ints(v.to_vec());
    let c = 16;
    let mut init = std::collections::BTreeMap::new();
    let mut weight = |name: &str, shape: &[usize], seed: usize| {
        let t = IrTensor::from_vec(shape, values(shape.iter().product(), seed)).unwrap();
        init.insert(name.to_string(), Arc::new(t));
    };
    weight("w3", &[c, c, 3, 3], 1);
    weight("wd", &[c, 1, 3, 3], 2);
    weight("wt", &[c, 8, 2, 2], 3);
    weight("w1", &[8, 8, 1, 1], 4);
    weight("wm", &[16, 12], 5);
    weight("wg", &[8 * 16 * 12, 10], 6);
    weight("cg", &[10], 7);
    let nodes = vec![
        node("conv3", "Conv", &[("pads", ints(&[1, 1, 1, 1]))], &["x", "w3"], &["a"]),
        node("relu", "Relu", &[], &["a"], &["b"]),
        node("max", "MaxPool", &[("kernel_shape", ints(&[3, 3])), ("pads", ints(&[1, 1, 1, 1]))], &["b"], &["c"]),
        node(
            "dw",
            "Conv",
            &[("group", AttrValue::Int(c as i64)), ("pads", ints(&[1, 1, 1, 1])), ("strides", ints(&[2, 2]))],
            &["c", "wd"],
            &["d"],
        ),
        node("up", "ConvTranspose", &[("strides", ints(&[2, 2]))], &["d", "wt"], &["e"]),
        node("avg", "AveragePool", &[("kernel_shape", ints(&[3, 3])), ("pads", ints(&[1, 1, 1, 1]))], &["e"], &["f"]),
        node("pw", "Conv", &[("strides", ints(&[2, 2]))], &["f", "w1"], &["g"]),
        node("gap", "GlobalAveragePool", &[], &["g"], &["h"]),
        node("mm", "MatMul", &[], &["g", "wm"], &["i"]),
        node("flat", "Flatten", &[], &["i"], &["j"]),
        node("fc", "Gemm", &[("beta", AttrValue::Float(0.5))], &["j", "wg", "cg"], &["k"]),
    ];
    let shape = [1, c, 32, 32];
    let info = |name: &str, dims: Option<&[usize]>| ValueInfo {
        name: name.into(),
        dtype: DType::F32,
        dims: dims.map(|d| d.iter().map(|&d| Dim::Fixed(d)).collect()),
    };
    let graph = Graph {
        name: "mixed".into(),
        inputs: vec![info("x", Some(&shape))],
        outputs: vec![info("h", None), info("k", None)],
        initializers: init,
        nodes,
        source_nodes: 11,
    };
    let x = Tensor::from_vec(&shape, values(shape.iter().product(), 9)).unwrap();
    (graph, vec![("x", x)])
}

fn bundled() -> (Plan, Vec<(&'static str, Tensor)>) {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let opts = BuildOptions { shapes: parse_shapes("x:1x3x48x192").unwrap(), ..Default::default() };
    let (plan, _) = build_onnx(&model, &opts).expect("bundled model builds");
    let x = Tensor::from_vec(&[1, 3, 48, 192], (0..3 * 48 * 192).map(|i| (i % 17) as f32 / 17.0).collect()).unwrap();
    (plan, vec![("x", x)])
}

/// One test (the allocator counts every thread of the process, so nothing else may
/// run beside it): for each model and thread count, a fresh context's first run, and
/// the runs after it, allocate nothing.
#[test]
fn contexts_run_without_allocating_from_the_first_run() {
    let (graph, mixed_inputs) = mixed_graph();
    let opts = BuildOptions { deterministic_tactics: true, ..Default::default() };
    let (mixed, report) = build(&graph, &opts).expect("mixed graph builds");
    assert!(
        report.tactics.iter().any(|t| t.chosen.starts_with("winograd")),
        "the 3x3 convolution should run by Winograd: {:?}",
        report.tactics
    );
    assert!(report.workspace_bytes > 0 && report.workspace_per_thread_bytes > 0);
    let (bundled, bundled_inputs) = bundled();
    let cases = [("bundled", bundled.to_bytes(), bundled_inputs), ("mixed", mixed.to_bytes(), mixed_inputs)];
    for (name, bytes, inputs) in &cases {
        for threads in [1, 2] {
            let plan = Plan::from_bytes(bytes).unwrap();
            let engine = Engine::with_options(plan, &RuntimeOptions { threads: Some(threads) }).unwrap();
            let mut ctx = engine.context();
            for (input, t) in inputs {
                ctx.set_input(input, t).unwrap();
            }
            ALLOCATIONS.store(0, Ordering::Relaxed);
            COUNTING.store(true, Ordering::Relaxed);
            let first = ctx.run();
            COUNTING.store(false, Ordering::Relaxed);
            first.unwrap();
            let n = ALLOCATIONS.load(Ordering::Relaxed);
            assert_eq!(n, 0, "{name}: the first run on {threads} thread(s) allocated {n} times");
            ALLOCATIONS.store(0, Ordering::Relaxed);
            COUNTING.store(true, Ordering::Relaxed);
            for _ in 0..5 {
                ctx.run().unwrap();
            }
            COUNTING.store(false, Ordering::Relaxed);
            let n = ALLOCATIONS.load(Ordering::Relaxed);
            assert_eq!(n, 0, "{name}: later runs on {threads} thread(s) allocated {n} times");
        }
    }
}
