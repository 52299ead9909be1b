//! A fixed thread pool owned by one execution context.
//!
//! A CNN inference runs ~100 parallel loops back to back, some of only ~10 µs, so the
//! pool is built for dispatch latency: `threads - 1` workers are started once and never
//! exit before the pool is dropped; a loop publishes a borrowed closure (no boxing, no
//! allocation, no thread creation per call), the caller works on it too, and idle
//! workers spin briefly before they park, so a loop that follows shortly after another
//! finds them awake.
//!
//! # Protocol
//!
//! One atomic word, `state`, holds an epoch (bumped per loop), an `OPEN` bit and the
//! number of workers currently registered on the loop. A worker that sees a new epoch
//! registers with a compare-and-swap that succeeds only while the loop is still open,
//! then takes task indices from an atomic counter until they run out, and deregisters.
//! When the caller has run out of tasks it clears `OPEN` (late workers then skip the
//! loop instead of touching the closure) and waits until no worker is registered. The
//! closure is therefore only ever dereferenced between a successful registration and the
//! matching deregistration, both of which happen before the caller returns: that is what
//! makes erasing its lifetime sound. A worker that is slow to wake never delays the
//! caller, it just misses the loop.

use crate::error::{KernelError, Result};
use crossbeam::utils::Backoff;
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker keeps polling for the next loop before it parks. Waking a
/// parked thread costs tens of microseconds, more than many whole loops; polling this
/// long covers the serial gaps between the layers of one inference, while a pool left
/// idle stops burning its core almost at once. Polling spins without yielding: on a
/// busy machine a yield hands the core to another process for a whole time slice.
const SPIN: Duration = Duration::from_micros(200);

/// `state` layout: registered workers in the low bits, then `OPEN`, then the epoch.
const ACTIVE_BITS: u32 = 20;
const ACTIVE_MASK: u64 = (1 << ACTIVE_BITS) - 1;
const OPEN: u64 = 1 << ACTIVE_BITS;
const EPOCH_ONE: u64 = OPEN << 1;
/// Workers are capped so the active count never reaches the `OPEN` bit.
const MAX_THREADS: usize = 1 << 16;

thread_local! {
    /// Set while this thread runs pool tasks (always on workers): a nested loop then
    /// runs inline instead of waiting on workers that may be busy with the outer loop.
    static IN_POOL: Cell<bool> = const { Cell::new(false) };
}

/// The loop being run: the caller's closure `f(task, thread)` with its lifetime erased,
/// and its size.
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize, usize) + Sync + 'static),
    tasks: usize,
}

/// What the caller and the workers share.
struct Shared {
    state: AtomicU64,
    /// Written by the caller only while no worker is registered and `OPEN` is clear
    /// (nobody can read it then), read by workers only while registered.
    job: UnsafeCell<Job>,
    /// The next task index to hand out.
    next: AtomicUsize,
    /// The first panic payload of the current loop, re-raised on the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// The caller parks while waiting for the last worker; it sets `caller_parked` and
    /// leaves its handle in `caller` so that worker can wake it.
    caller_parked: AtomicBool,
    caller: Mutex<Option<Thread>>,
    /// One flag per worker: parked (or about to park), so needs an unpark.
    sleeping: Box<[AtomicBool]>,
    shutdown: AtomicBool,
    /// Workers that have started running (see `ThreadPool::new`).
    started: AtomicUsize,
}

// SAFETY: `job` is the only field that is not `Sync` by itself (an `UnsafeCell` holding
// a raw pointer). The protocol in the module docs gives it a single writer at a time
// with no concurrent readers, and the pointee is `Sync`, so sharing it across threads
// is sound. The pointer is to a `Sync` closure, which may be called from any thread.
unsafe impl Sync for Shared {}
// SAFETY: as above; nothing in `Shared` is tied to the thread that created it.
unsafe impl Send for Shared {}

/// `threads` threads work on each parallel loop: the caller plus `threads - 1` workers
/// started once in [`ThreadPool::new`]. Dropping the pool stops and joins the workers.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Set while a loop runs, so a second thread calling `parallel_for` concurrently on
    /// the same pool runs its loop inline instead of clobbering the first one's job.
    busy: AtomicBool,
}

impl ThreadPool {
    /// A pool of `threads` threads (at least 1, at most 65536). If the OS refuses to
    /// start a worker the pool keeps the ones it got: fewer threads, still correct.
    pub fn new(threads: usize) -> ThreadPool {
        let wanted = threads.clamp(1, MAX_THREADS) - 1;
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: UnsafeCell::new(Job { f: &|_, _| {}, tasks: 0 }),
            next: AtomicUsize::new(0),
            panic: Mutex::new(None),
            caller_parked: AtomicBool::new(false),
            caller: Mutex::new(None),
            sleeping: (0..wanted).map(|_| AtomicBool::new(false)).collect(),
            shutdown: AtomicBool::new(false),
            started: AtomicUsize::new(0),
        });
        let mut workers = Vec::with_capacity(wanted);
        for index in 0..wanted {
            let s = Arc::clone(&shared);
            let spawned = thread::Builder::new().name(format!("sinter-pool-{index}")).spawn(move || worker(&s, index));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(_) => break,
            }
        }
        // Wait until every worker runs: a thread's start-up (stack guard, thread-local
        // set-up, which allocate) then happens here, never during a later loop.
        while shared.started.load(Acquire) < workers.len() {
            thread::yield_now();
        }
        ThreadPool { shared, workers, busy: AtomicBool::new(false) }
    }

    /// Threads working on each loop, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(task)` exactly once for every task in `0..tasks`, spread over the pool's
    /// threads (the caller included), and returns when all have finished. Allocates
    /// nothing and starts no thread. Tasks are handed out one at a time from a shared counter, so uneven
    /// tasks balance themselves. A panic in a task is re-raised here once every thread
    /// has stopped using `f` (the remaining tasks may or may not run). Called from
    /// inside a task (of any pool), or while another thread is using this pool, the
    /// loop runs inline on the calling thread.
    pub fn parallel_for(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        self.parallel_for_threads(tasks, &|t, _| f(t));
    }

    /// [`ThreadPool::parallel_for`] that also tells each task which thread runs it:
    /// `f(task, thread)` with `thread` 0 for the caller and `1..threads()` for the
    /// workers. Tasks that run at the same time always have different `thread`s; a loop
    /// that runs inline (nested, or on a busy or one-thread pool) runs every task as
    /// thread 0, one after another.
    pub fn parallel_for_threads(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        // A huge count would let the task counter wrap around (and run tasks twice).
        let inline = self.workers.is_empty() || tasks <= 1 || tasks > usize::MAX / 2 || IN_POOL.with(Cell::get);
        if inline || self.busy.compare_exchange(false, true, Acquire, Relaxed).is_err() {
            for t in 0..tasks {
                f(t, 0);
            }
            return;
        }
        let _busy = ClearOnDrop(&self.busy);
        let s = &*self.shared;
        // SAFETY: erases the lifetime of `f` so workers can hold it in `Job`. Workers
        // dereference it only while registered on this loop, and this function returns
        // (even when a task panics) only after closing the loop and seeing no worker
        // registered, so no use outlives this call.
        let erased: *const (dyn Fn(usize, usize) + Sync + 'static) =
            unsafe { std::mem::transmute::<*const (dyn Fn(usize, usize) + Sync + '_), _>(f) };
        // SAFETY: `busy` makes this thread the only publisher, and the previous loop
        // ended with `OPEN` clear and no worker registered, so nobody reads `job` now.
        unsafe { *s.job.get() = Job { f: erased, tasks } };
        s.next.store(0, Relaxed);
        s.caller_parked.store(false, Relaxed);
        let epoch = s.state.load(Relaxed) & !(OPEN | ACTIVE_MASK);
        // SeqCst pairs with the workers' `sleeping` store and state reload before they
        // park: either they see the new epoch, or we see them asleep and unpark them.
        s.state.store(epoch.wrapping_add(EPOCH_ONE) | OPEN, SeqCst);
        for (flag, w) in s.sleeping.iter().zip(&self.workers) {
            if flag.load(SeqCst) {
                w.thread().unpark();
            }
        }
        IN_POOL.with(|c| c.set(true));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| run_tasks(s, f, tasks, 0)));
        IN_POOL.with(|c| c.set(false));
        if outcome.is_err() {
            s.next.store(tasks, Relaxed); // the others stop taking tasks
        }
        // No worker may register from here on; wait for the registered ones.
        if s.state.fetch_and(!OPEN, SeqCst) & ACTIVE_MASK != 0 {
            wait_for_workers(s);
        }
        let payload = match outcome {
            Err(p) => Some(p),
            Ok(()) => s.panic.lock().unwrap_or_else(|e| e.into_inner()).take(),
        };
        if let Some(p) = payload {
            *s.panic.lock().unwrap_or_else(|e| e.into_inner()) = None;
            drop(_busy);
            panic::resume_unwind(p);
        }
    }
}

impl ThreadPool {
    /// Runs `f(task, slot)` for every task in `0..tasks` like [`ThreadPool::parallel_for`],
    /// where `slot` is the `per_thread` floats of `scratch` that belong to the thread
    /// running the task (slot `i` of thread `i`, see [`ThreadPool::parallel_for_threads`]),
    /// so tasks can use scratch without sharing it or allocating. `scratch` must hold
    /// `per_thread × threads()` floats (any more are left alone), else nothing runs.
    pub fn par_scratch(
        &self,
        tasks: usize,
        scratch: &mut [f32],
        per_thread: usize,
        f: &(dyn Fn(usize, &mut [f32]) + Sync),
    ) -> Result<()> {
        let need = per_thread.saturating_mul(self.threads());
        if scratch.len() < need {
            return Err(KernelError::Scratch { what: "parallel loop".into(), len: scratch.len(), need });
        }
        let slots = Disjoint::new(&mut scratch[..need]);
        self.parallel_for_threads(tasks, &|t, thread| {
            // SAFETY: thread `thread` (< threads()) alone uses slot `thread`: tasks that
            // run at the same time run on different threads (`parallel_for_threads`),
            // and a thread runs its tasks one after another. The slot lies inside
            // `scratch[..need]`, which stays borrowed until the loop returns.
            f(t, unsafe { slots.get(thread * per_thread, per_thread) })
        });
        Ok(())
    }

    /// Runs `fill(first, chunk)` for consecutive groups of `per_task` items of `out`
    /// (`item_len` elements each; a last partial item is not handed out): `chunk` is
    /// items `first..first + per_task` (fewer in the last group), which only that task
    /// sees. A zero `item_len` hands out nothing.
    pub fn par_chunks<T: Send>(
        &self,
        out: &mut [T],
        item_len: usize,
        per_task: usize,
        fill: &(dyn Fn(usize, &mut [T]) + Sync),
    ) {
        let items = out.len().checked_div(item_len).unwrap_or(0);
        let per_task = per_task.max(1);
        let out = Disjoint::new(out);
        self.parallel_for(items.div_ceil(per_task), &|t| {
            let (first, end) = (t * per_task, ((t + 1) * per_task).min(items));
            // SAFETY: items `first..end` (inside `out`, as `end <= items = len / item_len`)
            // belong to task `t` alone, and `out` stays borrowed until the loop returns.
            fill(first, unsafe { out.get(first * item_len, (end - first) * item_len) });
        });
    }

    /// [`ThreadPool::par_chunks`] whose tasks also get their thread's scratch slot, as
    /// [`ThreadPool::par_scratch`] hands them out: `fill(first, chunk, slot)`.
    #[allow(clippy::too_many_arguments)]
    pub fn par_chunks_scratch<T: Send>(
        &self,
        out: &mut [T],
        item_len: usize,
        per_task: usize,
        scratch: &mut [f32],
        per_thread: usize,
        fill: &ChunkScratchFn<'_, T>,
    ) -> Result<()> {
        let items = out.len().checked_div(item_len).unwrap_or(0);
        let per_task = per_task.max(1);
        let out = Disjoint::new(out);
        self.par_scratch(items.div_ceil(per_task), scratch, per_thread, &|t, slot| {
            let (first, end) = (t * per_task, ((t + 1) * per_task).min(items));
            // SAFETY: as in `par_chunks`: items `first..end` belong to task `t` alone.
            fill(first, unsafe { out.get(first * item_len, (end - first) * item_len) }, slot);
        })
    }

    /// [`ThreadPool::par_chunks`] over three outputs split in step: each task gets the
    /// same items `first..first + per_task` of each (`item_lens[i]` elements per item of
    /// output `i`; an output with item length 0 takes part with empty chunks). The item
    /// count is the smallest over the outputs with nonzero item lengths.
    pub fn par_chunks3<T: Send>(
        &self,
        outs: [&mut [T]; 3],
        item_lens: [usize; 3],
        per_task: usize,
        fill: &(dyn Fn(usize, [&mut [T]; 3]) + Sync),
    ) {
        let items = outs.iter().zip(item_lens).filter_map(|(o, l)| o.len().checked_div(l)).min().unwrap_or(0);
        let per_task = per_task.max(1);
        let outs = outs.map(Disjoint::new);
        self.parallel_for(items.div_ceil(per_task), &|t| {
            let (first, end) = (t * per_task, ((t + 1) * per_task).min(items));
            // SAFETY: items `first..end` of output `i` (`item_lens[i]` elements each,
            // inside it since `end <= items <= len / item_len`) belong to task `t` alone,
            // and the outputs stay borrowed until the loop returns.
            let chunk = |i: usize| unsafe { outs[i].get(first * item_lens[i], (end - first) * item_lens[i]) };
            fill(first, [chunk(0), chunk(1), chunk(2)]);
        });
    }
}

/// A task of [`ThreadPool::par_chunks_scratch`]: `(first item, chunk, scratch slot)`.
pub type ChunkScratchFn<'a, T> = dyn Fn(usize, &mut [T], &mut [f32]) + Sync + 'a;

/// A mutable slice that the tasks of one parallel loop cut into pieces they use alone:
/// the one place where the pool's helpers turn a shared pointer back into `&mut`.
struct Disjoint<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: a `Disjoint` is only read through `get`, whose callers guarantee that the
// pieces taken on different threads never overlap; sending those pieces to other
// threads is sound because `T: Send` (as for `&mut [T]`).
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    fn new(s: &'a mut [T]) -> Disjoint<'a, T> {
        Disjoint { ptr: s.as_mut_ptr(), len: s.len(), _borrow: std::marker::PhantomData }
    }

    /// Elements `start..start + len`.
    ///
    /// # Safety
    /// The range must lie inside the slice, and no other piece in use at the same time
    /// (on any thread) may overlap it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, start: usize, len: usize) -> &'a mut [T] {
        debug_assert!(start.checked_add(len).is_some_and(|end| end <= self.len));
        // SAFETY: in bounds and unaliased, by the caller's contract; the borrow of the
        // whole slice lasts for 'a.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Clears the flag when dropped (also on unwind).
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Release);
    }
}

/// Takes task indices until they run out, as pool thread `thread`.
fn run_tasks(s: &Shared, f: &(dyn Fn(usize, usize) + Sync), tasks: usize, thread: usize) {
    loop {
        let t = s.next.fetch_add(1, Relaxed);
        if t >= tasks {
            return;
        }
        f(t, thread);
    }
}

/// Spins, then parks, until no worker is registered on the (closed) loop.
fn wait_for_workers(s: &Shared) {
    let backoff = Backoff::new();
    let start = Instant::now();
    loop {
        if s.state.load(Acquire) & ACTIVE_MASK == 0 {
            return;
        }
        if start.elapsed() < SPIN {
            backoff.spin();
            continue;
        }
        *s.caller.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread::current());
        // SeqCst pairs with the last worker's deregistration and its load of
        // `caller_parked`: either it sees us parked and unparks us, or we see it gone.
        s.caller_parked.store(true, SeqCst);
        while s.state.load(SeqCst) & ACTIVE_MASK != 0 {
            thread::park();
        }
        s.caller_parked.store(false, Relaxed);
        return;
    }
}

fn worker(s: &Shared, index: usize) {
    IN_POOL.with(|c| c.set(true));
    s.started.fetch_add(1, Release);
    let mut seen = 0u64;
    loop {
        // Wait for a new epoch (or shutdown): spin, then park.
        let backoff = Backoff::new();
        let start = Instant::now();
        let state = loop {
            let st = s.state.load(Acquire);
            if st >> (ACTIVE_BITS + 1) != seen {
                break st;
            }
            if s.shutdown.load(Acquire) {
                return;
            }
            if start.elapsed() < SPIN {
                backoff.spin();
                continue;
            }
            let flag = &s.sleeping[index];
            flag.store(true, SeqCst);
            if s.state.load(SeqCst) >> (ACTIVE_BITS + 1) == seen && !s.shutdown.load(SeqCst) {
                thread::park();
            }
            flag.store(false, Relaxed);
        };
        seen = state >> (ACTIVE_BITS + 1);
        // Register, only while this epoch's loop is still open.
        let mut cur = state;
        let registered = loop {
            if cur >> (ACTIVE_BITS + 1) != seen || cur & OPEN == 0 {
                break false;
            }
            match s.state.compare_exchange_weak(cur, cur + 1, Acquire, Relaxed) {
                Ok(_) => break true,
                Err(now) => cur = now,
            }
        };
        if !registered {
            continue;
        }
        // SAFETY: registered on an open loop, so `job` holds the caller's current
        // closure, which stays alive until we deregister below (see module docs).
        let job = unsafe { *s.job.get() };
        // SAFETY: as above: `job.f` points to that live closure.
        let f = unsafe { &*job.f };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| run_tasks(s, f, job.tasks, index + 1)));
        if let Err(p) = outcome {
            s.next.store(job.tasks, Relaxed);
            let mut slot = s.panic.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(p);
            }
        }
        // Deregister; from here on `f` must not be touched.
        let prev = s.state.fetch_sub(1, SeqCst);
        if prev & ACTIVE_MASK == 1 && prev & OPEN == 0 && s.caller_parked.load(SeqCst) {
            if let Some(t) = s.caller.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                t.unpark();
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        for w in &self.workers {
            w.thread().unpark();
        }
        for w in self.workers.drain(..) {
            // A worker never panics outside `catch_unwind`; nothing to report if it did.
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool").field("threads", &self.threads()).finish()
    }
}
