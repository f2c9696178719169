//! Chrome trace-event JSON: opens in Perfetto (ui.perfetto.dev) and
//! `chrome://tracing`.

use std::fmt::Write as _;

use super::json;
use crate::clock::saturating_nanos;
use crate::{Action, Violation};

/// How much of a detail names a slice in the viewer; the whole detail is in
/// the slice's arguments.
const NAME_CHARS: usize = 80;

/// The trace of one timeline: an `"X"` (complete) event per action — the
/// sequence on track 1, nesting actions spanning their children, concurrent
/// actions on tracks 2, 3… beside it — and an instant event per violation.
/// Times are microseconds from the timeline's start.
pub(crate) fn trace(title: &str, actions: &[Action], violations: &[Violation]) -> String {
    // Sized once from the details, which are most of the output: growing
    // by doubling would briefly need twice the trace.
    // Call sites too: `"call_site":"file:line:column"`.
    let details: usize = actions
        .iter()
        .map(|a| a.detail().len() + a.call_site().map_or(0, |site| site.file().len() + 40))
        .sum();
    let mut out = String::with_capacity(256 + details + actions.len() * 240);
    out.push_str("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[");
    out.push_str("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{\"name\":");
    json::push_str(&mut out, title);
    out.push_str("}}");
    let lanes = super::lanes::assign(actions);
    let widest = lanes.iter().copied().max().unwrap_or(0);
    for lane in 0..=widest {
        let name = if lane == 0 {
            "sequence".to_owned()
        } else {
            format!("concurrent {lane}")
        };
        let _ = write!(
            out,
            ",{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{},\"args\":{{\"name\":\"{name}\"}}}}",
            lane + 1
        );
    }
    for (action, lane) in actions.iter().zip(&lanes) {
        out.push_str(",{\"name\":");
        let name = format!(
            "{}: {}",
            action.category(),
            crate::text::one_line(action.detail(), NAME_CHARS)
        );
        json::push_str(&mut out, &name);
        out.push_str(",\"cat\":");
        json::push_str(&mut out, action.category());
        out.push_str(",\"ph\":\"X\",\"ts\":");
        json::push_micros(&mut out, saturating_nanos(action.start()));
        out.push_str(",\"dur\":");
        json::push_micros(&mut out, saturating_nanos(action.duration_or_elapsed()));
        let _ = write!(
            out,
            ",\"pid\":1,\"tid\":{},\"args\":{{\"detail\":",
            lane + 1
        );
        json::push_str(&mut out, action.detail());
        out.push_str(",\"outcome\":");
        json::push_str(&mut out, &action.outcome().to_string());
        if let Some(call_site) = action.call_site() {
            out.push_str(",\"call_site\":");
            json::push_str(&mut out, &call_site.to_string());
        }
        if action.duration().is_none() {
            out.push_str(",\"unfinished\":true");
        }
        if action.is_nested() {
            out.push_str(",\"nesting\":true");
        }
        if action.is_concurrent() {
            out.push_str(",\"concurrent\":true");
        }
        if let Some(backtrace) = action.backtrace() {
            out.push_str(",\"backtrace\":");
            json::push_str(&mut out, backtrace);
        }
        out.push_str("}}");
    }
    for violation in violations {
        out.push_str(",{\"name\":");
        json::push_str(
            &mut out,
            &format!(
                "overlap: {} while {} ran",
                violation.attempted_category(),
                violation.open_category()
            ),
        );
        out.push_str(",\"cat\":\"violation\",\"ph\":\"i\",\"s\":\"t\",\"ts\":");
        json::push_micros(&mut out, saturating_nanos(violation.at()));
        out.push_str(",\"pid\":1,\"tid\":1,\"args\":{\"message\":");
        json::push_str(&mut out, &violation.to_string());
        out.push_str("}}");
    }
    out.push_str("]}");
    out
}
