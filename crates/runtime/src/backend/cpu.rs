//! The CPU backend: the kernels of `crate::exec` on the tier `sinter-kernels` selects
//! at run time.

use super::Backend;
use crate::exec::registry::{Factory, CPU_FACTORIES};
use sinter_plan::BackendKind;

/// Runs plans on this machine's CPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

impl Backend for Cpu {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn factories(&self) -> &'static [Factory] {
        CPU_FACTORIES
    }
}
