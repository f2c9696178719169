//! Just enough JSON writing for reports and traces, so the default build
//! needs no serialisation crate.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal, quotes included.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Also escapes U+2028/U+2029, which break JavaScript embedding.
            c if c < ' ' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a number of milliseconds with microsecond precision.
pub(super) fn push_millis(out: &mut String, nanos: u64) {
    let _ = write!(out, "{}.{:03}", nanos / 1_000_000, nanos / 1_000 % 1_000);
}

/// Appends a number of microseconds with nanosecond precision, as Chrome's
/// trace format counts time.
pub(super) fn push_micros(out: &mut String, nanos: u64) {
    let _ = write!(out, "{}.{:03}", nanos / 1_000, nanos % 1_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        push_str(&mut out, "a\"b\\c\nd\u{1}\u{2028}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001\u2028é""#);
    }

    #[test]
    fn numbers_keep_their_fraction() {
        let mut out = String::new();
        push_millis(&mut out, 12_345_678);
        out.push(' ');
        push_micros(&mut out, 12_345_678);
        assert_eq!(out, "12.345 12345.678");
    }
}
