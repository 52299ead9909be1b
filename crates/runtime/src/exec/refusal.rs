//! Why a kernel factory does not take a node: a reason for the build report and
//! `sinter inspect`, and the helpers constructors use to give one.

use std::borrow::Cow;

/// Why a factory does not take a node (its dtypes, shapes or attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub Cow<'static, str>);

impl Refusal {
    pub(crate) fn new(reason: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal(reason.into())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A factory's answer: a value, or why not.
pub(crate) type Accept<T> = std::result::Result<T, Refusal>;

/// Turns a failed check into a refusal with its reason.
pub(crate) trait Why<T> {
    fn why(self, reason: &'static str) -> Accept<T>;
}

impl<T> Why<T> for Option<T> {
    fn why(self, reason: &'static str) -> Accept<T> {
        self.ok_or(Refusal(Cow::Borrowed(reason)))
    }
}

impl<T, E: std::fmt::Display> Why<T> for std::result::Result<T, E> {
    fn why(self, reason: &'static str) -> Accept<T> {
        self.map_err(|e| Refusal::new(format!("{reason}: {e}")))
    }
}

/// `Ok` when `cond` holds, else a refusal with `reason`.
pub(crate) fn need(cond: bool, reason: &'static str) -> Accept<()> {
    if cond {
        Ok(())
    } else {
        Err(Refusal(Cow::Borrowed(reason)))
    }
}
