//! Running a context allocates nothing once it is warm: no heap allocation, on any
//! thread, during steady-state inference of the bundled real model.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use sinter_builder::{build_onnx, parse_shapes, BuildOptions};
use sinter_runtime::{Engine, RuntimeOptions, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

#[test]
fn warm_context_runs_without_allocating() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let opts = BuildOptions { shapes: parse_shapes("x:1x3x48x192").unwrap(), ..Default::default() };
    let (plan, _) = build_onnx(&model, &opts).expect("bundled model builds");
    for threads in [1, 2] {
        let plan = sinter_runtime::Plan::from_bytes(&plan.to_bytes()).unwrap();
        let engine = Engine::with_options(plan, &RuntimeOptions { threads: Some(threads) }).unwrap();
        let mut ctx = engine.context();
        let x =
            Tensor::from_vec(&[1, 3, 48, 192], (0..3 * 48 * 192).map(|i| (i % 17) as f32 / 17.0).collect()).unwrap();
        ctx.set_input("x", &x).unwrap();
        // Warm-up: each thread's scratch grows to the largest layer it has run. Which
        // worker runs which task varies, so warm up until three runs in a row allocate
        // nothing (it must converge), then require five more without any allocation.
        let mut quiet = 0;
        for _ in 0..50 {
            ALLOCATIONS.store(0, Ordering::Relaxed);
            COUNTING.store(true, Ordering::Relaxed);
            ctx.run().unwrap();
            COUNTING.store(false, Ordering::Relaxed);
            quiet = if ALLOCATIONS.load(Ordering::Relaxed) == 0 { quiet + 1 } else { 0 };
            if quiet == 3 {
                break;
            }
        }
        assert_eq!(quiet, 3, "runs on {threads} thread(s) keep allocating after 50 warm-up runs");
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        for _ in 0..5 {
            ctx.run().unwrap();
        }
        COUNTING.store(false, Ordering::Relaxed);
        assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0, "allocations during warm runs on {threads} thread(s)");
    }
}
