//! `serde::Serialize` for reports (feature `serde`): the same document as
//! [`Report::to_json`].
//!
//! Two encoders of one document, on purpose. `to_json` needs no dependency:
//! the default build pulls in only `parking_lot` and the macro crate, yet
//! every OOPS hook, the viewer and the OOPS store need a report as JSON.
//! `Serialize` is for users who already run serde and want a report in
//! their own format (MessagePack, CBOR, a `serde_json::Value` to extend).
//! Driving both from one description would need either serde in the
//! default build or a serializer of our own for serde to call back into,
//! more code than the two short encoders. They are kept equal field for
//! field by `report_exports::serde_and_to_json_give_the_same_document` and
//! `hardening`'s hostile-text case: a key added to one and not the other
//! fails both.

use std::time::Duration;

use serde::ser::{Serialize, SerializeStruct, SerializeTuple, Serializer};

use super::actions::{call_site, error_text, micros, outcome_word};
use super::report::Report;
use super::request::RequestContext;
use crate::time::rfc3339;
use crate::{
    Action, CategoryStats, Finding, FindingSite, LogTuple, RepeatedStatement, Summary, Violation,
};

/// Milliseconds with microsecond precision, as a number.
struct Millis(Duration);

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Saturated in nanoseconds first, as `to_json` does: both forms
        // agree even on a total beyond 584 years.
        let micros = crate::clock::saturating_nanos(self.0) / 1_000;
        serializer.serialize_f64(micros as f64 / 1_000.0)
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 9 + usize::from(self.trace_id().is_some()) + usize::from(self.late() > 0);
        let mut report = serializer.serialize_struct("Report", fields)?;
        report.serialize_field("id", self.id())?;
        if let Some(trace_id) = self.trace_id() {
            report.serialize_field("trace_id", &trace_id.to_string())?;
        }
        report.serialize_field("baseline", &rfc3339(self.baseline()))?;
        report.serialize_field("duration_ms", &Millis(self.duration()))?;
        report.serialize_field("timeline", self.log_tuples())?;
        report.serialize_field("summary", self.summary())?;
        report.serialize_field("violations", self.violations())?;
        report.serialize_field("dropped", &self.dropped())?;
        if self.late() > 0 {
            report.serialize_field("late", &self.late())?;
        }
        report.serialize_field("actions", &Actions(self.actions()))?;
        report.serialize_field("request", &self.request())?;
        report.end()
    }
}

/// As python-oops-timeline has it: `[start_ms, end_ms, category, detail,
/// backtrace]`.
impl Serialize for LogTuple {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(5)?;
        tuple.serialize_element(&self.start_ms)?;
        tuple.serialize_element(&self.end_ms)?;
        tuple.serialize_element(&self.category)?;
        tuple.serialize_element(&self.detail)?;
        tuple.serialize_element(&self.backtrace)?;
        tuple.end()
    }
}

impl Serialize for Summary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut summary = serializer.serialize_struct("Summary", 8)?;
        summary.serialize_field("line", &self.to_string())?;
        summary.serialize_field("actions", &self.action_count())?;
        summary.serialize_field("concurrent", &self.concurrent_count())?;
        summary.serialize_field("dropped", &self.dropped())?;
        summary.serialize_field("duration_ms", &Millis(self.duration()))?;
        summary.serialize_field("categories", self.categories())?;
        summary.serialize_field("repeated_statements", self.repeated_statements())?;
        summary.serialize_field("findings", self.findings())?;
        summary.end()
    }
}

impl Serialize for CategoryStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut stats = serializer.serialize_struct("CategoryStats", 4)?;
        stats.serialize_field("category", self.category())?;
        stats.serialize_field("count", &self.count())?;
        stats.serialize_field("total_ms", &Millis(self.total()))?;
        stats.serialize_field("max_ms", &Millis(self.max()))?;
        stats.end()
    }
}

impl Serialize for RepeatedStatement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut statement = serializer.serialize_struct("RepeatedStatement", 5)?;
        statement.serialize_field("category", self.category())?;
        statement.serialize_field("statement", self.statement())?;
        statement.serialize_field("count", &self.count())?;
        statement.serialize_field("total_ms", &Millis(self.total()))?;
        statement.serialize_field("example", self.example())?;
        statement.end()
    }
}

impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut finding = serializer.serialize_struct("Finding", 7)?;
        finding.serialize_field("kind", &self.kind().to_string())?;
        finding.serialize_field("category", self.category())?;
        finding.serialize_field("statement", self.statement())?;
        finding.serialize_field("count", &self.count())?;
        finding.serialize_field("total_ms", &Millis(self.total()))?;
        finding.serialize_field("example", self.example())?;
        finding.serialize_field("call_sites", self.call_sites())?;
        finding.end()
    }
}

impl Serialize for FindingSite {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let call_site = self.call_site();
        let function = call_site.function();
        let fields = 4 + usize::from(function.is_some());
        let mut site = serializer.serialize_struct("FindingSite", fields)?;
        site.serialize_field("file", call_site.file())?;
        site.serialize_field("line", &call_site.line())?;
        site.serialize_field("column", &call_site.column())?;
        site.serialize_field("count", &self.count())?;
        // As `to_json`: only a call site from a backtrace names one.
        match function {
            Some(function) => site.serialize_field("function", function)?,
            None => site.skip_field("function")?,
        }
        site.end()
    }
}

/// An action named in a violation.
struct Named<'a> {
    category: &'a str,
    detail: &'a str,
}

impl Serialize for Named<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut named = serializer.serialize_struct("Action", 2)?;
        named.serialize_field("category", self.category)?;
        named.serialize_field("detail", self.detail)?;
        named.end()
    }
}

impl Serialize for Violation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut violation = serializer.serialize_struct("Violation", 3)?;
        violation.serialize_field("at_ms", &Millis(self.at()))?;
        violation.serialize_field(
            "open",
            &Named {
                category: self.open_category(),
                detail: self.open_detail(),
            },
        )?;
        violation.serialize_field(
            "attempted",
            &Named {
                category: self.attempted_category(),
                detail: self.attempted_detail(),
            },
        )?;
        violation.end()
    }
}

/// The `actions` list, each with its lane.
struct Actions<'a>(&'a [Action]);

impl Serialize for Actions<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let lanes = super::lanes::assign(self.0);
        serializer.collect_seq(
            self.0
                .iter()
                .zip(lanes)
                .map(|(action, lane)| ActionEntry { action, lane }),
        )
    }
}

struct ActionEntry<'a> {
    action: &'a Action,
    lane: usize,
}

impl Serialize for ActionEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let action = self.action;
        let mut entry = serializer.serialize_struct("Action", 11)?;
        entry.serialize_field("start_us", &micros(action.start()))?;
        entry.serialize_field("duration_us", &micros(action.duration_or_elapsed()))?;
        entry.serialize_field("category", action.category())?;
        entry.serialize_field("detail", action.detail())?;
        entry.serialize_field("outcome", outcome_word(action.outcome()))?;
        entry.serialize_field("error", &error_text(action.outcome()))?;
        entry.serialize_field("finished", &action.duration().is_some())?;
        entry.serialize_field("nested", &action.is_nested())?;
        entry.serialize_field("concurrent", &action.is_concurrent())?;
        entry.serialize_field("lane", &self.lane)?;
        entry.serialize_field("call_site", &call_site(action))?;
        entry.end()
    }
}

impl Serialize for RequestContext {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut request = serializer.serialize_struct("RequestContext", 5)?;
        request.serialize_field("method", self.method())?;
        request.serialize_field("path", self.path())?;
        request.serialize_field("status", &self.status())?;
        request.serialize_field("reason", &self.reason().map(|r| r.as_str()))?;
        request.serialize_field("error", &self.error())?;
        request.end()
    }
}
