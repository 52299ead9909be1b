use crate::arena::{Arena, Workspace};
use crate::engine::Shared;
use crate::error::{Result, RuntimeError};
use crate::exec::RunCtx;
use crate::prepare::{weight_bytes, Slot};
use sinter_ir::{Tensor, View, ViewMut};
use sinter_kernels::ThreadPool;
use sinter_plan::Location;
use std::borrow::Borrow;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The time one kernel of a profiled run took.
#[derive(Clone, Debug)]
pub struct KernelTime {
    pub op_type: String,
    /// The kernel implementation that ran (`cpu.conv2d`, `reference`, …).
    pub implementation: String,
    /// The first model node the kernel covers.
    pub node: String,
    pub time: Duration,
}

/// One execution context: an activation arena, a kernel workspace and a thread pool, all
/// made once and reused by every run. Running allocates nothing (from the first run on)
/// and starts no thread.
pub struct Context {
    shared: Arc<Shared>,
    arena: Arena,
    /// The most scratch any kernel declares, for this pool's thread count.
    workspace: Workspace,
    pool: ThreadPool,
    /// Operand lists, kept (empty) between kernels and runs so running allocates nothing.
    ins: Vec<Option<View<'static>>>,
    outs: Vec<ViewMut<'static>>,
}

/// An emptied vector of views, ready to hold views of another lifetime: the allocation
/// is reused, no view outlives the borrow it was made under.
fn recycle<'b, T>(mut v: Vec<T>) -> Vec<T::Other<'b>>
where
    T: Relifetime,
{
    v.clear();
    // SAFETY: the vector is empty, and `T` and `T::Other<'b>` are the same type up to a
    // lifetime, so they have the same size and alignment.
    unsafe { std::mem::transmute::<Vec<T>, Vec<T::Other<'b>>>(v) }
}

/// View types that differ only in their lifetime.
trait Relifetime {
    type Other<'b>;
}
impl Relifetime for Option<View<'_>> {
    type Other<'b> = Option<View<'b>>;
}
impl Relifetime for ViewMut<'_> {
    type Other<'b> = ViewMut<'b>;
}

fn names(list: &[(crate::IoInfo, Slot)]) -> String {
    list.iter().map(|(i, _)| i.name.as_str()).collect::<Vec<_>>().join(", ")
}

impl Context {
    pub(crate) fn new(shared: Arc<Shared>) -> Context {
        let arena = Arena::new(shared.plan.meta().arena_bytes as usize);
        let pool = ThreadPool::new(shared.threads);
        let workspace = Workspace::new(shared.workspace.total(pool.threads()));
        let most_in = shared.kernels.iter().map(|k| k.inputs.len()).max().unwrap_or(0);
        let most_out = shared.kernels.iter().map(|k| k.outputs.len()).max().unwrap_or(0);
        let (ins, outs) = (Vec::with_capacity(most_in), Vec::with_capacity(most_out));
        Context { shared, arena, workspace, pool, ins, outs }
    }

    /// Copies `t` into the arena slot of input `name`, checking dtype and shape. The
    /// input stays set for every later run until it is set again (no kernel writes over
    /// a graph input's slot).
    pub fn set_input(&mut self, name: &str, t: &Tensor) -> Result<()> {
        let (info, slot) = self.shared.inputs.iter().find(|(i, _)| i.name == name).ok_or_else(|| {
            RuntimeError::UnknownInput { name: name.to_string(), expected: names(&self.shared.inputs) }
        })?;
        if t.dtype() != info.dtype || t.shape() != info.shape.as_slice() {
            return Err(RuntimeError::InputMismatch {
                name: name.to_string(),
                expected_dtype: info.dtype,
                expected_shape: info.shape.clone(),
                dtype: t.dtype(),
                shape: t.shape().to_vec(),
            });
        }
        let (off, len) = slot.range();
        self.arena_bytes_mut(off as usize, len as usize).copy_from_slice(t.bytes());
        Ok(())
    }

    fn arena_bytes_mut(&mut self, off: usize, len: usize) -> &mut [u8] {
        // SAFETY: slots were checked to lie inside the arena at load time.
        unsafe { std::slice::from_raw_parts_mut(self.arena.base().add(off), len) }
    }

    /// Runs every kernel on the inputs already set.
    pub fn run(&mut self) -> Result<()> {
        self.run_kernels(|_, _| {})
    }

    /// Runs like [`Context::run`] and returns how long each kernel took, in schedule
    /// order (for `sinter bench --profile`).
    pub fn profile(&mut self) -> Result<Vec<KernelTime>> {
        let mut times = Vec::with_capacity(self.shared.kernels.len());
        self.run_kernels(|k, d| {
            times.push(KernelTime {
                op_type: k.op_type.clone(),
                implementation: k.implementation.clone(),
                node: k.node.clone(),
                time: d,
            });
        })?;
        Ok(times)
    }

    fn run_kernels(&mut self, mut done: impl FnMut(&crate::prepare::Prepared, Duration)) -> Result<()> {
        let shared = self.shared.clone();
        let base = self.arena.base();
        let mut cx = RunCtx { tier: shared.tier, pool: &self.pool, ws: self.workspace.floats() };
        let mut ins: Vec<Option<View>> = recycle(std::mem::take(&mut self.ins));
        let mut outs: Vec<ViewMut> = recycle(std::mem::take(&mut self.outs));
        let mut result = Ok(());
        for (index, k) in shared.kernels.iter().enumerate() {
            let start = Instant::now();
            ins.clear();
            outs.clear();
            ins.extend(k.inputs.iter().map(|s| s.as_ref().map(|s| view(&shared.plan, base, s))));
            outs.extend(k.outputs.iter().map(|s| {
                let (off, len) = s.range();
                // SAFETY: outputs are arena slots, pairwise disjoint and disjoint
                // from this kernel's inputs (checked at load).
                let data = unsafe { std::slice::from_raw_parts_mut(base.add(off as usize), len as usize) };
                ViewMut { dtype: s.dtype, shape: &s.shape, data }
            }));
            if let Err(source) = k.exec.run(&ins, &mut outs, &mut cx) {
                result = Err(RuntimeError::Kernel { index, op_type: k.op_type.clone(), node: k.node.clone(), source });
                break;
            }
            done(k, start.elapsed());
        }
        self.ins = recycle(ins);
        self.outs = recycle(outs);
        result
    }

    /// The current value of output `index` (valid until the next run).
    pub fn output(&self, index: usize) -> Option<View<'_>> {
        let (_, s) = self.shared.outputs.get(index)?;
        let (off, len) = s.range();
        let data = match s.loc {
            Location::Arena { .. } => self.arena.bytes().get(off as usize..(off + len) as usize)?,
            Location::Weights { .. } => weight_bytes(&self.shared.plan, s)?,
        };
        Some(View { dtype: s.dtype, shape: &s.shape, data })
    }

    /// Sets all inputs by name, runs, and copies the outputs out.
    pub fn run_with<N: AsRef<str>, T: Borrow<Tensor>>(&mut self, inputs: &[(N, T)]) -> Result<Vec<(String, Tensor)>> {
        let shared = self.shared.clone();
        for (i, (name, _)) in inputs.iter().enumerate() {
            let name = name.as_ref();
            if !shared.inputs.iter().any(|(info, _)| info.name == name) {
                return Err(RuntimeError::UnknownInput { name: name.to_string(), expected: names(&shared.inputs) });
            }
            if inputs[..i].iter().any(|(n, _)| n.as_ref() == name) {
                return Err(RuntimeError::DuplicateInput(name.to_string()));
            }
        }
        for (info, _) in &shared.inputs {
            let t = inputs.iter().find(|(n, _)| n.as_ref() == info.name).map(|(_, t)| t.borrow()).ok_or_else(|| {
                RuntimeError::MissingInput { name: info.name.clone(), expected: names(&shared.inputs) }
            })?;
            self.set_input(&info.name, t)?;
        }
        self.run()?;
        (0..shared.outputs.len())
            .map(|i| {
                let v = self.output(i).ok_or_else(|| RuntimeError::UnknownOutput(shared.outputs[i].0.name.clone()))?;
                Ok((shared.outputs[i].0.name.clone(), v.to_tensor()))
            })
            .collect()
    }
}

/// A view of an operand during a run.
fn view<'a>(plan: &'a sinter_plan::Plan, base: *mut u8, s: &'a Slot) -> View<'a> {
    let data: &[u8] = match s.loc {
        // SAFETY: arena slots lie inside the arena (checked at load), and no output of
        // the running kernel overlaps its inputs (checked at load).
        Location::Arena { offset, bytes } => unsafe {
            std::slice::from_raw_parts(base.add(offset as usize), bytes as usize)
        },
        Location::Weights { .. } => weight_bytes(plan, s).unwrap_or(&[]),
    };
    View { dtype: s.dtype, shape: &s.shape, data }
}
