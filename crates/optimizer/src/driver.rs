//! The pass driver: runs each pass's rules over the graph until none applies,
//! re-inferring facts and checking consistency after every rewrite.

use crate::report::{Applied, Refusal};
use crate::{Ctx, OptError, Outcome, Report, Rule};
use sinter_ir::{check, infer::infer_graph, Fact, Graph};
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
    pub max_steps: Option<usize>,
}

/// Runs `passes` over `graph`. `inputs` are the facts of the graph's runtime inputs
/// (as the builder resolved them).
pub fn optimize(
    graph: &mut Graph,
    inputs: &HashMap<String, Fact>,
    passes: &[Pass],
    opts: &Options,
) -> Result<Report, OptError> {
    let known: HashSet<&str> = passes.iter().flat_map(|p| p.rules.iter().map(|r| r.name())).collect();
    if let Some(unknown) = opts.disabled.iter().find(|d| !known.contains(d.as_str())) {
        return Err(OptError::UnknownRule(unknown.clone()));
    }
    let mut report = Report::default();
    for pass in passes {
        let rules: Vec<&dyn Rule> =
            pass.rules.iter().map(|r| r.as_ref()).filter(|r| !opts.disabled.contains(r.name())).collect();
        let mut refused: HashSet<(String, String, String)> = HashSet::new();
        'fixpoint: loop {
            let facts = infer_graph(graph, inputs)
                .map_err(|e| OptError::Infer { pass: pass.name.into(), source: Box::new(e) })?;
            let ctx = Ctx::new(graph, &facts);
            for i in 0..graph.nodes.len() {
                for rule in &rules {
                    let node = &graph.nodes[i];
                    let err = |e| OptError::Rule {
                        pass: pass.name.into(),
                        rule: rule.name().into(),
                        node: node.name.clone(),
                        source: Box::new(e),
                    };
                    match rule.apply(&ctx, i).map_err(err)? {
                        Outcome::NotApplicable => {}
                        Outcome::Refused(reason) => {
                            if refused.insert((rule.name().into(), node.name.clone(), reason.clone())) {
                                report.refused.push(Refusal {
                                    pass: pass.name.into(),
                                    rule: rule.name().into(),
                                    node: node.name.clone(),
                                    reason,
                                });
                            }
                        }
                        Outcome::Rewrite(patch) => {
                            if opts.max_steps.is_some_and(|m| report.steps >= m) {
                                report.stopped_early = true;
                                return Ok(report);
                            }
                            let nodes = patch.removed_names(graph);
                            let created = patch.insert.iter().map(|n| n.name.clone()).collect();
                            let node_name = node.name.clone();
                            let mut next = graph.clone();
                            drop(ctx);
                            let bad = |e| OptError::Inconsistent {
                                pass: pass.name.into(),
                                rule: rule.name().into(),
                                node: node_name.clone(),
                                source: Box::new(e),
                            };
                            patch.apply(&mut next).map_err(bad)?;
                            check::check(&next).map_err(bad)?;
                            *graph = next;
                            report.steps += 1;
                            report.applied.push(Applied {
                                pass: pass.name.into(),
                                rule: rule.name().into(),
                                nodes,
                                created,
                            });
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
