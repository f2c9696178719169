//! A statement and how often it was issued: what the summary lists as
//! repeated and what a finding is made of.

use std::time::Duration;

/// Actions of one category whose details are the same once literal values
/// are replaced by placeholders: a statement issued in a loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepeatedStatement {
    pub(super) category: String,
    pub(super) statement: String,
    pub(super) count: u64,
    pub(super) total: Duration,
    pub(super) example: String,
}

impl RepeatedStatement {
    /// The category of the actions.
    pub fn category(&self) -> &str {
        &self.category
    }

    /// The statement with its literal values replaced by `?`.
    pub fn statement(&self) -> &str {
        &self.statement
    }

    /// How many times it was issued.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their time added up.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// One of the actual details, the first one issued.
    pub fn example(&self) -> &str {
        &self.example
    }
}
