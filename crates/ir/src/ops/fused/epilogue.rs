//! Epilogues: ordered elementwise steps applied to an op's output in place, tile by
//! tile, so that every element goes through all steps while it is in cache.

use crate::ops::elementwise::erf;
use crate::ops::util::broadcast_strides;
use crate::{AttrValue, Attrs, DType, Fact, IrError, Result, View};

/// Attribute naming the steps, in order.
pub const EPILOGUE: &str = "epilogue";
/// Attribute holding the float parameters of the steps that have some, in step order.
pub const EPILOGUE_PARAMS: &str = "epilogue_params";

/// Elements per tile: small enough that a tile stays in L1 across all steps.
const TILE: usize = 1024;

/// A binary arithmetic step's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// One elementwise step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    Relu,
    /// `min(max(x, min), max)`; ReLU6 is `Clip { min: 0, max: 6 }`.
    Clip {
        min: f32,
        max: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    Sigmoid,
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    HardSwish,
    /// `x * sigmoid(x)`.
    Silu,
    /// `0.5 x (1 + erf(x / sqrt 2))`.
    GeluErf,
    /// `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`.
    GeluTanh,
    Tanh,
    /// `x op v` (`v op x` when `swapped`), where `v` is the next extra input of the op,
    /// broadcast to the output (a residual, a per-channel scale, a scalar constant...).
    Binary {
        op: BinOp,
        swapped: bool,
    },
}

impl Step {
    /// The name stored in the `epilogue` attribute.
    pub fn name(self) -> &'static str {
        match self {
            Step::Relu => "Relu",
            Step::Clip { .. } => "Clip",
            Step::LeakyRelu { .. } => "LeakyRelu",
            Step::Sigmoid => "Sigmoid",
            Step::HardSigmoid { .. } => "HardSigmoid",
            Step::HardSwish => "HardSwish",
            Step::Silu => "Silu",
            Step::GeluErf => "GeluErf",
            Step::GeluTanh => "GeluTanh",
            Step::Tanh => "Tanh",
            Step::Binary { op: BinOp::Add, .. } => "Add",
            Step::Binary { op: BinOp::Mul, .. } => "Mul",
            Step::Binary { op: BinOp::Sub, swapped: false } => "Sub",
            Step::Binary { op: BinOp::Sub, swapped: true } => "SubFrom",
            Step::Binary { op: BinOp::Div, swapped: false } => "Div",
            Step::Binary { op: BinOp::Div, swapped: true } => "DivInto",
        }
    }

    fn params(self) -> Vec<f32> {
        match self {
            Step::Clip { min, max } => vec![min, max],
            Step::LeakyRelu { alpha } => vec![alpha],
            Step::HardSigmoid { alpha, beta } => vec![alpha, beta],
            _ => Vec::new(),
        }
    }

    /// Parses a step name, taking its parameters from `params`.
    fn parse(name: &str, params: &mut impl Iterator<Item = f32>) -> Result<Step> {
        let mut p = |what: &str| {
            params.next().ok_or_else(|| {
                Attrs::unsupported(EPILOGUE_PARAMS, format!("step {name} needs its {what} parameter, none left"))
            })
        };
        let bin = |op, swapped| Step::Binary { op, swapped };
        Ok(match name {
            "Relu" => Step::Relu,
            "Clip" => Step::Clip { min: p("min")?, max: p("max")? },
            "LeakyRelu" => Step::LeakyRelu { alpha: p("alpha")? },
            "Sigmoid" => Step::Sigmoid,
            "HardSigmoid" => Step::HardSigmoid { alpha: p("alpha")?, beta: p("beta")? },
            "HardSwish" => Step::HardSwish,
            "Silu" => Step::Silu,
            "GeluErf" => Step::GeluErf,
            "GeluTanh" => Step::GeluTanh,
            "Tanh" => Step::Tanh,
            "Add" => bin(BinOp::Add, false),
            "Mul" => bin(BinOp::Mul, false),
            "Sub" => bin(BinOp::Sub, false),
            "SubFrom" => bin(BinOp::Sub, true),
            "Div" => bin(BinOp::Div, false),
            "DivInto" => bin(BinOp::Div, true),
            other => return Err(Attrs::unsupported(EPILOGUE, format!("unknown step '{other}'"))),
        })
    }

    /// True for the steps that read an extra input.
    pub fn is_binary(self) -> bool {
        matches!(self, Step::Binary { .. })
    }
}

/// An ordered list of steps. Binary steps consume the op's extra inputs in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Epilogue {
    pub steps: Vec<Step>,
}

impl Epilogue {
    /// Parses the `epilogue` / `epilogue_params` attributes (both optional), requiring
    /// every parameter to be used.
    pub fn from_attrs(attrs: &Attrs) -> Result<Epilogue> {
        let names = attrs.strings(EPILOGUE)?.unwrap_or(&[]);
        let params = attrs.floats(EPILOGUE_PARAMS)?.unwrap_or(&[]);
        let mut it = params.iter().copied();
        let steps = names.iter().map(|n| Step::parse(n, &mut it)).collect::<Result<Vec<_>>>()?;
        let left = it.count();
        if left != 0 {
            return Err(Attrs::unsupported(EPILOGUE_PARAMS, format!("{left} parameter(s) left over after the steps")));
        }
        Ok(Epilogue { steps })
    }

    /// Writes the epilogue into `attrs` (replacing any previous one).
    pub fn write_attrs(&self, attrs: &mut Attrs) {
        let names = self.steps.iter().map(|s| s.name().to_string()).collect();
        let params: Vec<f32> = self.steps.iter().flat_map(|s| s.params()).collect();
        attrs.insert(EPILOGUE, AttrValue::Strings(names));
        attrs.insert(EPILOGUE_PARAMS, AttrValue::Floats(params));
    }

    /// How many extra inputs the binary steps read.
    pub fn operand_count(&self) -> usize {
        self.steps.iter().filter(|s| s.is_binary()).count()
    }

    /// Checks the extra inputs against an output of `out` shape: one per binary step,
    /// f32, each broadcasting (unidirectionally) to the output.
    pub fn check_operands(&self, op: &str, out: &[usize], extras: &[Option<&Fact>]) -> Result<()> {
        if extras.len() != self.operand_count() {
            return Err(IrError::Graph(format!(
                "{op}: epilogue needs {} extra input(s), node has {}",
                self.operand_count(),
                extras.len()
            )));
        }
        for (k, e) in extras.iter().enumerate() {
            let e = e.ok_or_else(|| IrError::Graph(format!("{op}: epilogue input {k} is omitted")))?;
            if e.dtype != DType::F32 {
                return Err(IrError::UnsupportedDType { op: format!("{op} epilogue input {k}"), dtype: e.dtype });
            }
            check_broadcast(op, &e.shape, out)?;
        }
        Ok(())
    }

    /// Applies the steps to `y` (of shape `shape`) in place, reading `extras` for the
    /// binary steps.
    pub fn apply(&self, op: &str, y: &mut [f32], shape: &[usize], extras: &[Option<View>]) -> Result<()> {
        if self.steps.is_empty() {
            return Ok(());
        }
        if extras.len() != self.operand_count() {
            return Err(IrError::Graph(format!("{op}: epilogue needs {} extra input(s)", self.operand_count())));
        }
        let operands = extras
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let v = v.ok_or_else(|| IrError::Graph(format!("{op}: epilogue input {k} is omitted")))?;
                Operand::new(op, v, shape, y.len())
            })
            .collect::<Result<Vec<_>>>()?;
        let mut offsets = Vec::new();
        for (t, tile) in y.chunks_mut(TILE).enumerate() {
            let start = t * TILE;
            let mut k = 0;
            for &step in &self.steps {
                match step {
                    Step::Binary { op, swapped } => {
                        let operand = &operands[k];
                        k += 1;
                        match (op, swapped) {
                            (BinOp::Add, _) => operand.zip(tile, start, &mut offsets, |x, v| x + v),
                            (BinOp::Mul, _) => operand.zip(tile, start, &mut offsets, |x, v| x * v),
                            (BinOp::Sub, false) => operand.zip(tile, start, &mut offsets, |x, v| x - v),
                            (BinOp::Sub, true) => operand.zip(tile, start, &mut offsets, |x, v| v - x),
                            (BinOp::Div, false) => operand.zip(tile, start, &mut offsets, |x, v| x / v),
                            (BinOp::Div, true) => operand.zip(tile, start, &mut offsets, |x, v| v / x),
                        }
                    }
                    unary => apply_unary(unary, tile),
                }
            }
        }
        Ok(())
    }
}

/// Fails unless `shape` broadcasts to exactly `out` (numpy rules, one direction).
pub(super) fn check_broadcast(op: &str, shape: &[usize], out: &[usize]) -> Result<()> {
    let ok =
        shape.len() <= out.len() && shape.iter().zip(&out[out.len() - shape.len()..]).all(|(&d, &o)| d == o || d == 1);
    if ok {
        Ok(())
    } else {
        Err(IrError::Shape(format!("{op}: epilogue input of shape {shape:?} does not broadcast to the output {out:?}")))
    }
}

/// An extra input as the steps read it.
enum Operand<'a> {
    /// Same element count as the output: read at the output's index.
    Full(&'a [f32]),
    Scalar(f32),
    /// Broadcast along some axes: per-axis strides over the output's axes.
    Strided {
        data: &'a [f32],
        strides: Vec<usize>,
        out: Vec<usize>,
    },
}

impl<'a> Operand<'a> {
    fn new(op: &str, v: View<'a>, out: &[usize], out_len: usize) -> Result<Operand<'a>> {
        check_broadcast(op, v.shape, out)?;
        let data = v.as_slice::<f32>()?;
        if data.len() != crate::tensor::checked_numel(v.shape)? {
            return Err(IrError::Data(format!("{op}: epilogue input buffer does not match its shape {:?}", v.shape)));
        }
        Ok(if data.len() == out_len {
            // Broadcasting only added leading or unit axes: the layouts coincide.
            Operand::Full(data)
        } else if let [s] = data {
            Operand::Scalar(*s)
        } else {
            Operand::Strided { data, strides: broadcast_strides(v.shape, out), out: out.to_vec() }
        })
    }

    /// `tile[i] = f(tile[i], operand at output index start + i)`.
    fn zip(&self, tile: &mut [f32], start: usize, offsets: &mut Vec<usize>, f: impl Fn(f32, f32) -> f32) {
        match self {
            Operand::Full(d) => {
                for (x, &v) in tile.iter_mut().zip(&d[start..]) {
                    *x = f(*x, v);
                }
            }
            Operand::Scalar(v) => {
                for x in tile.iter_mut() {
                    *x = f(*x, *v);
                }
            }
            Operand::Strided { data, strides, out } => {
                strided_offsets(out, strides, start, tile.len(), offsets);
                for (x, &o) in tile.iter_mut().zip(offsets.iter()) {
                    *x = f(*x, data[o]);
                }
            }
        }
    }
}

/// Fills `offsets` with the operand offsets of output elements `start..start + len`.
fn strided_offsets(out: &[usize], strides: &[usize], start: usize, len: usize, offsets: &mut Vec<usize>) {
    offsets.clear();
    let mut idx = vec![0usize; out.len()];
    let mut rem = start;
    for d in (0..out.len()).rev() {
        idx[d] = rem % out[d];
        rem /= out[d];
    }
    let mut off: usize = idx.iter().zip(strides).map(|(i, s)| i * s).sum();
    for _ in 0..len {
        offsets.push(off);
        for d in (0..out.len()).rev() {
            idx[d] += 1;
            off += strides[d];
            if idx[d] < out[d] {
                break;
            }
            off -= idx[d] * strides[d];
            idx[d] = 0;
        }
    }
}

/// `max(0, min(1, alpha x + beta))` with NaN passing through, as the HardSigmoid op.
#[inline]
fn hard_sigmoid(v: f32, alpha: f32, beta: f32) -> f32 {
    (alpha * v + beta).clamp(0.0, 1.0)
}

#[inline]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

fn map(tile: &mut [f32], f: impl Fn(f32) -> f32) {
    for x in tile {
        *x = f(*x);
    }
}

/// The unary steps, with the same formulas as the ONNX ops they replace.
fn apply_unary(step: Step, tile: &mut [f32]) {
    match step {
        Step::Relu => map(tile, |v| if v < 0.0 { 0.0 } else { v }),
        Step::Clip { min, max } => map(tile, |v| {
            let v = if v < min { min } else { v };
            if v > max {
                max
            } else {
                v
            }
        }),
        Step::LeakyRelu { alpha } => map(tile, |v| if v < 0.0 { alpha * v } else { v }),
        Step::Sigmoid => map(tile, sigmoid),
        Step::HardSigmoid { alpha, beta } => map(tile, |v| hard_sigmoid(v, alpha, beta)),
        Step::HardSwish => map(tile, |v| v * hard_sigmoid(v, 1.0 / 6.0, 0.5)),
        Step::Silu => map(tile, |v| v * sigmoid(v)),
        Step::GeluErf => map(tile, |v| {
            let v = v as f64;
            (0.5 * v * (1.0 + erf(v * std::f64::consts::FRAC_1_SQRT_2))) as f32
        }),
        Step::GeluTanh => map(tile, |v| {
            let v = v as f64;
            let k = (2.0 / std::f64::consts::PI).sqrt();
            (0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())) as f32
        }),
        Step::Tanh => map(tile, f32::tanh),
        Step::Binary { .. } => {}
    }
}
