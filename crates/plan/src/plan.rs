//! Reading and writing whole plans.

use crate::error::{PlanError, Result};
use crate::header::{check_fixed_str, Header, ALIGN, DEFAULT_TARGET, HEADER_SIZE};
use crate::schema::{Location, PlanMeta, TensorDesc, TensorId};
use crate::validate::{check_workspace_size, validate};
use crate::weights::AlignedBytes;
use memmap2::Mmap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;
use xxhash_rust::xxh3::xxh3_64;

const ZEROS: [u8; ALIGN as usize] = [0; ALIGN as usize];

enum Weights {
    Owned(AlignedBytes),
    /// The whole file mapped; the blob is `range` of it.
    Mapped {
        map: Mmap,
        range: Range<usize>,
    },
}

/// A validated plan: the schedule ([`PlanMeta`]) and the weight blob.
///
/// The weight blob starts 64-byte aligned and every weight tensor inside it too, so
/// tensors can be viewed in place as any element type.
pub struct Plan {
    header: Header,
    meta: PlanMeta,
    /// The encoded meta, kept so writing a plan back reproduces the file exactly.
    meta_bytes: Vec<u8>,
    weights: Weights,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("header", &self.header)
            .field("model_name", &self.meta.model_name)
            .field("tensors", &self.meta.tensors.len())
            .field("kernels", &self.meta.kernels.len())
            .finish_non_exhaustive()
    }
}

/// The sections of a file whose header, checksums and meta passed every check.
struct Parsed {
    header: Header,
    meta: PlanMeta,
    meta_range: Range<usize>,
    weights_range: Range<usize>,
}

fn to_usize(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| PlanError::Corrupted(format!("size {v} does not fit this machine's address space")))
}

fn range(offset: u64, len: u64) -> Result<Range<usize>> {
    let start = to_usize(offset)?;
    let end = start
        .checked_add(to_usize(len)?)
        .ok_or_else(|| PlanError::Corrupted(format!("section {offset}+{len} overflows")))?;
    Ok(start..end)
}

fn decode_meta(bytes: &[u8]) -> Result<PlanMeta> {
    let (meta, rest) = postcard::take_from_bytes::<PlanMeta>(bytes).map_err(PlanError::Decode)?;
    if !rest.is_empty() {
        return Err(PlanError::Corrupted(format!("{} unused bytes at the end of the meta section", rest.len())));
    }
    Ok(meta)
}

/// Validates a decoded meta against the header it came with: the weights length, and the
/// arena size, which the header repeats so tools can read it without the meta.
fn validate_with_header(meta: &PlanMeta, header: &Header) -> Result<()> {
    validate(meta, header.weights.len)?;
    if header.arena_bytes != meta.arena_bytes {
        return Err(PlanError::Corrupted(format!(
            "header says the arena is {} bytes but the meta says {}",
            header.arena_bytes, meta.arena_bytes
        )));
    }
    Ok(())
}

/// Checks every byte of a complete plan file and decodes its meta.
fn parse(data: &[u8]) -> Result<Parsed> {
    let header = Header::decode(data)?;
    let actual = data.len() as u64;
    if actual < header.file_len {
        return Err(PlanError::Truncated { expected: header.file_len, actual });
    }
    if actual > header.file_len {
        return Err(PlanError::Corrupted(format!("file has {actual} bytes but the header says {}", header.file_len)));
    }
    let section = |r: &Range<usize>| {
        data.get(r.clone()).ok_or_else(|| PlanError::Corrupted(format!("section {r:?} is outside the file")))
    };
    let meta_range = range(header.meta.offset, header.meta.len)?;
    let weights_range = range(header.weights.offset, header.weights.len)?;
    if section(&(meta_range.end..weights_range.start))?.iter().any(|&b| b != 0) {
        return Err(PlanError::Corrupted("non-zero padding before the weights section".into()));
    }
    let meta_bytes = section(&meta_range)?;
    if xxh3_64(meta_bytes) != header.meta.checksum {
        return Err(PlanError::ChecksumMismatch { section: "meta" });
    }
    if xxh3_64(section(&weights_range)?) != header.weights.checksum {
        return Err(PlanError::ChecksumMismatch { section: "weights" });
    }
    let meta = decode_meta(meta_bytes)?;
    validate_with_header(&meta, &header)?;
    Ok(Parsed { header, meta, meta_range, weights_range })
}

impl Plan {
    /// An in-memory plan for the "generic" target. Validates `meta` against `weights`
    /// (see [`crate::WeightsBuilder`]) and copies the weights into aligned storage.
    pub fn new(meta: PlanMeta, weights: Vec<u8>) -> Result<Plan> {
        validate(&meta, weights.len() as u64)?;
        let meta_bytes = postcard::to_allocvec(&meta).map_err(PlanError::Encode)?;
        let header = Header::new(&meta_bytes, &weights, DEFAULT_TARGET, meta.arena_bytes)?;
        Ok(Plan { header, meta, meta_bytes, weights: Weights::Owned(AlignedBytes::copy_from(&weights)) })
    }

    /// Records the machine the kernels were chosen for (at most 24 bytes, e.g. "x86_64-avx2").
    pub fn with_target(mut self, target: &str) -> Result<Plan> {
        check_fixed_str("target", target)?;
        target.clone_into(&mut self.header.target);
        Ok(self)
    }

    /// Records the kernel workspace an execution context needs: `shared` bytes plus
    /// `per_thread` bytes per thread (each at most [`crate::MAX_ARENA_BYTES`]).
    pub fn with_workspace(mut self, shared: u64, per_thread: u64) -> Result<Plan> {
        check_workspace_size(shared, per_thread)?;
        self.header.workspace_bytes = shared;
        self.header.workspace_per_thread_bytes = per_thread;
        Ok(self)
    }

    /// Parses a plan from bytes in memory, checking it like [`Plan::load`]; the weights
    /// are copied into aligned storage.
    pub fn from_bytes(data: &[u8]) -> Result<Plan> {
        let p = parse(data)?;
        // `parse` got both ranges from `data`, so they are in bounds.
        let meta_bytes = data.get(p.meta_range).unwrap_or_default().to_vec();
        let weights = AlignedBytes::copy_from(data.get(p.weights_range).unwrap_or_default());
        Ok(Plan { header: p.header, meta: p.meta, meta_bytes, weights: Weights::Owned(weights) })
    }

    /// Maps a plan file into memory and checks it completely (header, checksums of every
    /// section, meta validation). The weights are not copied: [`Plan::weights`] borrows
    /// the mapping, which the OS pages in and shares between processes.
    ///
    /// The file must not be modified or truncated while the plan is alive (as with any
    /// memory-mapped file, that could change or unmap the bytes under the runtime).
    /// [`Plan::save`] replaces files atomically, so saving over a loaded plan is safe.
    pub fn load(path: impl AsRef<Path>) -> Result<Plan> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(PlanError::io("cannot open plan", path))?;
        let len = file.metadata().map_err(PlanError::io("cannot read plan", path))?.len();
        if len < HEADER_SIZE as u64 {
            // Too short to map usefully (and mapping an empty file fails): read it and
            // let the parser say what is wrong.
            let mut data = Vec::new();
            file.read_to_end(&mut data).map_err(PlanError::io("cannot read plan", path))?;
            return Plan::from_bytes(&data);
        }
        // SAFETY: the mapping is only read, and only as bytes; see the doc comment for the
        // requirement that the file is not modified while mapped.
        // Populated: the kernel maps every page of the (page-cached) file up front, much
        // faster than taking one page fault per 4 KiB of weights during the first run.
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
            .map_err(PlanError::io("cannot map plan", path))?;
        let p = parse(&map)?;
        let meta_bytes = map.get(p.meta_range).unwrap_or_default().to_vec();
        Ok(Plan {
            header: p.header,
            meta: p.meta,
            meta_bytes,
            weights: Weights::Mapped { map, range: p.weights_range },
        })
    }

    /// The complete file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = self.header.encode();
        let mut out = Vec::with_capacity(usize::try_from(self.header.file_len).unwrap_or(0));
        for part in self.parts(&header) {
            out.extend_from_slice(part);
        }
        out
    }

    /// Writes the file through a temporary file in the same directory and renames it
    /// over `path`, so readers never see a half-written plan and processes that have the
    /// old file mapped keep their bytes.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let result = self
            .write_file(&tmp)
            .and_then(|()| std::fs::rename(&tmp, path).map_err(PlanError::io("cannot write plan", path)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn write_file(&self, tmp: &Path) -> Result<()> {
        let err = PlanError::io("cannot write plan", tmp);
        let file = File::create(tmp).map_err(PlanError::io("cannot create plan", tmp))?;
        let mut w = BufWriter::new(file);
        let header = self.header.encode();
        let written = self.parts(&header).iter().try_for_each(|p| w.write_all(p)).and_then(|()| w.flush());
        written.and_then(|()| w.get_ref().sync_all()).map_err(err)
    }

    /// Header, meta, padding, weights: the file in order.
    fn parts<'a>(&'a self, header: &'a [u8; HEADER_SIZE]) -> [&'a [u8]; 4] {
        // The header's layout was checked (or built): the gap is below 64 bytes.
        let pad = self.header.weights.offset.saturating_sub(self.header.meta.end());
        let pad = ZEROS.get(..usize::try_from(pad).unwrap_or(0)).unwrap_or_default();
        [header, &self.meta_bytes, pad, self.weights()]
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn meta(&self) -> &PlanMeta {
        &self.meta
    }

    /// The whole weight blob (64-byte aligned).
    pub fn weights(&self) -> &[u8] {
        match &self.weights {
            Weights::Owned(b) => b.as_slice(),
            Weights::Mapped { map, range } => map.get(range.clone()).unwrap_or_default(),
        }
    }

    pub fn tensor(&self, id: TensorId) -> Option<&TensorDesc> {
        self.meta.tensor(id)
    }

    /// The bytes of a tensor stored in the weights; `None` for arena tensors and bad ids.
    pub fn tensor_view(&self, id: TensorId) -> Option<&[u8]> {
        match self.tensor(id)?.location {
            Location::Weights { offset, bytes } => {
                let start = usize::try_from(offset).ok()?;
                self.weights().get(start..start.checked_add(usize::try_from(bytes).ok()?)?)
            }
            Location::Arena { .. } => None,
        }
    }
}

/// The header and meta of a plan file, read without touching the weights (for a fast
/// `sinter inspect` of large plans).
#[derive(Clone, Debug, PartialEq)]
pub struct PlanInfo {
    pub header: Header,
    pub meta: PlanMeta,
}

fn read_prefix(file: &mut File, path: &Path) -> Result<Header> {
    let mut prefix = Vec::with_capacity(HEADER_SIZE);
    file.take(HEADER_SIZE as u64).read_to_end(&mut prefix).map_err(PlanError::io("cannot read plan", path))?;
    Header::decode(&prefix)
}

/// Reads and checks only the header (the first 128 bytes) of a plan file: enough for the
/// section sizes and the arena size. The header's arena size is checked against the meta
/// only by a full load or [`PlanInfo::read`].
pub fn read_header(path: impl AsRef<Path>) -> Result<Header> {
    let path = path.as_ref();
    let mut file = File::open(path).map_err(PlanError::io("cannot open plan", path))?;
    read_prefix(&mut file, path)
}

impl PlanInfo {
    /// Reads the header and the meta section only, checking the meta checksum and
    /// validating it (against the weight length and arena size the header records). The weight bytes
    /// are neither read nor checked.
    pub fn read(path: impl AsRef<Path>) -> Result<PlanInfo> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(PlanError::io("cannot open plan", path))?;
        let header = read_prefix(&mut file, path)?;
        let actual = file.metadata().map_err(PlanError::io("cannot read plan", path))?.len();
        // Checked before allocating the meta buffer, whose size comes from the file.
        if actual < header.meta.end() {
            return Err(PlanError::Truncated { expected: header.file_len, actual });
        }
        let mut meta_bytes = vec![0u8; to_usize(header.meta.len)?];
        file.seek(SeekFrom::Start(header.meta.offset))
            .and_then(|_| file.read_exact(&mut meta_bytes))
            .map_err(PlanError::io("cannot read plan", path))?;
        if xxh3_64(&meta_bytes) != header.meta.checksum {
            return Err(PlanError::ChecksumMismatch { section: "meta" });
        }
        let meta = decode_meta(&meta_bytes)?;
        validate_with_header(&meta, &header)?;
        Ok(PlanInfo { header, meta })
    }
}
