//! Declared scratch memory: kernels say up front how many floats they need, and the
//! caller (the runtime's execution context, once, at creation) hands them a slice, so
//! no kernel allocates or keeps hidden per-thread buffers.
//!
//! A scratch slice is laid out as `[shared | slot 0 | slot 1 | … ]`: one `shared` part
//! used by the calling thread (or split by the kernel itself), then one `per_thread`
//! slot per pool thread, handed to the tasks running on that thread by
//! [`crate::ThreadPool::par_scratch`]. Both figures are multiples of [`ALIGN_FLOATS`],
//! so every part starts 64-byte aligned when the slice does, and neither depends on the
//! thread count or the CPU tier: a plan built on one machine records figures that hold
//! on every other.

use crate::error::{KernelError, Result};

/// Floats per 64-byte cache line: every part of a scratch slice is a multiple of this.
pub const ALIGN_FLOATS: usize = 16;

/// The scratch a kernel call needs, in floats: `shared + per_thread × threads`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scratch {
    /// Used once per call (by the calling thread, or split by the kernel).
    pub shared: usize,
    /// Used by each thread of the pool (slot `i` by worker `i`, the caller is 0).
    pub per_thread: usize,
}

/// `n` rounded up to whole cache lines of floats (saturating, so an absurd size can
/// never pass a length check).
pub const fn round_floats(n: usize) -> usize {
    match n.checked_next_multiple_of(ALIGN_FLOATS) {
        Some(r) => r,
        None => usize::MAX,
    }
}

impl Scratch {
    pub const NONE: Scratch = Scratch { shared: 0, per_thread: 0 };

    /// `shared` and `per_thread` rounded up to whole cache lines.
    pub const fn new(shared: usize, per_thread: usize) -> Scratch {
        Scratch { shared: round_floats(shared), per_thread: round_floats(per_thread) }
    }

    /// Floats for a pool of `threads` threads (saturating).
    pub fn total(self, threads: usize) -> usize {
        self.shared.saturating_add(self.per_thread.saturating_mul(threads.max(1)))
    }

    /// Enough for either (the workspace of kernels that run one after another).
    pub fn max(self, other: Scratch) -> Scratch {
        Scratch { shared: self.shared.max(other.shared), per_thread: self.per_thread.max(other.per_thread) }
    }

    /// Both at once (the shared parts side by side; per-thread slots side by side).
    pub fn plus(self, other: Scratch) -> Scratch {
        Scratch {
            shared: self.shared.saturating_add(other.shared),
            per_thread: self.per_thread.saturating_add(other.per_thread),
        }
    }

    /// Splits `scratch` into the shared part and the per-thread slots of `threads`
    /// threads, or fails when it is too short.
    pub fn split<'a>(
        self,
        what: &str,
        scratch: &'a mut [f32],
        threads: usize,
    ) -> Result<(&'a mut [f32], &'a mut [f32])> {
        let need = self.total(threads);
        if scratch.len() < need {
            return Err(KernelError::Scratch { what: what.to_string(), len: scratch.len(), need });
        }
        let (shared, rest) = scratch.split_at_mut(self.shared);
        Ok((shared, &mut rest[..need - self.shared]))
    }
}
