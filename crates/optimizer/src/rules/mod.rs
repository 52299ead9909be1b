//! The rule catalogue and the default pass pipeline.

mod identity;

pub use identity::RemoveIdentity;

use crate::Pass;

/// The passes `sinter build` runs, in order.
pub fn default_passes() -> Vec<Pass> {
    vec![Pass { name: "simplify", rules: vec![Box::new(RemoveIdentity)] }]
}
