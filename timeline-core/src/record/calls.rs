//! The actions that became outgoing calls, and their span ids.
//!
//! W3C's processing model makes each outgoing request an operation of its
//! own: its `traceparent` names the span of the call, not the request's.
//! An action becomes a call when a `traceparent` is made for it; it then
//! gets a span id, drawn once, which every call it makes carries and the
//! OpenTelemetry export gives its span.
//!
//! The ids live here, in a table keyed by slot, not in the slots: most
//! actions make no call, and an action that makes none costs nothing — the
//! slot stays 80 bytes and the start and the finish do not change.
//!
//! The table also knows which actions run beside the sequence, unfinished:
//! while one does, a call made outside a guard (`inject_current`) cannot
//! tell which action it belongs to.

use crate::trace_context::SpanId;

/// An action that became a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Call {
    pub(super) slot: u32,
    pub(super) span_id: SpanId,
    /// Started to be one call and nothing else (`Timeline::start_call`):
    /// a call made while it is open is another one, not part of it.
    pub(super) dedicated: bool,
}

/// The calls of a timeline, and its unfinished concurrent actions.
#[derive(Default)]
pub(super) struct Calls {
    /// By slot, ascending: a call is nearly always the latest action, so
    /// adding one is a push.
    by_slot: Vec<Call>,
    /// The slots of the stored concurrent actions that have not finished.
    running_concurrent: Vec<u32>,
}

impl Calls {
    /// The call `slot` made, if it made one.
    pub(super) fn get(&self, slot: u32) -> Option<&Call> {
        self.by_slot
            .binary_search_by_key(&slot, |call| call.slot)
            .ok()
            .and_then(|at| self.by_slot.get(at))
    }

    /// The span id of `slot` as a call, drawn at its first call. `None`
    /// when the table cannot grow within `max_bytes` (`bytes` counts what
    /// it adds): that call then names the request as its parent.
    pub(super) fn mark(
        &mut self,
        slot: u32,
        dedicated: bool,
        bytes: &mut usize,
        max_bytes: usize,
    ) -> Option<SpanId> {
        let at = match self.by_slot.binary_search_by_key(&slot, |call| call.slot) {
            Ok(at) => return self.by_slot.get(at).map(|call| call.span_id),
            Err(at) => at,
        };
        let growth = growth_bytes::<Call>(&self.by_slot);
        if bytes.saturating_add(growth) > max_bytes {
            return None;
        }
        *bytes += growth;
        let span_id = SpanId::random();
        self.by_slot.insert(
            at,
            Call {
                slot,
                span_id,
                dedicated,
            },
        );
        Some(span_id)
    }

    /// Notes a concurrent action stored at `slot`, unfinished. Its entry is
    /// counted in `bytes` but never refused: the slot it stands for was
    /// admitted, and is sixteen times its size.
    pub(super) fn started_concurrent(&mut self, slot: u32, bytes: &mut usize) {
        *bytes += growth_bytes::<u32>(&self.running_concurrent);
        self.running_concurrent.push(slot);
    }

    /// Notes that the concurrent action at `slot` finished.
    pub(super) fn finished_concurrent(&mut self, slot: u32) {
        if let Some(at) = self.running_concurrent.iter().rposition(|&s| s == slot) {
            self.running_concurrent.swap_remove(at);
        }
    }

    /// Whether an unfinished concurrent action may hold a call made now:
    /// one that was not started for a call of its own.
    pub(super) fn concurrent_may_hold_a_call(&self) -> bool {
        self.running_concurrent
            .iter()
            .any(|&slot| self.get(slot).is_none_or(|call| !call.dedicated))
    }

    /// Whether `slot` was started for one call of its own.
    pub(super) fn is_dedicated(&self, slot: u32) -> bool {
        self.get(slot).is_some_and(|call| call.dedicated)
    }

    /// The slots and span ids of the calls, by slot: what readers need.
    pub(super) fn span_ids(&self) -> Vec<(u32, SpanId)> {
        self.by_slot
            .iter()
            .map(|call| (call.slot, call.span_id))
            .collect()
    }
}

/// What pushing one more element onto `vec` allocates: a full vector
/// doubles, to at least 4.
fn growth_bytes<T>(vec: &Vec<T>) -> usize {
    if vec.len() == vec.capacity() {
        vec.capacity().max(4) * std::mem::size_of::<T>()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_keeps_the_span_id_of_its_first_call() {
        let mut calls = Calls::default();
        let mut bytes = 0;
        let first = calls.mark(7, false, &mut bytes, usize::MAX).unwrap();
        assert_eq!(calls.mark(7, true, &mut bytes, usize::MAX), Some(first));
        assert!(!calls.is_dedicated(7), "the first call decides");
        let other = calls.mark(3, true, &mut bytes, usize::MAX).unwrap();
        assert_ne!(first, other);
        assert!(calls.is_dedicated(3));
        // Kept by slot, whatever order they came in.
        assert_eq!(calls.span_ids(), [(3, other), (7, first)]);
        assert_eq!(bytes, 4 * std::mem::size_of::<Call>());
        assert!(calls.get(5).is_none());
    }

    #[test]
    fn a_full_timeline_draws_no_id() {
        let mut calls = Calls::default();
        let mut bytes = 10;
        assert_eq!(calls.mark(0, false, &mut bytes, 20), None);
        assert_eq!(bytes, 10);
        assert!(calls.span_ids().is_empty());
    }

    #[test]
    fn only_concurrent_actions_not_started_for_a_call_make_calls_ambiguous() {
        let mut calls = Calls::default();
        let mut bytes = 0;
        assert!(!calls.concurrent_may_hold_a_call());
        calls.started_concurrent(4, &mut bytes);
        calls.mark(4, true, &mut bytes, usize::MAX);
        assert!(!calls.concurrent_may_hold_a_call(), "a call of its own");
        calls.started_concurrent(5, &mut bytes);
        assert!(calls.concurrent_may_hold_a_call());
        calls.finished_concurrent(5);
        assert!(!calls.concurrent_may_hold_a_call());
        calls.finished_concurrent(4);
        calls.finished_concurrent(4);
        assert!(calls.running_concurrent.is_empty());
    }
}
