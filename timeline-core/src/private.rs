//! Support for the code `#[timed]` generates, and nothing else. Not public
//! API: no semver guarantees. (Hooks for tests, benchmarks and fuzzing are
//! in `__hooks`.)

use std::borrow::Cow;
use std::fmt::Display;

use crate::current::current;
use crate::{ActionGuard, Outcome, Timeline};

/// The action of one call of a `#[timed]` function.
///
/// Started on the current timeline, if any. An overlap stores the action as
/// concurrent and notes a [`Violation`](crate::Violation) (or panics on a
/// strict timeline). Dropping it finishes the action: with `Outcome::Panicked`
/// during a panic, with `Outcome::Cancelled` for an `async` call that never
/// completed, and otherwise with `Outcome::Ok`.
#[must_use]
#[derive(Debug)]
pub struct TimedCall {
    guard: Option<ActionGuard>,
    is_async: bool,
}

impl TimedCall {
    /// Starts the action of a synchronous call. `detail` runs only when a
    /// timeline is current. The call site is where the macro put the call:
    /// the function's `#[timed]` attribute.
    #[inline]
    #[track_caller]
    pub fn start<D, F>(category: &'static str, nested: bool, detail: F) -> TimedCall
    where
        D: Into<Cow<'static, str>>,
        F: FnOnce() -> D,
    {
        TimedCall {
            guard: start_on_current(category, nested, detail),
            is_async: false,
        }
    }

    /// Starts the action of an `async` call, at its first poll: dropped
    /// before [`complete`](Self::complete), it is `Cancelled`.
    #[inline]
    #[track_caller]
    pub fn start_async<D, F>(category: &'static str, nested: bool, detail: F) -> TimedCall
    where
        D: Into<Cow<'static, str>>,
        F: FnOnce() -> D,
    {
        TimedCall {
            guard: start_on_current(category, nested, detail),
            is_async: true,
        }
    }

    /// The call completed.
    #[inline]
    pub fn complete(mut self) {
        if let Some(guard) = &mut self.guard {
            guard.finish_now(Outcome::Ok);
        }
    }

    /// The call completed with `result`: an `Err(e)` becomes
    /// `Outcome::Error(e.to_string())`.
    #[inline]
    pub fn complete_result<T, E: Display>(mut self, result: &Result<T, E>) {
        if let Some(guard) = &mut self.guard {
            let outcome = match result {
                Ok(_) => Outcome::Ok,
                Err(error) => Outcome::Error(error.to_string()),
            };
            guard.finish_now(outcome);
        }
    }
}

impl Drop for TimedCall {
    #[inline]
    fn drop(&mut self) {
        // Taken out first: where there is no guard, the call then stays in
        // registers instead of being written out for a drop in place.
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        // A synchronous call's guard finishes itself as it is dropped: `Ok`,
        // or `Panicked`. Only a future dropped unfinished needs another
        // outcome.
        if self.is_async && !guard.is_finished() {
            let outcome = guard.outcome_on_drop(Outcome::Cancelled);
            guard.finish_now(outcome);
        }
    }
}

#[inline]
#[track_caller]
fn start_on_current<D, F>(category: &'static str, nested: bool, detail: F) -> Option<ActionGuard>
where
    D: Into<Cow<'static, str>>,
    F: FnOnce() -> D,
{
    let timeline = current()?;
    // A parameter's `Display` that panics, or fails (which makes `format!`
    // panic), must not break the call it describes.
    let detail = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| detail().into()))
        .unwrap_or(Cow::Borrowed(DETAIL_PANICKED));
    start_timed(timeline, category, nested, detail)
}

/// The detail of a `#[timed]` call whose detail could not be formatted.
pub(crate) const DETAIL_PANICKED: &str =
    "<detail not formatted: a parameter's Display panicked or failed>";

#[inline]
#[track_caller]
fn start_timed(
    timeline: Timeline,
    category: &'static str,
    nested: bool,
    detail: Cow<'static, str>,
) -> Option<ActionGuard> {
    // `current()` cloned the handle; the guard keeps that clone.
    Some(timeline.start_for_timed(category, detail, nested))
}

/// `format!`, by a path that a crate's own `std` or `format` cannot shadow.
pub use std::format;
