//! The fixed 144-byte file header, encoded by hand (not serde) so its layout is frozen
//! independently of any library version. See docs/plan-format.md for the byte table.

use crate::error::{PlanError, Result};
pub use crate::format::*;
use crate::validate::{check_arena_size, check_workspace_size};
use xxhash_rust::xxh3::xxh3_64;

const _: () = assert!(PRODUCER.len() <= PRODUCER_LEN, "crate version does not fit the header");

// Field offsets (v3).
const OFF_VERSION: usize = 8;
const OFF_HEADER_SIZE: usize = 12;
const OFF_PRODUCER: usize = 16;
const OFF_TARGET: usize = 32;
const OFF_META: usize = 56;
const OFF_WEIGHTS: usize = 80;
const OFF_FILE_LEN: usize = 104;
const OFF_ARENA_BYTES: usize = 112;
const OFF_WORKSPACE_BYTES: usize = 120;
const OFF_WORKSPACE_PER_THREAD_BYTES: usize = 128;
const OFF_HEADER_CHECKSUM: usize = 136;

// The fields tile the header exactly, without gaps or overlaps.
const _: () = assert!(OFF_TARGET == OFF_PRODUCER + PRODUCER_LEN);
const _: () = assert!(OFF_META == OFF_TARGET + FIXED_STR_LEN);
const _: () = assert!(OFF_WEIGHTS == OFF_META + 24 && OFF_FILE_LEN == OFF_WEIGHTS + 24);
const _: () = assert!(OFF_ARENA_BYTES == OFF_FILE_LEN + 8 && OFF_WORKSPACE_BYTES == OFF_ARENA_BYTES + 8);
const _: () = assert!(OFF_WORKSPACE_PER_THREAD_BYTES == OFF_WORKSPACE_BYTES + 8);
const _: () = assert!(OFF_HEADER_CHECKSUM == OFF_WORKSPACE_PER_THREAD_BYTES + 8);
const _: () = assert!(OFF_HEADER_CHECKSUM + 8 == HEADER_SIZE);

/// A byte range of the file and the xxh3-64 of its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    pub offset: u64,
    pub len: u64,
    pub checksum: u64,
}

impl Section {
    /// One past the last byte; cannot overflow for a decoded header (checked on decode).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// The decoded file header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub format_version: u32,
    /// Version of the sinter crate that wrote the plan.
    pub producer: String,
    /// What machine the kernels were chosen for ("generic" runs anywhere).
    pub target: String,
    pub meta: Section,
    pub weights: Section,
    /// Total length of the file, header included.
    pub file_len: u64,
    /// Size of the activation arena each execution context allocates (a copy of
    /// `PlanMeta::arena_bytes`, so tools can size a plan from the header alone).
    pub arena_bytes: u64,
    /// Kernel scratch each execution context allocates once, beside its arena: this
    /// shared part plus [`Header::workspace_per_thread_bytes`] per thread of its pool
    /// (the most any kernel of the plan needs; the thread count is chosen at run time).
    pub workspace_bytes: u64,
    pub workspace_per_thread_bytes: u64,
}

/// Where the sections of a file go: meta right after the header, weights at the
/// next 64-byte boundary, nothing after the weights. Returns (weights offset, file length).
fn layout(meta_len: u64, weights_len: u64) -> Option<(u64, u64)> {
    let meta_end = (HEADER_SIZE as u64).checked_add(meta_len)?;
    let weights_offset = meta_end.checked_next_multiple_of(ALIGN)?;
    Some((weights_offset, weights_offset.checked_add(weights_len)?))
}

/// Checks that `s` fits a fixed string field and round-trips through it.
pub(crate) fn check_fixed_str(what: &str, s: &str) -> Result<()> {
    if s.len() > FIXED_STR_LEN || s.contains('\0') {
        return Err(PlanError::Invalid(format!(
            "{what} {s:?} must be at most {FIXED_STR_LEN} bytes of UTF-8 without NUL"
        )));
    }
    Ok(())
}

impl Header {
    /// The header for the given section contents (no workspace; see
    /// [`crate::Plan::with_workspace`]).
    pub(crate) fn new(meta: &[u8], weights: &[u8], target: &str, arena_bytes: u64) -> Result<Header> {
        check_fixed_str("target", target)?;
        let (weights_offset, file_len) = layout(meta.len() as u64, weights.len() as u64)
            .ok_or_else(|| PlanError::Invalid("plan is larger than 2^64 bytes".into()))?;
        Ok(Header {
            format_version: FORMAT_VERSION,
            producer: PRODUCER.to_string(),
            target: target.to_string(),
            meta: Section { offset: HEADER_SIZE as u64, len: meta.len() as u64, checksum: xxh3_64(meta) },
            weights: Section { offset: weights_offset, len: weights.len() as u64, checksum: xxh3_64(weights) },
            file_len,
            arena_bytes,
            workspace_bytes: 0,
            workspace_per_thread_bytes: 0,
        })
    }

    /// Memory one execution context of `threads` threads allocates: arena, shared
    /// workspace and per-thread workspace (saturating).
    pub fn context_bytes(&self, threads: usize) -> u64 {
        let per_thread = self.workspace_per_thread_bytes.saturating_mul(threads as u64);
        self.arena_bytes.saturating_add(self.workspace_bytes).saturating_add(per_thread)
    }

    /// The header bytes. Strings longer than their field (impossible for headers built by
    /// this crate, which checks them) are cut at a character boundary.
    pub(crate) fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[..8].copy_from_slice(&MAGIC);
        put(&mut b, OFF_VERSION, &self.format_version.to_le_bytes());
        put(&mut b, OFF_HEADER_SIZE, &(HEADER_SIZE as u32).to_le_bytes());
        put_str(&mut b, OFF_PRODUCER, PRODUCER_LEN, &self.producer);
        put_str(&mut b, OFF_TARGET, FIXED_STR_LEN, &self.target);
        for (off, s) in [(OFF_META, &self.meta), (OFF_WEIGHTS, &self.weights)] {
            put(&mut b, off, &s.offset.to_le_bytes());
            put(&mut b, off + 8, &s.len.to_le_bytes());
            put(&mut b, off + 16, &s.checksum.to_le_bytes());
        }
        put(&mut b, OFF_FILE_LEN, &self.file_len.to_le_bytes());
        put(&mut b, OFF_ARENA_BYTES, &self.arena_bytes.to_le_bytes());
        put(&mut b, OFF_WORKSPACE_BYTES, &self.workspace_bytes.to_le_bytes());
        put(&mut b, OFF_WORKSPACE_PER_THREAD_BYTES, &self.workspace_per_thread_bytes.to_le_bytes());
        let sum = xxh3_64(&b[..OFF_HEADER_CHECKSUM]);
        put(&mut b, OFF_HEADER_CHECKSUM, &sum.to_le_bytes());
        b
    }

    /// Decodes and checks the header from the first bytes of a file (`prefix` may be the
    /// whole file or just its beginning). Checks, in order: magic, format version (these
    /// 12 bytes keep their meaning in every version), header length, header checksum,
    /// string fields, that the sections are laid out as this version requires, and that
    /// the arena and workspace sizes are within [`crate::MAX_ARENA_BYTES`]. Does not look at the sections themselves
    /// (so the arena size is not yet known to match the meta's).
    pub fn decode(prefix: &[u8]) -> Result<Header> {
        let magic_len = prefix.len().min(MAGIC.len());
        if prefix[..magic_len] != MAGIC[..magic_len] {
            return Err(PlanError::NotAPlan { found: prefix[..magic_len].to_vec() });
        }
        if let Some(v) = prefix.get(OFF_VERSION..OFF_VERSION + 4) {
            let version = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            if version > FORMAT_VERSION {
                return Err(PlanError::NewerVersion { version, supported: FORMAT_VERSION });
            }
            if version == 0 {
                return Err(PlanError::Corrupted("format version 0 does not exist".into()));
            }
            if version < FORMAT_VERSION {
                return Err(PlanError::OlderVersion { version, supported: FORMAT_VERSION });
            }
        }
        let Some(b) = prefix.first_chunk::<HEADER_SIZE>() else {
            return Err(PlanError::TruncatedHeader { actual: prefix.len() as u64 });
        };
        let header_size = u32_at(b, OFF_HEADER_SIZE);
        if header_size as usize != HEADER_SIZE {
            return Err(PlanError::Corrupted(format!(
                "header size is {header_size}, format version {FORMAT_VERSION} has {HEADER_SIZE}"
            )));
        }
        if xxh3_64(&b[..OFF_HEADER_CHECKSUM]) != u64_at(b, OFF_HEADER_CHECKSUM) {
            return Err(PlanError::ChecksumMismatch { section: "header" });
        }
        let section = |off| Section { offset: u64_at(b, off), len: u64_at(b, off + 8), checksum: u64_at(b, off + 16) };
        let h = Header {
            format_version: u32_at(b, OFF_VERSION),
            producer: get_str(b, OFF_PRODUCER, PRODUCER_LEN, "producer")?,
            target: get_str(b, OFF_TARGET, FIXED_STR_LEN, "target")?,
            meta: section(OFF_META),
            weights: section(OFF_WEIGHTS),
            file_len: u64_at(b, OFF_FILE_LEN),
            arena_bytes: u64_at(b, OFF_ARENA_BYTES),
            workspace_bytes: u64_at(b, OFF_WORKSPACE_BYTES),
            workspace_per_thread_bytes: u64_at(b, OFF_WORKSPACE_PER_THREAD_BYTES),
        };
        let expected = layout(h.meta.len, h.weights.len);
        if h.meta.offset != HEADER_SIZE as u64 || expected != Some((h.weights.offset, h.file_len)) {
            return Err(PlanError::Corrupted(format!(
                "impossible section layout: meta at {}+{}, weights at {}+{}, file length {}",
                h.meta.offset, h.meta.len, h.weights.offset, h.weights.len, h.file_len
            )));
        }
        check_arena_size(h.arena_bytes)?;
        check_workspace_size(h.workspace_bytes, h.workspace_per_thread_bytes)?;
        Ok(h)
    }
}

fn put(b: &mut [u8; HEADER_SIZE], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

fn put_str(b: &mut [u8; HEADER_SIZE], off: usize, field_len: usize, s: &str) {
    let mut n = s.len().min(field_len);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    put(b, off, &s.as_bytes()[..n]);
}

fn u32_at(b: &[u8; HEADER_SIZE], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8; HEADER_SIZE], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// A zero-padded UTF-8 field: text, then only zero bytes.
fn get_str(b: &[u8; HEADER_SIZE], off: usize, field_len: usize, what: &str) -> Result<String> {
    let field = &b[off..off + field_len];
    let n = field.iter().position(|&c| c == 0).unwrap_or(field_len);
    let (text, pad) = field.split_at(n);
    let bad = || PlanError::Corrupted(format!("header {what} field is not zero-padded UTF-8"));
    if pad.iter().any(|&c| c != 0) {
        return Err(bad());
    }
    std::str::from_utf8(text).map(str::to_string).map_err(|_| bad())
}
