//! ThreadPool: every task runs exactly once, panics propagate, nesting and drop work.

use sinter_kernels::ThreadPool;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Runs `tasks` tasks and checks each ran exactly once.
fn check_once(pool: &ThreadPool, tasks: usize) {
    let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
    pool.parallel_for(tasks, &|t| {
        hits[t].fetch_add(1, Relaxed);
    });
    for (t, h) in hits.iter().enumerate() {
        assert_eq!(h.load(Relaxed), 1, "task {t} of {tasks} on {} threads", pool.threads());
    }
}

#[test]
fn every_task_runs_exactly_once() {
    for threads in [1, 2, 3, 4, 7] {
        let pool = ThreadPool::new(threads);
        assert_eq!(pool.threads(), threads);
        for tasks in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 64, 100, 1000] {
            check_once(&pool, tasks);
        }
    }
}

#[test]
fn zero_threads_means_one() {
    let pool = ThreadPool::new(0);
    assert_eq!(pool.threads(), 1);
    check_once(&pool, 10);
}

#[test]
fn work_is_spread_over_threads() {
    // Slow tasks: with 2 threads, both should take part.
    let pool = ThreadPool::new(2);
    let ids = std::sync::Mutex::new(std::collections::HashSet::new());
    pool.parallel_for(64, &|_| {
        std::thread::sleep(std::time::Duration::from_millis(1));
        ids.lock().unwrap().insert(std::thread::current().id());
    });
    assert_eq!(ids.lock().unwrap().len(), 2);
}

#[test]
fn panics_propagate_and_pool_survives() {
    for threads in [1, 2, 4] {
        let pool = ThreadPool::new(threads);
        for bad in [0, 5, 99] {
            let ran = AtomicUsize::new(0);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.parallel_for(100, &|t| {
                    ran.fetch_add(1, Relaxed);
                    if t == bad {
                        panic!("task {t} failed");
                    }
                })
            }));
            let msg = r.expect_err("the panic must reach the caller");
            let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
            assert_eq!(msg, format!("task {bad} failed"));
            assert!(ran.load(Relaxed) >= 1);
            // The pool still works afterwards, and no stale panic leaks into the next loop.
            check_once(&pool, 50);
        }
    }
}

#[test]
fn every_task_panicking_reports_one_panic() {
    let pool = ThreadPool::new(3);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.parallel_for(30, &|_| panic!("all"))));
    assert!(r.is_err());
    check_once(&pool, 30);
}

#[test]
fn nested_loops_run_inline() {
    let pool = ThreadPool::new(3);
    let hits: Vec<AtomicUsize> = (0..8 * 9).map(|_| AtomicUsize::new(0)).collect();
    pool.parallel_for(8, &|i| {
        pool.parallel_for(9, &|j| {
            hits[i * 9 + j].fetch_add(1, Relaxed);
        });
    });
    assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
}

#[test]
fn concurrent_callers_share_one_pool() {
    // Two threads using the same pool at once: one runs inline, both complete.
    let pool = Arc::new(ThreadPool::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                for n in 0..300 {
                    check_once(&pool, n % 17);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn pool_moves_between_threads_and_drop_joins() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ThreadPool>();
    let pool = ThreadPool::new(4);
    let pool = std::thread::spawn(move || {
        check_once(&pool, 40);
        pool
    })
    .join()
    .unwrap();
    check_once(&pool, 40);
    // Dropping right after creation (workers possibly not started yet) must not hang.
    for _ in 0..50 {
        drop(ThreadPool::new(3));
    }
    // Drop returns only after the workers exited: their thread-local destructors ran.
    struct Bump(Arc<AtomicUsize>);
    impl Drop for Bump {
        fn drop(&mut self) {
            self.0.fetch_add(1, Relaxed);
        }
    }
    thread_local! { static BUMP: std::cell::RefCell<Option<Bump>> = const { std::cell::RefCell::new(None) }; }
    let exited = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::new(3);
    let workers = AtomicUsize::new(0);
    // Slow tasks so both workers take part.
    pool.parallel_for(60, &|_| {
        std::thread::sleep(std::time::Duration::from_millis(1));
        BUMP.with(|b| {
            let mut b = b.borrow_mut();
            if b.is_none() && std::thread::current().name().is_some_and(|n| n.starts_with("sinter-pool")) {
                *b = Some(Bump(Arc::clone(&exited)));
                workers.fetch_add(1, Relaxed);
            }
        });
    });
    let w = workers.load(Relaxed);
    assert!(w >= 1);
    drop(pool);
    assert_eq!(exited.load(Relaxed), w);
}

#[test]
fn stress_many_small_loops() {
    let pool = ThreadPool::new(4);
    let total = AtomicUsize::new(0);
    for i in 0..20_000usize {
        let n = i % 13;
        pool.parallel_for(n, &|t| {
            total.fetch_add(t + 1, Relaxed);
        });
    }
    let want: usize = (0..20_000usize).map(|i| (i % 13) * (i % 13 + 1) / 2).sum();
    assert_eq!(total.load(Relaxed), want);
}

#[test]
fn loops_after_idle_wake_parked_workers() {
    // Longer than the spin window, so workers have parked in between.
    let pool = ThreadPool::new(3);
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        check_once(&pool, 12);
    }
}

fn spin_us(us: f64) {
    let t = std::time::Instant::now();
    while t.elapsed().as_secs_f64() * 1e6 < us {}
}

/// Median µs of `parallel_for(threads, spin 5 µs)` after a serial gap of `gap_us`, and
/// the share of tasks the workers ran: the ideal is 5 µs when every thread takes one
/// task, so the excess is dispatch overhead. (The median, because on a busy machine a
/// thread that loses its core for a time slice makes single samples meaningless.)
fn round_trip(pool: &ThreadPool, gap_us: f64, iters: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(iters);
    let by_workers = AtomicUsize::new(0);
    for _ in 0..iters {
        spin_us(gap_us);
        let t0 = std::time::Instant::now();
        pool.parallel_for(pool.threads(), &|_| {
            spin_us(5.0);
            if std::thread::current().name().is_some_and(|n| n.starts_with("sinter-pool")) {
                by_workers.fetch_add(1, Relaxed);
            }
        });
        times.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    (times[iters / 2], by_workers.load(Relaxed) as f64 / (iters * pool.threads()) as f64)
}

/// Dispatch latency. Run with
/// `cargo test -p sinter-kernels --release --test pool -- --ignored --nocapture`.
#[test]
#[ignore]
fn dispatch_latency() {
    for threads in [1, 2] {
        let pool = ThreadPool::new(threads);
        round_trip(&pool, 0.0, 1000);
        for (label, gap, iters) in
            [("back-to-back", 0.0, 20_000), ("after a 20 µs gap", 20.0, 5000), ("after 1 ms idle", 1000.0, 300)]
        {
            let (us, share) = round_trip(&pool, gap, iters);
            println!(
                "threads {threads}, one 5 µs task per thread, {label}: {us:.2} µs, {:.0}% run by workers",
                share * 100.0
            );
        }
    }
}
