//! A diesel [`Instrumentation`] that records every statement a connection
//! runs as an action on the current timeline, and every transaction as a
//! nesting action around its statements.
//!
//! ```
//! use diesel::connection::{Connection, SimpleConnection};
//! use diesel::sqlite::SqliteConnection;
//! use timeline_core::Timeline;
//! use timeline_core::integrations::diesel::TimelineInstrumentation;
//!
//! let mut conn = SqliteConnection::establish(":memory:")?;
//! conn.set_instrumentation(TimelineInstrumentation::new());
//!
//! let timeline = Timeline::new();
//! timeline.scope(|| conn.batch_execute("CREATE TABLE bug (id INTEGER PRIMARY KEY)"))?;
//!
//! assert_eq!(timeline.actions()[0].category(), "SQL-main");
//! assert_eq!(timeline.actions()[0].detail(), "CREATE TABLE bug (id INTEGER PRIMARY KEY)");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Setting it up
//!
//! - [`install`] makes every connection established afterwards record onto
//!   the current timeline, with no further setup: call it once at start-up,
//!   before the connection pool connects. [`install_with`] does the same
//!   with other categories.
//! - `conn.set_instrumentation(TimelineInstrumentation::new())` sets it on
//!   one connection that already exists.
//!
//! The instrumentation holds no timeline of its own: it looks up
//! [`current()`](crate::current) whenever a statement, a transaction or a
//! connection starts, so one pooled connection serves request after request,
//! each recording onto its own timeline. A statement run with no current
//! timeline records nothing.
//!
//! # The timeline must be current where the statement runs
//!
//! Diesel is synchronous, and services usually run it on a blocking thread:
//! `tokio::task::spawn_blocking`, `deadpool_diesel`'s `interact`, a thread
//! pool. Those threads do not know the request's timeline. With the
//! `tracing` feature and its `TimelineLayer` installed, a blocking thread
//! that runs inside the request's span (`spawn_blocking(…)` with
//! `Span::in_scope`, `deadpool`'s `interact` with its `tracing` feature)
//! finds it through the span; otherwise carry it there with
//! [`with_current`](crate::with_current):
//!
//! ```
//! use diesel::connection::{Connection, SimpleConnection};
//! use diesel::sqlite::SqliteConnection;
//! use timeline_core::{Timeline, with_current};
//! use timeline_core::integrations::diesel::TimelineInstrumentation;
//!
//! let mut conn = SqliteConnection::establish(":memory:")?;
//! conn.set_instrumentation(TimelineInstrumentation::new());
//!
//! let timeline = Timeline::new();
//! let _request = timeline.enter();
//! // `with_current` takes the current timeline along to the other thread.
//! std::thread::spawn(with_current(move || conn.batch_execute("SELECT 1")))
//!     .join()
//!     .unwrap()?;
//! assert_eq!(timeline.actions()[0].detail(), "SELECT 1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With `deadpool_diesel`, whose `interact` lends its closure the
//! connection, [`with_current_mut`](crate::with_current_mut) does the same
//! inside a handler:
//!
//! ```
//! # use diesel::prelude::*;
//! # diesel::table! { bug (id) { id -> Integer, title -> Text } }
//! # #[derive(Queryable)]
//! # struct Bug { id: i32, title: String }
//! # type Error = Box<dyn std::error::Error + Send + Sync>;
//! use deadpool_diesel::sqlite::{Manager, Pool, Runtime};
//! use timeline_core::{Timeline, WithTimeline};
//!
//! async fn bugs(pool: &Pool) -> Result<Vec<Bug>, Error> {
//!     let conn = pool.get().await?;
//!     let bugs = conn
//!         .interact(timeline_core::with_current_mut(move |conn| bug::table.load::<Bug>(conn)))
//!         .await
//!         .map_err(|e| e.to_string())??;
//!     Ok(bugs)
//! }
//! # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! # runtime.block_on(async {
//! timeline_core::integrations::diesel::install()?;
//! let pool = Pool::builder(Manager::new(":memory:", Runtime::Tokio1)).max_size(1).build()?;
//! # use diesel::connection::SimpleConnection;
//! # let create = |conn: &mut diesel::SqliteConnection| conn.batch_execute("CREATE TABLE bug (id INTEGER PRIMARY KEY, title TEXT NOT NULL)");
//! # pool.get().await?.interact(create).await.map_err(|e| e.to_string())??;
//! let timeline = Timeline::new();
//! bugs(&pool).with_timeline(timeline.clone()).await?;
//! assert_eq!(timeline.actions()[0].detail(), "SELECT `bug`.`id`, `bug`.`title` FROM `bug` -- binds: []");
//! # Ok::<(), Error>(())
//! # })?;
//! # Ok::<(), Error>(())
//! ```
//!
//! # What is recorded
//!
//! | diesel event | action |
//! |---|---|
//! | a statement (`StartQuery` … `FinishQuery`) | category `SQL-main`; detail the statement as diesel prints it, `SQL -- binds: [...]`; a failed statement has [`Outcome::Error`] with diesel's message |
//! | a transaction (`BeginTransaction` … the end of its `COMMIT` or `ROLLBACK`) | a nesting action, category `SQL-main`, detail `transaction` (or `savepoint 1`, `savepoint 2`… for nested transactions); its statements, `BEGIN` and `COMMIT` included, are its children. A rolled-back transaction has the outcome `Error("rolled back")` |
//! | establishing a connection, seen only by [`install`] and only on a thread with a current timeline (a pool that connects on its own threads records nothing) | category `SQL-connect`; detail the database URL without user, password and query parameters (a `key=value` connection string is not shown at all) |
//!
//! The `-- binds: [...]` suffix is an SQL comment, which the
//! [repeated-statement](crate::Summary::repeated_statements) detector ignores:
//! the same statement issued with twenty different ids is one group of 20.
//! The categories can be changed with [`TimelineInstrumentation::category`],
//! [`transaction_category`](TimelineInstrumentation::transaction_category)
//! and [`connect_category`](TimelineInstrumentation::connect_category).
//!
//! Actions are never refused: a statement that overlaps another unfinished
//! action of the same timeline (two connections used at once, or a
//! statement issued while iterating over another's rows) is stored as
//! [concurrent](crate::Action::is_concurrent), with a
//! [`Violation`](crate::Violation).
//!
//! # Robustness
//!
//! The instrumentation never panics, not even on a
//! [`strict`](crate::TimelineBuilder::strict) timeline: the panic would
//! unwind through diesel's connection.
//!
//! - Missing or out-of-order events: diesel emits no `FinishQuery` for a
//!   statement whose bind values fail to serialize, so a statement still
//!   open when the connection's next event arrives is finished then, with an
//!   error saying so. A finish without a start is ignored. Whatever is still
//!   open when the connection is dropped is finished then.
//! - A query whose `Display` fails or panics (it prints bind values with
//!   their `Debug`) is recorded with a detail saying so. A query is
//!   displayed only up to the timeline's
//!   [`max_detail_len`](crate::TimelineBuilder::max_detail_len), however
//!   large its bind values.
//! - Known gap: when SQLite ends a transaction by itself (after a disk-full
//!   or I/O error), diesel emits no event for its end, and its action stays
//!   open until the connection begins its next transaction or is dropped.
//!
//! # Call sites
//!
//! The instrumentation runs on the thread that runs the statement: where
//! the timeline captures backtraces (always in [`testing`](crate::testing)),
//! an action's [call site](crate::Action::call_site) is the application's
//! line that called diesel, or the closure's line that `spawn_blocking` or
//! `interact` ran. All the sources and what they tell are tabled in the
//! repository's `docs/sources.md`.
//!
//! # Versions
//!
//! Diesel 2.2 or later (the first with `Instrumentation`); diesel 2.3 needs
//! Rust 1.86, above this crate's 1.85.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU32;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{PoisonError, RwLock};

use ::diesel::QueryResult;
use ::diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};

use crate::text::ELLIPSIS;
use crate::{ActionGuard, Outcome, current};

/// The current timeline, or with the `tracing` feature that of the request
/// whose span is current: diesel runs on blocking threads, which a
/// `spawn_blocking` inside the request's span reaches without a current
/// timeline.
fn request_timeline() -> Option<crate::Timeline> {
    let current = current();
    // The `tracing` integration is built with `tower` (its request span).
    #[cfg(all(feature = "tower", feature = "tracing"))]
    let current = current.or_else(crate::integrations::tracing::span_timeline);
    current
}

/// The outcome of a statement or transaction that diesel started but never
/// reported ended, e.g. a statement whose bind values failed to serialize.
const NO_FINISH: &str = "diesel reported no end of this";
/// The outcome of an action still open when its connection is dropped.
const CONNECTION_DROPPED: &str = "the connection was dropped before this ended";

/// Records the statements and transactions of one diesel connection on the
/// [current timeline](crate::current); see the [module documentation](self).
///
/// ```
/// use diesel::connection::{Connection, SimpleConnection};
/// use diesel::sqlite::SqliteConnection;
/// use timeline_core::Timeline;
/// use timeline_core::integrations::diesel::TimelineInstrumentation;
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// conn.set_instrumentation(TimelineInstrumentation::new().category("SQL-replica"));
///
/// let timeline = Timeline::new();
/// timeline.scope(|| conn.batch_execute("SELECT 1"))?;
/// assert_eq!(timeline.actions()[0].category(), "SQL-replica");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TimelineInstrumentation {
    categories: Categories,
    /// The statement running now: a connection runs one at a time.
    statement: Option<ActionGuard>,
    /// Open transactions by depth, the innermost last. A transaction begun
    /// with no current timeline has no entry.
    transactions: Vec<(NonZeroU32, ActionGuard)>,
    /// What the statement running now does to a transaction: its end
    /// decides whether the transaction opened or closed.
    transaction_statement: Option<TransactionStatement>,
    connecting: Option<ActionGuard>,
}

#[derive(Clone, Debug)]
struct Categories {
    statement: Cow<'static, str>,
    /// `None`: the same as `statement`.
    transaction: Option<Cow<'static, str>>,
    connect: Cow<'static, str>,
}

impl Categories {
    fn of_transactions(&self) -> Cow<'static, str> {
        self.transaction
            .clone()
            .unwrap_or_else(|| self.statement.clone())
    }
}

impl Default for Categories {
    fn default() -> Self {
        Categories {
            statement: Cow::Borrowed("SQL-main"),
            transaction: None,
            connect: Cow::Borrowed("SQL-connect"),
        }
    }
}

/// Diesel announces a transaction's begin, commit or rollback, then runs
/// the `BEGIN`, `COMMIT` or `ROLLBACK` (or savepoint) statement.
#[derive(Clone, Copy, Debug)]
enum TransactionStatement {
    Begin(NonZeroU32),
    Commit(NonZeroU32),
    Rollback(NonZeroU32),
}

impl Default for TimelineInstrumentation {
    fn default() -> Self {
        Self::with_categories(Categories::default())
    }
}

impl TimelineInstrumentation {
    /// An instrumentation with the default categories: `SQL-main` for
    /// statements and transactions, `SQL-connect` for establishing a
    /// connection.
    ///
    /// ```
    /// use diesel::connection::Connection;
    /// use diesel::sqlite::SqliteConnection;
    /// use timeline_core::integrations::diesel::TimelineInstrumentation;
    ///
    /// let mut conn = SqliteConnection::establish(":memory:")?;
    /// conn.set_instrumentation(TimelineInstrumentation::new());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn with_categories(categories: Categories) -> Self {
        TimelineInstrumentation {
            categories,
            statement: None,
            transactions: Vec::new(),
            transaction_statement: None,
            connecting: None,
        }
    }

    /// The category of statements (default `SQL-main`), and of
    /// transactions unless [`transaction_category`](Self::transaction_category)
    /// is set.
    ///
    /// ```
    /// use timeline_core::integrations::diesel::TimelineInstrumentation;
    ///
    /// let replica = TimelineInstrumentation::new().category("SQL-replica");
    /// # drop(replica);
    /// ```
    pub fn category(mut self, category: impl Into<Cow<'static, str>>) -> Self {
        self.categories.statement = category.into();
        self
    }

    /// The category of the nesting action of a transaction (default: the
    /// [statement category](Self::category)). Its log tuples are this
    /// category suffixed `-start` and `-stop`.
    ///
    /// ```
    /// use diesel::connection::Connection;
    /// use diesel::sqlite::SqliteConnection;
    /// use timeline_core::Timeline;
    /// use timeline_core::integrations::diesel::TimelineInstrumentation;
    ///
    /// let mut conn = SqliteConnection::establish(":memory:")?;
    /// conn.set_instrumentation(TimelineInstrumentation::new().transaction_category("SQL-tx"));
    /// let timeline = Timeline::new();
    /// timeline.scope(|| conn.transaction(|_| Ok::<_, diesel::result::Error>(())))?;
    ///
    /// let categories: Vec<String> = timeline.log_tuples().into_iter().map(|t| t.category).collect();
    /// assert_eq!(categories, ["SQL-tx-start", "SQL-main", "SQL-main", "SQL-tx-stop"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transaction_category(mut self, category: impl Into<Cow<'static, str>>) -> Self {
        self.categories.transaction = Some(category.into());
        self
    }

    /// The category of establishing a connection (default `SQL-connect`).
    /// Only [`install`] and [`install_with`] see connections being
    /// established: an instrumentation set on a connection comes too late.
    ///
    /// ```
    /// use diesel::connection::Connection;
    /// use diesel::sqlite::SqliteConnection;
    /// use timeline_core::Timeline;
    /// use timeline_core::integrations::diesel::{TimelineInstrumentation, install_with};
    ///
    /// install_with(TimelineInstrumentation::new().connect_category("SQL-open"))?;
    /// let timeline = Timeline::new();
    /// let conn = timeline.scope(|| SqliteConnection::establish(":memory:"))?;
    /// assert_eq!(timeline.actions()[0].category(), "SQL-open");
    /// assert_eq!(timeline.actions()[0].detail(), ":memory:");
    /// # drop(conn);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_category(mut self, category: impl Into<Cow<'static, str>>) -> Self {
        self.categories.connect = category.into();
        self
    }

    fn on_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                self.finish_stale_statement();
                if let Some(timeline) = request_timeline() {
                    let detail = render_at_most(query, timeline.max_detail_len());
                    let category = self.categories.statement.clone();
                    self.statement = Some(timeline.start_unrefused(category, detail.into(), false));
                }
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                let error = error.map(render);
                if let Some(statement) = self.statement.take() {
                    statement.finish_with(match &error {
                        None => Outcome::Ok,
                        Some(message) => Outcome::Error(message.clone()),
                    });
                }
                if let Some(transaction) = self.transaction_statement.take() {
                    self.transaction_statement_ended(transaction, error);
                }
            }
            InstrumentationEvent::BeginTransaction { depth, .. } => {
                self.finish_stale_statement();
                // A transaction as deep or deeper still open missed its end.
                self.close_transactions(depth, || Outcome::Error(NO_FINISH.into()));
                self.transaction_statement = Some(TransactionStatement::Begin(depth));
                if let Some(timeline) = request_timeline() {
                    let category = self.categories.of_transactions();
                    let detail = match depth.get() - 1 {
                        0 => Cow::Borrowed("transaction"),
                        savepoint => Cow::Owned(format!("savepoint {savepoint}")),
                    };
                    let guard = timeline.start_unrefused(category, detail, true);
                    self.transactions.push((depth, guard));
                }
            }
            InstrumentationEvent::CommitTransaction { depth, .. } => {
                self.finish_stale_statement();
                self.transaction_statement = Some(TransactionStatement::Commit(depth));
            }
            InstrumentationEvent::RollbackTransaction { depth, .. } => {
                self.finish_stale_statement();
                self.transaction_statement = Some(TransactionStatement::Rollback(depth));
            }
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                if let Some(stale) = self.connecting.take() {
                    stale.finish_with(Outcome::Error(NO_FINISH.into()));
                }
                if let Some(timeline) = request_timeline() {
                    let category = self.categories.connect.clone();
                    let detail = connection_detail(url);
                    self.connecting = Some(timeline.start_unrefused(category, detail, false));
                }
            }
            InstrumentationEvent::FinishEstablishConnection { error, .. } => {
                if let Some(connecting) = self.connecting.take() {
                    connecting.finish_with(match error {
                        None => Outcome::Ok,
                        Some(error) => Outcome::Error(render(error)),
                    });
                }
            }
            // `CacheQuery`, and whatever later diesel versions add.
            _ => {}
        }
    }

    /// Diesel reports no end of a statement whose bind values fail to
    /// serialize: once the connection moves on, it has ended.
    fn finish_stale_statement(&mut self) {
        if let Some(stale) = self.statement.take() {
            stale.finish_with(Outcome::Error(NO_FINISH.into()));
        }
    }

    fn transaction_statement_ended(
        &mut self,
        transaction: TransactionStatement,
        error: Option<String>,
    ) {
        match (transaction, error) {
            (TransactionStatement::Begin(_), None) => {}
            (TransactionStatement::Begin(depth), Some(error)) => {
                self.close_transactions(depth, || Outcome::Error(error.clone()));
            }
            (TransactionStatement::Commit(depth), None) => {
                self.close_transactions(depth, || Outcome::Ok);
            }
            // Diesel rolls back after a failed commit, or the transaction
            // stays open: either way it has not ended yet.
            (TransactionStatement::Commit(_), Some(_)) => {}
            (TransactionStatement::Rollback(depth), None) => {
                self.close_transactions(depth, || Outcome::Error("rolled back".into()));
            }
            // Diesel counts a transaction whose rollback failed as ended.
            (TransactionStatement::Rollback(depth), Some(error)) => {
                self.close_transactions(depth, || {
                    Outcome::Error(format!("rollback failed: {error}"))
                });
            }
        }
    }

    /// Finishes the open transactions at `depth` and deeper, innermost
    /// first, so that each ends after the transactions it contains.
    fn close_transactions(&mut self, depth: NonZeroU32, outcome: impl Fn() -> Outcome) {
        while self
            .transactions
            .last()
            .is_some_and(|(open, _)| *open >= depth)
        {
            if let Some((_, guard)) = self.transactions.pop() {
                guard.finish_with(outcome());
            }
        }
    }
}

impl Instrumentation for TimelineInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        self.on_event(event);
    }
}

impl Drop for TimelineInstrumentation {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Each guard's own drop records `Outcome::Panicked`; only the
            // order matters, innermost first.
            drop(self.statement.take());
            while let Some(transaction) = self.transactions.pop() {
                drop(transaction);
            }
            return;
        }
        let dropped = || Outcome::Error(CONNECTION_DROPPED.into());
        if let Some(statement) = self.statement.take() {
            statement.finish_with(dropped());
        }
        while let Some((_, transaction)) = self.transactions.pop() {
            transaction.finish_with(dropped());
        }
        if let Some(connecting) = self.connecting.take() {
            connecting.finish_with(dropped());
        }
    }
}

/// The settings [`install_with`] copies into each new connection's
/// instrumentation.
static INSTALLED: RwLock<Option<Categories>> = RwLock::new(None);

/// Makes every diesel connection established from now on record its
/// statements, transactions and its own establishment on the current
/// timeline, with the default categories. Call it once at start-up, before
/// a connection pool connects; connections that already exist are not
/// changed (see [`TimelineInstrumentation`] for those).
///
/// This replaces diesel's default instrumentation, of which there is one per
/// process (see [`set_default_instrumentation`]); the error is diesel's,
/// should its lock be poisoned.
///
/// ```
/// use diesel::connection::{Connection, SimpleConnection};
/// use diesel::sqlite::SqliteConnection;
/// use timeline_core::Timeline;
///
/// timeline_core::integrations::diesel::install()?;
///
/// let timeline = Timeline::new();
/// timeline.scope(|| -> Result<(), Box<dyn std::error::Error>> {
///     let mut conn = SqliteConnection::establish(":memory:")?;
///     Ok(conn.batch_execute("SELECT 1")?)
/// })?;
/// let actions = timeline.actions();
/// let categories: Vec<&str> = actions.iter().map(|a| a.category()).collect();
/// assert_eq!(categories, ["SQL-connect", "SQL-main"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn install() -> QueryResult<()> {
    install_with(TimelineInstrumentation::new())
}

/// [`install`], with the categories of `settings` in every new connection.
///
/// ```
/// use diesel::connection::{Connection, SimpleConnection};
/// use diesel::sqlite::SqliteConnection;
/// use timeline_core::Timeline;
/// use timeline_core::integrations::diesel::{TimelineInstrumentation, install_with};
///
/// install_with(TimelineInstrumentation::new().category("SQL-replica"))?;
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// let timeline = Timeline::new();
/// timeline.scope(|| conn.batch_execute("SELECT 1"))?;
/// assert_eq!(timeline.actions()[0].category(), "SQL-replica");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn install_with(settings: TimelineInstrumentation) -> QueryResult<()> {
    let categories = settings.categories.clone();
    *INSTALLED.write().unwrap_or_else(PoisonError::into_inner) = Some(categories);
    set_default_instrumentation(installed_instrumentation)
}

fn installed_instrumentation() -> Option<Box<dyn Instrumentation>> {
    let categories = INSTALLED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_default();
    Some(Box::new(TimelineInstrumentation::with_categories(
        categories,
    )))
}

/// `value`'s `Display`, which for a query may run user code (the `Debug` of
/// bind values): an error or a panic there must not reach diesel.
fn render(value: &(impl fmt::Display + ?Sized)) -> String {
    render_at_most(value, usize::MAX)
}

/// [`render`], stopping once the text is longer than `max_len` bytes: the
/// timeline would cut it to that anyway, and a statement binding a 100 MB
/// blob must not cost 100 MB of text per statement.
fn render_at_most(value: &(impl fmt::Display + ?Sized), max_len: usize) -> String {
    let mut out = Bounded {
        text: String::new(),
        room: max_len.saturating_add(1),
    };
    let written = panic::catch_unwind(AssertUnwindSafe(|| {
        fmt::write(&mut out, format_args!("{value}"))
    }));
    let text = out.text;
    match written {
        Ok(Ok(())) => text,
        // Over the limit. With the marker it is longer than `max_len`
        // (`Bounded` cut at most 3 bytes short of `max_len + 1`), so the
        // timeline cuts it exactly where it would have cut the whole text.
        Ok(Err(fmt::Error)) if out.room == 0 => text + ELLIPSIS,
        Ok(Err(fmt::Error)) if text.is_empty() => "<diesel could not display this>".to_owned(),
        Ok(Err(fmt::Error)) => text + " <display failed here>",
        Err(_) => "<displaying this panicked>".to_owned(),
    }
}

/// A `fmt::Write` that takes `room` more bytes, then fails.
struct Bounded {
    text: String,
    room: usize,
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() <= self.room {
            self.text.push_str(s);
            self.room -= s.len();
            return Ok(());
        }
        let fits = (0..=self.room)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        self.text.push_str(&s[..fits]);
        self.room = 0;
        Err(fmt::Error)
    }
}

/// A database URL fit for a timeline, which ends up in logs and reports:
/// no user, password or query parameters.
fn connection_detail(url: &str) -> Cow<'static, str> {
    let without_query = url.split(['?', '#']).next().unwrap_or_default();
    if let Some((scheme, rest)) = without_query.split_once("://") {
        // The last `@`: a password may contain an unencoded `@` or `/`.
        let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
        Cow::Owned(format!("{scheme}://{host_and_path}"))
    } else if without_query.contains('=') {
        // A `key=value` connection string, which may hold a password.
        Cow::Borrowed("<connection string>")
    } else {
        Cow::Owned(without_query.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::{connection_detail, render, render_at_most};

    #[test]
    fn connection_detail_keeps_no_credentials() {
        let cases = [
            (":memory:", ":memory:"),
            ("/var/lib/app.db", "/var/lib/app.db"),
            ("file:app.db?mode=ro", "file:app.db"),
            (
                "postgres://bob:s3cret@db:5432/app",
                "postgres://db:5432/app",
            ),
            (
                "postgres://bob:a/b@c@db/app?sslpassword=x",
                "postgres://db/app",
            ),
            ("mysql://db/app?password=x", "mysql://db/app"),
            ("host=db user=bob password='s 3'", "<connection string>"),
        ];
        for (url, detail) in cases {
            assert_eq!(connection_detail(url), detail, "for {url}");
        }
    }

    #[test]
    fn rendering_stops_just_past_the_limit_at_a_char_boundary() {
        assert_eq!(render_at_most("SELECT 1", 8), "SELECT 1");
        assert_eq!(render_at_most("SELECT 12", 8), "SELECT 12");
        assert_eq!(render_at_most("SELECT 123", 8), "SELECT 12…");
        // "é" is two bytes: 4 + 1 bytes of room end inside the third one.
        assert_eq!(render_at_most("éééé", 4), "éé…");
    }

    #[test]
    fn a_display_that_fails_or_panics_is_named_in_the_detail() {
        struct Failing;
        impl fmt::Display for Failing {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("SELECT ")?;
                Err(fmt::Error)
            }
        }
        struct Panicking;
        impl fmt::Display for Panicking {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                panic!("a bind value's Debug panicked")
            }
        }
        assert_eq!(render(&Failing), "SELECT  <display failed here>");
        assert_eq!(render(&Panicking), "<displaying this panicked>");
    }
}
