//! What the optimizer did and why it did not do more: shown by `sinter build --report`
//! and stored for `sinter inspect`.

use std::fmt;

/// One applied rewrite.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub pass: String,
    pub rule: String,
    /// Nodes the rewrite removed or merged.
    pub nodes: Vec<String>,
    /// Nodes it created.
    pub created: Vec<String>,
}

/// A candidate a rule looked at and refused, with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub pass: String,
    pub rule: String,
    pub node: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub applied: Vec<Applied>,
    pub refused: Vec<Refusal>,
    /// Rewrites applied (the unit of `--max-steps`).
    pub steps: usize,
    /// True when the step limit stopped the optimizer early.
    pub stopped_early: bool,
}

impl Report {
    /// How many times `rule` was applied.
    pub fn count(&self, rule: &str) -> usize {
        self.applied.iter().filter(|a| a.rule == rule).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "applied {} rewrites{}:",
            self.steps,
            if self.stopped_early { " (stopped by --max-steps)" } else { "" }
        )?;
        for a in &self.applied {
            let created = if a.created.is_empty() { "removed".to_string() } else { a.created.join(", ") };
            writeln!(f, "  {}/{}: {} -> {created}", a.pass, a.rule, a.nodes.join(", "))?;
        }
        if !self.refused.is_empty() {
            writeln!(f, "refused:")?;
            for r in &self.refused {
                writeln!(f, "  {}/{}: {}: {}", r.pass, r.rule, r.node, r.reason)?;
            }
        }
        Ok(())
    }
}
