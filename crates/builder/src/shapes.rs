//! Input shapes: the user's `--shapes` against the model's declared (maybe symbolic) dims.

use crate::{BuildError, BuildOptions};
use sinter_ir::{Dim, Fact, Graph};
use std::collections::HashMap;
use std::sync::Arc;

/// Parses `NAME:1x3x224x224,NAME2:1x16` (a scalar is `NAME:`). Names may contain ':';
/// the shape follows the last one.
pub fn parse_shapes(spec: &str) -> Result<HashMap<String, Vec<usize>>, BuildError> {
    let mut out = HashMap::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, dims) = item
            .rsplit_once(':')
            .ok_or_else(|| BuildError::Shapes(format!("shape '{item}' must look like NAME:1x3x224x224")))?;
        let dims = if dims.is_empty() {
            Vec::new()
        } else {
            dims.split('x').map(|d| d.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>().map_err(|_| {
                BuildError::Shapes(format!("shape '{item}': dims must be non-negative integers separated by 'x'"))
            })?
        };
        if out.insert(name.to_string(), dims).is_some() {
            return Err(BuildError::Shapes(format!("input '{name}' is given two shapes")));
        }
    }
    Ok(out)
}

fn show(dims: &[Dim]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// Facts for the graph's runtime inputs: frozen values, user shapes checked against the
/// declared dims, or the declared dims when they are all fixed.
pub(crate) fn resolve_inputs(graph: &Graph, opts: &BuildOptions) -> Result<HashMap<String, Fact>, BuildError> {
    let names: Vec<&str> = graph.runtime_inputs().map(|v| v.name.as_str()).collect();
    for n in opts.shapes.keys().chain(opts.freeze.keys()) {
        if !names.contains(&n.as_str()) {
            return Err(BuildError::Shapes(format!(
                "the model has no input '{n}'; its inputs are: {}",
                names.join(", ")
            )));
        }
    }
    let mut facts = HashMap::new();
    for vi in graph.runtime_inputs() {
        if let Some(t) = opts.freeze.get(&vi.name) {
            facts.insert(vi.name.clone(), Fact::constant(Arc::new(t.clone())));
            continue;
        }
        let shape = match (opts.shapes.get(&vi.name), &vi.dims) {
            (Some(user), Some(dims)) => {
                let fits = user.len() == dims.len()
                    && user.iter().zip(dims).all(|(u, d)| matches!(d, Dim::Sym(_)) || *d == Dim::Fixed(*u));
                if !fits {
                    return Err(BuildError::Shapes(format!(
                        "shape {:?} given for input '{}' does not fit the model's {}",
                        user,
                        vi.name,
                        show(dims)
                    )));
                }
                user.clone()
            }
            (Some(user), None) => user.clone(),
            (None, Some(dims)) => dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(v) => Some(*v),
                    Dim::Sym(_) => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    BuildError::Shapes(format!(
                        "input '{}' has symbolic dims ({}); give its shape, e.g. --shapes {}:{}",
                        vi.name,
                        show(dims),
                        vi.name,
                        dims.iter()
                            .map(|d| match d {
                                Dim::Fixed(v) => v.to_string(),
                                Dim::Sym(_) => "1".into(),
                            })
                            .collect::<Vec<_>>()
                            .join("x")
                    ))
                })?,
            (None, None) => {
                return Err(BuildError::Shapes(format!(
                    "input '{}' has no declared shape; give it with --shapes",
                    vi.name
                )))
            }
        };
        facts.insert(vi.name.clone(), Fact::new(vi.dtype, shape));
    }
    Ok(facts)
}
