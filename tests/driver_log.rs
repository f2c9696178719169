//! What sqlx's own query events report, kept beside the timeline: for each
//! statement, the elapsed time the driver measured, so that a test can
//! compare an action's duration with the driver's.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterFn, Filtered};
use tracing_subscriber::layer::Context;

/// A `tracing_subscriber` layer that notes every `sqlx::query` event's
/// statement and `elapsed_secs`. Clones share what they noted.
///
/// ```
/// use std::time::Duration;
/// use timeline_tests::driver_log::DriverLog;
/// use tracing_subscriber::prelude::*;
///
/// let log = DriverLog::default();
/// let subscriber = tracing_subscriber::registry().with(log.layer());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::debug!(
///         target: "sqlx::query",
///         summary = "select 1",
///         db.statement = "",
///         elapsed_secs = 0.002,
///     );
/// });
/// assert_eq!(log.elapsed("select 1"), vec![Duration::from_millis(2)]);
/// ```
#[derive(Clone, Default)]
pub struct DriverLog {
    noted: Arc<Mutex<HashMap<String, Vec<Duration>>>>,
}

impl DriverLog {
    /// The layer that notes into this log, filtered to sqlx's query events
    /// (so it enables them, as the timeline's layer does, at any level).
    pub fn layer<S>(&self) -> Filtered<Noting, FilterFn, S>
    where
        S: Subscriber,
    {
        Noting(self.clone())
            .with_filter(FilterFn::new(|metadata| metadata.target() == "sqlx::query"))
    }

    /// The elapsed times sqlx reported for `statement` (its text as the
    /// timeline stores it: trimmed), in the order the events came.
    pub fn elapsed(&self, statement: &str) -> Vec<Duration> {
        self.noted
            .lock()
            .unwrap()
            .get(statement)
            .cloned()
            .unwrap_or_default()
    }
}

/// The layer of [`DriverLog::layer`].
pub struct Noting(DriverLog);

#[derive(Default)]
struct Fields {
    statement: String,
    summary: String,
    elapsed: Option<f64>,
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "db.statement" => self.statement = value.trim().to_owned(),
            "summary" => self.summary = value.trim().to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        let text = text.trim_matches('"').trim().to_owned();
        match field.name() {
            "db.statement" => self.statement = text,
            "summary" => self.summary = text,
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for Noting {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(elapsed) = fields.elapsed else {
            return;
        };
        let statement = if fields.statement.is_empty() {
            fields.summary
        } else {
            fields.statement
        };
        (self.0.noted.lock().unwrap())
            .entry(statement)
            .or_default()
            .push(Duration::from_secs_f64(elapsed));
    }
}
