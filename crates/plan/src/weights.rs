//! The weight blob: building it, and 64-byte aligned storage for in-memory plans.

use crate::format::ALIGN;
use crate::schema::Location;

/// Appends constant tensors to a weight blob, each at a 64-byte aligned offset so the
/// runtime can view it as any element type (and use aligned SIMD loads) in place.
#[derive(Clone, Debug, Default)]
pub struct WeightsBuilder {
    bytes: Vec<u8>,
}

impl WeightsBuilder {
    pub fn new() -> WeightsBuilder {
        WeightsBuilder::default()
    }

    /// Appends `data` at the next aligned offset (zero padding before it) and returns
    /// where it lives, to store in the tensor's [`crate::TensorDesc`].
    pub fn push(&mut self, data: &[u8]) -> Location {
        let offset = self.bytes.len().next_multiple_of(ALIGN as usize);
        self.bytes.resize(offset, 0);
        self.bytes.extend_from_slice(data);
        Location::Weights { offset: offset as u64, bytes: data.len() as u64 }
    }

    /// Appends a tensor's little-endian element bytes.
    pub fn push_tensor(&mut self, t: &sinter_ir::Tensor) -> Location {
        self.push(t.bytes())
    }

    /// Current length of the blob in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The blob, to pass to [`crate::Plan::new`].
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

/// Heap bytes whose start is 64-byte aligned (a `Vec<u8>` only guarantees 1).
#[derive(Clone, Default)]
pub(crate) struct AlignedBytes {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedBytes {
    pub(crate) fn copy_from(src: &[u8]) -> AlignedBytes {
        let mut blocks = vec![Block([0; 64]); src.len().div_ceil(64)];
        for (block, chunk) in blocks.iter_mut().zip(src.chunks(64)) {
            block.0[..chunk.len()].copy_from_slice(chunk);
        }
        AlignedBytes { blocks, len: src.len() }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `blocks` holds `len.div_ceil(64) * 64 >= len` initialized bytes and
        // `Block` is plain bytes without padding.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.len) }
    }
}
