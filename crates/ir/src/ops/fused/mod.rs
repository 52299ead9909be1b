//! Sinter's own fused ops, produced by the optimizer (not ONNX ops): a convolution or
//! matrix product followed by an elementwise [`Epilogue`] applied in place, and
//! [`FusedElementwise`], a chain of elementwise steps in one pass over memory. They are
//! built from attributes like any op (the base op's attributes plus `epilogue` and
//! `epilogue_params`), so plans can store and rebuild them. f32 only.

mod epilogue;
#[cfg(test)]
mod tests;

pub use epilogue::{apply_unary, BinOp, Epilogue, Step, EPILOGUE, EPILOGUE_PARAMS};

use super::util::{req, req_view};
use super::{Op, OpSpec};
use crate::{Attrs, DType, Fact, IrError, Result, View, ViewMut};
use std::any::Any;
use std::sync::Arc;

pub(crate) const OPS: &[OpSpec] = &[
    OpSpec { op_type: "FusedConv", build: build_conv },
    OpSpec { op_type: "FusedConvTranspose", build: build_conv_transpose },
    OpSpec { op_type: "FusedGemm", build: build_gemm },
    OpSpec { op_type: "FusedMatMul", build: build_matmul },
    OpSpec { op_type: "FusedElementwise", build: build_elementwise },
];

/// Inputs a fused base op reserves before the epilogue's extra inputs (X, W, B for the
/// convolutions; A, B, C for Gemm; A, B, bias for MatMul), omitted ones left empty.
pub const BASE_SLOTS: usize = 3;

/// The op a [`Fused`] op computes before its epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseKind {
    Conv,
    ConvTranspose,
    Gemm,
    /// MatMul, with an optional bias of the output's last dimension (input 2).
    MatMul,
}

impl BaseKind {
    /// The ONNX op type of the base.
    pub fn base_op_type(self) -> &'static str {
        match self {
            BaseKind::Conv => "Conv",
            BaseKind::ConvTranspose => "ConvTranspose",
            BaseKind::Gemm => "Gemm",
            BaseKind::MatMul => "MatMul",
        }
    }

    /// The op type of the fused op.
    pub fn fused_op_type(self) -> &'static str {
        match self {
            BaseKind::Conv => "FusedConv",
            BaseKind::ConvTranspose => "FusedConvTranspose",
            BaseKind::Gemm => "FusedGemm",
            BaseKind::MatMul => "FusedMatMul",
        }
    }

    /// The kind whose base or fused op type is `op_type`.
    pub fn of(op_type: &str) -> Option<BaseKind> {
        [BaseKind::Conv, BaseKind::ConvTranspose, BaseKind::Gemm, BaseKind::MatMul]
            .into_iter()
            .find(|k| k.base_op_type() == op_type || k.fused_op_type() == op_type)
    }
}

/// The attributes without the epilogue ones: what the base op is built from.
pub fn base_attrs(attrs: &Attrs) -> Attrs {
    let mut a = attrs.clone();
    a.0.remove(EPILOGUE);
    a.0.remove(EPILOGUE_PARAMS);
    a
}

/// A convolution or matrix product with an epilogue: evaluates the base op, then (for
/// MatMul) adds the bias and applies the epilogue to the output in place.
#[derive(Debug)]
pub struct Fused {
    pub kind: BaseKind,
    pub base: Arc<dyn Op>,
    pub epilogue: Epilogue,
}

fn build_fused(kind: BaseKind, attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    let base = super::build(kind.base_op_type(), &base_attrs(attrs), opset)?;
    Ok(Arc::new(Fused { kind, base, epilogue: Epilogue::from_attrs(attrs)? }))
}

fn build_conv(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    build_fused(BaseKind::Conv, attrs, opset)
}
fn build_conv_transpose(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    build_fused(BaseKind::ConvTranspose, attrs, opset)
}
fn build_gemm(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    build_fused(BaseKind::Gemm, attrs, opset)
}
fn build_matmul(attrs: &Attrs, opset: i64) -> Result<Arc<dyn Op>> {
    build_fused(BaseKind::MatMul, attrs, opset)
}

impl Fused {
    /// How many leading inputs the base op itself reads.
    fn base_inputs(&self) -> usize {
        if self.kind == BaseKind::MatMul {
            2
        } else {
            BASE_SLOTS
        }
    }

    /// The MatMul bias length: the output's last dimension, when B is a matrix.
    fn bias_len(&self, b_rank: usize, out: &[usize]) -> Result<usize> {
        match out.last() {
            Some(&n) if b_rank >= 2 => Ok(n),
            _ => Err(IrError::Shape(format!(
                "FusedMatMul: a bias needs B of rank >= 2 (got rank {b_rank}, output {out:?})"
            ))),
        }
    }
}

impl Op for Fused {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let name = self.kind.fused_op_type();
        let base_in: Vec<Option<&Fact>> = inputs.iter().take(self.base_inputs()).copied().collect();
        let out = self.base.infer(&base_in)?;
        let y = out.first().ok_or_else(|| IrError::Graph(format!("{name}: base op has no output")))?;
        if y.dtype != DType::F32 {
            return Err(IrError::UnsupportedDType { op: name.to_string(), dtype: y.dtype });
        }
        if self.kind == BaseKind::MatMul {
            if let Some(bias) = inputs.get(2).copied().flatten() {
                let n = self.bias_len(req(inputs, 1, name)?.rank(), &y.shape)?;
                if bias.dtype != DType::F32 {
                    return Err(IrError::DType { expected: "f32 bias".into(), found: bias.dtype });
                }
                if bias.shape != [n] {
                    return Err(IrError::Shape(format!("FusedMatMul: bias of shape {:?} is not [{n}]", bias.shape)));
                }
            }
        }
        let extras = inputs.get(BASE_SLOTS..).unwrap_or(&[]);
        self.epilogue.check_operands(name, &y.shape, extras)?;
        Ok(vec![Fact::new(y.dtype, y.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        let name = self.kind.fused_op_type();
        let n_base = self.base_inputs().min(inputs.len());
        self.base.eval(&inputs[..n_base], outputs)?;
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph(format!("{name} has no output")))?;
        let shape = out.shape;
        let y = out.as_slice_mut::<f32>()?;
        if self.kind == BaseKind::MatMul {
            if let Some(bias) = inputs.get(2).copied().flatten() {
                let n = self.bias_len(req_view(inputs, 1, name)?.shape.len(), shape)?;
                let b = bias.as_slice::<f32>()?;
                if b.len() != n || n == 0 {
                    if y.is_empty() {
                        return Ok(());
                    }
                    return Err(IrError::Shape(format!("FusedMatMul: bias of {} elements for rows of {n}", b.len())));
                }
                for row in y.chunks_exact_mut(n) {
                    for (v, &c) in row.iter_mut().zip(b) {
                        *v += c;
                    }
                }
            }
        }
        let extras = inputs.get(BASE_SLOTS..).unwrap_or(&[]);
        self.epilogue.apply(name, y, shape, extras)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `FusedElementwise`: the steps of its epilogue applied to input 0 in one pass; binary
/// steps read inputs 1, 2, ... (broadcast to input 0's shape).
#[derive(Debug)]
pub struct FusedElementwise {
    pub epilogue: Epilogue,
}

fn build_elementwise(attrs: &Attrs, _: i64) -> Result<Arc<dyn Op>> {
    Ok(Arc::new(FusedElementwise { epilogue: Epilogue::from_attrs(attrs)? }))
}

impl Op for FusedElementwise {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        const NAME: &str = "FusedElementwise";
        let x = req(inputs, 0, NAME)?;
        if x.dtype != DType::F32 {
            return Err(IrError::UnsupportedDType { op: NAME.to_string(), dtype: x.dtype });
        }
        self.epilogue.check_operands(NAME, &x.shape, inputs.get(1..).unwrap_or(&[]))?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<View>], outputs: &mut [ViewMut]) -> Result<()> {
        const NAME: &str = "FusedElementwise";
        let x = req_view(inputs, 0, NAME)?;
        let out = outputs.first_mut().ok_or_else(|| IrError::Graph(format!("{NAME} has no output")))?;
        let shape = out.shape;
        let y = out.as_slice_mut::<f32>()?;
        let xs = x.as_slice::<f32>()?;
        if xs.len() != y.len() || x.shape != shape {
            return Err(IrError::Shape(format!("{NAME}: input {:?} and output {shape:?} differ", x.shape)));
        }
        self.epilogue.apply_from(NAME, xs, y, shape, inputs.get(1..).unwrap_or(&[]))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
