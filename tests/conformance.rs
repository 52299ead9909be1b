//! ONNX backend node conformance: the cases listed in `tests/conformance/manifest.txt`
//! must pass through the whole pipeline (import → build → serialize → load → run), both
//! optimized and unoptimized,
//! compared with the expected outputs shipped in the `onnx` wheel.
//!
//! `SINTER_ONNX_NODE_DIR` points at `onnx/backend/test/data/node` (`cargo xtask test` sets it).
//! To try cases not in the manifest: `SINTER_CONFORMANCE_PROBE=test_conv,test_relu cargo test
//! --release --test conformance -- --nocapture` prints PASS/FAIL for every case whose name
//! contains one of the patterns (`*` for all).

mod common;

use common::{compare, data_dir, Tol};
use sinter_builder::{build, BuildOptions};
use sinter_ir::Tensor;
use sinter_plan::Plan;
use sinter_runtime::Engine;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

const MANIFEST: &str = include_str!("conformance/manifest.txt");
const EXCLUDED: &str = include_str!("conformance/excluded.txt");
const DEFAULT_TOL: Tol = Tol { atol: 1e-5, rtol: 1e-3 };
const MIN_PASSING: usize = 350;

struct Entry {
    name: String,
    tol: Tol,
}

fn manifest() -> Vec<Entry> {
    MANIFEST
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap_or_default().to_string();
            let mut tol = DEFAULT_TOL;
            for p in parts {
                match p.split_once('=') {
                    Some(("atol", v)) => tol.atol = v.parse().expect("atol in manifest"),
                    Some(("rtol", v)) => tol.rtol = v.parse().expect("rtol in manifest"),
                    _ => panic!("bad manifest option '{p}' for {name}"),
                }
            }
            Entry { name, tol }
        })
        .collect()
}

fn read_pb(path: &Path) -> Result<Tensor, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    sinter_onnx::tensor_from_proto_bytes(&bytes).map(|(_, t)| t).map_err(|e| format!("{}: {e}", path.display()))
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let idx = name.strip_prefix(prefix)?.strip_suffix(".pb")?.parse().ok()?;
            Some((idx, e.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Runs one node test case through the full pipeline.
fn run_case(dir: &Path, tol: Tol) -> Result<(), String> {
    let model = sinter_onnx::load_model(&dir.join("model.onnx")).map_err(|e| e.to_string())?;
    let graph = &model.graph;
    let input_names: Vec<String> = graph.runtime_inputs().map(|v| v.name.clone()).collect();
    // Inputs the ops need at build time (shapes, axes…) are frozen, as a user would with constants.
    let mut const_inputs: HashSet<&str> = HashSet::new();
    for node in &graph.nodes {
        for &i in node.op.const_inputs() {
            if let Some(name) = node.inputs.get(i) {
                const_inputs.insert(name);
            }
        }
    }
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
        .collect();
    sets.sort();
    if sets.is_empty() {
        return Err("no test_data_set_*".into());
    }
    for set in sets {
        let ins = numbered(&set, "input_").iter().map(|p| read_pb(p)).collect::<Result<Vec<_>, _>>()?;
        let expected = numbered(&set, "output_").iter().map(|p| read_pb(p)).collect::<Result<Vec<_>, _>>()?;
        if ins.len() != input_names.len() {
            return Err(format!("{} inputs in the data, {} in the model", ins.len(), input_names.len()));
        }
        let mut opts = BuildOptions::default();
        let mut feed = Vec::new();
        for (name, t) in input_names.iter().zip(ins) {
            if const_inputs.contains(name.as_str()) {
                opts.freeze.insert(name.clone(), t);
            } else {
                opts.shapes.insert(name.clone(), t.shape().to_vec());
                feed.push((name.as_str(), t));
            }
        }
        // Both pipelines must agree with the expected outputs.
        for no_optimize in [false, true] {
            let pipeline = if no_optimize { "unoptimized" } else { "optimized" };
            let opts = BuildOptions { no_optimize, ..opts.clone() };
            let (plan, _) = build(graph, &opts).map_err(|e| format!("{pipeline} build: {e}"))?;
            let bytes = plan.to_bytes();
            let run = |plan| Engine::new(plan).and_then(|e| e.run(&feed)).map_err(|e| format!("{pipeline} run: {e}"));
            let in_memory = run(plan)?;
            let outs = run(Plan::from_bytes(&bytes).map_err(|e| format!("reload: {e}"))?)?;
            if outs.len() != expected.len() {
                return Err(format!("{} outputs, expected {}", outs.len(), expected.len()));
            }
            for (i, ((name, ours), exp)) in outs.iter().zip(&expected).enumerate() {
                if in_memory[i].1 != *ours {
                    return Err(format!("output '{name}': in-memory and reloaded plans differ"));
                }
                compare(ours, exp, tol).map_err(|e| format!("{pipeline}: output {i} '{name}': {e}"))?;
            }
        }
    }
    Ok(())
}

fn probe(root: &Path, patterns: &str) {
    let pats: Vec<&str> = patterns.split(',').map(str::trim).collect();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root).expect("node dir").flatten().map(|e| e.path()).collect();
    dirs.sort();
    let (mut pass, mut fail) = (0, 0);
    for dir in dirs {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().to_string();
        if !pats.iter().any(|p| *p == "*" || name.contains(p)) {
            continue;
        }
        match std::panic::catch_unwind(|| run_case(&dir, DEFAULT_TOL)) {
            Ok(Ok(())) => {
                pass += 1;
                println!("PASS {name}");
            }
            Ok(Err(e)) => {
                fail += 1;
                println!("FAIL {name}: {e}");
            }
            Err(_) => {
                fail += 1;
                println!("FAIL {name}: PANIC");
            }
        }
    }
    println!("probe: {pass} passed, {fail} failed");
}

#[test]
fn onnx_node_conformance() {
    let Some(root) = data_dir("SINTER_ONNX_NODE_DIR", "ONNX node conformance") else { return };
    if let Ok(p) = std::env::var("SINTER_CONFORMANCE_PROBE") {
        probe(&root, &p);
        return;
    }
    let entries = manifest();
    let mut failures = Vec::new();
    for e in &entries {
        if let Err(msg) = run_case(&root.join(&e.name), e.tol) {
            failures.push(format!("{}: {msg}", e.name));
        }
    }
    println!("conformance: {} passed, {} failed", entries.len() - failures.len(), failures.len());
    assert!(failures.is_empty(), "failing manifest cases:\n{}", failures.join("\n"));
    assert!(entries.len() >= MIN_PASSING, "only {} cases in the manifest", entries.len());
}

/// The op types a model uses, sorted and deduplicated (read without building any op).
fn model_op_types(path: &Path) -> Option<Vec<String>> {
    use prost::Message;
    let bytes = std::fs::read(path).ok()?;
    let model = sinter_onnx::proto::ModelProto::decode(bytes.as_slice()).ok()?;
    let mut ops: Vec<String> = model.graph?.node.into_iter().filter_map(|n| n.op_type).collect();
    ops.sort();
    ops.dedup();
    Some(ops)
}

/// Every node test whose ops Sinter claims to support is in the manifest or excluded with a reason.
#[test]
fn manifest_covers_supported_ops() {
    let Some(root) = data_dir("SINTER_ONNX_NODE_DIR", "ONNX node conformance") else { return };
    let listed: HashSet<String> = manifest().into_iter().map(|e| e.name).collect();
    let mut excluded: HashMap<String, String> = HashMap::new();
    for line in EXCLUDED.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, reason) = line.split_once(':').unwrap_or((line, ""));
        assert!(!reason.trim().is_empty(), "excluded case '{name}' needs a reason");
        excluded.insert(name.trim().to_string(), reason.trim().to_string());
    }
    let supported: HashSet<&str> = sinter_ir::ops::supported_ops().into_iter().collect();
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&root).expect("node dir").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if listed.contains(&name) || excluded.contains_key(&name) {
            continue;
        }
        let Some(ops) = model_op_types(&entry.path().join("model.onnx")) else { continue };
        if !ops.is_empty() && ops.iter().all(|o| supported.contains(o.as_str())) {
            missing.entry(ops.join("+")).or_default().push(name);
        }
    }
    let report: Vec<String> = missing.iter().map(|(op, cases)| format!("{op}: {}", cases.join(" "))).collect();
    assert!(
        missing.is_empty(),
        "node tests of supported ops neither in manifest.txt nor excluded.txt:\n{}",
        report.join("\n")
    );
}
