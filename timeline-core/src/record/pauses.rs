//! Pauses of finding repeated statements: intervals of a timeline's clock
//! during which the actions that start are left out of findings. Recorded
//! here, with the timeline; read by the analysis through a snapshot.

use super::Timeline;
use crate::sync::Mutex;

/// The most pauses a timeline keeps apart; past it, the last one stretches
/// to cover the later ones, which leaves out more actions, never fewer.
const MAX_PAUSES: usize = 1_024;

/// The pauses of a timeline: intervals of its clock during which the
/// actions that start are left out of findings.
#[derive(Debug, Default)]
pub(super) struct Pauses {
    intervals: Mutex<Vec<Pause>>,
}

#[derive(Clone, Copy, Debug)]
struct Pause {
    start_ns: u64,
    /// `u64::MAX` while a guard still holds it.
    end_ns: u64,
    holders: u32,
}

impl Pauses {
    pub(super) fn open(&self, now_ns: u64) -> usize {
        let mut intervals = self.intervals.lock();
        if intervals.len() < MAX_PAUSES {
            intervals.push(Pause {
                start_ns: now_ns,
                end_ns: u64::MAX,
                holders: 1,
            });
            return intervals.len() - 1;
        }
        let last = intervals.len() - 1;
        if let Some(pause) = intervals.get_mut(last) {
            pause.end_ns = u64::MAX;
            pause.holders = pause.holders.saturating_add(1);
        }
        last
    }

    pub(super) fn close(&self, index: usize, now_ns: u64) {
        let mut intervals = self.intervals.lock();
        if let Some(pause) = intervals.get_mut(index) {
            pause.holders = pause.holders.saturating_sub(1);
            if pause.holders == 0 {
                pause.end_ns = now_ns.max(pause.start_ns);
            }
        }
    }

    /// The pauses as disjoint intervals, sorted.
    pub(super) fn merged(&self) -> Vec<(u64, u64)> {
        let mut intervals: Vec<(u64, u64)> = self
            .intervals
            .lock()
            .iter()
            .map(|p| (p.start_ns, p.end_ns))
            .collect();
        intervals.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
        for (start, end) in intervals {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }
}

/// Holds a pause of the findings of a timeline; dropping it ends the
/// pause. From [`Timeline::pause_findings`].
#[must_use = "dropping the guard ends the pause"]
#[derive(Debug)]
pub struct FindingsPause {
    timeline: Timeline,
    index: usize,
}

impl Drop for FindingsPause {
    fn drop(&mut self) {
        let inner = &self.timeline.inner;
        inner.pauses.close(self.index, inner.clock.now_ns());
    }
}

impl Timeline {
    /// Pause finding repeated statements until the guard is dropped: the
    /// actions that *start* meanwhile are still recorded, counted and shown,
    /// but left out of [`Summary::findings`](crate::Summary::findings) (and
    /// so of the assertions built on them). For a loop whose repeats are
    /// known and accepted, like prosopite's `pause` and django-zeal's
    /// `zeal_ignore`. A pause is of the timeline, over time: actions started
    /// by other threads on the same timeline meanwhile are left out too.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// {
    ///     let _pause = timeline.pause_findings();
    ///     for id in 1..=3 {
    ///         timeline.start("SQL-main", format!("SELECT * FROM warmup WHERE id = {id}")).unwrap().finish();
    ///     }
    /// }
    /// assert_eq!(timeline.len(), 3);
    /// assert!(timeline.summary().findings().is_empty());
    /// assert_eq!(timeline.summary().repeated_statements()[0].count(), 3);
    /// ```
    pub fn pause_findings(&self) -> FindingsPause {
        let index = self.inner.pauses.open(self.inner.clock.now_ns());
        FindingsPause {
            timeline: self.clone(),
            index,
        }
    }

    /// Runs `f` with findings paused (see
    /// [`pause_findings`](Self::pause_findings)); the pause ends when `f`
    /// returns or panics.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let warmed = timeline.without_findings(|| {
    ///     for id in 1..=3 {
    ///         timeline.start("SQL-main", format!("SELECT * FROM warmup WHERE id = {id}")).unwrap().finish();
    ///     }
    ///     3
    /// });
    /// assert_eq!(warmed, 3);
    /// assert!(timeline.summary().findings().is_empty());
    /// ```
    pub fn without_findings<R>(&self, f: impl FnOnce() -> R) -> R {
        let _pause = self.pause_findings();
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(timeline: &Timeline, details: &[&str]) {
        for detail in details {
            timeline
                .start("SQL-main", detail.to_string())
                .unwrap()
                .finish();
        }
    }

    #[test]
    fn past_the_most_pauses_the_last_stretches_and_still_covers() {
        let timeline = Timeline::new();
        for _ in 0..MAX_PAUSES + 10 {
            drop(timeline.pause_findings());
        }
        assert_eq!(timeline.inner.pauses.intervals.lock().len(), MAX_PAUSES);
        timeline.without_findings(|| {
            run(
                &timeline,
                &[
                    "SELECT * FROM a WHERE id = 1",
                    "SELECT * FROM a WHERE id = 2",
                ],
            );
        });
        assert!(timeline.summary().findings().is_empty());
        assert!(
            timeline
                .inner
                .pauses
                .intervals
                .lock()
                .iter()
                .all(|p| p.holders == 0),
            "every pause ended"
        );
    }
}
