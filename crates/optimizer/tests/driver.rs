//! Tests of the pass driver itself: errors name the pass, rule and node of the rewrite
//! that caused them, graph outputs keep their dtype and shape, `max_steps` stops after
//! exactly that many rewrites, and batched sweeps reach what the reference driver
//! (whole-graph re-inference and a restart after every rewrite) reaches.

mod common;

use common::*;
use sinter_ir::{AttrValue, Graph, Node, Result};
use sinter_optimizer::rules::{default_passes, Cse, DeadNodes, FoldConstants, RemoveIdentity, ReshapeChain};
use sinter_optimizer::{optimize, optimize_reference, Ctx, OptError, Options, Outcome, Pass, Patch, Rule};

/// A test rule: replaces each node of op type `op` by what `make` builds from it.
struct Replace {
    name: &'static str,
    op: &'static str,
    make: fn(&Node) -> Node,
}

impl Rule for Replace {
    fn name(&self) -> &'static str {
        self.name
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        if node.op_type != self.op {
            return Ok(Outcome::NotApplicable);
        }
        Ok(Outcome::Rewrite(Patch { remove: vec![i], insert: vec![(self.make)(node)], ..Default::default() }))
    }
}

fn pass(rule: Replace) -> Vec<Pass> {
    vec![Pass { name: "broken", rules: vec![Box::new(rule)] }]
}

fn run(g: &Graph, passes: &[Pass]) -> std::result::Result<sinter_optimizer::Report, OptError> {
    optimize(&mut g.clone(), &input_facts(g), passes, &Options::default())
}

/// `x[2, 3] -> Relu -> r -> MatMul(w[3, 4]) -> y`.
fn relu_matmul() -> Graph {
    graph(
        &[("x", &[2, 3])],
        &["y"],
        vec![("w", rand_t(1, &[3, 4])), ("shape32", i64s(&[3, 2])), ("v3", rand_t(2, &[3]))],
        vec![node("relu", "Relu", &["x"], &["r"]), node("mm", "MatMul", &["r", "w"], &["y"])],
    )
}

#[test]
fn a_rewrite_breaking_inference_downstream_names_pass_rule_and_node() {
    // Relu(x) becomes Reshape(x, [3, 2]): consistent, but MatMul can no longer take it.
    let rule = Replace {
        name: "reshape_instead",
        op: "Relu",
        make: |n| node(&n.name, "Reshape", &[&n.inputs[0], "shape32"], &[&n.outputs[0]]),
    };
    let err = run(&relu_matmul(), &pass(rule)).expect_err("the MatMul no longer infers");
    match &err {
        OptError::RewriteInfer { pass, rule, node, source } => {
            assert_eq!((pass.as_str(), rule.as_str(), node.as_str()), ("broken", "reshape_instead", "relu"));
            assert!(source.to_string().contains("'mm'"), "{source}");
        }
        other => panic!("expected RewriteInfer, got {other}"),
    }
    assert!(err.to_string().contains("pass 'broken', rule 'reshape_instead', node 'relu'"), "{err}");
}

#[test]
fn a_rewrite_whose_node_does_not_infer_names_pass_rule_and_node() {
    // Relu(x[2, 3]) becomes Add(x, v[3]) with v of the wrong dtype: f32 + i64.
    let rule = Replace {
        name: "wrong_dtype",
        op: "Relu",
        make: |n| node(&n.name, "Add", &[&n.inputs[0], "shape32"], &[&n.outputs[0]]),
    };
    let err = run(&relu_matmul(), &pass(rule)).expect_err("Add of f32 and i64 does not infer");
    assert!(
        matches!(&err, OptError::RewriteInfer { pass, rule, node, .. } if pass == "broken" && rule == "wrong_dtype" && node == "relu"),
        "{err}"
    );
}

#[test]
fn an_inconsistent_patch_names_pass_rule_and_node() {
    let rule =
        Replace { name: "reads_nothing", op: "Relu", make: |n| node(&n.name, "Relu", &["nowhere"], &[&n.outputs[0]]) };
    let err = run(&relu_matmul(), &pass(rule)).expect_err("'nowhere' is not defined");
    match &err {
        OptError::Inconsistent { pass, rule, node, source } => {
            assert_eq!((pass.as_str(), rule.as_str(), node.as_str()), ("broken", "reads_nothing", "relu"));
            assert!(source.to_string().contains("'nowhere'"), "{source}");
        }
        other => panic!("expected Inconsistent, got {other}"),
    }
}

#[test]
fn a_patch_creating_a_cycle_is_inconsistent() {
    // The MatMul is replaced by one reading its own output.
    let rule = Replace { name: "cycle", op: "MatMul", make: |n| node(&n.name, "MatMul", &["y", "w"], &["y"]) };
    let err = run(&relu_matmul(), &pass(rule)).expect_err("a node reading its own output");
    assert!(matches!(&err, OptError::Inconsistent { rule, node, .. } if rule == "cycle" && node == "mm"), "{err}");
    assert!(err.to_string().contains("cycle"), "{err}");
}

#[test]
fn a_pass_changing_an_output_shape_is_refused_with_the_rule() {
    // `y = Relu(x)` becomes `y = Reshape(x, [3, 2])`: consistent, inferable, wrong shape.
    let g =
        graph(&[("x", &[2, 3])], &["y"], vec![("shape32", i64s(&[3, 2]))], vec![node("relu", "Relu", &["x"], &["y"])]);
    let rule = Replace {
        name: "reshape_output",
        op: "Relu",
        make: |n| node(&n.name, "Reshape", &[&n.inputs[0], "shape32"], &[&n.outputs[0]]),
    };
    let err = run(&g, &pass(rule)).expect_err("the output's shape changed");
    match &err {
        OptError::OutputChanged { pass, output, before, after, by } => {
            assert_eq!((pass.as_str(), output.as_str()), ("broken", "y"));
            assert!(before.contains("[2, 3]") && after.contains("[3, 2]"), "{before} -> {after}");
            let by = by.as_ref().expect("attributed");
            assert_eq!((by.rule.as_str(), by.node.as_str()), ("reshape_output", "relu"));
        }
        other => panic!("expected OutputChanged, got {other}"),
    }
    assert!(err.to_string().contains("rule 'reshape_output'"), "{err}");
}

#[test]
fn a_pass_changing_an_output_dtype_is_refused() {
    let g = graph(&[("x", &[2, 3])], &["y"], vec![], vec![node("relu", "Relu", &["x"], &["y"])]);
    let rule = Replace {
        name: "cast_output",
        op: "Relu",
        make: |n| node_with(&n.name, "Cast", attrs(&[("to", AttrValue::Int(10))]), &[&n.inputs[0]], &[&n.outputs[0]]),
    };
    let err = run(&g, &pass(rule)).expect_err("the output's dtype changed");
    assert!(
        matches!(&err, OptError::OutputChanged { output, by: Some(by), .. } if output == "y" && by.rule == "cast_output"),
        "{err}"
    );
}

/// A test rule: merges `a = Relu(..)` into the Add reading it as input 0, as `Mul(b, x)`
/// placed where the Relu was, before `b`'s producer: the driver must reorder.
struct MergeEarly;

impl Rule for MergeEarly {
    fn name(&self) -> &'static str {
        "merge_early"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        if node.op_type != "Add" {
            return Ok(Outcome::NotApplicable);
        }
        let Some(p) = ctx.producer(&node.inputs[0]) else { return Ok(Outcome::NotApplicable) };
        let relu = ctx.node(p);
        let merged = mul_node(&node.name, &node.inputs[1], &relu.inputs[0], &node.outputs[0]);
        Ok(Outcome::Rewrite(Patch { remove: vec![p, i], insert: vec![merged], ..Default::default() }))
    }
}

fn mul_node(name: &str, a: &str, b: &str, out: &str) -> Node {
    node(name, "Mul", &[a, b], &[out])
}

#[test]
fn a_new_node_reading_a_later_value_is_moved_after_it() {
    let g = graph(
        &[("x", &[2, 3])],
        &["y"],
        vec![],
        vec![
            node("relu", "Relu", &["x"], &["a"]),
            node("neg", "Neg", &["x"], &["n"]),
            node("exp", "Exp", &["n"], &["b"]),
            node("add", "Add", &["a", "b"], &["c"]),
            node("out", "Sigmoid", &["c"], &["y"]),
        ],
    );
    let (out, _) = run_rule(&g, MergeEarly);
    assert_eq!(op_types(&out), ["Neg", "Exp", "Mul", "Sigmoid"]);
}

/// `depth` Identity nodes in a row after a Relu.
fn identities(depth: usize) -> Graph {
    let mut nodes = vec![node("relu", "Relu", &["x"], &["v0"])];
    for k in 0..depth {
        let (i, o) = (format!("v{k}"), if k + 1 == depth { "y".to_string() } else { format!("v{}", k + 1) });
        nodes.push(node(&format!("id{k}"), "Identity", &[&i], &[&o]));
    }
    graph(&[("x", &[2, 3])], &["y"], vec![], nodes)
}

#[test]
fn max_steps_stops_after_exactly_that_many_rewrites() {
    let g = identities(6);
    for n in 0..=7 {
        let opts = Options { max_steps: Some(n), ..Default::default() };
        let passes = [Pass { name: "simplify", rules: vec![Box::new(RemoveIdentity) as Box<dyn Rule>] }];
        let (out, report) = run_passes(&g, &passes, &opts);
        assert_eq!(report.steps, n.min(6));
        assert_eq!(report.applied.len(), n.min(6));
        assert_eq!(report.stopped_early, n < 6, "max_steps {n}");
        assert_eq!(op_types(&out).iter().filter(|o| **o == "Identity").count(), 6 - n.min(6));
        assert_same_outputs(&g, &out, n as u64);
    }
}

/// A graph the default pipeline rewrites in every pass: a folded shape subgraph, an
/// identity, a duplicate, a Conv + BatchNorm + Relu, an elementwise chain, and two
/// sibling MatMuls.
fn busy_graph() -> Graph {
    let bn = |name: &str, x: &str, y: &str| node(name, "BatchNormalization", &[x, "g", "be", "m", "v"], &[y]);
    graph(
        &[("x", &[1, 3, 4, 4])],
        &["y", "q", "k"],
        vec![
            ("w", rand_t(1, &[3, 3, 3, 3])),
            ("g", rand_t(2, &[3])),
            ("be", rand_t(3, &[3])),
            ("m", rand_t(4, &[3])),
            ("v", t(&[3], vec![0.5, 0.7, 0.9])),
            ("half", t(&[], vec![0.5])),
            ("minus1", i64s(&[-1])),
            ("zero", i64s(&[0])),
            ("wq", rand_t(5, &[48, 6])),
            ("wk", rand_t(6, &[48, 5])),
        ],
        vec![
            node_with("conv", "Conv", attrs(&[("pads", AttrValue::Ints(vec![1, 1, 1, 1]))]), &["x", "w"], &["c"]),
            node("id", "Identity", &["c"], &["c1"]),
            bn("bn", "c1", "b"),
            node("relu", "Relu", &["b"], &["r"]),
            node("relu2", "Relu", &["b"], &["r2"]),
            node("sum", "Add", &["r", "r2"], &["s"]),
            node("scale", "Mul", &["s", "half"], &["h"]),
            node("sig", "Sigmoid", &["h"], &["y"]),
            node("shape", "Shape", &["h"], &["hs"]),
            node("batch", "Gather", &["hs", "zero"], &["n"]),
            node_with("newshape", "Concat", attrs(&[("axis", AttrValue::Int(0))]), &["n", "minus1"], &["ns"]),
            node("flat", "Reshape", &["h", "ns"], &["f"]),
            node("mq", "MatMul", &["f", "wq"], &["q0"]),
            node("rq", "Relu", &["q0"], &["q"]),
            node("mk", "MatMul", &["f", "wk"], &["k0"]),
            node("rk", "Relu", &["k0"], &["k"]),
        ],
    )
}

#[test]
fn the_default_pipeline_matches_the_reference_driver() {
    let g = busy_graph();
    let (out, report) = run_passes(&g, &default_passes(), &Options::default());
    for pass in ["fold", "simplify", "fuse", "horizontal"] {
        assert!(report.applied.iter().any(|a| a.pass == pass), "nothing applied in {pass}: {report}");
    }
    assert_same_outputs(&g, &out, 5);
}

#[test]
fn max_steps_bisects_across_passes() {
    let g = busy_graph();
    let total = run_passes(&g, &default_passes(), &Options::default()).1.steps;
    assert!(total > 5);
    for n in 0..=total {
        let opts = Options { max_steps: Some(n), ..Default::default() };
        let (out, report) = run_passes(&g, &default_passes(), &opts);
        assert_eq!(report.steps, n);
        assert_eq!(report.stopped_early, n < total);
        assert_same_outputs(&g, &out, 7);
    }
}

/// The default pipeline before constant folding became its own pass.
fn passes_with_folding_in_simplify() -> Vec<Pass> {
    let mut passes = default_passes();
    let fold = passes.remove(0);
    assert_eq!(fold.name, "fold");
    passes[0].rules.splice(0..0, fold.rules);
    passes
}

#[test]
fn folding_as_its_own_pass_gives_the_same_graph() {
    let g = busy_graph();
    let (out, _) = run_passes(&g, &default_passes(), &Options::default());
    let (old, _) = run_passes(&g, &passes_with_folding_in_simplify(), &Options::default());
    assert_same_graph(&out, &old);
}

/// Blocks `Relu, Add(c), Identity, Mul(k), Exp` in `cols` columns of `rows`, each column
/// adding its own constant: many independent rewrites per sweep.
fn blocks(rows: usize, cols: usize) -> Graph {
    let mut nodes = Vec::new();
    let mut outs = Vec::new();
    for c in 0..cols {
        let mut prev = "x".to_string();
        for r in 0..rows {
            let v = |s: &str| format!("{s}_{c}_{r}");
            let ops: [(&str, &str, Vec<String>); 5] = [
                ("relu", "Relu", vec![prev.clone()]),
                ("add", "Add", vec![v("relu"), format!("cst{c}")]),
                ("id", "Identity", vec![v("add")]),
                ("mul", "Mul", vec![v("id"), "k".into()]),
                ("exp", "Exp", vec![v("mul")]),
            ];
            for (name, op, inputs) in ops {
                let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                nodes.push(node(&v(name), op, &inputs, &[&v(name)]));
            }
            prev = v("exp");
        }
        outs.push(prev);
    }
    let outs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let mut inits: Vec<(&str, sinter_ir::Tensor)> = vec![("k", t(&[], vec![0.25]))];
    let names: Vec<String> = (0..cols).map(|c| format!("cst{c}")).collect();
    inits.extend(names.iter().enumerate().map(|(c, n)| (n.as_str(), rand_t(9 + c as u64, &[3]))));
    graph(&[("x", &[2, 3])], &outs, inits, nodes)
}

#[test]
fn batched_sweeps_reach_the_reference_graph() {
    let g = blocks(6, 3);
    let (out, report) = run_passes(&g, &default_passes(), &Options::default());
    assert_eq!(report.count("remove_identity"), 18);
    // The columns' first Relu(x) are one after cse; read by three Adds, it stays alone.
    assert_eq!(report.count("cse"), 2);
    assert_eq!(report.count("elementwise_chain"), 33);
    assert_eq!(op_types(&out).iter().filter(|o| **o == "FusedElementwise").count(), 18);
    assert_same_outputs(&g, &out, 11);
}

#[test]
fn duplicate_columns_fold_into_one_as_in_the_reference() {
    // Columns computing the same thing: cse merges them across the whole graph.
    let mut g = blocks(4, 3);
    for c in 1..3 {
        let first = g.initializers["cst0"].clone();
        g.initializers.insert(format!("cst{c}"), first);
    }
    let (out, report) = run_passes(&g, &default_passes(), &Options::default());
    assert!(report.count("cse") > 0, "{report}");
    assert_same_outputs(&g, &out, 12);
}

#[test]
fn simplify_rules_together_match_the_reference() {
    // Folding, dead nodes, identities, duplicates and reshape chains interleave.
    let g = busy_graph();
    let rules: Vec<Box<dyn Rule>> = vec![
        Box::new(FoldConstants),
        Box::new(DeadNodes),
        Box::new(RemoveIdentity),
        Box::new(Cse),
        Box::new(ReshapeChain),
    ];
    let (out, _) = run_rules(&g, rules);
    assert_same_outputs(&g, &out, 3);
}

#[test]
fn the_reference_driver_is_what_the_driver_is_checked_against() {
    // Sanity: the reference itself rewrites (so agreeing with it means something).
    let g = identities(3);
    let mut out = g.clone();
    let passes = [Pass { name: "simplify", rules: vec![Box::new(RemoveIdentity) as Box<dyn Rule>] }];
    let report = optimize_reference(&mut out, &input_facts(&g), &passes, &Options::default()).unwrap();
    assert_eq!(report.steps, 3);
    assert_eq!(op_types(&out), ["Relu"]);
}

/// A test rule that never reaches a fixpoint: replaces the Relu writing `b` by an Identity
/// and a new Relu, both inserted where it was (between the same two neighbours).
struct Grow;

impl Rule for Grow {
    fn name(&self) -> &'static str {
        "grow"
    }

    fn apply(&self, ctx: &Ctx, i: usize) -> Result<Outcome> {
        let node = ctx.node(i);
        if node.op_type != "Relu" || node.outputs[0] != "b" {
            return Ok(Outcome::NotApplicable);
        }
        let v = ctx.fresh_name("v");
        let insert = vec![
            node_with(&ctx.fresh_name("id"), "Identity", Default::default(), &[&node.inputs[0]], &[&v]),
            node_with(&ctx.fresh_name("relu"), "Relu", Default::default(), &[&v], &["b"]),
        ];
        Ok(Outcome::Rewrite(Patch { remove: vec![i], insert, ..Default::default() }))
    }
}

#[test]
fn many_insertions_at_one_place_keep_the_order() {
    // Each rewrite puts two nodes between the same neighbours: the order keys between
    // them run out and are respread several times.
    let g = graph(
        &[("x", &[2, 3])],
        &["y"],
        vec![],
        vec![
            node("neg", "Neg", &["x"], &["a"]),
            node("relu", "Relu", &["a"], &["b"]),
            node("tail", "Exp", &["b"], &["y"]),
        ],
    );
    let opts = Options { max_steps: Some(150), ..Default::default() };
    let (out, report) = run_passes(&g, &[Pass { name: "grow", rules: vec![Box::new(Grow)] }], &opts);
    assert!(report.stopped_early);
    assert_eq!(out.nodes.len(), 153);
    assert_eq!(out.nodes.first().map(|n| n.name.as_str()), Some("neg"));
    assert_eq!(out.nodes.last().map(|n| n.name.as_str()), Some("tail"));
    sinter_ir::check::check(&out).expect("in topological order");
    assert_same_outputs(&g, &out, 4);
}
