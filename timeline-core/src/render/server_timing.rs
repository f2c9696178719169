//! The value of an HTTP `Server-Timing` header: time per category, never a
//! detail.

use std::fmt::Write as _;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// How many categories the header names; the rest are folded into one
/// `other` metric, so that the header stays small whatever a request did.
pub(crate) const MAX_METRICS: usize = 12;

/// How many characters of a category make a metric name.
const NAME_CHARS: usize = 32;

/// The time and count of one category's actions.
pub(super) struct CategoryTime {
    pub(crate) category: String,
    pub(crate) count: u64,
    pub(crate) total: Duration,
}

/// Adds up the time per category of non-nesting actions, given as
/// `(category, duration)`: no detail is read, let alone normalised.
pub(super) fn per_category<'a>(
    actions: impl Iterator<Item = (&'a str, Duration)>,
) -> Vec<CategoryTime> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut categories: Vec<CategoryTime> = Vec::new();
    for (category, took) in actions {
        let at = *index.entry(category).or_insert_with(|| {
            categories.push(CategoryTime {
                category: category.to_owned(),
                count: 0,
                total: Duration::ZERO,
            });
            categories.len() - 1
        });
        categories[at].count += 1;
        categories[at].total += took;
    }
    categories
}

/// `name;dur=…;desc="…"` per category, costliest first, then `total`. At
/// most [`MAX_METRICS`] categories are named, the rest folded into `other`;
/// names are cut, reduced to HTTP token characters and made unique;
/// descriptions are quoted strings of visible ASCII; nothing here can carry
/// a CR or LF, and the value stays under 2 KB.
pub(super) fn header_value(mut categories: Vec<CategoryTime>, duration: Duration) -> String {
    categories.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| a.category.cmp(&b.category))
    });
    if categories.len() > MAX_METRICS {
        let folded = categories.split_off(MAX_METRICS - 1);
        categories.push(CategoryTime {
            category: format!("other ({} categories)", folded.len()),
            count: folded.iter().map(|c| c.count).sum(),
            total: folded.iter().map(|c| c.total).sum(),
        });
    }
    let mut out = String::new();
    let mut names: HashSet<String> = HashSet::new();
    names.insert("total".to_owned());
    for stats in &categories {
        if !out.is_empty() {
            out.push_str(", ");
        }
        let mut name = String::new();
        push_token(
            &mut name,
            &stats.category.chars().take(NAME_CHARS).collect::<String>(),
        );
        // Two categories may reduce to one token ("SQL main", "SQL_main"):
        // metrics of one name would be merged or dropped by the browser.
        let mut unique = name.clone();
        let mut n = 2;
        while !names.insert(unique.clone()) {
            unique = format!("{name}-{n}");
            n += 1;
        }
        out.push_str(&unique);
        let _ = write!(
            out,
            ";dur={:.3};desc=\"",
            stats.total.as_secs_f64() * 1_000.0
        );
        let label: String = stats.category.chars().take(NAME_CHARS).collect();
        push_quoted_content(&mut out, &format!("{label} ×{}", stats.count));
        out.push('"');
    }
    if !out.is_empty() {
        out.push_str(", ");
    }
    let _ = write!(out, "total;dur={:.3}", duration.as_secs_f64() * 1_000.0);
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
