//! The rule catalogue and the default pass pipeline.

mod fuse;
mod horizontal;
mod identity;
mod simplify;

pub use fuse::{
    ElementwiseChain, EpilogueActivation, EpilogueAdd, GeluErfPattern, GeluTanhPattern, HardSwishPattern,
    LayerNormPattern, MatMulBias, SiluPattern,
};
pub use horizontal::{HorizontalConv, HorizontalMatMul};
pub use identity::RemoveIdentity;
pub use simplify::{
    BatchNormToScaleShift, Cse, DeadNodes, FoldBatchNorm, FoldConstants, FoldMulAddIntoConv, ReshapeChain,
};

use crate::Pass;

/// The passes `sinter build` runs, in order. Constant folding runs alone first, so shape
/// subgraphs are gone before any other rule looks at them. No later rule turns a
/// computed value into a constant one, so folding need not run again.
pub fn default_passes() -> Vec<Pass> {
    let mut passes = vec![
        Pass { name: "fold", rules: vec![Box::new(FoldConstants)] },
        Pass {
            name: "simplify",
            rules: vec![
                Box::new(DeadNodes),
                Box::new(RemoveIdentity),
                Box::new(Cse),
                Box::new(ReshapeChain),
                Box::new(FoldBatchNorm),
                Box::new(BatchNormToScaleShift),
                Box::new(FoldMulAddIntoConv),
            ],
        },
    ];
    passes.extend(fuse::passes());
    passes.push(Pass { name: "horizontal", rules: vec![Box::new(HorizontalConv), Box::new(HorizontalMatMul)] });
    passes
}
