//! What a timeline adds up to: the summary (counts, time per category, the
//! slowest actions), the repeated statements once literals are normalised,
//! and the findings among them — the N+1 query detector. Pure functions of
//! a [`Snapshot`](crate::Snapshot); nothing here reads a timeline.

mod finding;
mod findings;
pub(crate) mod normalise;
mod rules;
mod statement;
mod summary;

pub use finding::{Finding, FindingKind, FindingSite};
pub use rules::FindingRules;
pub use statement::RepeatedStatement;
pub(crate) use summary::{CATEGORY_CHARS, annotation, call_site_text};

/// The category of connection set-up: opening a connection, and the
/// statements a driver runs to set it up (sqlx's SQLite `PRAGMA`s). On the
/// timeline and in the totals, but it makes no findings, and the
/// [`testing`](crate::testing) counts leave it out, unless asked: a pool
/// opens a connection when it needs one, whatever the code under test does.
pub(crate) const CONNECT_CATEGORY: &str = "SQL-connect";

/// Whether actions of `category` are connection set-up.
pub(crate) fn is_connection_set_up(category: &str) -> bool {
    category == CONNECT_CATEGORY
}
pub use summary::{CategoryStats, Summary, SummaryLine};
