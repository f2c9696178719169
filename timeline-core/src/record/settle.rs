//! What may still arrive on a timeline once its request's handler has
//! returned, and what arrives too late.
//!
//! A driver may finish a request's work on a thread of its own after the
//! caller already has the result: sqlx's SQLite worker sends the rows (or
//! the error) to the caller first and emits its query event afterwards,
//! inside the request's span. The bridges count such work as
//! *outstanding* while it runs; the web layer waits, bounded, until none is
//! left before it makes the report (its "settle" step), and then *seals*
//! the timeline: an action a bridge brings after that is counted as late,
//! never stored, so that the report, the log line and the timeline agree.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

// Not `crate::sync`'s: none of this is on the hot path that `loom` checks,
// and its types must not be loom's outside a model.
use parking_lot::Mutex;

/// The settle state of one timeline.
#[derive(Default)]
pub(super) struct Settle {
    /// Threads inside the request's span context doing work that may still
    /// record onto the timeline (a driver's worker); see
    /// `Timeline::work_begins`.
    outstanding: AtomicU64,
    /// Whether a waker may be registered: lets the common end of work
    /// (nobody waiting) skip the lock.
    waiting: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
    /// Set once the report is made.
    sealed: AtomicBool,
    /// Actions brought by a bridge after the timeline was sealed.
    late: AtomicU64,
}

impl Settle {
    pub(super) fn work_begins(&self) {
        self.outstanding.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn work_ends(&self) {
        // Never below zero: an exit without its enter (a span entered before
        // the layer learned its timeline) must not wrap the count.
        let previous = self
            .outstanding
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if previous == Ok(1) && self.waiting.load(Ordering::SeqCst) {
            // Woken outside the lock: a waker is user code (the executor's).
            let wakers = std::mem::take(&mut *self.wakers.lock());
            for waker in wakers {
                waker.wake();
            }
        }
    }

    pub(super) fn is_settled(&self) -> bool {
        self.outstanding.load(Ordering::SeqCst) == 0
    }

    /// Ready once no work is outstanding; else `cx`'s waker is woken when
    /// the last work ends.
    pub(super) fn poll_settled(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_settled() {
            return Poll::Ready(());
        }
        {
            let mut wakers = self.wakers.lock();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            self.waiting.store(true, Ordering::SeqCst);
        }
        // Asked again after registering: work that ended in between saw no
        // waiter, and woke nobody.
        if self.is_settled() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub(super) fn seal(&self) {
        self.sealed.store(true, Ordering::SeqCst);
    }

    #[inline]
    pub(super) fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    pub(super) fn count_late(&self) {
        self.late.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn late(&self) -> u64 {
        self.late.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, StdOrdering::SeqCst);
        }
    }

    #[test]
    fn the_last_work_to_end_wakes_the_waiter_once() {
        let settle = Settle::default();
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&waker);
        assert!(settle.poll_settled(&mut cx).is_ready());
        settle.work_begins();
        settle.work_begins();
        assert!(settle.poll_settled(&mut cx).is_pending());
        assert!(settle.poll_settled(&mut cx).is_pending(), "registered once");
        settle.work_ends();
        assert_eq!(woken.0.load(StdOrdering::SeqCst), 0);
        settle.work_ends();
        assert_eq!(woken.0.load(StdOrdering::SeqCst), 1);
        assert!(settle.poll_settled(&mut cx).is_ready());
    }

    #[test]
    fn once_sealed_what_a_bridge_brings_is_late_and_stored_nowhere() {
        use crate::{Outcome, Timeline};
        use std::borrow::Cow;
        use std::time::Duration;

        let timeline = Timeline::new();
        timeline.record_ended_now(
            Cow::Borrowed("SQL-main"),
            Cow::Borrowed("SELECT 1"),
            Duration::ZERO,
            Outcome::NotReported,
        );
        timeline.seal();
        timeline.record_ended_now(
            Cow::Borrowed("SQL-main"),
            Cow::Borrowed("SELECT 2"),
            Duration::ZERO,
            Outcome::NotReported,
        );
        let guard = timeline.start_unrefused(
            Cow::Borrowed("HTTP-GET"),
            Cow::Borrowed("http://late.example/"),
            false,
        );
        // A late guard blocks nothing: the application's own start goes on.
        timeline.start("cache-get", "key").unwrap().finish();
        drop(guard);
        let details: Vec<String> = timeline
            .actions()
            .iter()
            .map(|a| a.detail().to_owned())
            .collect();
        assert_eq!(details, ["SELECT 1", "key"]);
        assert_eq!(timeline.late(), 2);
        let snapshot = timeline.snapshot();
        assert_eq!(snapshot.late(), 2);
        assert_eq!(snapshot.dropped(), 0);
    }

    #[test]
    fn an_ended_action_is_corrected_within_its_interval_until_sealed() {
        use crate::{Outcome, Timeline};
        use std::borrow::Cow;
        use std::time::Duration;

        let timeline = Timeline::new();
        let guard =
            timeline.start_unrefused(Cow::Borrowed("SQL-main"), Cow::Borrowed("SELECT 1"), false);
        std::thread::sleep(Duration::from_millis(2));
        let mut ended = guard.end_correctable(Outcome::NotReported);
        let as_ended = timeline.actions()[0].clone();
        // The next action starts once it ended, though not yet corrected.
        timeline.start("SQL-main", "SELECT 2").unwrap().finish();
        ended.narrow_to_driver(Duration::from_micros(300));
        ended.set_outcome(Outcome::Ok);
        let actions = timeline.actions();
        assert_eq!(
            actions[0].detail(),
            "SELECT 1",
            "still first in start order"
        );
        assert_eq!(actions[0].duration(), Some(Duration::from_micros(300)));
        assert_eq!(actions[0].end(), as_ended.end(), "ends where it ended");
        assert_eq!(actions[0].outcome(), &Outcome::Ok);
        // A driver interval longer than the action is cut to it.
        ended.narrow_to_driver(Duration::from_secs(1));
        assert_eq!(timeline.actions()[0].start(), as_ended.start());
        timeline.seal();
        ended.set_outcome(Outcome::Error("too late".into()));
        ended.narrow_to_driver(Duration::from_micros(1));
        assert_eq!(timeline.actions()[0].outcome(), &Outcome::Ok);
        assert_eq!(timeline.actions()[0].start(), as_ended.start());
        assert_eq!(timeline.late(), 1, "the driver's late timing");
        assert!(timeline.violations().is_empty());
    }

    #[test]
    fn an_exit_without_its_enter_does_not_wrap() {
        let settle = Settle::default();
        settle.work_ends();
        assert!(settle.is_settled());
        settle.work_begins();
        assert!(!settle.is_settled());
    }
}
