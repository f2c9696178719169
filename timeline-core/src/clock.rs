//! The clock every timeline reads: nanoseconds since the timeline's start.
//!
//! Two clock reads are most of the cost of an action, and `Instant::now()`
//! costs tens of nanoseconds on common VMs. Where the CPU's time-stamp counter
//! is invariant and the kernel itself keeps time with it, a timeline reads the
//! TSC instead (a few nanoseconds) and converts ticks to nanoseconds with a
//! scale measured against `Instant`. Elsewhere — other CPUs, an unstable TSC,
//! or before the scale has been measured over at least a millisecond — it
//! reads `Instant`. Either way offsets are nanoseconds from the same
//! baseline, so `record()`'s `Instant`s and the timeline's own reads agree.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Where a timeline's offsets count from, and how it reads the time.
#[derive(Debug)]
pub(crate) struct Clock {
    baseline: Instant,
    baseline_wall: SystemTime,
    ticks: Option<TickScale>,
}

/// Converts time-stamp-counter ticks since `baseline_tick` to nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct TickScale {
    baseline_tick: u64,
    /// Nanoseconds per tick, as a 32.32 fixed-point number.
    nanos_per_tick: u64,
}

impl TickScale {
    #[inline]
    fn nanos_since_baseline(self, tick: u64) -> u64 {
        let ticks = tick.saturating_sub(self.baseline_tick);
        let nanos = (u128::from(ticks) * u128::from(self.nanos_per_tick)) >> 32;
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }
}

impl Clock {
    pub(crate) fn start() -> Self {
        Self::with_wall(SystemTime::now())
    }

    pub(crate) fn with_wall(baseline_wall: SystemTime) -> Self {
        let (baseline, tick) = tsc::read_with_instant();
        let ticks = tick.and_then(|tick| {
            calibration::scale_at(baseline, tick).map(|nanos_per_tick| TickScale {
                baseline_tick: tick,
                nanos_per_tick,
            })
        });
        Clock {
            baseline,
            baseline_wall,
            ticks,
        }
    }

    /// Nanoseconds from the baseline to now.
    #[inline(always)]
    pub(crate) fn now_ns(&self) -> u64 {
        match self.ticks {
            Some(scale) => scale.nanos_since_baseline(tsc::read_unchecked()),
            None => self.offset_ns(Instant::now()),
        }
    }

    /// Nanoseconds from the baseline to `at`; 0 for an instant before it.
    #[inline]
    pub(crate) fn offset_ns(&self, at: Instant) -> u64 {
        saturating_nanos(at.saturating_duration_since(self.baseline))
    }

    pub(crate) fn baseline_wall(&self) -> SystemTime {
        self.baseline_wall
    }

    /// Whether this clock reads the time-stamp counter.
    pub(crate) fn reads_ticks(&self) -> bool {
        self.ticks.is_some()
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (584 years).
pub(crate) fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The process-wide scale from ticks to nanoseconds, measured between the
/// first timeline's start and later ones: the longer the span, the better
/// the scale, so it is re-measured whenever the span has doubled. Reading it
/// is two relaxed atomic loads on a line that is almost never written.
mod calibration {
    use super::*;

    /// A scale measured over less than this is not used.
    const MIN_SPAN_NS: u64 = 10_000_000;
    /// Past this span the scale is as good as it gets (error < 1e-8).
    const MAX_SPAN_NS: u64 = 60_000_000_000;

    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    static NANOS_PER_TICK: AtomicU64 = AtomicU64::new(0);
    static SPAN_NS: AtomicU64 = AtomicU64::new(0);

    /// The scale to use for a clock whose baseline is `(now, tick)`, if one
    /// has been measured over long enough.
    pub(super) fn scale_at(now: Instant, tick: u64) -> Option<u64> {
        let &(anchor, anchor_tick) = ANCHOR.get_or_init(|| (now, tick));
        let span_ns = saturating_nanos(now.saturating_duration_since(anchor));
        let measured_over = SPAN_NS.load(Ordering::Relaxed);
        if span_ns >= MIN_SPAN_NS
            && span_ns >= measured_over.saturating_mul(2)
            && measured_over < MAX_SPAN_NS
        {
            if let Some(scale) = measure(span_ns, tick.checked_sub(anchor_tick)?) {
                // Racing writers each store a valid scale; either will do.
                NANOS_PER_TICK.store(scale, Ordering::Relaxed);
                SPAN_NS.store(span_ns, Ordering::Relaxed);
            }
        }
        match NANOS_PER_TICK.load(Ordering::Relaxed) {
            0 => None,
            scale => Some(scale),
        }
    }

    /// Nanoseconds per tick as 32.32 fixed point; `None` for a scale no
    /// real clock has (under 10 MHz or over 100 GHz).
    pub(super) fn measure(span_ns: u64, span_ticks: u64) -> Option<u64> {
        if span_ticks == 0 {
            return None;
        }
        let scale = (u128::from(span_ns) << 32) / u128::from(span_ticks);
        let plausible = (1u128 << 32) / 100..=(100u128 << 32);
        plausible.contains(&scale).then_some(scale as u64)
    }
}

#[cfg(target_arch = "x86_64")]
mod tsc {
    use std::sync::OnceLock;

    use std::time::{Duration, Instant};

    /// Now, and the time-stamp counter at the same moment if it is fit to
    /// measure durations with. A pair read across a preemption is read
    /// again: the scale is measured between such pairs.
    pub(super) fn read_with_instant() -> (Instant, Option<u64>) {
        if !usable() {
            return (Instant::now(), None);
        }
        for _ in 0..3 {
            let before = Instant::now();
            let tick = read_unchecked();
            let after = Instant::now();
            let gap = after.duration_since(before);
            if gap < Duration::from_micros(2) {
                return (before + gap / 2, Some(tick));
            }
        }
        (Instant::now(), None)
    }

    /// The time-stamp counter. Call only once [`read_with_instant`] gave a
    /// tick.
    #[inline]
    #[allow(unsafe_code)]
    pub(super) fn read_unchecked() -> u64 {
        // SAFETY: RDTSC exists on every x86_64 CPU, has no preconditions and
        // touches no memory. The one exception to `forbid(unsafe_code)`:
        // BENCHMARKS.md measures what it saves.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    fn usable() -> bool {
        static USABLE: OnceLock<bool> = OnceLock::new();
        *USABLE.get_or_init(|| invariant() && trusted_by_the_os())
    }

    /// The counter ticks at a constant rate in every power state.
    fn invariant() -> bool {
        use core::arch::x86_64::__cpuid;
        const INVARIANT_TSC: u32 = 1 << 8;
        __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & INVARIANT_TSC != 0
    }

    /// Linux keeps time with the TSC only once it found the counters of all
    /// CPUs in step: then so can we.
    #[cfg(target_os = "linux")]
    fn trusted_by_the_os() -> bool {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|source| source.trim() == "tsc")
    }

    #[cfg(not(target_os = "linux"))]
    fn trusted_by_the_os() -> bool {
        false
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tsc {
    use std::time::Instant;

    pub(super) fn read_with_instant() -> (Instant, Option<u64>) {
        (Instant::now(), None)
    }

    #[inline]
    pub(super) fn read_unchecked() -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_converts_ticks_to_nanoseconds() {
        // A 2.5 GHz counter: 0.4 ns per tick.
        let nanos_per_tick = calibration::measure(1_000_000, 2_500_000).unwrap();
        let scale = TickScale {
            baseline_tick: 1_000,
            nanos_per_tick,
        };
        assert_eq!(scale.nanos_since_baseline(1_000), 0);
        let one_second = scale.nanos_since_baseline(1_000 + 2_500_000_000);
        assert!(
            (999_999_990..=1_000_000_000).contains(&one_second),
            "{one_second}"
        );
        assert_eq!(
            scale.nanos_since_baseline(0),
            0,
            "a tick before the baseline is 0"
        );
        let far = scale.nanos_since_baseline(u64::MAX) / 1_000_000_000;
        assert!(
            (7_378_697_620..=7_378_697_630).contains(&far),
            "no overflow: {far}"
        );
    }

    #[test]
    fn implausible_scales_are_refused() {
        assert_eq!(calibration::measure(1_000_000, 0), None);
        assert_eq!(calibration::measure(1_000_000_000, 1), None);
        assert_eq!(calibration::measure(1, u64::MAX), None);
    }

    #[test]
    fn durations_agree_with_instant_whichever_clock_is_read() {
        // Let the process-wide scale be measured over 10 ms or more.
        let _first = Clock::start();
        std::thread::sleep(Duration::from_millis(12));
        let clock = Clock::start();
        let outer = Instant::now();
        let start = clock.now_ns();
        std::thread::sleep(Duration::from_millis(20));
        let end = clock.now_ns();
        let outer = saturating_nanos(outer.elapsed());
        let measured = end - start;
        assert!(
            measured >= 20_000_000,
            "{measured} ns (ticks: {})",
            clock.reads_ticks()
        );
        // The scale is measured over 10 ms or more: well within 1%.
        assert!(
            measured <= outer + outer / 100,
            "{measured} ns > {outer} ns (ticks: {})",
            clock.reads_ticks()
        );
    }
}
