//! Sinter's graph optimizer. A rewrite is a named [`Rule`] that looks at one node,
//! checks every precondition and returns a [`Patch`] (or says why it refused); it never
//! mutates the graph. The [`driver`] applies patches pass by pass to a fixpoint, checks
//! each patch where it touched the graph and the whole graph after every pass, and
//! records what it did in a [`Report`].
#![forbid(unsafe_code)]

pub mod ctx;
pub mod driver;
mod error;
pub mod patch;
pub mod report;
pub mod rules;
mod work;

pub use ctx::Ctx;
pub use driver::{optimize, optimize_reference, Options, Pass};
pub use error::{OptError, RewriteAt};
pub use patch::Patch;
pub use report::{Applied, Refusal, Report};

/// What a rule decides about one node.
pub enum Outcome {
    /// The node is not this rule's kind of candidate (nothing to report).
    NotApplicable,
    /// A candidate the rule will not rewrite, with the reason (shown by `--report`).
    Refused(String),
    /// The rewrite.
    Rewrite(Patch),
}

/// A named rewrite rule.
pub trait Rule: Send + Sync {
    fn name(&self) -> &'static str;
    /// Looks at node `node` (an id for [`Ctx::node`]); must not assume anything it has not checked.
    fn apply(&self, ctx: &Ctx, node: usize) -> Result<Outcome, sinter_ir::IrError>;
}
