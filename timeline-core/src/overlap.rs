//! Refused starts and the overlaps `#[timed]` saw.

use std::borrow::Cow;
use std::error::Error;
use std::fmt::{self, Write as _};
use std::time::Duration;

/// A category and detail pair, as named in errors and violations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ActionName {
    pub(crate) category: Cow<'static, str>,
    pub(crate) detail: Cow<'static, str>,
}

/// How much of a detail an error message shows.
const SHOWN_DETAIL_CHARS: usize = 200;

impl fmt::Display for ActionName {
    /// The category as written, its control characters escaped, and the
    /// detail quoted and cut: these messages reach logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.category.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        let shown: String = self.detail.chars().take(SHOWN_DETAIL_CHARS).collect();
        if shown.len() < self.detail.len() {
            write!(f, " {:?}…", shown)
        } else {
            write!(f, " {shown:?}")
        }
    }
}

/// Returned by [`Timeline::start`](crate::Timeline::start) and
/// [`start_nested`](crate::Timeline::start_nested) while a non-nesting
/// action of the same timeline is unfinished.
///
/// Its `Display` names both actions, category and detail:
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// let _query = timeline.start("SQL-main", "SELECT 1").unwrap();
/// let error = timeline.start("memcache-get", "user:1").unwrap_err();
/// assert_eq!(error.open_category(), "SQL-main");
/// assert_eq!(error.attempted_detail(), "user:1");
/// assert_eq!(
///     error.to_string(),
///     r#"cannot start memcache-get "user:1": SQL-main "SELECT 1" is unfinished, and actions must not overlap"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlapError(Box<Overlap>);

/// Boxed, so that `Result<ActionGuard, OverlapError>` stays as small as the
/// guard on the hot path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Overlap {
    open: ActionName,
    attempted: ActionName,
}

impl OverlapError {
    #[cold]
    pub(crate) fn new(open: ActionName, attempted: ActionName) -> Self {
        OverlapError(Box::new(Overlap { open, attempted }))
    }

    /// Category of the unfinished action that blocked the start.
    pub fn open_category(&self) -> &str {
        &self.0.open.category
    }

    /// Detail of the unfinished action that blocked the start.
    pub fn open_detail(&self) -> &str {
        &self.0.open.detail
    }

    /// Category of the action that was refused.
    pub fn attempted_category(&self) -> &str {
        &self.0.attempted.category
    }

    /// Detail of the action that was refused.
    pub fn attempted_detail(&self) -> &str {
        &self.0.attempted.detail
    }
}

impl fmt::Display for OverlapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot start {}: {} is unfinished, and actions must not overlap",
            self.0.attempted, self.0.open
        )
    }
}

impl Error for OverlapError {}

/// An overlap that `#[timed]`, a bridge or [`record`](crate::Timeline::record)
/// ran into: the attempted action was stored anyway, as
/// [concurrent](crate::Action::is_concurrent), and the timeline kept this
/// note of what was open and what was attempted.
///
/// ```
/// use timeline_core::{timed, Timeline};
///
/// #[timed(category = "SQL-main", detail = "SELECT 1")]
/// fn query() {}
///
/// let timeline = Timeline::new();
/// timeline.scope(|| {
///     let _outer = timeline.start("HTTP-get", "https://example.com").unwrap();
///     query(); // runs beside HTTP-get, which is still open
/// });
/// assert!(timeline.actions()[1].is_concurrent());
/// let violation = &timeline.violations()[0];
/// assert_eq!(violation.open_category(), "HTTP-get");
/// assert_eq!(violation.attempted_detail(), "SELECT 1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub(crate) overlap: OverlapError,
    pub(crate) at: Duration,
}

impl Violation {
    /// Category of the action that was open.
    pub fn open_category(&self) -> &str {
        self.overlap.open_category()
    }

    /// Detail of the action that was open.
    pub fn open_detail(&self) -> &str {
        self.overlap.open_detail()
    }

    /// Category of the action that could not start.
    pub fn attempted_category(&self) -> &str {
        self.overlap.attempted_category()
    }

    /// Detail of the action that could not start.
    pub fn attempted_detail(&self) -> &str {
        self.overlap.attempted_detail()
    }

    /// When the start was attempted, as an offset from the timeline's start.
    pub fn at(&self) -> Duration {
        self.at
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {:?}: {}", self.at, self.overlap)
    }
}
