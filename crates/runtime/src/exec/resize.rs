//! Nearest-neighbour `Resize` / `Upsample` with the coordinate tables computed once:
//! a gather per output row, and a plain copy of the previous output row when two
//! output rows read the same input row (every integer upscale).

use super::refusal::{need, Accept, Why};
use super::{Exec, RunCtx};
use crate::prepare::Slot;
use sinter_ir::ops::nn::Resize;
use sinter_ir::ops::Op;
use sinter_ir::{DType, Fact, IrError, Result, Tensor, View, ViewMut};
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct NearestResize {
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
    /// Per axis, the input index of each output coordinate.
    idx: Vec<Vec<usize>>,
}

impl NearestResize {
    /// The kernel for an f32 nearest-mode resize of rank >= 2 whose scales/sizes are
    /// weights (`weights(i)` gives their bytes), or why not.
    pub(crate) fn new<'a>(
        op: &dyn Op,
        inputs: &[Option<Slot>],
        outputs: &[Slot],
        weights: &dyn Fn(usize) -> Option<&'a [u8]>,
    ) -> Accept<NearestResize> {
        let r = op.as_any().downcast_ref::<Resize>().why("the op is not a Resize")?;
        let x = inputs.first().and_then(Option::as_ref).why("no input 0")?;
        let y = outputs.first().why("no output")?;
        need(x.dtype == DType::F32 && y.dtype == DType::F32, "not f32")?;
        need(x.shape.len() >= 2 && x.shape.len() == y.shape.len(), "rank below 2")?;
        let mut facts = Vec::with_capacity(inputs.len());
        for (i, s) in inputs.iter().enumerate() {
            facts.push(match s {
                None => None,
                Some(s) => {
                    let mut f = Fact::new(s.dtype, s.shape.clone());
                    if op.const_inputs().contains(&i) {
                        let bytes = weights(i).why("scales or sizes are not constants")?;
                        let t = Tensor::from_bytes(s.dtype, &s.shape, bytes).why("scales or sizes")?;
                        f.value = Some(Arc::new(t));
                    }
                    Some(f)
                }
            });
        }
        let refs: Vec<Option<&Fact>> = facts.iter().map(|f| f.as_ref()).collect();
        let idx = r.nearest_indices(&refs).why("resize")?.why("not a nearest-neighbour resize")?;
        let fits = idx.len() == y.shape.len()
            && idx.iter().zip(&y.shape).zip(&x.shape).all(|((t, &o), &i)| t.len() == o && t.iter().all(|&v| v < i));
        need(fits && !y.shape.contains(&0), "the index tables do not fit the shapes")?;
        Ok(NearestResize { in_shape: x.shape.clone(), out_shape: y.shape.clone(), idx })
    }
}

impl Exec for NearestResize {
    fn run(&self, inputs: &[Option<View>], outputs: &mut [ViewMut], cx: &mut RunCtx) -> Result<()> {
        let missing = |index| IrError::MissingInput { op: "Resize".into(), index };
        let x = inputs.first().copied().flatten().ok_or_else(|| missing(0))?.as_slice::<f32>()?;
        let y = outputs.first_mut().ok_or_else(|| missing(0))?.as_slice_mut::<f32>()?;
        let rank = self.out_shape.len();
        let (ih, iw) = (self.in_shape[rank - 2], self.in_shape[rank - 1]);
        let (oh, ow) = (self.out_shape[rank - 2], self.out_shape[rank - 1]);
        let planes: usize = self.out_shape[..rank - 2].iter().product();
        if x.len() != self.in_shape.iter().product::<usize>() || y.len() != planes * oh * ow {
            return Err(IrError::Data("Resize: operand sizes do not match the plan".into()));
        }
        let (xi, yi) = (&self.idx[rank - 2], &self.idx[rank - 1]);
        cx.pool.par_chunks(y, oh * ow, 1, &|p, out| {
            // The input plane of output plane `p`, through the leading axes' tables.
            let mut rem = p;
            let mut src = 0;
            let mut stride = ih * iw;
            for d in (0..rank - 2).rev() {
                let o = rem % self.out_shape[d];
                rem /= self.out_shape[d];
                src += self.idx[d][o] * stride;
                stride *= self.in_shape[d];
            }
            let xp = &x[src..][..ih * iw];
            for r in 0..oh {
                if r > 0 && xi[r] == xi[r - 1] {
                    let (prev, cur) = out.split_at_mut(r * ow);
                    cur[..ow].copy_from_slice(&prev[(r - 1) * ow..]);
                    continue;
                }
                let xrow = &xp[xi[r] * iw..][..iw];
                for (d, &c) in out[r * ow..][..ow].iter_mut().zip(yi) {
                    *d = xrow[c];
                }
            }
        });
        Ok(())
    }
}
