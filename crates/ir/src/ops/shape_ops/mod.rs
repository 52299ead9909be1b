//! Data-movement ops with ONNX semantics: shapes, reshapes, layout changes, slicing,
//! gathering, scattering, padding and a few ops that select or accumulate elements.
//!
//! Moving data never looks at values, so most kernels copy whole elements as bytes
//! (dispatched on the element size) and work for every dtype. Ops that compare or
//! add values (CumSum, scatter reductions, TopK, NonZero) dispatch on the dtype.
//!
//! Inputs that decide an output shape (Reshape's shape, Slice's starts…) are listed in
//! [`crate::Op::const_inputs`]: inference reads them from [`crate::Fact::value`] and
//! evaluation reads them again from the input views, so both agree by construction.

mod common;
mod copy;
mod gather;
mod layout;
mod meta;
mod pad;
mod reshape;
mod select;
mod slice;
#[cfg(test)]
mod tests;

pub use gather::{Gather, GatherElements, GatherND, OneHot, Reduction, ScatterElements, ScatterND};
pub use layout::{DepthToSpace, Expand, SpaceToDepth, Tile, Transpose};
pub use meta::{Constant, ConstantOfShape, EyeLike, Range, Shape, Size};
pub use pad::{Pad, PadMode};
pub use reshape::{AxesSource, Flatten, Reshape, Squeeze, Unsqueeze};
pub use select::{CumSum, NonZero, TopK, Trilu};
pub use slice::{Concat, Slice, SliceAttrs, SlicePlan, Split};

use super::OpSpec;

pub(crate) const OPS: &[OpSpec] = &[
    OpSpec { op_type: "Shape", build: Shape::build },
    OpSpec { op_type: "Size", build: Size::build },
    OpSpec { op_type: "Constant", build: Constant::build },
    OpSpec { op_type: "ConstantOfShape", build: ConstantOfShape::build },
    OpSpec { op_type: "Range", build: Range::build },
    OpSpec { op_type: "EyeLike", build: EyeLike::build },
    OpSpec { op_type: "Reshape", build: Reshape::build },
    OpSpec { op_type: "Flatten", build: Flatten::build },
    OpSpec { op_type: "Squeeze", build: Squeeze::build },
    OpSpec { op_type: "Unsqueeze", build: Unsqueeze::build },
    OpSpec { op_type: "Transpose", build: Transpose::build },
    OpSpec { op_type: "DepthToSpace", build: DepthToSpace::build },
    OpSpec { op_type: "SpaceToDepth", build: SpaceToDepth::build },
    OpSpec { op_type: "Expand", build: Expand::build },
    OpSpec { op_type: "Tile", build: Tile::build },
    OpSpec { op_type: "Concat", build: Concat::build },
    OpSpec { op_type: "Split", build: Split::build },
    OpSpec { op_type: "Slice", build: Slice::build },
    OpSpec { op_type: "Pad", build: Pad::build },
    OpSpec { op_type: "Gather", build: Gather::build },
    OpSpec { op_type: "GatherElements", build: GatherElements::build },
    OpSpec { op_type: "GatherND", build: GatherND::build },
    OpSpec { op_type: "Scatter", build: ScatterElements::build_scatter },
    OpSpec { op_type: "ScatterElements", build: ScatterElements::build },
    OpSpec { op_type: "ScatterND", build: ScatterND::build },
    OpSpec { op_type: "OneHot", build: OneHot::build },
    OpSpec { op_type: "Trilu", build: Trilu::build },
    OpSpec { op_type: "CumSum", build: CumSum::build },
    OpSpec { op_type: "TopK", build: TopK::build },
    OpSpec { op_type: "NonZero", build: NonZero::build },
];
