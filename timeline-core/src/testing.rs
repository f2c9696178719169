//! Test assertions on timelines: how many queries a page issues, whether it
//! issues the same statement over and over (N+1), and whether that number
//! grows with the data.
//!
//! Like Launchpad's `HasQueryCount`, Django's `assertNumQueries` and
//! prosopite, a failing assertion groups the offending actions by statement
//! and call site — count, total time, one example and the application's own
//! frames of each distinct backtrace — so the test output alone shows which
//! query to remove, and stays short however many queries there were.
//!
//! ```
//! use timeline_core::testing;
//!
//! fn render_page() {
//!     let timeline = timeline_core::current().unwrap();
//!     for id in 1..=3 {
//!         timeline.start("SQL-main", format!("SELECT * FROM bug WHERE id = {id}")).unwrap().finish();
//!     }
//! }
//!
//! let ((), timeline) = testing::run(render_page);
//! testing::assert_max_actions(&timeline, "SQL", 5);
//! testing::assert_max_repeats(&timeline, 3);
//! ```
//!
//! ```should_panic
//! # use timeline_core::testing;
//! # fn render_page() {
//! #     let timeline = timeline_core::current().unwrap();
//! #     for id in 1..=3 {
//! #         timeline.start("SQL-main", format!("SELECT * FROM bug WHERE id = {id}")).unwrap().finish();
//! #     }
//! # }
//! let ((), timeline) = testing::run(render_page);
//! // panics: "expected at most 1 action of category SQL…, found 3: …"
//! testing::assert_max_actions(&timeline, "SQL", 1);
//! ```
//!
//! # Async code and served apps
//!
//! [`run_async`] runs a future with the timeline current at every poll,
//! on whatever thread polls it. A whole app behind
//! [`RequestTimelineLayer`](crate::integrations::tower::RequestTimelineLayer)
//! can be driven with `tower::ServiceExt::oneshot` inside it: the layer
//! records onto the timeline that is current instead of making its own.
//!
//! # Pitfalls that record nothing
//!
//! A test that records nothing passes every upper bound, so each assertion
//! here fails when the timeline recorded no action at all (unless the bound
//! itself is zero), naming these causes:
//!
//! - **A future built inside [`run`] and awaited outside it.**
//!   `testing::run(|| handler())` returns the handler's future unpolled;
//!   polled later, no timeline is current. Use [`run_async`].
//! - **Work moved to another task or thread.** `tokio::spawn` and
//!   `std::thread::spawn` do not take the current timeline along. Wrap the
//!   spawned future in
//!   [`with_timeline`](crate::WithTimeline::with_timeline), or the closure
//!   in [`with_current`](crate::with_current). (With the `tracing` feature,
//!   database drivers' own threads are followed through the request's span.)
//! - **A bridge that is not installed.** sqlx, sea-orm and reqwest-tracing
//!   actions arrive through `TimelineLayer`, which the test's `tracing`
//!   subscriber must include; diesel's through
//!   `integrations::diesel::install()`.
//! - **A different runtime's worker.** `Handle::block_on` inside a test that
//!   already runs in a runtime panics; drive the future with `.await` under
//!   [`run_async`] instead.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::IntoFuture;
use std::time::Duration;

use crate::analysis::normalise::normalise;
use crate::analysis::{CATEGORY_CHARS, CONNECT_CATEGORY, call_site_text, is_connection_set_up};
use crate::text::one_line;
use crate::time::millis;
use crate::{Action, Timeline, TimelineBuilder, WithTimeline};

/// Runs `f` with a fresh timeline current (capturing backtraces, so that
/// failures show where each action came from) and returns what `f`
/// returned along with the timeline.
///
/// For async code use [`run_async`]: a future that `f` returns is not
/// polled inside the timeline.
pub fn run<R>(f: impl FnOnce() -> R) -> (R, Timeline) {
    run_with(traced(), f)
}

/// What the runs here record on: a timeline that captures backtraces, so
/// that every action knows its call site — also one a bridge recorded
/// (sqlx, diesel, reqwest-tracing), which only a backtrace can tell.
fn traced() -> TimelineBuilder {
    Timeline::builder().capture_backtraces(true)
}

/// What scaling runs record on: backtraces only where nothing else tells
/// the call site (a bridge's actions), since a scaling check runs its
/// scenario three times and its message shows call sites, not backtraces.
fn bridges_traced() -> TimelineBuilder {
    Timeline::builder().capture_backtraces_for_bridges(true)
}

/// [`run`] with a timeline built from `builder`, e.g. without
/// backtraces where a test issues very many actions.
///
/// ```
/// use timeline_core::{testing, Timeline};
///
/// let (n, timeline) = testing::run_with(Timeline::builder(), || 7);
/// assert_eq!(n, 7);
/// assert!(timeline.is_empty());
/// ```
pub fn run_with<R>(builder: TimelineBuilder, f: impl FnOnce() -> R) -> (R, Timeline) {
    let timeline = builder.build();
    let result = timeline.scope(f);
    (result, timeline)
}

/// Runs `future` to completion with a fresh timeline current at every poll
/// (capturing backtraces), and returns its output along with the timeline.
///
/// ```
/// use timeline_core::{testing, timed};
///
/// #[timed(category = "SQL-main", detail = "SELECT * FROM bug WHERE id = {id}")]
/// async fn load_bug(id: i64) -> i64 {
///     id
/// }
///
/// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # runtime.block_on(async {
/// let (sum, timeline) = testing::run_async(async {
///     load_bug(1).await + load_bug(2).await
/// })
/// .await;
/// assert_eq!(sum, 3);
/// testing::assert_max_actions(&timeline, "SQL", 2);
/// # });
/// ```
pub async fn run_async<F: IntoFuture>(future: F) -> (F::Output, Timeline) {
    run_async_with(traced(), future).await
}

/// [`run_async`] with a timeline built from `builder`.
pub async fn run_async_with<F: IntoFuture>(
    builder: TimelineBuilder,
    future: F,
) -> (F::Output, Timeline) {
    let timeline = builder.build();
    let output = future.into_future().with_timeline(timeline.clone()).await;
    (output, timeline)
}

/// The former name of [`run`], kept so that code written against it still
/// builds: `record` now means [`Timeline::record`], adding a finished
/// action.
#[deprecated(since = "0.1.0", note = "renamed to `testing::run`")]
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Timeline) {
    run(f)
}

/// The former name of [`run_with`].
#[deprecated(since = "0.1.0", note = "renamed to `testing::run_with`")]
pub fn record_with<R>(builder: TimelineBuilder, f: impl FnOnce() -> R) -> (R, Timeline) {
    run_with(builder, f)
}

/// The former name of [`run_async`].
#[deprecated(since = "0.1.0", note = "renamed to `testing::run_async`")]
pub async fn record_async<F: IntoFuture>(future: F) -> (F::Output, Timeline) {
    run_async(future).await
}

/// The former name of [`run_async_with`].
#[deprecated(since = "0.1.0", note = "renamed to `testing::run_async_with`")]
pub async fn record_async_with<F: IntoFuture>(
    builder: TimelineBuilder,
    future: F,
) -> (F::Output, Timeline) {
    run_async_with(builder, future).await
}

/// Panics unless the timeline holds at most `max` actions whose category
/// starts with `category_prefix` (nesting actions are not counted). The
/// message groups the matching actions by statement and call site.
///
/// Connection set-up (category `SQL-connect`: a pool opening a connection,
/// and the statements the driver runs to set it up) is counted only when
/// `category_prefix` starts with `SQL-connect`: a pool opens a connection
/// when it needs one, so `"SQL"` counts the code's own statements, the
/// same in every run.
///
/// With `max > 0`, a timeline that recorded no action at all fails too: the
/// code most likely ran outside it (see the [pitfalls](self#pitfalls-that-record-nothing)).
///
/// ```
/// use timeline_core::{testing, Timeline};
///
/// let timeline = Timeline::new();
/// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
/// timeline.start("memcache-get", "key").unwrap().finish();
/// testing::assert_max_actions(&timeline, "SQL", 1);
/// testing::assert_max_actions(&timeline, "", 2);
/// ```
#[track_caller]
pub fn assert_max_actions(timeline: &Timeline, category_prefix: &str, max: usize) {
    let actions = timeline.actions();
    let dropped = timeline.dropped();
    if max > 0 {
        fail_if_nothing_recorded(&actions, dropped);
    }
    let counted = Counted::new(category_prefix, false);
    let matching: Vec<&Action> = actions.iter().filter(|a| counted.counts(a)).collect();
    // Dropped actions have no category: they may all match.
    let found = matching.len() as u64;
    if found.saturating_add(dropped) > max as u64 {
        let mut message = format!(
            "expected at most {max} action{} of category {}…, found {found}",
            plural(max as u64),
            one_line(category_prefix, CATEGORY_CHARS),
        );
        if dropped > 0 {
            let _ = write!(
                message,
                " (and {dropped} actions not stored: max_actions or max_bytes reached)"
            );
        }
        let set_up = actions.iter().filter(|a| counted.leaves_out(a)).count();
        if set_up > 0 {
            let _ = write!(
                message,
                " ({set_up} connection set-up action{} not counted)",
                plural(set_up as u64)
            );
        }
        message.push_str(":\n");
        write_groups(&mut message, &matching);
        panic!("{message}");
    }
}

/// Panics if any statement (detail, with literal values replaced by
/// placeholders, within one category) was issued more than `max_repeats`
/// times: the N+1 query detector as an assertion. It looks at the
/// summary's [findings](crate::Summary::findings), so the timeline's
/// [`FindingRules`](crate::FindingRules) and
/// [pauses](crate::Timeline::pause_findings) apply. The message groups the
/// repeated actions by call site.
///
/// A timeline that recorded no action at all fails too (see the
/// [pitfalls](self#pitfalls-that-record-nothing)).
///
/// ```
/// use timeline_core::{testing, Timeline};
///
/// let timeline = Timeline::new();
/// for id in [1, 2] {
///     timeline.start("SQL-main", format!("SELECT * FROM person WHERE id = {id}")).unwrap().finish();
/// }
/// testing::assert_max_repeats(&timeline, 2);
/// let failed = std::panic::catch_unwind(|| testing::assert_max_repeats(&timeline, 1));
/// assert!(failed.is_err());
/// ```
#[track_caller]
pub fn assert_max_repeats(timeline: &Timeline, max_repeats: u64) {
    let actions = timeline.actions();
    fail_if_nothing_recorded(&actions, timeline.dropped());
    let summary = timeline.summary();
    let Some(worst) = summary.findings().iter().find(|f| f.count() > max_repeats) else {
        return;
    };
    let (category, statement) = (worst.category(), worst.statement());
    let matching: Vec<&Action> = actions
        .iter()
        .filter(|a| {
            !a.is_nested() && a.category() == category && normalise(a.detail()) == statement
        })
        .collect();
    let mut message = format!(
        "expected no statement issued more than {max_repeats} time{}, but {} {:?} was issued {} times ({} in all):\n",
        plural(max_repeats),
        one_line(category, CATEGORY_CHARS),
        one_line(statement, DETAIL_CHARS),
        worst.count(),
        millis(worst.total()),
    );
    write_groups(&mut message, &matching);
    panic!("{message}");
}

/// A scaling assertion: runs a scenario at two or more sizes of data and
/// fails when the number of actions of a category grows with the size —
/// Launchpad's `record_two_runs`, the N+1 test that does not depend on
/// today's data. Made by [`scaling`].
///
/// ```
/// use timeline_core::testing;
///
/// // One query for the list, then one per item: an N+1.
/// fn render_list(items: &[u32]) {
///     let timeline = timeline_core::current().unwrap();
///     timeline.start("SQL-main", "SELECT id FROM item").unwrap().finish();
///     for id in items {
///         timeline.start("SQL-main", format!("SELECT * FROM item WHERE id = {id}")).unwrap().finish();
///     }
/// }
///
/// let setup = |size: usize| (0..size as u32).collect::<Vec<_>>();
/// let grows = std::panic::catch_unwind(|| {
///     testing::scaling("SQL").check(setup, |items| render_list(&items));
/// });
/// assert!(grows.is_err());
///
/// // A known N+1 is tolerated, but not a second one.
/// testing::scaling("SQL").allow_per_item(1).check(setup, |items| render_list(&items));
/// ```
#[derive(Clone, Debug)]
#[must_use = "a scaling assertion does nothing until .check() is called"]
pub struct Scaling {
    category_prefix: String,
    sizes: Vec<usize>,
    allow_per_item: u64,
    warm_up: bool,
    connection_set_up: bool,
}

/// A [`Scaling`] assertion on the actions whose category starts with
/// `category_prefix`, at sizes 2 and 5, with no growth allowed and a warm-up
/// run; connection set-up is not counted (see
/// [`include_connection_set_up`](Scaling::include_connection_set_up)).
pub fn scaling(category_prefix: &str) -> Scaling {
    Scaling {
        category_prefix: category_prefix.to_owned(),
        sizes: vec![2, 5],
        allow_per_item: 0,
        warm_up: true,
        connection_set_up: false,
    }
}

impl Scaling {
    /// The sizes to run at, strictly increasing, at least two (default
    /// `[2, 5]`). Two sizes apart by more than one tell a per-item query from
    /// a one-off; a third size shows the trend in the failure message.
    pub fn sizes(mut self, sizes: impl IntoIterator<Item = usize>) -> Self {
        self.sizes = sizes.into_iter().collect();
        self
    }

    /// Tolerate this many more actions per added item (default 0): a known
    /// N+1 that is not fixed yet passes with `1`, but a second one, or the
    /// known one growing to two queries per item, still fails.
    pub fn allow_per_item(mut self, actions_per_item: u64) -> Self {
        self.allow_per_item = actions_per_item;
        self
    }

    /// Run the scenario once at the smallest size before the measured runs
    /// (default `true`): caches, prepared statements and connections that
    /// the first run alone pays for would otherwise make the first count
    /// look bigger, and hide a growth.
    pub fn warm_up(mut self, warm_up: bool) -> Self {
        self.warm_up = warm_up;
        self
    }

    /// Count connection set-up too (default `false`): the actions of
    /// category `SQL-connect` — a pool opening a connection, and the
    /// statements the driver runs to set it up. A pool opens connections
    /// when it needs them, mid-run as often as not, so counting them makes
    /// a check fail or pass by chance; with a category prefix that starts
    /// with `SQL-connect` they are counted anyway.
    ///
    /// ```
    /// use timeline_core::testing;
    ///
    /// // The pool opened a connection in the larger run only.
    /// let page = |size: usize| {
    ///     let timeline = timeline_core::current().unwrap();
    ///     if size > 2 {
    ///         timeline.start("SQL-connect", "PRAGMA foreign_keys = ON; ").unwrap().finish();
    ///     }
    ///     timeline.start("SQL-main", "SELECT * FROM bug").unwrap().finish();
    /// };
    /// testing::scaling("SQL").check(|size| size, page);
    /// let counted = std::panic::catch_unwind(|| {
    ///     testing::scaling("SQL").include_connection_set_up(true).check(|size| size, page);
    /// });
    /// assert!(counted.is_err());
    /// ```
    pub fn include_connection_set_up(mut self, include: bool) -> Self {
        self.connection_set_up = include;
        self
    }

    /// Runs `setup(size)` outside any timeline, then `scenario` with what
    /// it returned under a fresh timeline (capturing backtraces for the
    /// bridges' actions, so that each knows its call site:
    /// [`capture_backtraces_for_bridges`](TimelineBuilder::capture_backtraces_for_bridges)),
    /// for each size; panics if the count grew by more than the allowance.
    /// Returns the timelines of the measured runs.
    #[track_caller]
    pub fn check<T>(
        &self,
        mut setup: impl FnMut(usize) -> T,
        mut scenario: impl FnMut(T),
    ) -> Vec<Timeline> {
        self.check_sizes();
        if self.warm_up {
            let data = setup(self.sizes[0]);
            run_with(bridges_traced(), || scenario(data));
        }
        let runs: Vec<Timeline> = self
            .sizes
            .iter()
            .map(|&size| {
                let data = setup(size);
                run_with(bridges_traced(), || scenario(data)).1
            })
            .collect();
        self.judge(&runs);
        runs
    }

    /// [`check`](Self::check) for async code: `setup` and `scenario` return
    /// futures, and the scenario's is polled with its timeline current.
    ///
    /// ```
    /// use timeline_core::{testing, timed};
    ///
    /// #[timed(category = "SQL-main", detail = "SELECT * FROM bug WHERE product = {product}")]
    /// async fn bugs_of(product: usize) -> usize {
    ///     product
    /// }
    ///
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// testing::scaling("SQL")
    ///     .check_async(|size| async move { size }, |size| async move { bugs_of(size).await; })
    ///     .await;
    /// # });
    /// ```
    #[track_caller]
    pub fn check_async<T, S, R>(
        &self,
        mut setup: impl FnMut(usize) -> S,
        mut scenario: impl FnMut(T) -> R,
    ) -> impl Future<Output = Vec<Timeline>>
    where
        S: IntoFuture<Output = T>,
        R: IntoFuture<Output = ()>,
    {
        self.check_sizes();
        let caller = std::panic::Location::caller();
        let this = self.clone();
        async move {
            if this.warm_up {
                let data = setup(this.sizes[0]).await;
                run_async_with(bridges_traced(), scenario(data)).await;
            }
            let mut runs = Vec::with_capacity(this.sizes.len());
            for &size in &this.sizes {
                let data = setup(size).await;
                runs.push(run_async_with(bridges_traced(), scenario(data)).await.1);
            }
            if let Err(message) = this.verdict(&runs) {
                panic!("{message}\n(scaling check at {caller})");
            }
            runs
        }
    }

    #[track_caller]
    fn check_sizes(&self) {
        assert!(
            self.sizes.len() >= 2 && self.sizes.windows(2).all(|pair| pair[0] < pair[1]),
            "a scaling check needs at least two strictly increasing sizes, got {:?}",
            self.sizes
        );
    }

    #[track_caller]
    fn judge(&self, runs: &[Timeline]) {
        if let Err(message) = self.verdict(runs) {
            panic!("{message}");
        }
    }

    fn verdict(&self, runs: &[Timeline]) -> Result<(), String> {
        let prefix = &self.category_prefix;
        let counted = Counted::new(prefix, self.connection_set_up);
        let per_run: Vec<Vec<Action>> = runs
            .iter()
            .map(|run| {
                run.actions()
                    .into_iter()
                    .filter(|a| counted.counts(a))
                    .collect()
            })
            .collect();
        let counts: Vec<u64> = per_run
            .iter()
            .zip(runs)
            .map(|(actions, run)| actions.len() as u64 + run.dropped())
            .collect();
        let prefix_shown = one_line(prefix, CATEGORY_CHARS);
        if counts.iter().all(|&count| count == 0) {
            return Err(format!(
                "a scaling check of {prefix_shown}… actions recorded none at any size: the \
                 scenario most likely ran outside its timeline (see timeline_core::testing, \
                 \"Pitfalls that record nothing\")"
            ));
        }
        let first_size = self.sizes[0] as u64;
        let grew = self.sizes.iter().zip(&counts).any(|(&size, &count)| {
            let allowed = counts[0].saturating_add(
                self.allow_per_item
                    .saturating_mul((size as u64).saturating_sub(first_size)),
            );
            count > allowed
        });
        if !grew {
            return Ok(());
        }
        let mut message = format!(
            "the number of {prefix_shown}… actions grows with the data (allowed: {} more per item):\n",
            self.allow_per_item
        );
        let _ = write!(message, "  {:>10}", "size");
        for size in &self.sizes {
            let _ = write!(message, "  {size:>6}");
        }
        let _ = write!(message, "\n  {:>10}", "actions");
        for count in &counts {
            let _ = write!(message, "  {count:>6}");
        }
        message.push_str("\nstatements whose count grew:\n");
        // Per (category, statement, call site), the count in each run.
        let mut table: BTreeMap<(String, String, String), Vec<u64>> = BTreeMap::new();
        for (run, actions) in per_run.iter().enumerate() {
            for action in actions {
                let key = (
                    action.category().to_owned(),
                    normalise(action.detail()),
                    call_site_label(action),
                );
                table.entry(key).or_insert_with(|| vec![0; per_run.len()])[run] += 1;
            }
        }
        let mut grown: Vec<_> = table
            .into_iter()
            .filter(|(_, counts)| counts.windows(2).any(|pair| pair[1] > pair[0]))
            .collect();
        // The fastest growing first.
        grown.sort_by_key(|(_, counts)| {
            let last = counts.last().copied().unwrap_or(0);
            std::cmp::Reverse(last.saturating_sub(counts[0]))
        });
        for ((category, statement, call_site), counts) in grown.iter().take(MAX_GROUPS) {
            let trend: Vec<String> = counts.iter().map(u64::to_string).collect();
            let _ = writeln!(
                message,
                "  {}  {}  {}{}",
                trend.join(" → "),
                one_line(category, CATEGORY_CHARS),
                one_line(statement, DETAIL_CHARS),
                call_site
            );
        }
        if grown.len() > MAX_GROUPS {
            let _ = writeln!(message, "  … and {} more", grown.len() - MAX_GROUPS);
        }
        Err(message)
    }
}

/// The most of a detail a failure message shows: enough to recognise a
/// statement, on one line.
const DETAIL_CHARS: usize = 300;

/// The most groups a failure message lists; the rest are counted.
const MAX_GROUPS: usize = 12;

/// The most distinct backtraces shown per group, and frames per backtrace.
const MAX_TRACES: usize = 2;
const MAX_FRAMES: usize = 6;

/// Which actions a count takes: not nesting ones, those of the category
/// prefix, and connection set-up only when asked for.
struct Counted<'a> {
    prefix: &'a str,
    connection_set_up: bool,
}

impl<'a> Counted<'a> {
    fn new(prefix: &'a str, connection_set_up: bool) -> Self {
        Counted {
            prefix,
            connection_set_up: connection_set_up || prefix.starts_with(CONNECT_CATEGORY),
        }
    }

    fn counts(&self, action: &Action) -> bool {
        !action.is_nested()
            && action.category().starts_with(self.prefix)
            && !self.leaves_out(action)
    }

    /// Set-up that the prefix selects but the count leaves out.
    fn leaves_out(&self, action: &Action) -> bool {
        !self.connection_set_up
            && !action.is_nested()
            && action.category().starts_with(self.prefix)
            && is_connection_set_up(action.category())
    }
}

/// `  (at file:line:column)`, or where no call site is known, that it was
/// not reported: a bridge's action on a driver's own thread (sqlx's SQLite
/// worker), where no frame of the application could be found.
fn call_site_label(action: &Action) -> String {
    match action.call_site() {
        Some(_) => call_site_text(action),
        None => "  (call site not reported)".to_owned(),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[track_caller]
fn fail_if_nothing_recorded(actions: &[Action], dropped: u64) {
    if actions.is_empty() && dropped == 0 {
        panic!(
            "the timeline recorded no action at all: the code under test most likely ran \
             outside it — a future built inside testing::run and awaited outside (use \
             run_async), work spawned onto another task or thread, or a bridge that is not \
             installed (see timeline_core::testing, \"Pitfalls that record nothing\")"
        );
    }
}

/// The actions grouped by category, statement and call site, most frequent
/// first: count, total time, one example, and each distinct backtrace once.
fn write_groups(message: &mut String, actions: &[&Action]) {
    struct Group<'a> {
        actions: Vec<&'a Action>,
        total: Duration,
    }
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut groups: HashMap<(String, String, String), Group<'_>> = HashMap::new();
    for action in actions {
        let key = (
            action.category().to_owned(),
            normalise(action.detail()),
            call_site_label(action),
        );
        let group = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Group {
                actions: Vec::new(),
                total: Duration::ZERO,
            }
        });
        group.actions.push(action);
        group.total += action.duration_or_elapsed();
    }
    // Most frequent first; among equals, in the order first issued.
    order.sort_by_key(|key| std::cmp::Reverse(groups[key].actions.len()));
    for key in order.iter().take(MAX_GROUPS) {
        let group = &groups[key];
        let (category, statement, call_site) = key;
        let first = group.actions[0];
        let _ = writeln!(
            message,
            "  {:>4}×  {:>11}  {}  {}{}",
            group.actions.len(),
            millis(group.total),
            one_line(category, CATEGORY_CHARS),
            one_line(statement, DETAIL_CHARS),
            call_site,
        );
        let _ = writeln!(
            message,
            "         e.g. at {}: {}",
            millis(first.start()),
            one_line(first.detail(), DETAIL_CHARS)
        );
        write_backtraces(message, &group.actions);
    }
    if order.len() > MAX_GROUPS {
        let rest: usize = order[MAX_GROUPS..]
            .iter()
            .map(|key| groups[key].actions.len())
            .sum();
        let _ = writeln!(
            message,
            "  … and {} more statements ({rest} actions)",
            order.len() - MAX_GROUPS
        );
    }
}

/// Each distinct backtrace of the group once, with how many actions had it.
fn write_backtraces(message: &mut String, actions: &[&Action]) {
    let mut traces: Vec<(&str, usize)> = Vec::new();
    for backtrace in actions.iter().filter_map(|a| a.backtrace()) {
        match traces.iter_mut().find(|(seen, _)| *seen == backtrace) {
            Some((_, count)) => *count += 1,
            None => traces.push((backtrace, 1)),
        }
    }
    for (backtrace, count) in traces.iter().take(MAX_TRACES) {
        let _ = writeln!(message, "         backtrace of {count}:");
        let mut frames = 0;
        for line in backtrace.lines() {
            let is_frame = !line.trim_start().starts_with("at ");
            if is_frame {
                frames += 1;
                if frames > MAX_FRAMES {
                    let _ = writeln!(message, "           …");
                    break;
                }
            }
            let _ = writeln!(
                message,
                "           {}",
                one_line(line.trim(), DETAIL_CHARS)
            );
        }
    }
    if traces.len() > MAX_TRACES {
        let _ = writeln!(
            message,
            "         … and {} other backtraces",
            traces.len() - MAX_TRACES
        );
    }
}
