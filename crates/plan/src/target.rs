//! The machine a plan is built for, recorded in the header's target field, and the
//! backend that runs it.

use crate::error::{PlanError, Result};
use crate::format::{DEFAULT_TARGET, FIXED_STR_LEN};

/// The machine a plan is built for.
///
/// CPU weight packing is the same on every architecture (fixed panel sizes), so a CPU
/// plan's bytes are numerically portable; the target still records which machine the
/// builder chose kernels and tactics for, and the runtime refuses a plan built for another
/// architecture rather than run it with choices made for a different CPU. `Generic` plans
/// run on any CPU. `Cuda` plans carry kernels for a list of GPU architectures and run on
/// the CUDA backend only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Generic,
    X86_64,
    Aarch64,
    /// NVIDIA GPUs of the listed compute capabilities.
    Cuda(SmList),
}

/// The backend a target's plans run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    Cpu,
    Cuda,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

/// Up to [`SmList::MAX`] CUDA compute capabilities (`major * 10 + minor`: 87 is Orin,
/// 90 Hopper), sorted and distinct; written `cuda:87,90`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SmList {
    sms: [u16; SmList::MAX],
    len: u8,
}

impl SmList {
    /// The most architectures one name can list and still fit the header's field.
    pub const MAX: usize = 4;

    /// The list of `sms`, sorted and deduplicated; `None` if it is empty, longer than
    /// [`SmList::MAX`], or names a capability outside 3.0..=15.9.
    pub fn new(sms: &[u16]) -> Option<SmList> {
        let mut v: Vec<u16> = sms.to_vec();
        v.sort_unstable();
        v.dedup();
        if v.is_empty() || v.len() > SmList::MAX || v.iter().any(|&s| !(30..=159).contains(&s)) {
            return None;
        }
        let mut list = SmList { sms: [0; SmList::MAX], len: v.len() as u8 };
        list.sms[..v.len()].copy_from_slice(&v);
        Some(list)
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.sms[..self.len as usize]
    }
}

impl Target {
    /// The CPU targets (CUDA targets are parameterised by their architectures).
    pub const CPUS: [Target; 3] = [Target::Generic, Target::X86_64, Target::Aarch64];

    /// The name written in the header and accepted by `sinter build --target`.
    pub fn name(self) -> String {
        match self {
            Target::Generic => DEFAULT_TARGET.into(),
            Target::X86_64 => "x86_64".into(),
            Target::Aarch64 => "aarch64".into(),
            Target::Cuda(sms) => {
                let list: Vec<String> = sms.as_slice().iter().map(u16::to_string).collect();
                format!("cuda:{}", list.join(","))
            }
        }
    }

    /// The target a header names, if this version knows it.
    pub fn from_name(name: &str) -> Option<Target> {
        if let Some(list) = name.strip_prefix("cuda:") {
            let sms: Option<Vec<u16>> = list.split(',').map(|s| s.parse().ok()).collect();
            let target = Target::Cuda(SmList::new(&sms?)?);
            // One spelling per target, so that names compare as targets do.
            return (target.name() == name).then_some(target);
        }
        Target::CPUS.into_iter().find(|t| t.name() == name)
    }

    /// The backend that runs plans for this target.
    pub fn backend(self) -> BackendKind {
        match self {
            Target::Cuda(_) => BackendKind::Cuda,
            _ => BackendKind::Cpu,
        }
    }

    /// The CPU this code is compiled for; `Generic` on architectures without a target of
    /// their own.
    pub fn host() -> Target {
        if cfg!(target_arch = "x86_64") {
            Target::X86_64
        } else if cfg!(target_arch = "aarch64") {
            Target::Aarch64
        } else {
            Target::Generic
        }
    }

    /// Whether a plan built for `self` may run on a CPU of target `host`.
    pub fn runs_on(self, host: Target) -> bool {
        self == Target::Generic || self == host
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for Target {
    type Err = PlanError;

    /// Like [`Target::from_name`], but a CUDA list may come in any order (`sinter build
    /// --target cuda:90,87`).
    fn from_str(s: &str) -> Result<Target> {
        let unknown = || PlanError::UnknownTarget {
            name: s.to_string(),
            known: format!(
                "{}, cuda:SM[,SM...] (at most {} compute capabilities, e.g. cuda:87,90)",
                Target::CPUS.map(Target::name).join(", "),
                SmList::MAX
            ),
        };
        let target = match s.strip_prefix("cuda:") {
            Some(list) => {
                let sms: Option<Vec<u16>> = list.split(',').map(|s| s.trim().parse().ok()).collect();
                Target::Cuda(sms.as_deref().and_then(SmList::new).ok_or_else(unknown)?)
            }
            None => Target::from_name(s).ok_or_else(unknown)?,
        };
        if target.name().len() > FIXED_STR_LEN {
            return Err(unknown());
        }
        Ok(target)
    }
}
