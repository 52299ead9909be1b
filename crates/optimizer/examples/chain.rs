//! Times the default passes on a long chain of elementwise nodes, the shape of graph that
//! made a driver re-inferring the whole graph after every rewrite quadratic.
//!
//! `cargo run --release -p sinter-optimizer --example chain -- [NODES] [--fuse-all]`
//! (default 10000 nodes). The chain repeats `Relu, Add(c), Identity, Mul(k), Exp`: the
//! simplify pass removes the Identity nodes and `elementwise_chain` fuses each
//! `Relu, Add, Mul` run (Exp is no fusable step), so fusion groups stay small as in real
//! models. With `--fuse-all` it repeats `Relu, Add(c), Mul(k)`, which fuses into one node
//! of NODES steps: there the rule rebuilding an ever longer node dominates (quadratic in
//! the chain's length by the rule's design), not the driver.
//! A measurement, not a test: nothing here fails on time.

use sinter_ir::{Attrs, DType, Dim, Fact, Graph, IrError, Node, Tensor, ValueInfo};
use sinter_optimizer::{optimize, rules::default_passes, Options};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// `x -> Relu -> Add(c) -> ...` with `n` nodes repeating `ops`, output `y`.
fn chain(n: usize, ops: &[&str]) -> Result<Graph, IrError> {
    let value = |i: usize| if i + 1 == n { "y".to_string() } else { format!("v{i}") };
    let mut nodes = Vec::with_capacity(n);
    let mut prev = "x".to_string();
    for i in 0..n {
        let op = ops[i % ops.len()];
        let inputs = match op {
            "Add" => vec![prev.clone(), "c".to_string()],
            "Mul" => vec![prev.clone(), "k".to_string()],
            _ => vec![prev.clone()],
        };
        nodes.push(Node::new(format!("n{i}"), op, 17, Attrs::new(), inputs, vec![value(i)])?);
        prev = value(i);
    }
    let f32_info = |name: &str| ValueInfo {
        name: name.into(),
        dtype: DType::F32,
        dims: Some(vec![Dim::Fixed(1), Dim::Fixed(64)]),
    };
    Ok(Graph {
        name: "chain".into(),
        inputs: vec![f32_info("x")],
        outputs: vec![f32_info("y")],
        initializers: [
            ("c".to_string(), Arc::new(Tensor::from_vec(&[64], vec![0.25f32; 64])?)),
            ("k".to_string(), Arc::new(Tensor::from_vec(&[], vec![0.5f32])?)),
        ]
        .into_iter()
        .collect(),
        source_nodes: n,
        nodes,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fuse_all = args.iter().any(|a| a == "--fuse-all");
    let n: usize = args.iter().find(|a| !a.starts_with("--")).map(|s| s.parse()).transpose()?.unwrap_or(10_000);
    let ops: &[&str] = if fuse_all { &["Relu", "Add", "Mul"] } else { &["Relu", "Add", "Identity", "Mul", "Exp"] };
    let mut g = chain(n, ops)?;
    let inputs: HashMap<String, Fact> = [("x".to_string(), Fact::new(DType::F32, [1, 64]))].into_iter().collect();
    let passes = default_passes();
    let start = Instant::now();
    let report = optimize(&mut g, &inputs, &passes, &Options::default())?;
    let took = start.elapsed();
    println!(
        "{n} nodes ({}): optimized in {:.3} s, {} rewrites, {} nodes left ({:?})",
        ops.join(", "),
        took.as_secs_f64(),
        report.steps,
        g.nodes.len(),
        g.op_histogram()
    );
    Ok(())
}
