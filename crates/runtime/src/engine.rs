use crate::backend::Backend;
use crate::context::Context;
use crate::error::{Result, RuntimeError};
use crate::prepare::{self, Prepared, Slot};
use sinter_ir::{DType, Tensor};
use sinter_kernels::{Isa, KernelTable, Scratch};
use sinter_plan::{BackendKind, Plan, Target};
use std::borrow::Borrow;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A graph input or output of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct IoInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// How contexts of an engine execute.
#[derive(Clone, Debug, Default)]
pub struct RuntimeOptions {
    /// Threads each context runs a kernel on (its own pool, started once per context);
    /// `None` is the number of physical cores.
    pub threads: Option<usize>,
}

pub(crate) struct Shared {
    pub plan: Plan,
    /// Kernel tier's table (from CPU detection or `SINTER_CPU`).
    pub tier: &'static KernelTable,
    /// Threads per context.
    pub threads: usize,
    pub kernels: Vec<Prepared>,
    /// The most workspace any kernel declares (floats).
    pub workspace: Scratch,
    pub inputs: Vec<(IoInfo, Slot)>,
    pub outputs: Vec<(IoInfo, Slot)>,
}

/// A loaded plan, ready to run. Cheap to share between threads: weights are mapped
/// once; each [`Context`] owns its own activation arena.
pub struct Engine {
    shared: Arc<Shared>,
    /// Contexts reused by [`Engine::run`], so repeated calls allocate no arena.
    idle: Mutex<Vec<Context>>,
}

impl Engine {
    /// Loads a plan file (memory-mapped) and prepares its kernels.
    pub fn load(path: impl AsRef<Path>) -> Result<Engine> {
        Engine::new(Plan::load(path.as_ref())?)
    }

    /// Loads a plan file with explicit options.
    pub fn load_with(path: impl AsRef<Path>, options: &RuntimeOptions) -> Result<Engine> {
        Engine::with_options(Plan::load(path.as_ref())?, options)
    }

    /// Prepares an in-memory plan.
    pub fn new(plan: Plan) -> Result<Engine> {
        Engine::with_options(plan, &RuntimeOptions::default())
    }

    /// Prepares an in-memory plan with explicit options. Refuses a plan built for
    /// another target ([`check_target`]).
    pub fn with_options(plan: Plan, options: &RuntimeOptions) -> Result<Engine> {
        let backend = check_target(&plan)?;
        let tier = KernelTable::selected()?;
        let threads = match options.threads {
            Some(0) => return Err(RuntimeError::Options("threads must be at least 1".into())),
            Some(n) => n,
            None => num_cpus::get_physical().max(1),
        };
        let kernels = prepare::prepare(&plan, backend)?;
        let workspace = kernels_workspace(&kernels);
        check_workspace(&plan, workspace)?;
        let meta = plan.meta();
        let io = |b: &sinter_plan::Binding| -> Result<(IoInfo, Slot)> {
            let s = prepare::slot(meta, b.tensor)?;
            Ok((IoInfo { name: b.name.clone(), dtype: s.dtype, shape: s.shape.clone() }, s))
        };
        let inputs = meta.inputs.iter().map(io).collect::<Result<Vec<_>>>()?;
        let outputs = meta.outputs.iter().map(io).collect::<Result<Vec<_>>>()?;
        Ok(Engine {
            shared: Arc::new(Shared { plan, tier, threads, kernels, workspace, inputs, outputs }),
            idle: Mutex::new(Vec::new()),
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.shared.plan
    }

    /// The CPU kernel tier this engine runs.
    pub fn isa(&self) -> Isa {
        self.shared.tier.isa()
    }

    /// Threads each context uses.
    pub fn threads(&self) -> usize {
        self.shared.threads
    }

    /// The kernel workspace each context allocates (plus its per-thread part once per
    /// thread): what the kernels declare, at most what the plan's header records.
    pub fn workspace(&self) -> WorkspaceSize {
        WorkspaceSize::of(self.shared.workspace)
    }

    pub fn inputs(&self) -> Vec<IoInfo> {
        self.shared.inputs.iter().map(|(i, _)| i.clone()).collect()
    }

    pub fn outputs(&self) -> Vec<IoInfo> {
        self.shared.outputs.iter().map(|(i, _)| i.clone()).collect()
    }

    /// A new execution context with its own arena (allocated once, reused by every run).
    pub fn context(&self) -> Context {
        Context::new(self.shared.clone())
    }

    /// Runs the plan on named inputs; every plan input must be given once.
    /// Returns the outputs in plan order. Safe to call from several threads.
    pub fn run<N: AsRef<str>, T: Borrow<Tensor>>(&self, inputs: &[(N, T)]) -> Result<Vec<(String, Tensor)>> {
        let idle = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let mut ctx = idle.unwrap_or_else(|| self.context());
        let result = ctx.run_with(inputs);
        if let Ok(mut v) = self.idle.lock() {
            v.push(ctx);
        }
        result
    }
}

/// Kernel workspace in bytes: `shared` once per execution context, plus `per_thread`
/// for each thread of its pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceSize {
    pub shared: u64,
    pub per_thread: u64,
}

impl WorkspaceSize {
    fn of(s: Scratch) -> WorkspaceSize {
        let bytes = |floats: usize| (floats as u64).saturating_mul(4);
        WorkspaceSize { shared: bytes(s.shared), per_thread: bytes(s.per_thread) }
    }

    /// Bytes for a context of `threads` threads.
    pub fn total(&self, threads: usize) -> u64 {
        self.shared.saturating_add(self.per_thread.saturating_mul(threads as u64))
    }
}

fn kernels_workspace(kernels: &[Prepared]) -> Scratch {
    kernels.iter().fold(Scratch::NONE, |acc, k| acc.max(k.exec.workspace()))
}

/// The workspace the kernels of `plan` declare once prepared: what the builder records
/// in the plan's header (see [`sinter_plan::Plan::with_workspace`]). Independent of the
/// thread count and of the CPU tier.
pub fn workspace_of_plan(plan: &Plan) -> Result<WorkspaceSize> {
    // Any CPU target's kernels prepare the same (the builder asks this for plans of
    // other architectures too), so only the backend matters here, not the host.
    let name = &plan.header().target;
    let target = Target::from_name(name)
        .ok_or_else(|| RuntimeError::WrongTarget { plan: name.clone(), host: Target::host().name() })?;
    Ok(WorkspaceSize::of(kernels_workspace(&prepare::prepare(plan, crate::backend::for_target(target)?)?)))
}

/// Refuses a plan whose kernels need more workspace than its header declares (a plan
/// from an older or foreign builder, or a tampered header): the header is what tools
/// and `--max-memory` size contexts by.
fn check_workspace(plan: &Plan, need: Scratch) -> Result<()> {
    let need = WorkspaceSize::of(need);
    let h = plan.header();
    if need.shared > h.workspace_bytes || need.per_thread > h.workspace_per_thread_bytes {
        return Err(RuntimeError::WorkspaceTooSmall {
            needed: need.shared,
            needed_per_thread: need.per_thread,
            declared: h.workspace_bytes,
            declared_per_thread: h.workspace_per_thread_bytes,
        });
    }
    Ok(())
}

/// Checks that a plan may run on this machine and returns the backend that runs it: a
/// CPU plan's target must be `generic` or this architecture; a CUDA plan needs the CUDA
/// backend. Unknown names (a newer producer's targets) are refused like another CPU's.
pub fn check_target(plan: &Plan) -> Result<&'static dyn Backend> {
    let host = Target::host();
    let name = &plan.header().target;
    match Target::from_name(name) {
        Some(t) if t.backend() != BackendKind::Cpu => crate::backend::for_target(t),
        Some(t) if t.runs_on(host) => crate::backend::for_target(t),
        _ => Err(RuntimeError::WrongTarget { plan: name.clone(), host: host.name() }),
    }
}
