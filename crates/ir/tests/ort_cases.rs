//! The golden cases of `tests/data/ort_cases.json`: one ONNX node each, on deterministic
//! inputs, with the output of an outside oracle (onnxruntime 1.32, or the onnx reference
//! evaluator or a numpy transcription of the spec where onnxruntime has no kernel or
//! disagrees with it). The data is written by `tools/gen_ir_cases.py` (`cargo xtask
//! ir-cases`), never by hand. Each case runs through the public op API; every failing case
//! is reported, not only the first.

use serde_json::Value;
use sinter_ir::{ops, AttrValue, Attrs, DType, Elem, Fact, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ort_cases.json");

/// The generator's input pattern: `(i * 7 + seed * 3) % 11` mapped per dtype (floats to
/// `(v - 5) / 4`, u8 to `20 v`, signed integers to `v - 5`).
fn pat(dtype: DType, shape: &[usize], seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let vals: Vec<f64> = (0..n)
        .map(|i| {
            let v = ((i * 7 + seed * 3) % 11) as f64;
            match dtype {
                DType::F32 | DType::F16 => (v - 5.0) * 0.25,
                DType::U8 => v * 20.0,
                _ => v - 5.0,
            }
        })
        .collect();
    tensor(dtype, shape, &vals)
}

fn tensor(dtype: DType, shape: &[usize], vals: &[f64]) -> Tensor {
    sinter_ir::dispatch_dtype!(dtype, T => {
        let v: Vec<T> = vals.iter().map(|&x| T::from_f64(x)).collect();
        Tensor::from_vec(shape, v).expect("input values match their shape")
    })
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or_else(|| panic!("no \"{key}\" in {v}"))
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("{v} is not an integer"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

fn list(v: &Value) -> &[Value] {
    v.as_array().unwrap_or_else(|| panic!("{v} is not a list")).as_slice()
}

fn shape(v: &Value) -> Vec<usize> {
    list(v).iter().map(|d| usize::try_from(int(d)).expect("a dimension is not negative")).collect()
}

fn dtype(v: &Value) -> DType {
    let name = v.as_str().unwrap_or_else(|| panic!("{v} is not a dtype name"));
    DType::parse(name).unwrap_or_else(|| panic!("unknown dtype {name}"))
}

/// `{"int": 2}`, `{"floats": [1.0, 2.0]}`, ...: one typed attribute value.
fn attr(v: &Value) -> AttrValue {
    let obj = v.as_object().filter(|o| o.len() == 1).unwrap_or_else(|| panic!("attribute {v} is not {{type: value}}"));
    let (ty, x) = obj.iter().next().expect("one entry");
    match ty.as_str() {
        "int" => AttrValue::Int(int(x)),
        "ints" => AttrValue::Ints(list(x).iter().map(int).collect()),
        "float" => AttrValue::Float(num(x) as f32),
        "floats" => AttrValue::Floats(list(x).iter().map(|f| num(f) as f32).collect()),
        "string" => AttrValue::String(x.as_str().unwrap_or_else(|| panic!("{x} is not a string")).to_string()),
        "strings" => AttrValue::Strings(
            list(x).iter().map(|s| s.as_str().unwrap_or_else(|| panic!("{s} is not a string")).to_string()).collect(),
        ),
        _ => panic!("unknown attribute type {ty}"),
    }
}

/// An input: `null` (an omitted optional input), a pattern (`"pat": seed`) or `"values"`.
fn input(v: &Value) -> Option<Tensor> {
    if v.is_null() {
        return None;
    }
    let (dt, sh) = (dtype(field(v, "dtype")), shape(field(v, "shape")));
    Some(match (v.get("pat"), v.get("values")) {
        (Some(seed), None) => pat(dt, &sh, usize::try_from(int(seed)).expect("a seed is not negative")),
        (None, Some(vals)) => tensor(dt, &sh, &list(vals).iter().map(num).collect::<Vec<_>>()),
        _ => panic!("input {v} needs exactly one of \"pat\" and \"values\""),
    })
}

/// `|got - want| <= tol * (1 + |want|)`; false for a NaN.
fn within(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * (1.0 + want.abs())
}

/// Builds the op, infers its output (every input constant, as when folding), evaluates it
/// and compares with the case's expected output; `Err` says what differs.
fn run_case(case: &Value) -> Result<usize, String> {
    let op_type = field(case, "op").as_str().expect("op is a string");
    let mut attrs = Attrs::new();
    for (k, v) in field(case, "attrs").as_object().expect("attrs is an object") {
        attrs.insert(k, attr(v));
    }
    let inputs: Vec<Option<Tensor>> = list(field(case, "inputs")).iter().map(input).collect();
    let want = field(case, "output");
    let (want_dtype, want_shape) = (dtype(field(want, "dtype")), shape(field(want, "shape")));
    let want_vals: Vec<f64> = list(field(want, "values")).iter().map(num).collect();
    let tol = num(field(case, "tolerance"));
    if want_vals.len() != want_shape.iter().product::<usize>() {
        return Err(format!("the data holds {} values for shape {want_shape:?}", want_vals.len()));
    }

    let op = ops::build(op_type, &attrs, int(field(case, "opset"))).map_err(|e| format!("build: {e}"))?;
    let facts: Vec<Option<Fact>> =
        inputs.iter().map(|t| t.as_ref().map(|t| Fact::constant(Arc::new(t.clone())))).collect();
    let refs: Vec<Option<&Fact>> = facts.iter().map(|f| f.as_ref()).collect();
    let out = op.infer(&refs).map_err(|e| format!("infer: {e}"))?;
    let fact = out.first().ok_or("infer: no output")?;
    if (fact.dtype, &fact.shape) != (want_dtype, &want_shape) {
        return Err(format!("inferred {} {:?}, want {want_dtype} {want_shape:?}", fact.dtype, fact.shape));
    }
    // Garbage in the output buffer must not leak into results.
    let mut y = Tensor::zeros(fact.dtype, &fact.shape);
    y.bytes_mut().fill(0x7f);
    let views: Vec<_> = inputs.iter().map(|t| t.as_ref().map(|t| t.view())).collect();
    op.eval(&views, &mut [y.view_mut()]).map_err(|e| format!("eval: {e}"))?;

    let got = y.to_f64_vec();
    let bad: Vec<String> = got
        .iter()
        .zip(&want_vals)
        .enumerate()
        .filter(|(_, (&g, &w))| !within(g, w, tol))
        .map(|(i, (g, w))| format!("[{i}] got {g}, want {w}"))
        .collect();
    if !bad.is_empty() {
        let shown = bad.iter().take(8).cloned().collect::<Vec<_>>().join("; ");
        return Err(format!("{} of {} values differ (tolerance {tol}): {shown}", bad.len(), got.len()));
    }
    Ok(got.len())
}

#[test]
fn ort_cases() {
    let text =
        std::fs::read_to_string(DATA).unwrap_or_else(|e| panic!("{DATA}: {e} (`cargo xtask ir-cases` writes it)"));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DATA}: {e}"));
    let cases = list(field(&doc, "cases"));
    assert!(!cases.is_empty(), "{DATA} holds no cases");

    let (mut failures, mut values) = (Vec::new(), 0);
    for case in cases {
        let name = field(case, "name").as_str().unwrap_or("(unnamed)");
        // A panicking op (or a malformed case) fails its case, not the whole run.
        match catch_unwind(AssertUnwindSafe(|| run_case(case))) {
            Ok(Ok(n)) => values += n,
            Ok(Err(msg)) => failures.push(format!("{name}: {msg}")),
            Err(panic) => {
                let msg = panic.downcast_ref::<String>().map(String::as_str).or(panic.downcast_ref::<&str>().copied());
                failures.push(format!("{name}: panicked: {}", msg.unwrap_or("?")));
            }
        }
    }
    println!("{} golden cases, {} passed ({values} values)", cases.len(), cases.len() - failures.len());
    assert!(failures.is_empty(), "{} of {} golden cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
