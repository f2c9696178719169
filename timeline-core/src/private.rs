//! Support for the code `#[timed]` generates. Not public API: no semver
//! guarantees.

use std::borrow::Cow;
use std::fmt::Display;
use std::time::{Duration, SystemTime};

use crate::action::Outcome;
use crate::clock::saturating_nanos;
use crate::current::current;
use crate::guard::ActionGuard;
use crate::slots::UNFINISHED;
use crate::timeline::{OnOverlap, Timeline, TimelineBuilder};

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

#[cold]
#[inline(never)]
fn strict_overlap(error: crate::OverlapError) -> ! {
    panic!("#[timed] on a strict timeline: {error}");
}

#[inline]
#[track_caller]
fn start_timed(
    timeline: Timeline,
    category: &'static str,
    nested: bool,
    detail: Cow<'static, str>,
) -> Option<ActionGuard> {
    let on_overlap = if timeline.is_strict() {
        OnOverlap::Refuse
    } else {
        OnOverlap::Concurrent
    };
    let call_site = Some(std::panic::Location::caller());
    match timeline.try_start(
        Cow::Borrowed(category),
        detail,
        nested,
        on_overlap,
        call_site,
    ) {
        // `current()` cloned the handle; the guard keeps that clone.
        Ok(started) => Some(started.into_guard(timeline)),
        Err(error) => strict_overlap(error),
    }
}

/// A timeline whose baseline and report time are fixed, for reproducible
/// (golden) tests of reports. Add actions with [`push_fixed`].
pub fn fixed_timeline(baseline: SystemTime, elapsed: Duration) -> Timeline {
    TimelineBuilder::default().build_fixed(baseline, elapsed)
}

/// Adds an action with fixed timings: `duration: None` leaves it
/// unfinished. Used by golden tests; never refused.
pub fn push_fixed(
    timeline: &Timeline,
    category: impl Into<Cow<'static, str>>,
    detail: impl Into<Cow<'static, str>>,
    start: Duration,
    duration: Option<Duration>,
    nested: bool,
    outcome: Outcome,
) {
    let start_ns = saturating_nanos(start).min(UNFINISHED - 1);
    let end_ns = match duration {
        Some(duration) => start_ns
            .saturating_add(saturating_nanos(duration))
            .min(UNFINISHED - 1),
        None => UNFINISHED,
    };
    timeline.inner.push_finished(
        category.into(),
        detail.into(),
        start_ns,
        end_ns,
        nested,
        outcome,
    );
}

/// [`Timeline::start`] without recording a call site: for the benchmark
/// that shows what the call site costs.
#[inline]
pub fn start_without_call_site(
    timeline: &Timeline,
    category: &'static str,
    detail: &'static str,
) -> Result<ActionGuard, crate::OverlapError> {
    timeline
        .try_start(
            Cow::Borrowed(category),
            Cow::Borrowed(detail),
            false,
            OnOverlap::Refuse,
            None,
        )
        .map(|started| started.guard(timeline))
}

/// `format!`, by a path that a crate's own `std` or `format` cannot shadow.
pub use std::format;

/// The statement normaliser, for the fuzz target.
pub use crate::report::normalise::normalise;

/// What `timeline` counts against its `max_bytes`, for the test that holds
/// the count to what the allocator saw.
pub fn held_bytes(timeline: &Timeline) -> usize {
    timeline.inner.lock().bytes
}

/// The clock a timeline reads, for the benchmark that compares it with
/// other clocks.
#[derive(Debug)]
pub struct BenchClock(crate::clock::Clock);

impl BenchClock {
    /// A clock started now, as a new timeline's is.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        BenchClock(crate::clock::Clock::start())
    }

    /// Nanoseconds since the clock started.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.0.now_ns()
    }

    /// Whether it reads the time-stamp counter (else `Instant`).
    pub fn reads_ticks(&self) -> bool {
        self.0.reads_ticks()
    }
}
