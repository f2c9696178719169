//! What a timeline is built with: its limits, detail filter, backtraces,
//! strictness and finding rules.

use std::sync::Arc;

use super::detail::{BacktracePredicate, DetailFilter};
use crate::analysis::FindingRules;

/// The most actions a timeline stores, whatever `max_actions` says: a
/// guard keeps its slot's index in 32 bits (see `Started`).
pub(super) const MAX_ACTIONS: usize = u32::MAX as usize - 1;

/// The default of [`TimelineBuilder::max_bytes`]: 16 MiB.
pub(super) const DEFAULT_MAX_BYTES: usize = 16 << 20;

pub(super) struct Config {
    pub(super) backtraces: Backtraces,
    pub(super) max_actions: usize,
    pub(super) max_detail_len: usize,
    pub(super) max_bytes: usize,
    pub(super) detail_filter: Option<DetailFilter>,
    pub(super) strict: bool,
    /// `None` for the defaults, which a new timeline then neither allocates
    /// nor shares with others.
    pub(super) finding_rules: Option<Arc<FindingRules>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backtraces: Backtraces::Never,
            max_actions: 100_000,
            max_detail_len: 65_536,
            max_bytes: DEFAULT_MAX_BYTES,
            detail_filter: None,
            strict: false,
            finding_rules: None,
        }
    }
}

/// Which actions get a backtrace.
pub(super) enum Backtraces {
    Never,
    Always,
    /// Those whose category and detail (filtered and cut) the predicate
    /// accepts.
    If(BacktracePredicate),
    /// Those whose call site is not known at their start: the bridges'.
    WithoutCallSite,
}
