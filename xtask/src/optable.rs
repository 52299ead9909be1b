//! The README's operator table, generated from the conformance manifest: for each
//! supported op type, how many manifest cases use it (read from the cases' models).

use anyhow::{bail, Context, Result};
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;

const BEGIN: &str = "<!-- optable:begin -->";
const END: &str = "<!-- optable:end -->";

fn op_types(model: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let m = sinter_onnx::proto::ModelProto::decode(bytes.as_slice())?;
    let mut ops: Vec<String> =
        m.graph.map(|g| g.node.into_iter().filter_map(|n| n.op_type).collect()).unwrap_or_default();
    ops.sort();
    ops.dedup();
    Ok(ops)
}

pub fn write(root: &Path, node_dir: &Path) -> Result<()> {
    let manifest = std::fs::read_to_string(root.join("tests/conformance/manifest.txt"))?;
    let mut counts: BTreeMap<String, usize> =
        sinter_ir::ops::supported_ops().into_iter().map(|op| (op.to_string(), 0)).collect();
    let mut cases = 0;
    for line in manifest.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()) {
        let name = line.split_whitespace().next().unwrap_or_default();
        cases += 1;
        for op in op_types(&node_dir.join(name).join("model.onnx"))? {
            if let Some(c) = counts.get_mut(&op) {
                *c += 1;
            }
        }
    }
    let mut table = format!(
        "{BEGIN}\n{} operators; {cases} ONNX node conformance cases in the manifest. \
         A count is the number of manifest cases whose model uses the operator \
         (0: covered by the real-model tests or only by unit tests; see `tests/conformance/excluded.txt` for why).\n\n\
         | operator | manifest cases |\n|---|---|\n",
        counts.len()
    );
    for (op, n) in &counts {
        table.push_str(&format!("| {op} | {n} |\n"));
    }
    table.push_str(END);
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    let (Some(a), Some(b)) = (readme.find(BEGIN), readme.find(END)) else {
        bail!("README.md has no {BEGIN} … {END} block");
    };
    let updated = format!("{}{}{}", &readme[..a], table, &readme[b + END.len()..]);
    std::fs::write(readme_path, updated)?;
    println!("README operator table: {} operators, {cases} cases", counts.len());
    Ok(())
}
