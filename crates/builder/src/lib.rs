//! Sinter's builder: turns an ONNX graph into a plan. It resolves input shapes,
//! infers every shape (folding constant subgraphs on the way), drops what the
//! outputs do not need, lays the weights out and plans the activation arena.

#![forbid(unsafe_code)]

mod alias;
mod error;
mod log;
mod memory;
mod shapes;

pub use error::BuildError;
pub use shapes::parse_shapes;

use sinter_ir::{infer::infer_graph, Fact, Graph, Tensor};
use sinter_plan::{Binding, KernelDesc, Location, Packing, Plan, PlanMeta, SourceNode, TensorDesc, WeightsBuilder};
use sinter_runtime::TacticChoice;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the user tells the builder.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Concrete shapes for graph inputs (required where the model has symbolic dims).
    pub shapes: HashMap<String, Vec<usize>>,
    /// Inputs fixed to constant values at build time (they disappear from the plan's inputs).
    pub freeze: HashMap<String, Tensor>,
    /// Skip the optimizer (a plan with one kernel per model node, for comparisons).
    pub no_optimize: bool,
    /// Optimizer rules switched off by name, and its step limit.
    pub optimizer: sinter_optimizer::Options,
    /// Fail the build when one execution context would need more than this many bytes:
    /// activation arena + kernel workspace + per-thread workspace × [`BuildOptions::threads`].
    pub max_memory: Option<u64>,
    /// Threads the `max_memory` check assumes a context runs on; `None` is the number
    /// of physical cores (the runtime's default).
    pub threads: Option<usize>,
    /// Choose kernels (tactics) by a fixed rule instead of timing the candidates on
    /// this machine: reproducible plans. Plans for another target always use the rule.
    pub deterministic_tactics: bool,
    /// The machine the plan is for (recorded in its header; the runtime refuses a plan
    /// for another architecture). `None`: the build machine's ([`sinter_plan::Target::host`]).
    pub target: Option<sinter_plan::Target>,
}

/// A summary of one build.
#[derive(Clone, Debug)]
pub struct BuildReport {
    /// Nodes in the source model (including `Constant` nodes).
    pub model_nodes: usize,
    /// Model nodes that no kernel runs: constants, folded subgraphs, dead nodes.
    pub folded_nodes: usize,
    pub kernels: usize,
    pub weights_bytes: u64,
    pub arena_bytes: u64,
    /// Kernel workspace a context allocates beside its arena, and per thread (see the
    /// plan header).
    pub workspace_bytes: u64,
    pub workspace_per_thread_bytes: u64,
    /// Sum of all activation sizes: what the arena would be without reuse or aliasing.
    pub activations_bytes: u64,
    /// Concat kernels removed because their producers write straight into the output.
    pub concats_eliminated: usize,
    /// Split and Slice kernels removed because their outputs are views of their input.
    pub splits_eliminated: usize,
    /// Tensors that live inside another tensor's bytes, as (tensor id, id of the
    /// group root whose arena range holds it): these overlap their group by design.
    pub aliased: Vec<(u32, u32)>,
    /// Wall time of the build, including the ONNX import for [`build_onnx`].
    pub build_time: Duration,
    /// What the optimizer applied and refused.
    pub optimizer: sinter_optimizer::Report,
    /// The kernel chosen for each layer that had candidates.
    pub tactics: Vec<TacticReport>,
    /// Nodes that run the reference evaluator although the backend has fast kernels
    /// for their op type, with why each of those refused.
    pub fallbacks: Vec<FallbackReport>,
}

/// A node the backend's fast kernels refused.
#[derive(Clone, Debug)]
pub struct FallbackReport {
    pub node: String,
    pub op_type: String,
    pub reason: String,
}

/// How one layer's kernel was chosen.
#[derive(Clone, Debug)]
pub struct TacticReport {
    pub node: String,
    pub chosen: String,
    /// Each candidate's time on this machine (ms, one thread); empty when chosen by rule.
    pub timings: Vec<(String, f64)>,
}

/// Loads an ONNX file and builds it.
pub fn build_onnx(path: &Path, opts: &BuildOptions) -> Result<(Plan, BuildReport), BuildError> {
    let start = Instant::now();
    let model = sinter_onnx::load_model(path)?;
    let (plan, mut report) = build(&model.graph, opts)?;
    report.build_time = start.elapsed();
    Ok((plan, report))
}

/// Builds a plan for `graph`.
pub fn build(graph: &Graph, opts: &BuildOptions) -> Result<(Plan, BuildReport), BuildError> {
    let start = Instant::now();
    let input_facts = shapes::resolve_inputs(graph, opts)?;
    let source = graph;
    let mut optimized;
    let (graph, optimizer) = if opts.no_optimize {
        (graph, sinter_optimizer::Report::default())
    } else {
        optimized = graph.clone();
        let passes = sinter_optimizer::rules::default_passes();
        let report = sinter_optimizer::optimize(&mut optimized, &input_facts, &passes, &opts.optimizer)?;
        (&optimized, report)
    };
    let facts = infer_graph(graph, &input_facts)?;
    let fact = |name: &str| facts.get(name).ok_or_else(|| BuildError::Internal(format!("no fact for '{name}'")));

    // Keep the nodes that compute something the outputs need and that is not constant.
    let mut needed: HashSet<&str> = graph.outputs.iter().map(|o| o.name.as_str()).collect();
    let mut keep = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate().rev() {
        let live =
            node.outputs.iter().any(|o| needed.contains(o.as_str()) && facts.get(o).is_some_and(|f| f.value.is_none()));
        if live {
            keep[i] = true;
            needed.extend(node.inputs.iter().filter(|n| !n.is_empty()).map(|s| s.as_str()));
        }
    }
    let runtime_inputs: Vec<&str> =
        graph.runtime_inputs().map(|v| v.name.as_str()).filter(|n| !opts.freeze.contains_key(*n)).collect();

    let mut tensors: Vec<TensorDesc> = Vec::new();
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut weights = WeightsBuilder::new();
    let mut arena_ids: Vec<u32> = Vec::new();
    let add = |tensors: &mut Vec<TensorDesc>, name: &str, f: &Fact, location: Location| -> u32 {
        let id = tensors.len() as u32;
        tensors.push(TensorDesc {
            name: name.to_string(),
            dtype: f.dtype,
            shape: f.shape.iter().map(|&d| d as u64).collect(),
            location,
        });
        id
    };
    let arena_loc = |f: &Fact| Location::Arena { offset: 0, bytes: (f.numel() * f.dtype.size()) as u64 };

    for name in &runtime_inputs {
        let f = fact(name)?;
        let id = add(&mut tensors, name, f, arena_loc(f));
        ids.insert(name.to_string(), id);
        arena_ids.push(id);
    }
    let const_id = |tensors: &mut Vec<TensorDesc>,
                    ids: &mut HashMap<String, u32>,
                    weights: &mut WeightsBuilder,
                    name: &str,
                    t: &Arc<Tensor>|
     -> u32 {
        if let Some(&id) = ids.get(name) {
            return id;
        }
        let loc = weights.push(t.bytes());
        let id = add(tensors, name, &Fact::constant(t.clone()), loc);
        ids.insert(name.to_string(), id);
        id
    };

    let target = opts.target.unwrap_or_else(sinter_plan::Target::host);
    let backend = sinter_runtime::backend::for_target(target)?;
    let choice = match sinter_runtime::Isa::selected() {
        Ok(isa) if target == sinter_plan::Target::host() && !opts.deterministic_tactics => TacticChoice::Time(isa),
        _ => TacticChoice::Heuristic,
    };
    let mut tactics = Vec::new();
    let mut fallbacks = Vec::new();
    let mut kernels = Vec::new();
    for (node, _) in graph.nodes.iter().zip(&keep).filter(|(_, k)| **k) {
        // Every output the op produces gets a buffer, named or not.
        let out_facts = sinter_ir::infer::infer_node(
            node,
            &node.inputs.iter().map(|n| if n.is_empty() { None } else { facts.get(n) }).collect::<Vec<_>>(),
        )?;
        let chosen = choose_kernel(backend, node, &facts, &out_facts, choice)?;
        let fallback_reason = chosen.fallback_reason();
        if let Some(reason) = &fallback_reason {
            fallbacks.push(FallbackReport {
                node: node.name.clone(),
                op_type: node.op_type.clone(),
                reason: reason.clone(),
            });
        }
        let packed = chosen.packed;
        if let Some(p) = packed
            .as_ref()
            .filter(|p| !matches!(p.layout, sinter_plan::PackLayout::GemmPanels { .. }) || !p.timings.is_empty())
        {
            tactics.push(TacticReport {
                node: node.name.clone(),
                chosen: p.layout.tactic(),
                timings: p.timings.iter().map(|(l, t)| (l.tactic(), *t)).collect(),
            });
        }
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for (i, name) in node.inputs.iter().enumerate() {
            if name.is_empty() {
                inputs.push(None);
                continue;
            }
            let f = fact(name)?;
            if let Some(p) = packed.as_ref().filter(|p| p.input == i) {
                // Plans store weights little-endian, as every supported build host is.
                let bytes: &[u8] = bytemuck::cast_slice(&p.data);
                let loc = weights.push(bytes);
                let packed_fact = Fact::new(sinter_ir::DType::F32, vec![p.data.len()]);
                inputs.push(Some(add(&mut tensors, &format!("{name}#packed"), &packed_fact, loc)));
                continue;
            }
            let id = match (&f.value, ids.get(name)) {
                (_, Some(&id)) => id,
                (Some(t), None) => const_id(&mut tensors, &mut ids, &mut weights, name, t),
                (None, None) => return Err(BuildError::Internal(format!("value '{name}' has no tensor"))),
            };
            inputs.push(Some(id));
        }
        let packing = match &packed {
            Some(p) => Some(Packing {
                input: p.input as u32,
                shape: fact(&node.inputs[p.input])?.shape.iter().map(|&d| d as u64).collect(),
                layout: p.layout,
            }),
            None => None,
        };
        let mut outputs = Vec::with_capacity(out_facts.len());
        for (i, f) in out_facts.iter().enumerate() {
            let name = match node.outputs.get(i) {
                Some(n) if !n.is_empty() => n.clone(),
                _ => format!("{}:unused{}", node.name, i),
            };
            let id = add(&mut tensors, &name, f, arena_loc(f));
            ids.insert(name, id);
            arena_ids.push(id);
            outputs.push(id);
        }
        kernels.push(KernelDesc {
            op_type: node.op_type.clone(),
            opset: node.opset,
            attrs: node.attrs.clone(),
            inputs,
            outputs,
            nodes: node.sources().into_iter().map(|(name, op_type)| SourceNode { name, op_type }).collect(),
            packing,
            implementation: chosen.implementation.to_string(),
            precision: chosen.precision,
            fallback_reason,
        });
    }

    let mut outputs = Vec::new();
    for o in &graph.outputs {
        let f = fact(&o.name)?;
        let id = match (ids.get(&o.name), &f.value) {
            (Some(&id), _) => id,
            (None, Some(t)) => const_id(&mut tensors, &mut ids, &mut weights, &o.name, t),
            (None, None) => return Err(BuildError::Internal(format!("output '{}' has no tensor", o.name))),
        };
        outputs.push(Binding { name: o.name.clone(), tensor: id });
    }
    let inputs: Vec<Binding> =
        runtime_inputs.iter().map(|n| Binding { name: n.to_string(), tensor: ids[*n] }).collect();

    let weights = weights.finish();
    let output_ids: Vec<u32> = outputs.iter().map(|b: &Binding| b.tensor).collect();
    let input_ids: Vec<u32> = inputs.iter().map(|b: &Binding| b.tensor).collect();
    let (kernels, aliases) = if opts.no_optimize {
        (kernels, alias::Aliases::default())
    } else {
        let pinned: HashSet<u32> = input_ids.iter().chain(&output_ids).copied().collect();
        alias::eliminate(&tensors, kernels, &pinned, &weights)
    };
    let layout = memory::plan_arena(&tensors, &kernels, &arena_ids, &input_ids, &output_ids, &aliases);
    for (id, offset) in &layout.offsets {
        if let Location::Arena { bytes, .. } = tensors[*id as usize].location {
            tensors[*id as usize].location = Location::Arena { offset: *offset, bytes };
        }
    }

    let model_nodes = graph.source_nodes.max(graph.nodes.len());
    let report = BuildReport {
        model_nodes,
        folded_nodes: model_nodes - kernels.len(),
        kernels: kernels.len(),
        weights_bytes: weights.len() as u64,
        arena_bytes: layout.arena_bytes,
        workspace_bytes: 0,
        workspace_per_thread_bytes: 0,
        activations_bytes: layout.total_bytes,
        concats_eliminated: aliases.concats,
        splits_eliminated: aliases.splits,
        aliased: aliases.members(),
        build_time: start.elapsed(),
        optimizer,
        tactics,
        fallbacks,
    };
    let meta = PlanMeta {
        model_name: graph.name.clone(),
        source_nodes: model_nodes as u64,
        inputs,
        outputs,
        tensors,
        kernels,
        arena_bytes: layout.arena_bytes,
        optimizer: log::optimizer_log(&report.optimizer),
        source_graph: log::source_graph(source),
    };
    let plan = Plan::new(meta, weights)?.with_target(&target.name())?;
    // The kernels' scratch, as the runtime prepares them (the same on every machine).
    let ws = sinter_runtime::workspace_of_plan(&plan)
        .map_err(|e| BuildError::Internal(format!("preparing the plan's kernels: {e}")))?;
    let plan = plan.with_workspace(ws.shared, ws.per_thread)?;
    let mut report = report;
    (report.workspace_bytes, report.workspace_per_thread_bytes) = (ws.shared, ws.per_thread);
    if let Some(limit) = opts.max_memory {
        let threads = opts.threads.unwrap_or_else(num_cpus::get_physical).max(1);
        let total = plan.header().context_bytes(threads);
        if total > limit {
            return Err(BuildError::MemoryTooLarge {
                arena: layout.arena_bytes,
                workspace: ws.shared,
                per_thread: ws.per_thread,
                threads,
                total,
                limit,
            });
        }
    }
    report.build_time = start.elapsed();
    Ok((plan, report))
}

/// The backend's kernel for a node, with its weights packed for it when they are
/// constants and the kernel reads them packed.
fn choose_kernel(
    backend: &dyn sinter_runtime::Backend,
    node: &sinter_ir::Node,
    facts: &HashMap<String, Fact>,
    out_facts: &[Fact],
    choice: TacticChoice,
) -> Result<sinter_runtime::KernelChoice, BuildError> {
    let fact = |n: &String| if n.is_empty() { None } else { facts.get(n) };
    let inputs: Vec<_> = node.inputs.iter().map(|n| fact(n).map(|f| (f.dtype, f.shape.clone()))).collect();
    let constants: Vec<_> = node.inputs.iter().map(|n| fact(n).and_then(|f| f.value.clone())).collect();
    let outputs: Vec<_> = out_facts.iter().map(|f| (f.dtype, f.shape.clone())).collect();
    let spec = sinter_runtime::NodeSpec {
        op_type: &node.op_type,
        attrs: &node.attrs,
        opset: node.opset,
        inputs: &inputs,
        outputs: &outputs,
        constants: &constants,
    };
    backend
        .choose_kernel(&spec, choice)
        .map_err(|e| BuildError::Internal(format!("choosing the kernel of '{}': {e}", node.name)))
}
