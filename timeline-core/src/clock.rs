//! The clock every timeline reads: nanoseconds since the timeline's start.

use std::time::{Duration, Instant, SystemTime};

/// Where a timeline's offsets count from.
#[derive(Debug)]
pub(crate) struct Clock {
    baseline: Instant,
    baseline_wall: SystemTime,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Clock {
            baseline: Instant::now(),
            baseline_wall: SystemTime::now(),
        }
    }

    pub(crate) fn with_wall(baseline_wall: SystemTime) -> Self {
        Clock {
            baseline: Instant::now(),
            baseline_wall,
        }
    }

    /// Nanoseconds from the baseline to now.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.offset_ns(Instant::now())
    }

    /// Nanoseconds from the baseline to `at`; 0 for an instant before it.
    #[inline]
    pub(crate) fn offset_ns(&self, at: Instant) -> u64 {
        saturating_nanos(at.saturating_duration_since(self.baseline))
    }

    pub(crate) fn baseline_wall(&self) -> SystemTime {
        self.baseline_wall
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (584 years).
pub(crate) fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
