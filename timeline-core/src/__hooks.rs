//! Hooks for this crate's own tests, benchmarks and fuzz targets: fixed
//! timelines for golden reports, the byte count, the clock, the
//! normaliser. Not public API: no semver guarantees, and nothing
//! `#[timed]` expands to (that is `__private`).

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use crate::{ActionGuard, Outcome, Timeline, TimelineBuilder};

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
    timeline.push_fixed(
        category.into(),
        detail.into(),
        start,
        duration,
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
    timeline.start_at(category, detail, None)
}

/// The statement normaliser, for the fuzz target.
pub use crate::analysis::normalise::normalise;

/// What `timeline` counts against its `max_bytes`, for the test that holds
/// the count to what the allocator saw.
pub fn held_bytes(timeline: &Timeline) -> usize {
    timeline.held_bytes()
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
