//! The pass driver: runs each pass's rules over the graph until none applies.
//!
//! A pass sweeps the nodes in topological order, trying every rule on each. A rewrite is
//! applied at once and the sweep goes on: the nodes the patch may have changed the
//! outcome for (its new and rewired nodes, the producers and readers of the values it
//! touched, what was re-inferred, and visited nodes downstream of new ones) are put back
//! on the sweep's agenda, which always continues with the earliest node. That visits
//! nodes in the order the simple driver (restart from the first node after every rewrite,
//! [`optimize_reference`]) would find rewrites in, without its quadratic cost. A sweep
//! that applies nothing ends the pass.
//!
//! Each patch is checked where it touched the graph and only its new and rewired nodes,
//! and downstream while facts change, are re-inferred; a failure names the pass, rule and
//! node. After each pass the whole graph is checked (`check::check`) and every graph
//! output must still have its original dtype and shape.

use crate::report::{Applied, Refusal};
use crate::work::{PatchError, Work};
use crate::{Ctx, OptError, Outcome, Report, RewriteAt, Rule};
use sinter_ir::{check, infer::infer_graph, DType, Fact, Graph, IrError};
use std::collections::{HashMap, HashSet};

/// A named group of rules run together to a fixpoint.
pub struct Pass {
    pub name: &'static str,
    pub rules: Vec<Box<dyn Rule>>,
}

/// User controls: rules switched off by name, and a step limit for bisecting a bad rewrite.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub disabled: HashSet<String>,
    /// Apply at most this many rewrites (over all passes), then stop.
    pub max_steps: Option<usize>,
}

/// The rules of `passes` enabled by `opts`, or the first disabled name no pass has.
fn enabled<'p>(passes: &'p [Pass], opts: &Options) -> Result<Vec<Vec<&'p dyn Rule>>, OptError> {
    let known: HashSet<&str> = passes.iter().flat_map(|p| p.rules.iter().map(|r| r.name())).collect();
    if let Some(unknown) = opts.disabled.iter().find(|d| !known.contains(d.as_str())) {
        return Err(OptError::UnknownRule(unknown.clone()));
    }
    Ok(passes
        .iter()
        .map(|p| p.rules.iter().map(|r| r.as_ref()).filter(|r| !opts.disabled.contains(r.name())).collect())
        .collect())
}

fn input_error(e: IrError) -> OptError {
    OptError::Input { source: Box::new(e) }
}

/// What callers rely on a graph output keeping: its dtype and shape.
type Signature = (DType, Vec<usize>);

/// Refusals already reported in a pass: (rule, node, reason).
type Seen = HashSet<(String, String, String)>;

fn record_refusal(report: &mut Report, seen: &mut Seen, pass: &str, rule: &str, node: &str, reason: String) {
    if seen.insert((rule.into(), node.into(), reason.clone())) {
        report.refused.push(Refusal { pass: pass.into(), rule: rule.into(), node: node.into(), reason });
    }
}

/// Runs `passes` over `graph`. `inputs` are the facts of the graph's runtime inputs
/// (as the builder resolved them).
///
/// `graph` is written after every pass, so on an error it holds the graph after the last
/// completed pass; with `max_steps` it holds the graph after exactly that many rewrites.
pub fn optimize(
    graph: &mut Graph,
    inputs: &HashMap<String, Fact>,
    passes: &[Pass],
    opts: &Options,
) -> Result<Report, OptError> {
    let rules = enabled(passes, opts)?;
    check::check(graph).map_err(input_error)?;
    let facts = infer_graph(graph, inputs).map_err(input_error)?;
    let declared: Vec<(String, Option<Signature>)> = graph
        .outputs
        .iter()
        .map(|o| (o.name.clone(), facts.get(&o.name).map(|f| (f.dtype, f.shape.clone()))))
        .collect();
    let mut work = Work::new(graph, facts).map_err(input_error)?;
    let mut report = Report::default();
    // The last rewrite that changed each graph output's fact.
    let mut blame: HashMap<String, RewriteAt> = HashMap::new();
    for (pass, rules) in passes.iter().zip(&rules) {
        let finished = run_pass(&mut work, pass.name, rules, opts, &mut report, &mut blame)?;
        work.materialize(graph);
        if !finished {
            report.stopped_early = true;
            return Ok(report);
        }
        check::check(graph).map_err(|e| OptError::Check { pass: pass.name.into(), source: Box::new(e) })?;
        for (output, before) in &declared {
            let after = work.fact(output).map(|f| (f.dtype, f.shape.clone()));
            if after != *before {
                let show = |f: &Option<Signature>| f.as_ref().map_or("nothing".into(), |(d, s)| format!("{d} {s:?}"));
                return Err(OptError::OutputChanged {
                    pass: pass.name.into(),
                    output: output.clone(),
                    before: show(before),
                    after: show(&after),
                    by: blame.get(output).cloned().map(Box::new),
                });
            }
        }
    }
    Ok(report)
}

/// Runs one pass to its fixpoint. Returns false when `max_steps` stopped it.
fn run_pass(
    work: &mut Work,
    pass: &str,
    rules: &[&dyn Rule],
    opts: &Options,
    report: &mut Report,
    blame: &mut HashMap<String, RewriteAt>,
) -> Result<bool, OptError> {
    let mut seen = Seen::new();
    loop {
        let mut rewrote = false;
        work.fill_agenda();
        while let Some(i) = work.next_on_agenda() {
            let Some(node_name) = work.node(i).map(|n| n.name.clone()) else { continue };
            for rule in rules {
                let at = |e: IrError| (pass.to_string(), rule.name().to_string(), node_name.clone(), Box::new(e));
                let outcome = rule.apply(&Ctx::new(work), i).map_err(|e| {
                    let (pass, rule, node, source) = at(e);
                    OptError::Rule { pass, rule, node, source }
                })?;
                let patch = match outcome {
                    Outcome::NotApplicable => continue,
                    Outcome::Refused(reason) => {
                        record_refusal(report, &mut seen, pass, rule.name(), &node_name, reason);
                        continue;
                    }
                    Outcome::Rewrite(patch) => patch,
                };
                if opts.max_steps.is_some_and(|m| report.steps >= m) {
                    return Ok(false);
                }
                let applied = Applied {
                    pass: pass.into(),
                    rule: rule.name().into(),
                    nodes: patch.remove.iter().filter_map(|&r| work.node(r)).map(|n| n.name.clone()).collect(),
                    created: patch.insert.iter().map(|n| n.name.clone()).collect(),
                };
                let change = work.apply(patch).map_err(|e| match e {
                    PatchError::Inconsistent(e) => {
                        let (pass, rule, node, source) = at(e);
                        OptError::Inconsistent { pass, rule, node, source }
                    }
                    PatchError::Infer(e) => {
                        let (pass, rule, node, source) = at(e);
                        OptError::RewriteInfer { pass, rule, node, source }
                    }
                })?;
                report.steps += 1;
                report.applied.push(applied);
                for o in change.outputs_changed {
                    blame.insert(o, RewriteAt { rule: rule.name().into(), node: node_name.clone() });
                }
                // Back on the agenda: what may decide differently now, and visited nodes
                // downstream of new or rewired ones (they may look upstream at them).
                for s in change.affected.iter().chain(&work.visited_downstream(&change.changed)).chain([&i]) {
                    work.schedule(*s);
                }
                rewrote = true;
                break;
            }
        }
        if !rewrote {
            return Ok(true);
        }
    }
}

/// The specification of [`optimize`]'s rewrites, kept as a test oracle: after every
/// rewrite it re-infers the whole graph and starts again from the first node and rule.
/// Quadratic in the graph's size; `optimize` must apply the same rewrites and reach the
/// same graph. It checks no outputs and stops at the first error.
pub fn optimize_reference(
    graph: &mut Graph,
    inputs: &HashMap<String, Fact>,
    passes: &[Pass],
    opts: &Options,
) -> Result<Report, OptError> {
    let rules = enabled(passes, opts)?;
    let mut report = Report::default();
    for (pass, rules) in passes.iter().zip(&rules) {
        let mut seen = Seen::new();
        'fixpoint: loop {
            let facts = infer_graph(graph, inputs).map_err(input_error)?;
            let work = Work::new(graph, facts).map_err(input_error)?;
            let ctx = Ctx::new(&work);
            for i in 0..graph.nodes.len() {
                for rule in rules {
                    let node = &graph.nodes[i];
                    let at = |e| (pass.name.to_string(), rule.name().to_string(), node.name.clone(), Box::new(e));
                    let outcome = rule.apply(&ctx, i).map_err(|e| {
                        let (pass, rule, node, source) = at(e);
                        OptError::Rule { pass, rule, node, source }
                    })?;
                    match outcome {
                        Outcome::NotApplicable => {}
                        Outcome::Refused(reason) => {
                            record_refusal(&mut report, &mut seen, pass.name, rule.name(), &node.name, reason)
                        }
                        Outcome::Rewrite(patch) => {
                            if opts.max_steps.is_some_and(|m| report.steps >= m) {
                                report.stopped_early = true;
                                return Ok(report);
                            }
                            let applied = Applied {
                                pass: pass.name.into(),
                                rule: rule.name().into(),
                                nodes: patch.removed_names(graph),
                                created: patch.insert.iter().map(|n| n.name.clone()).collect(),
                            };
                            let mut next = graph.clone();
                            let bad = |e| {
                                let (pass, rule, node, source) = at(e);
                                OptError::Inconsistent { pass, rule, node, source }
                            };
                            patch.apply(&mut next).map_err(bad)?;
                            check::check(&next).map_err(bad)?;
                            *graph = next;
                            report.steps += 1;
                            report.applied.push(applied);
                            continue 'fixpoint;
                        }
                    }
                }
            }
            break;
        }
    }
    Ok(report)
}
