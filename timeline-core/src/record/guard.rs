//! The RAII guard that finishes an action.

use std::fmt;
use std::time::Duration;

use super::Timeline;
use super::action::Outcome;
use super::slots::{RUNNING, UNFINISHED};
use crate::sync::Ordering;
use crate::trace_context::TraceContext;

/// An unfinished action. Dropping the guard finishes it — at the end of a
/// scope, on early return and `?`, and during a panic (then with
/// [`Outcome::Panicked`], unless the action itself started while the thread
/// was already unwinding, like a `ROLLBACK` issued from a `Drop`).
///
/// The guard is `Send`: it may be moved to, and dropped on, another thread.
/// A guard that is leaked (`std::mem::forget`) leaves its action unfinished:
/// later starts are refused and reports show it as running, but nothing
/// panics.
///
/// ```
/// use timeline_core::{Outcome, Timeline};
///
/// fn load(timeline: &Timeline) -> Result<(), std::io::Error> {
///     let _guard = timeline.start("file-read", "/etc/hostname").unwrap();
///     std::fs::read("/definitely/not/here")?; // the action finishes here too
///     Ok(())
/// }
///
/// let timeline = Timeline::new();
/// assert!(load(&timeline).is_err());
/// assert!(timeline.actions()[0].duration().is_some());
/// ```
#[must_use = "dropping the guard finishes the action"]
pub struct ActionGuard {
    timeline: Timeline,
    /// The slot's index, or `u32::MAX` if not stored.
    slot: u32,
    start_ns: u64,
    /// Whether this is the open non-nesting action, which blocks other
    /// starts until it finishes (not a nesting or a concurrent one).
    sequential: bool,
    /// Whether the thread was already unwinding when the action started (a
    /// `ROLLBACK` issued from a `Drop`): such an action did not panic.
    started_unwinding: bool,
    finished: bool,
}

impl ActionGuard {
    #[inline]
    pub(super) fn new(timeline: Timeline, slot: u32, start_ns: u64, sequential: bool) -> Self {
        ActionGuard {
            timeline,
            slot,
            start_ns,
            sequential,
            started_unwinding: std::thread::panicking(),
            finished: false,
        }
    }

    /// Finishes the action now and returns its duration.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let guard = timeline.start("sleep", "1ms").unwrap();
    /// std::thread::sleep(std::time::Duration::from_millis(1));
    /// assert!(guard.finish() >= std::time::Duration::from_millis(1));
    /// ```
    #[inline]
    pub fn finish(mut self) -> Duration {
        self.finish_now(Outcome::Ok)
    }

    /// Finishes the action now with the given outcome, e.g. an
    /// [`Outcome::Error`] for a statement that failed, and returns its
    /// duration.
    ///
    /// ```
    /// use timeline_core::{Outcome, Timeline};
    ///
    /// let timeline = Timeline::new();
    /// let guard = timeline.start("SMTP-send", "to: bob@example.com").unwrap();
    /// guard.finish_with(Outcome::Error("connection refused".to_owned()));
    /// assert!(matches!(timeline.actions()[0].outcome(), Outcome::Error(_)));
    /// ```
    #[inline]
    pub fn finish_with(mut self, outcome: Outcome) -> Duration {
        self.finish_now(outcome)
    }

    /// The timeline the action belongs to.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// This action's place in the request's distributed trace, as the
    /// parent of the calls it makes: the request's trace, with this
    /// action's own span id — drawn at the first ask, the same afterwards —
    /// which the `opentelemetry` export gives the action's span. `None` when
    /// the timeline has no [`TraceContext`].
    ///
    /// Call it where an action is an outgoing call and put what it gives
    /// in the request (`TraceContext::inject`, with the feature `tower` or
    /// `reqwest-middleware`, or [`traceparent`](TraceContext::traceparent)):
    /// the service called then hangs under this action in a trace viewer.
    /// `TraceContext::inject_current` does the same for the open action,
    /// when it can tell which one that is. An action that was not stored
    /// (the timeline was full) gives the request's own context.
    ///
    /// ```
    /// use timeline_core::{TraceContext, Timeline};
    ///
    /// let timeline = Timeline::new();
    /// let request = TraceContext::new_trace(true);
    /// timeline.set_trace_context(request.clone());
    ///
    /// let call = timeline.start("HTTP-GET", "http://bugs.internal/bugs/1").unwrap();
    /// let context = call.trace_context().unwrap();
    /// assert_eq!(context.trace_id(), request.trace_id());
    /// assert_eq!(context.parent_span_id(), Some(request.span_id()));
    /// assert_ne!(context.span_id(), request.span_id());
    /// // What the call sends: this action as the parent.
    /// assert_eq!(&context.traceparent()[36..52], context.span_id().to_string());
    /// assert_eq!(call.trace_context(), Some(context.clone())); // one id per action
    /// call.finish();
    ///
    /// let snapshot = timeline.snapshot();
    /// assert_eq!(snapshot.call_span_id(0), Some(context.span_id()));
    /// ```
    pub fn trace_context(&self) -> Option<TraceContext> {
        let inner = &*self.timeline.inner;
        let trace = inner.trace_context.get()?;
        Some(match inner.mark_call(self.slot, false) {
            Some(span_id) => trace.for_call(span_id),
            None => trace.clone(),
        })
    }

    /// The outcome of an action whose guard is dropped now: `Panicked` if a
    /// panic began while it ran, else `otherwise`.
    #[inline]
    pub(crate) fn outcome_on_drop(&self, otherwise: Outcome) -> Outcome {
        if std::thread::panicking() && !self.started_unwinding {
            Outcome::Panicked
        } else {
            otherwise
        }
    }

    /// The slot's index, or `u32::MAX` if not stored.
    #[cfg_attr(not(feature = "reqwest-middleware"), allow(dead_code))]
    pub(super) fn slot(&self) -> u32 {
        self.slot
    }

    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Finishes the action; the guard's drop then does nothing. For a
    /// holder that finishes the guard where it lies (`TimedCall`): passing
    /// it by value to `finish_with` copied it, and reading back a guard
    /// just written a field at a time stalls.
    #[inline]
    pub(crate) fn finish_now(&mut self, outcome: Outcome) -> Duration {
        self.finished = true;
        let inner = &*self.timeline.inner;
        let end_ns = inner.clock.now_ns().clamp(self.start_ns, UNFINISHED - 1);
        if self.sequential && outcome == Outcome::Ok {
            // The common case: a store, no lock. While this guard is
            // unfinished no other non-nesting action can start, so the open
            // action is this one.
            debug_assert_ne!(end_ns, RUNNING);
            inner.open_end.store(end_ns, Ordering::Release);
        } else {
            self.finish_locked(end_ns, outcome);
        }
        Duration::from_nanos(end_ns - self.start_ns)
    }

    /// Finishes the action now, as [`finish_with`](Self::finish_with)
    /// does, and returns what a bridge needs to correct it later: for a
    /// span whose source knows the work is done (it recorded its result)
    /// while a driver's worker still holds a clone of the span, which
    /// would otherwise end the action only when that clone drops.
    #[cfg_attr(not(all(feature = "tower", feature = "tracing")), allow(dead_code))]
    pub(crate) fn end_correctable(mut self, outcome: Outcome) -> EndedAction {
        let timeline = self.timeline.clone();
        let (slot, start_ns) = (self.slot, self.start_ns);
        let duration = self.finish_now(outcome.clone());
        EndedAction {
            timeline,
            slot,
            start_ns,
            end_ns: start_ns.saturating_add(crate::clock::saturating_nanos(duration)),
            outcome,
            driver: None,
        }
    }

    /// Any other finish: under the lock, and out of line, so that the
    /// common case above is small enough to inline where the guard ends.
    #[cold]
    #[inline(never)]
    fn finish_locked(&self, end_ns: u64, outcome: Outcome) {
        let mut state = self.timeline.inner.lock();
        if self.sequential {
            if let Some(slot) = state.close_open(end_ns) {
                let added = slot.set_outcome(outcome);
                state.bytes += added;
            }
        } else if self.slot != u32::MAX {
            let end_seq = u32::try_from(state.slots.len()).unwrap_or(u32::MAX);
            let mut concurrent = false;
            if let Some(slot) = state.slots.get_mut(self.slot as usize) {
                slot.end_ns = end_ns;
                slot.end_seq = end_seq;
                concurrent = slot.concurrent;
                let added = slot.set_outcome(outcome);
                state.bytes += added;
            }
            if concurrent {
                state.calls.finished_concurrent(self.slot);
            }
        }
    }
}

impl Drop for ActionGuard {
    #[inline]
    fn drop(&mut self) {
        if !self.finished {
            let outcome = self.outcome_on_drop(Outcome::Ok);
            self.finish_now(outcome);
        }
    }
}

impl fmt::Debug for ActionGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionGuard")
            .field("sequential", &self.sequential)
            .field("stored", &(self.slot != u32::MAX))
            .field("start", &Duration::from_nanos(self.start_ns))
            .finish_non_exhaustive()
    }
}

/// An action a bridge ended before its span closed (see
/// [`ActionGuard::end_correctable`]). Until the timeline is sealed for its
/// report, what the source tells afterwards still corrects it: an error
/// text recorded after the status, the driver's own timing. A correction
/// only ever narrows the action within the interval it ended with, so it
/// can make no action overlap another.
#[cfg_attr(not(all(feature = "tower", feature = "tracing")), allow(dead_code))]
pub(crate) struct EndedAction {
    timeline: Timeline,
    /// The slot's index, or `u32::MAX` if not stored.
    slot: u32,
    /// The interval as ended: corrections stay inside it.
    start_ns: u64,
    end_ns: u64,
    /// The outcome as last stored.
    outcome: Outcome,
    /// The union of the driver's intervals applied so far.
    driver: Option<(u64, u64)>,
}

#[cfg_attr(not(all(feature = "tower", feature = "tracing")), allow(dead_code))]
impl EndedAction {
    /// Stores `outcome` if it differs from the one stored.
    pub(crate) fn set_outcome(&mut self, outcome: Outcome) {
        if outcome == self.outcome || self.slot == u32::MAX {
            return;
        }
        let inner = &*self.timeline.inner;
        let mut state = inner.lock();
        // Under the lock the seal takes: in the report, or not at all.
        if inner.settle.is_sealed() {
            return;
        }
        self.outcome = outcome.clone();
        if let Some(slot) = state.slots.get_mut(self.slot as usize) {
            let added = slot.set_outcome(outcome);
            state.bytes += added;
        }
    }

    /// The driver reports, as its work ends now, that it took `duration`:
    /// the action becomes that interval (ending now, or at the action's own
    /// end if that came first), or the union of the intervals reported so
    /// far. After the report was made, it is counted as late instead.
    pub(crate) fn narrow_to_driver(&mut self, duration: std::time::Duration) {
        if self.slot == u32::MAX {
            return;
        }
        let inner = &*self.timeline.inner;
        let end = inner.clock.now_ns().clamp(self.start_ns, self.end_ns);
        let start = end
            .saturating_sub(crate::clock::saturating_nanos(duration))
            .max(self.start_ns);
        let (start, end) = match self.driver {
            None => (start, end),
            Some((earlier_start, earlier_end)) => (earlier_start.min(start), earlier_end.max(end)),
        };
        let mut state = inner.lock();
        if inner.settle.is_sealed() {
            drop(state);
            inner.settle.count_late();
            return;
        }
        self.driver = Some((start, end));
        state.slots.set_interval(self.slot as usize, start, end);
    }
}
