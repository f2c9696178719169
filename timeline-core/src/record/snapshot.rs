//! A snapshot: everything a reader needs of a timeline, as plain data taken
//! under one lock, so that the summary, the report and every export of one
//! moment agree with each other while other threads go on recording.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use super::action::Action;
use crate::analysis::FindingRules;
use crate::overlap::Violation;
use crate::trace_context::{SpanId, TraceContext, TraceId};

/// A timeline as of one moment, as plain data: its actions, what was
/// dropped, the violations, the pauses of findings and the trace context.
///
/// Every reader works from one: [`summary`](Self::summary),
/// [`report`](Self::report), [`server_timing`](Self::server_timing),
/// [`to_chrome_trace`](Self::to_chrome_trace),
/// [`waterfall`](Self::waterfall) and [`log_tuples`](Self::log_tuples).
/// Take one with [`Timeline::snapshot`](crate::Timeline::snapshot) where
/// several of them are wanted at once: they then agree, and the timeline is
/// read once.
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
/// let snapshot = timeline.snapshot();
/// assert_eq!(snapshot.actions().len(), 1);
/// assert!(snapshot.summary().to_string().starts_with("1 queries/external actions"));
/// assert!(snapshot.server_timing().starts_with("SQL-main;dur="));
/// ```
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(super) actions: Vec<Action>,
    pub(super) log_order: LogOrder,
    pub(super) dropped: u64,
    /// Actions a bridge brought after the report was made (see
    /// [`Timeline::late`](crate::Timeline::late)).
    pub(super) late: u64,
    pub(super) violations: Vec<Violation>,
    pub(super) elapsed: Duration,
    pub(super) baseline: SystemTime,
    pub(super) trace_context: Option<TraceContext>,
    /// The slots of the actions that became outgoing calls, ascending,
    /// with their span ids.
    pub(super) calls: Vec<(u32, SpanId)>,
    /// `None` for the defaults.
    pub(super) finding_rules: Option<Arc<FindingRules>>,
    /// Pauses of findings, as disjoint sorted intervals of the clock.
    pub(super) paused: Vec<(u64, u64)>,
}

/// What the flat OOPS form needs beyond the actions in start order: where
/// each was stored, and when each nesting action finished relative to the
/// actions stored around it.
#[derive(Clone, Debug, Default)]
pub(super) struct LogOrder {
    /// The storage index of each action, where sorting by start moved
    /// them; `None` when the actions are in storage order.
    pub(super) storage: Option<Vec<u32>>,
    /// The finished nesting actions, by storage index, with how many
    /// actions were stored when each finished.
    pub(super) stops: Vec<Stop>,
}

/// A finished nesting action, for its `-stop` entry.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stop {
    pub(super) slot: u32,
    pub(super) end_seq: u32,
}

impl Snapshot {
    /// The stored actions, in start order. A nesting action appears once,
    /// with its full duration; unfinished ones run until the snapshot.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// How many actions were counted instead of stored (see
    /// [`Timeline::dropped`](crate::Timeline::dropped)).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// How many actions arrived after the request's report was made, and
    /// were counted instead of stored (see
    /// [`Timeline::late`](crate::Timeline::late)).
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The overlaps noted until the snapshot (see
    /// [`Timeline::violations`](crate::Timeline::violations)).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The time from the timeline's start to the snapshot.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The wall-clock time at which the timeline started.
    pub fn baseline(&self) -> SystemTime {
        self.baseline
    }

    /// The request's place in a distributed trace, if one was attached.
    pub fn trace_context(&self) -> Option<&TraceContext> {
        self.trace_context.as_ref()
    }

    /// The id of the distributed trace, if a context was attached.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.trace_context.as_ref().map(TraceContext::trace_id)
    }

    /// The span id of the action at `index` in [`actions`](Self::actions)
    /// if it became an outgoing call: the parent id its calls carried in
    /// `traceparent` (see [`ActionGuard::trace_context`](crate::ActionGuard::trace_context)),
    /// which an exporter gives the action's span so that the services it
    /// called hang under it. `None` for an action that made no call.
    ///
    /// ```
    /// use timeline_core::{TraceContext, Timeline};
    ///
    /// let timeline = Timeline::new();
    /// timeline.set_trace_context(TraceContext::new_trace(true));
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// let call = timeline.start("HTTP-GET", "http://bugs.internal/").unwrap();
    /// let sent = call.trace_context().unwrap();
    /// call.finish();
    ///
    /// let snapshot = timeline.snapshot();
    /// assert_eq!(snapshot.call_span_id(0), None);
    /// assert_eq!(snapshot.call_span_id(1), Some(sent.span_id()));
    /// ```
    pub fn call_span_id(&self, index: usize) -> Option<SpanId> {
        if self.calls.is_empty() {
            return None;
        }
        let slot = match &self.log_order.storage {
            None => index,
            Some(storage) => *storage.get(index)? as usize,
        };
        let slot = u32::try_from(slot).ok()?;
        let at = self
            .calls
            .binary_search_by_key(&slot, |&(slot, _)| slot)
            .ok()?;
        self.calls.get(at).map(|&(_, span_id)| span_id)
    }

    /// How many actions the summary line counts: stored non-nesting ones
    /// and the dropped ones.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let transaction = timeline.start_nested("SQL-main", "transaction").unwrap();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// transaction.finish();
    /// assert_eq!(timeline.snapshot().action_count(), 1);
    /// ```
    pub fn action_count(&self) -> u64 {
        let stored = self.actions.iter().filter(|a| !a.is_nested()).count();
        u64::try_from(stored)
            .unwrap_or(u64::MAX)
            .saturating_add(self.dropped)
    }

    /// The rules findings are made by.
    pub(crate) fn finding_rules(&self) -> &FindingRules {
        static DEFAULT: LazyLock<FindingRules> = LazyLock::new(FindingRules::default);
        self.finding_rules.as_deref().unwrap_or(&DEFAULT)
    }

    /// The pauses of findings, as disjoint sorted intervals of nanoseconds
    /// from the timeline's start.
    pub(crate) fn paused(&self) -> &[(u64, u64)] {
        &self.paused
    }

    /// For the flat OOPS form: each action in start order with its storage
    /// index, and each finished nesting action's position and stop order.
    pub(crate) fn log_order(&self) -> (impl Iterator<Item = usize> + '_, Vec<(usize, usize)>) {
        let storage = self.log_order.storage.as_deref();
        let storage_of = move |position: usize| {
            storage.map_or(position, |storage| {
                storage
                    .get(position)
                    .map_or(position, |&slot| slot as usize)
            })
        };
        // Where each storage index stands in start order, when that differs.
        let position_of: Option<Vec<usize>> = storage.map(|storage| {
            let mut positions = vec![0; storage.len()];
            for (position, &slot) in storage.iter().enumerate() {
                if let Some(at) = positions.get_mut(slot as usize) {
                    *at = position;
                }
            }
            positions
        });
        let stops = self
            .log_order
            .stops
            .iter()
            .map(|stop| {
                let slot = stop.slot as usize;
                let position = position_of.as_ref().map_or(slot, |positions| {
                    positions.get(slot).copied().unwrap_or(slot)
                });
                (position, stop.end_seq as usize)
            })
            .collect();
        ((0..self.actions.len()).map(storage_of), stops)
    }

    /// The actions and the violations, for a report that keeps them.
    pub(crate) fn into_parts(self) -> (Vec<Action>, Vec<Violation>) {
        (self.actions, self.violations)
    }
}
