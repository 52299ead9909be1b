//! File format: round trips, layout, header-only reads, and damaged files.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sinter_plan::{
    read_header, Location, Plan, PlanError, PlanInfo, WeightsBuilder, FORMAT_VERSION, HEADER_SIZE, MAX_ARENA_BYTES,
};

fn sample_plan() -> Plan {
    let (meta, weights) = sample();
    Plan::new(meta, weights).unwrap()
}

fn assert_aligned(p: &Plan) {
    assert_eq!(p.weights().as_ptr() as usize % 64, 0, "weight blob is not 64-byte aligned");
}

#[test]
fn to_bytes_matches_the_documented_layout() {
    let (meta, weights) = sample();
    let bytes = Plan::new(meta.clone(), weights.clone()).unwrap().to_bytes();
    assert_eq!(bytes, assemble(&meta, &weights, FORMAT_VERSION, "generic"));
    // The sample's meta does not end on a 64-byte boundary, so the file has padding.
    let meta_len = u64::from_le_bytes(bytes[64..72].try_into().unwrap());
    assert_ne!((144 + meta_len) % 64, 0);
}

#[test]
fn round_trip_in_memory() {
    let (meta, weights) = sample();
    let plan = Plan::new(meta.clone(), weights.clone()).unwrap();
    let bytes = plan.to_bytes();
    let back = Plan::from_bytes(&bytes).unwrap();
    assert_eq!(back.meta(), &meta);
    assert_eq!(back.weights(), &weights[..]);
    assert_eq!(back.header(), plan.header());
    assert_eq!(back.header().producer, env!("CARGO_PKG_VERSION"));
    assert_eq!(back.header().target, "generic");
    assert_eq!(back.header().file_len, bytes.len() as u64);
    assert_eq!(back.to_bytes(), bytes);
    assert_aligned(&plan);
    assert_aligned(&back);
}

#[test]
fn round_trip_through_a_file() {
    let (meta, weights) = sample();
    let plan = Plan::new(meta.clone(), weights.clone()).unwrap().with_target("x86_64-avx2").unwrap();
    let path = temp_path("round-trip");
    plan.save(&path).unwrap();
    let loaded = Plan::load(&path).unwrap();
    assert_eq!(loaded.meta(), &meta);
    assert_eq!(loaded.weights(), &weights[..]);
    assert_eq!(loaded.header().target, "x86_64-avx2");
    assert_aligned(&loaded);
    assert_eq!(loaded.to_bytes(), std::fs::read(&path).unwrap());
    assert_eq!(loaded.to_bytes(), assemble(&meta, &weights, FORMAT_VERSION, "x86_64-avx2"));

    // Saving over a file that is currently mapped leaves the mapping intact.
    let (mut meta2, weights2) = sample();
    meta2.model_name = "other".into();
    Plan::new(meta2, weights2).unwrap().save(&path).unwrap();
    assert_eq!(loaded.weights(), &weights[..]);
    assert_eq!(Plan::load(&path).unwrap().meta().model_name, "other");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn tensor_views() {
    let plan = Plan::from_bytes(&sample_plan().to_bytes()).unwrap();
    assert_eq!(plan.tensor_view(1).unwrap(), &f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])[..]);
    assert_eq!(plan.tensor_view(2).unwrap(), &f32_bytes(&[0.5, -0.5])[..]);
    assert_eq!(plan.tensor_view(5).unwrap(), &[] as &[u8]);
    let shape: Vec<u8> = [1i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(plan.tensor_view(6).unwrap(), &shape[..]);
    assert_eq!(plan.tensor_view(6).unwrap().as_ptr() as usize % 64, 0);
    assert_eq!(plan.tensor_view(0), None, "arena tensor");
    assert_eq!(plan.tensor_view(8), None, "out of range");
    assert_eq!(plan.meta().tensor_id("shape"), Some(6));
    assert_eq!(plan.meta().input("x").map(|b| b.tensor), Some(0));
    assert_eq!(plan.meta().output("u").map(|b| b.tensor), Some(7));
    assert_eq!(plan.meta().output("x"), None);
}

#[test]
fn weights_builder_aligns_every_tensor() {
    let mut b = WeightsBuilder::new();
    assert_eq!(b.push(&[1, 2, 3]), Location::Weights { offset: 0, bytes: 3 });
    assert_eq!(b.push(&[9; 70]), Location::Weights { offset: 64, bytes: 70 });
    assert_eq!(b.push(&[]), Location::Weights { offset: 192, bytes: 0 });
    assert_eq!(b.push(&[7]), Location::Weights { offset: 192, bytes: 1 });
    let blob = b.finish();
    assert_eq!(blob.len(), 193);
    assert_eq!(&blob[..3], &[1, 2, 3]);
    assert!(blob[3..64].iter().all(|&x| x == 0));
    assert!(blob[64..134].iter().all(|&x| x == 9));
    assert!(blob[134..192].iter().all(|&x| x == 0));
    assert_eq!(blob[192], 7);
}

#[test]
fn header_only_read_does_not_touch_weights() {
    let bytes = sample_plan().to_bytes();
    let meta_end = 144 + u64::from_le_bytes(bytes[64..72].try_into().unwrap()) as usize;
    let path = temp_path("header-only");

    // Cut right after the meta section: inspect works, a full load does not.
    std::fs::write(&path, &bytes[..meta_end]).unwrap();
    let info = PlanInfo::read(&path).unwrap();
    assert_eq!(info.meta, sample().0);
    assert_eq!(&info.header, sample_plan().header());
    match Plan::load(&path) {
        Err(PlanError::Truncated { expected, actual }) => {
            assert_eq!((expected, actual), (bytes.len() as u64, meta_end as u64))
        }
        other => panic!("expected a truncation error, got {other:?}"),
    }

    // Damaged weights: inspect does not notice, a full load does.
    let mut damaged = bytes.clone();
    *damaged.last_mut().unwrap() ^= 0x10;
    std::fs::write(&path, &damaged).unwrap();
    assert_eq!(PlanInfo::read(&path).unwrap().meta, sample().0);
    assert_eq!(Plan::load(&path).unwrap_err().to_string(), "plan is corrupted: weights checksum mismatch");

    // Cut inside the meta section: inspect fails too.
    std::fs::write(&path, &bytes[..meta_end - 1]).unwrap();
    assert!(matches!(PlanInfo::read(&path), Err(PlanError::Truncated { .. })));

    // The header alone is enough for read_header.
    std::fs::write(&path, &bytes[..144]).unwrap();
    assert_eq!(&read_header(&path).unwrap(), sample_plan().header());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample_plan().to_bytes();
    let path = temp_path("truncations");
    for len in 0..bytes.len() {
        let cut = &bytes[..len];
        let err = Plan::from_bytes(cut).unwrap_err();
        if len < 144 {
            assert!(matches!(err, PlanError::TruncatedHeader { actual } if actual == len as u64), "{len}: {err}");
        } else {
            let want = format!("plan is truncated: header says {} bytes, file has {len}", bytes.len());
            assert_eq!(err.to_string(), want);
        }
        std::fs::write(&path, cut).unwrap();
        assert_eq!(Plan::load(&path).unwrap_err().to_string(), err.to_string(), "load of {len} bytes");
        if len < 144 {
            assert!(read_header(&path).is_err());
            assert!(PlanInfo::read(&path).is_err());
        }
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn every_single_bit_flip_is_an_error() {
    let bytes = sample_plan().to_bytes();
    for i in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert!(Plan::from_bytes(&b).is_err(), "flipping bit {} of byte {} went unnoticed", i % 8, i / 8);
    }
}

#[test]
fn random_damage_is_an_error() {
    let bytes = sample_plan().to_bytes();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5147);
    for round in 0..5000 {
        let mut b = bytes.clone();
        match rng.gen_range(0..4) {
            0 => {
                for _ in 0..rng.gen_range(1..=16) {
                    let bit = rng.gen_range(0..b.len() * 8);
                    b[bit / 8] ^= 1 << (bit % 8);
                }
            }
            1 => {
                let at = rng.gen_range(0..b.len());
                let n = rng.gen_range(1..=32).min(b.len() - at);
                rng.fill(&mut b[at..at + n]);
            }
            2 => {
                let at = rng.gen_range(0..=b.len());
                b.insert(at, rng.gen());
            }
            _ => {
                b.remove(rng.gen_range(0..b.len()));
            }
        }
        if b != bytes {
            assert!(Plan::from_bytes(&b).is_err(), "round {round}: damage went unnoticed");
        }
    }
}

#[test]
fn checksum_errors_name_the_section() {
    let bytes = sample_plan().to_bytes();
    let mut b = bytes.clone();
    b[146] ^= 1;
    assert_eq!(Plan::from_bytes(&b).unwrap_err().to_string(), "plan is corrupted: meta checksum mismatch");
    let mut b = bytes.clone();
    b[20] ^= 1;
    assert_eq!(Plan::from_bytes(&b).unwrap_err().to_string(), "plan is corrupted: header checksum mismatch");
    let mut b = bytes.clone();
    let meta_end = 144 + u64::from_le_bytes(bytes[64..72].try_into().unwrap()) as usize;
    b[meta_end] = 1;
    assert!(Plan::from_bytes(&b).unwrap_err().to_string().contains("non-zero padding"));
}

#[test]
fn wrong_magic() {
    let mut b = sample_plan().to_bytes();
    b[7] = b'M';
    assert_eq!(
        Plan::from_bytes(&b).unwrap_err().to_string(),
        "not a Sinter plan (magic \"SINTPLAM\", expected \"SINTPLAN\")"
    );
    // The start of an ONNX protobuf (ir_version field).
    let onnx = [0x08, 0x07, 0x12, 0x07, b'p', b'y', b't', b'o', b'r', b'c', b'h'];
    let err = Plan::from_bytes(&onnx).unwrap_err().to_string();
    assert_eq!(err, "not a Sinter plan (magic \"\\x08\\x07\\x12\\x07pyto\", expected \"SINTPLAN\")");
    assert!(matches!(Plan::from_bytes(b"hi"), Err(PlanError::NotAPlan { .. })));
    assert!(matches!(Plan::from_bytes(b"SINT"), Err(PlanError::TruncatedHeader { actual: 4 })));
    let path = temp_path("magic");
    std::fs::write(&path, onnx).unwrap();
    assert_eq!(Plan::load(&path).unwrap_err().to_string(), err);
    assert_eq!(read_header(&path).unwrap_err().to_string(), err);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn newer_version_is_refused_clearly() {
    let (meta, weights) = sample();
    let want = format!(
        "plan format version {} is newer than this runtime supports ({FORMAT_VERSION}); rebuild the plan or upgrade sinter",
        FORMAT_VERSION + 1
    );
    let b = assemble(&meta, &weights, FORMAT_VERSION + 1, "generic");
    assert_eq!(Plan::from_bytes(&b).unwrap_err().to_string(), want);
    // Even a newer header that this version cannot parse (or a truncated one) says so.
    let mut short = b[..16].to_vec();
    short[12] = 0xff;
    assert_eq!(Plan::from_bytes(&short).unwrap_err().to_string(), want);
    let b = assemble(&meta, &weights, 0, "generic");
    assert!(matches!(Plan::from_bytes(&b), Err(PlanError::Corrupted(_))));
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut b = sample_plan().to_bytes();
    b.push(0);
    assert!(matches!(Plan::from_bytes(&b), Err(PlanError::Corrupted(_))));
}

#[test]
fn bad_header_fields() {
    let bytes = sample_plan().to_bytes();
    // Target field with bytes after its terminating zero.
    let mut b = bytes.clone();
    b[32 + 23] = b'x';
    reseal_header(&mut b);
    assert!(Plan::from_bytes(&b).unwrap_err().to_string().contains("target field"));
    // Producer field (16 bytes) with bytes after its terminating zero.
    let mut b = bytes.clone();
    b[16 + 15] = b'x';
    reseal_header(&mut b);
    assert!(Plan::from_bytes(&b).unwrap_err().to_string().contains("producer field"));
    // Weights offset not where the format puts it.
    let mut b = bytes.clone();
    let off = u64::from_le_bytes(b[80..88].try_into().unwrap());
    b[80..88].copy_from_slice(&(off + 64).to_le_bytes());
    reseal_header(&mut b);
    assert!(Plan::from_bytes(&b).unwrap_err().to_string().contains("impossible section layout"));
    // Lengths that overflow.
    let mut b = bytes.clone();
    b[64..72].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal_header(&mut b);
    assert!(matches!(Plan::from_bytes(&b), Err(PlanError::Corrupted(_))));
}

#[test]
fn target_must_fit_the_header() {
    let err = sample_plan().with_target("a-target-name-that-is-way-too-long").unwrap_err();
    assert!(matches!(err, PlanError::Invalid(_)), "{err}");
    assert!(sample_plan().with_target("nul\0").is_err());
    let ok = sample_plan().with_target("aarch64-neon-dotprod-f16").unwrap();
    assert_eq!(Plan::from_bytes(&ok.to_bytes()).unwrap().header().target, "aarch64-neon-dotprod-f16");
}

#[test]
fn header_alone_reports_the_arena_size() {
    let (mut meta, weights) = sample();
    meta.arena_bytes = 4096;
    let bytes = Plan::new(meta.clone(), weights.clone()).unwrap().to_bytes();
    // Bytes 112..120 of the header, little endian.
    assert_eq!(&bytes[112..120], &[0, 0x10, 0, 0, 0, 0, 0, 0]);
    let path = temp_path("arena-header");
    std::fs::write(&path, &bytes[..144]).unwrap();
    let header = read_header(&path).unwrap();
    assert_eq!(header.arena_bytes, 4096);
    assert_eq!(header.weights.len, 144);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(Plan::load(&path).unwrap().header().arena_bytes, 4096);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn arena_size_in_header_and_meta_must_agree() {
    // Sample meta says 192; the header, correctly checksummed, says 256.
    let mut b = sample_plan().to_bytes();
    b[112..120].copy_from_slice(&256u64.to_le_bytes());
    reseal_header(&mut b);
    let want = "plan is corrupted: header says the arena is 256 bytes but the meta says 192";
    let err = Plan::from_bytes(&b).unwrap_err();
    assert!(matches!(err, PlanError::Corrupted(_)), "{err:?}");
    assert_eq!(err.to_string(), want);
    let path = temp_path("arena-mismatch");
    std::fs::write(&path, &b).unwrap();
    assert_eq!(Plan::load(&path).unwrap_err().to_string(), want);
    assert_eq!(PlanInfo::read(&path).unwrap_err().to_string(), want);
    // The header alone cannot see the meta: it reports its own value.
    assert_eq!(read_header(&path).unwrap().arena_bytes, 256);

    // An arena beyond the limit is refused from the header alone.
    b[112..120].copy_from_slice(&(MAX_ARENA_BYTES + 1).to_le_bytes());
    reseal_header(&mut b);
    std::fs::write(&path, &b[..144]).unwrap();
    let err = read_header(&path).unwrap_err().to_string();
    assert!(err.contains("arena of 68719476737 bytes is larger than the limit"), "{err}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn header_records_the_workspace() {
    let (meta, weights) = sample();
    let plan = Plan::new(meta.clone(), weights.clone()).unwrap().with_workspace(4096, 640).unwrap();
    let bytes = plan.to_bytes();
    assert_eq!(HEADER_SIZE, 144);
    assert_eq!(bytes, assemble_with_workspace(&meta, &weights, FORMAT_VERSION, "generic", (4096, 640)));
    // Bytes 120..128 and 128..136 of the header, little endian.
    assert_eq!(&bytes[120..128], &4096u64.to_le_bytes());
    assert_eq!(&bytes[128..136], &640u64.to_le_bytes());
    let back = Plan::from_bytes(&bytes).unwrap();
    assert_eq!((back.header().workspace_bytes, back.header().workspace_per_thread_bytes), (4096, 640));
    assert_eq!(back.header().context_bytes(3), meta.arena_bytes + 4096 + 3 * 640);
    let path = temp_path("workspace-header");
    std::fs::write(&path, &bytes[..144]).unwrap();
    assert_eq!(read_header(&path).unwrap().workspace_per_thread_bytes, 640);
    std::fs::remove_file(&path).unwrap();
}

/// A hostile header cannot make a context allocate unbounded scratch: each workspace
/// field is capped like the arena, from the header alone.
#[test]
fn absurd_workspace_fields_are_refused() {
    let (meta, weights) = sample();
    for ws in [(MAX_ARENA_BYTES + 1, 0), (0, MAX_ARENA_BYTES + 1), (u64::MAX, u64::MAX)] {
        let b = assemble_with_workspace(&meta, &weights, FORMAT_VERSION, "generic", ws);
        let err = Plan::from_bytes(&b).unwrap_err();
        assert!(matches!(err, PlanError::Invalid(_)), "{ws:?}: {err:?}");
        assert!(err.to_string().contains("workspace of"), "{err}");
        let path = temp_path("workspace-absurd");
        std::fs::write(&path, &b[..144]).unwrap();
        assert!(read_header(&path).is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(sample_plan().with_workspace(ws.0, ws.1).is_err());
    }
    let at_limit = assemble_with_workspace(&meta, &weights, FORMAT_VERSION, "generic", (MAX_ARENA_BYTES, 64));
    assert!(Plan::from_bytes(&at_limit).is_ok());
}

#[test]
fn older_version_asks_for_a_rebuild() {
    let (meta, weights) = sample();
    let b = assemble(&meta, &weights, FORMAT_VERSION - 1, "generic");
    let err = Plan::from_bytes(&b).unwrap_err();
    assert!(matches!(err, PlanError::OlderVersion { .. }), "{err:?}");
    assert!(err.to_string().contains("rebuild"), "{err}");
}
