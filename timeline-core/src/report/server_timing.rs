//! The value of an HTTP `Server-Timing` header: time per category, never a
//! detail.

use std::fmt::Write as _;

use super::summary::Summary;

/// `name;dur=…;desc="…"` per category, longest first, then `total`. Names
/// are reduced to HTTP token characters; descriptions are quoted strings of
/// visible ASCII; nothing here can carry a CR or LF.
pub(crate) fn header_value(summary: &Summary) -> String {
    let mut out = String::new();
    for stats in summary.categories() {
        if !out.is_empty() {
            out.push_str(", ");
        }
        push_token(&mut out, stats.category());
        let _ = write!(
            out,
            ";dur={:.3};desc=\"",
            stats.total().as_secs_f64() * 1_000.0
        );
        push_quoted_content(
            &mut out,
            &format!("{} ×{}", stats.category(), stats.count()),
        );
        out.push('"');
    }
    if !out.is_empty() {
        out.push_str(", ");
    }
    let _ = write!(
        out,
        "total;dur={:.3}",
        summary.duration().as_secs_f64() * 1_000.0
    );
    out
}

/// RFC 9110 `token`: anything else becomes `_`.
fn push_token(out: &mut String, name: &str) {
    let before = out.len();
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c) {
            c
        } else {
            '_'
        }
    }));
    if out.len() == before {
        out.push('_');
    }
}

/// The inside of an RFC 9110 `quoted-string`, kept to visible ASCII so that
/// any HTTP library accepts the header: `"` and `\` are escaped, controls
/// dropped, other characters replaced by `?`.
fn push_quoted_content(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            '×' => out.push('x'),
            c if c.is_control() => {}
            _ => out.push('?'),
        }
    }
}
