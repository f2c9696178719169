//! Where did the time of this request go?
//!
//! `timeline` records each expensive or external action a request performs —
//! SQL statements, cache and HTTP calls, mail sends — as a categorised, timed
//! action on the request's own [`Timeline`].
//!
//! # Getting started
//!
//! ```
//! use timeline_core::Timeline;
//!
//! let timeline = Timeline::new();
//! {
//!     let _query = timeline.start("SQL-main", "SELECT * FROM bug WHERE id = 1").unwrap();
//!     // ... run the statement; dropping the guard finishes the action.
//! }
//! for action in timeline.actions() {
//!     println!("{} {} took {:?}", action.category(), action.detail(), action.duration().unwrap());
//! }
//! ```
//!
//! # Key concepts
//!
//! - A **timeline** belongs to one request. [`Timeline`] is a cheap shared
//!   handle: clone it into threads and tasks; every clone records onto the
//!   same timeline.
//! - An **action** has a *category* (`SQL-main`, `memcache-get`,
//!   `HTTP-post`…), a *detail* (the statement, key or URL), a start and a
//!   duration. [`Timeline::start`] returns an [`ActionGuard`]; dropping the
//!   guard finishes the action, also on early return, `?` and panic.
//! - **Actions do not overlap.** While a non-nesting action is unfinished,
//!   [`Timeline::start`] is refused with an [`OverlapError`], so a timeline
//!   reads as a sequence and adds up. A *nesting* action
//!   ([`Timeline::start_nested`], e.g. a transaction) may contain others, one
//!   at a time.
//! - The **current timeline** ([`current`]) lets code deep in a call stack
//!   record onto the request's timeline without passing it around.
//! - [`record`](Timeline::record) adds an already finished action, for
//!   callback-style hooks that learn a duration after the fact.
//!
//! # Three ways in
//!
//! ## An explicit guard
//!
//! When the timeline is at hand, start an action and keep the guard for as
//! long as the action runs:
//!
//! ```
//! use timeline_core::{Outcome, Timeline};
//!
//! let timeline = Timeline::new();
//! let guard = timeline.start("SMTP-send", "to: bob@example.com").unwrap();
//! let sent: Result<(), String> = Err("connection refused".into());
//! match sent {
//!     Ok(()) => drop(guard),
//!     Err(e) => { guard.finish_with(Outcome::Error(e)); }
//! }
//! assert_eq!(timeline.actions()[0].outcome(), &Outcome::Error("connection refused".into()));
//! ```
//!
//! ## The current timeline, deep in the call stack
//!
//! The request handler makes the request's timeline current with
//! [`Timeline::scope`] (or [`Timeline::enter`]); the data layer records onto
//! [`current()`] — or, simplest, is annotated with `#[timed]`:
//!
//! ```
//! use timeline_core::{current, timed, Timeline};
//!
//! #[timed(category = "SQL-main", detail = "SELECT * FROM bug WHERE id = {id}")]
//! fn load_bug(id: i64) -> String {
//!     format!("bug {id}")
//! }
//!
//! fn cached_title(key: &'static str) -> Option<String> {
//!     let _guard = current().map(|timeline| timeline.start("memcache-get", key));
//!     None
//! }
//!
//! let timeline = Timeline::new();
//! timeline.scope(|| {
//!     if cached_title("bug:1").is_none() {
//!         load_bug(1);
//!     }
//! });
//! let details: Vec<String> = timeline.actions().iter().map(|a| a.detail().to_owned()).collect();
//! assert_eq!(details, ["bug:1", "SELECT * FROM bug WHERE id = 1"]);
//! ```
//!
//! ## Async: the timeline travels with the future
//!
//! [`WithTimeline::with_timeline`] makes a timeline current during every poll
//! of a future, on whichever thread the executor polls it. It works with any
//! executor (tokio's work-stealing runtime included) and needs none:
//!
//! ```
//! use timeline_core::{timed, Timeline, WithTimeline};
//!
//! #[timed(category = "HTTP-get", detail = "{url}")]
//! async fn fetch(url: &str) -> usize {
//!     url.len()
//! }
//!
//! async fn handler() -> usize {
//!     fetch("https://example.com/a").await + fetch("https://example.com/b").await
//! }
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let waker = std::task::Waker::noop();
//! #     let mut cx = std::task::Context::from_waker(&waker);
//! #     let mut f = std::pin::pin!(f);
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! let timeline = Timeline::new();
//! block_on(handler().with_timeline(timeline.clone()));
//! assert_eq!(timeline.len(), 2);
//! ```
//!
//! # What a timeline becomes
//!
//! - [`Timeline::summary`]: the per-request log line (`Display`) and, with
//!   `{:#}`, the time per category, the slowest actions and the
//!   **findings** among the repeated statements — details equal once
//!   literal values are replaced by `?`, the N+1 query detector: *similar*
//!   (other values: a loop) or *duplicate* (the same values again), with
//!   their call sites, after the thresholds and allow-list of
//!   [`FindingRules`] and leaving out [paused](Timeline::pause_findings)
//!   code.
//! - [`Timeline::report`]: an OOPS report for error reports, with the
//!   python-oops-timeline log tuples; `serde::Serialize` with the `serde`
//!   feature, or [`Report::to_json`].
//! - [`Report::to_html`]: one self-contained page for people — waterfall,
//!   table per category, repeated statements — that loads and runs nothing.
//! - [`Timeline::to_chrome_trace`]: a file for Perfetto or `chrome://tracing`.
//! - [`Timeline::server_timing`]: an HTTP `Server-Timing` header value.
//! - [`Timeline::waterfall`]: a plain-text waterfall for terminals.
//!
//! Each of these reads the timeline once, as a [`Snapshot`]: plain data
//! taken under one lock. Where several are wanted of one moment (a log
//! line, a header and a report at the end of a request), take the
//! snapshot once with [`Timeline::snapshot`] and call the same methods on
//! it: they agree with each other, and the timeline is read once.
//!
//! ```
//! use timeline_core::Timeline;
//!
//! let timeline = Timeline::new();
//! for id in 1..=20 {
//!     timeline.start("SQL-main", format!("SELECT * FROM person WHERE id = {id}")).unwrap().finish();
//! }
//! let summary = timeline.summary();
//! println!("{summary}"); // 20 queries/external actions issued in 0.00 seconds
//! println!("{summary:#}");
//! let n_plus_one = &summary.findings()[0];
//! assert_eq!(n_plus_one.kind(), timeline_core::FindingKind::Similar);
//! assert_eq!(n_plus_one.statement(), "SELECT * FROM person WHERE id = ?");
//! assert_eq!(n_plus_one.count(), 20);
//! ```
//!
//! # In tests
//!
//! [`testing`] runs code under a fresh timeline — sync code, a future, or a
//! whole app behind the tower layer — and asserts on it: at most N queries,
//! no statement repeated, and a query count that does not grow with the
//! data ([`testing::scaling`]). A failure groups the statements by call
//! site ([`Action::call_site`]: known for free where the application
//! started the action, and for the bridges' actions from the backtraces
//! `testing` captures) and shows only the application's frames of the
//! backtraces — or, where no frame was the application's, says that the
//! call site was not reported. Connection set-up (`SQL-connect`) is left
//! out of the counts.
//!
//! # In services
//!
//! The [`integrations`], each behind a cargo feature: a `tower` layer that
//! gives each HTTP request its own timeline (with `Server-Timing`, a log
//! line per request and OOPS reports for failures and slow requests), a
//! `tracing` layer that records what sqlx, sea-orm, reqwest-tracing,
//! tower-http and the AWS SDK already emit as actions on the request's
//! timeline — following the request onto other threads through its span —
//! and a `diesel` instrumentation that records every statement and
//! transaction of a connection.
//!
//! Across services, a timeline carries its request's W3C [`TraceContext`]
//! (the layer reads `traceparent`; outgoing calls get it with
//! [`TraceContext::inject_current`], each call's action a span of its own
//! that the call names as its parent), reports name the trace id, and the
//! `opentelemetry` feature exports finished timelines as spans to any
//! OpenTelemetry tracer.
//!
//! # When actions overlap anyway
//!
//! Async code polls queries together (`join!`, `join_all`), and callbacks
//! report intervals after the fact. Nothing is lost to the rule: an action
//! from `#[timed]`, a bridge or [`record`](Timeline::record) that overlaps an
//! unfinished one is stored as [concurrent](Action::is_concurrent), counted
//! in the summary line (`… issued in 0.02 seconds (9 concurrent)`), drawn on
//! a lane of its own in the waterfall and the trace, and noted as a
//! [`Violation`]. Only an explicit [`start`](Timeline::start) is refused,
//! with an [`OverlapError`], for code that wants to handle it.
//!
//! # Limits
//!
//! A timeline never grows without bound: it stores at most
//! [`max_actions`](TimelineBuilder::max_actions) actions and at most
//! [`max_bytes`](TimelineBuilder::max_bytes) bytes in all (16 MiB by
//! default: slots, strings, outcomes, backtraces and violations; the rest
//! are counted in [`Timeline::dropped`]); details are cut to
//! [`max_detail_len`](TimelineBuilder::max_detail_len) bytes, categories to
//! 256. Building a report briefly needs at most about three times what is
//! stored; `server_timing()` needs no copy of any detail. A
//! [`detail_filter`](TimelineBuilder::detail_filter) can redact secrets
//! before anything is stored. The library does not panic on runtime input;
//! user code it calls (filters, a parameter's `Display`, hooks) runs
//! without any of its locks held and its panics are contained; and a
//! leaked guard or a cancelled future never corrupts a timeline.
//!
//! # Cost
//!
//! Starting and finishing an action costs about as much as two
//! `Instant::now()` calls, with no allocation for `&'static str` category
//! and detail; nothing is shared between timelines. Where the CPU's
//! time-stamp counter is invariant and the OS keeps time with it, the clock
//! reads it directly: one of the crate's two `unsafe` exceptions, justified
//! by the measurements in `BENCHMARKS.md`. The other, in the `tracing`
//! layer, forwards `tracing_subscriber`'s downcast so that it recognises the
//! layer's own filter (`benches/bridge.rs` measures what that saves).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod analysis;
mod backtrace;
mod call_site;
mod carrier_span;
mod clock;
mod current;
pub mod integrations;
mod overlap;
mod record;
mod render;
mod sync;
pub mod testing;
mod text;
mod time;
mod trace_context;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[doc(hidden)]
pub mod __hooks;

pub use analysis::{
    CategoryStats, Finding, FindingKind, FindingRules, FindingSite, RepeatedStatement, Summary,
    SummaryLine,
};
pub use call_site::WithCallSite;
pub use current::{EnterGuard, WithTimeline, current, with_current, with_current_mut};
pub use overlap::{OverlapError, Violation};
pub use record::{
    Action, ActionGuard, CallSite, FindingsPause, LogTuple, Outcome, Snapshot, Timeline,
    TimelineBuilder,
};
pub use render::{Report, ReportReason, RequestContext};
pub use trace_context::{SpanId, TraceContext, TraceId};

#[cfg(feature = "macros")]
pub use timeline_macros::timed;
