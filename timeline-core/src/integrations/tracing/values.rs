//! The field values a rule reads from a span or an event, and the durations
//! they carry.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::time::Duration;

use tracing_core::field::{Field, Visit};

/// The values of the fields a rule reads, as recorded so far.
#[derive(Debug, Default)]
pub(super) struct Values {
    entries: Vec<(&'static str, Value)>,
}

#[derive(Debug)]
enum Value {
    Text(String),
    /// An `f64` field, kept as a number: `elapsed_secs` needs no parsing.
    Number(f64),
}

impl Values {
    /// The text of a field, trimmed; `None` when absent or blank.
    pub(crate) fn text(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        let (_, value) = self.entries.iter().find(|(n, _)| *n == name)?;
        let text = match value {
            Value::Text(text) => std::borrow::Cow::Borrowed(text.trim()),
            Value::Number(number) => std::borrow::Cow::Owned(number.to_string()),
        };
        (!text.is_empty()).then_some(text)
    }

    /// The first of `names` that holds a valid duration: an `f64` (or a
    /// decimal text) of seconds, or a `Duration`'s `Debug` text such as
    /// `1.5ms`.
    pub(crate) fn duration<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Option<Duration> {
        names.into_iter().find_map(|name| {
            let (_, value) = self.entries.iter().find(|(n, _)| *n == name)?;
            match value {
                Value::Number(seconds) => seconds_to_duration(*seconds),
                Value::Text(text) => parse_duration(text),
            }
        })
    }

    /// Takes in the values of `recorded`, which replace those of the same
    /// fields.
    pub(crate) fn merge(&mut self, recorded: Values) {
        for (name, value) in recorded.entries {
            self.set(name, value);
        }
    }

    fn set(&mut self, name: &'static str, value: Value) {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
    }
}

/// Records into `values` the fields named in `fields` (those a rule
/// reads), and no others.
pub(super) struct Capture<'a> {
    pub(super) fields: &'a [Cow<'static, str>],
    pub(super) values: &'a mut Values,
}

impl Capture<'_> {
    fn wanted(&self, field: &Field) -> bool {
        self.fields.iter().any(|name| name == field.name())
    }
}

impl Visit for Capture<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.wanted(field) {
            self.values.set(field.name(), Value::Number(value));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.wanted(field) {
            self.values.set(field.name(), Value::Text(value.to_owned()));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.wanted(field) {
            self.values
                .set(field.name(), Value::Text(value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Integers, booleans, `%display` and `?debug` fields all arrive here.
        if self.wanted(field) {
            let mut text = String::new();
            // A `Debug` that fails leaves what it wrote: instrumentation
            // must not fail the code it measures.
            let _ = write!(text, "{value:?}");
            self.values.set(field.name(), Value::Text(text));
        }
    }
}

/// The longest duration believed: anything longer is a unit mistake or
/// garbage, not a statement that ran (a year would do; a day is plenty for
/// one request's action and keeps the arithmetic far from any overflow).
const LONGEST: Duration = Duration::from_secs(24 * 60 * 60);

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| *d <= LONGEST)
}

/// Parses a duration as `Duration`'s `Debug` writes it (`3s`, `1.5ms`,
/// `250µs`, `12ns`) or a plain decimal number of seconds. `None` for
/// anything else, negative, or longer than a day.
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| {
            !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+')
        })
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "µs" | "μs" | "us" => 1e-6,
        "ns" => 1e-9,
        _ => return None,
    };
    seconds_to_duration(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_durations_parse_in_every_unit() {
        for duration in [
            Duration::from_secs(3),
            Duration::from_millis(1500),
            Duration::from_micros(250),
            Duration::from_nanos(12),
            Duration::from_nanos(1_000_000_001),
            Duration::ZERO,
        ] {
            let parsed = parse_duration(&format!("{duration:?}")).unwrap();
            let error = parsed.abs_diff(duration);
            assert!(
                error <= Duration::from_nanos(1),
                "{duration:?} parsed as {parsed:?}"
            );
        }
        assert_eq!(parse_duration("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
    }

    #[test]
    fn nonsense_durations_are_refused() {
        for text in [
            "",
            "ms",
            "-1ms",
            "NaN",
            "inf",
            "1.5 parsecs",
            "1..2s",
            "100000s",
            "1e300s",
            "18446744073709551615.999999999s",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
        for seconds in [f64::NAN, f64::INFINITY, -0.5, 1e20] {
            assert_eq!(seconds_to_duration(seconds), None, "{seconds}");
        }
    }
}
