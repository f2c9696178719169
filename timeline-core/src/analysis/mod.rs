//! What a timeline adds up to: the summary (counts, time per category, the
//! slowest actions), the repeated statements once literals are normalised,
//! and the findings among them — the N+1 query detector. Pure functions of
//! a [`Snapshot`](crate::Snapshot); nothing here reads a timeline.

mod findings;
pub(crate) mod normalise;
mod rules;
mod statement;
mod summary;

pub use findings::{Finding, FindingKind, FindingSite};
pub use rules::FindingRules;
pub use statement::RepeatedStatement;
pub(crate) use summary::{CATEGORY_CHARS, annotation, call_site_text};
pub use summary::{CategoryStats, Summary, SummaryLine};
