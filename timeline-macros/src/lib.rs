//! The `#[timed]` attribute of `timeline-core`. Use it through
//! `timeline_core::timed`; this crate is an implementation detail.

mod args;
mod expand;
mod item;
mod valid;

use proc_macro::TokenStream;

/// Turns every call of a function into a timed action on the current
/// timeline.
///
/// The action starts when the call starts and finishes when the call
/// returns — at the end of the body, by `return` or by `?` — or unwinds
/// (then its outcome is `Panicked`). With no current timeline the body just
/// runs: the cost is one thread-local read, and the detail is not formatted.
///
/// ```
/// use timeline_core::{Timeline, timed};
///
/// #[timed(category = "SQL-main", detail = "SELECT * FROM bug WHERE id = {id}")]
/// fn load_bug(id: i64) -> String {
///     format!("bug {id}")
/// }
///
/// let timeline = Timeline::new();
/// timeline.scope(|| load_bug(1));
/// let action = &timeline.actions()[0];
/// assert_eq!(action.category(), "SQL-main");
/// assert_eq!(action.detail(), "SELECT * FROM bug WHERE id = 1");
///
/// load_bug(2); // no current timeline: runs untimed
/// assert_eq!(timeline.len(), 1);
/// ```
///
/// ## Arguments
///
/// All are optional, in any order, each at most once.
///
/// - `category = "…"`: the action's category, a non-empty string literal.
///   Default: the function's name.
/// - `detail = "…"`: the action's detail, a format string whose placeholders
///   name the function's parameters: `{id}`, `{id:?}`, `{name:>8}`, the
///   bindings of a parameter pattern such as `(x, y): (i32, i32)`, and
///   `{self}` in methods. It is formatted only when a timeline is current;
///   without placeholders it is a `&'static str`, and costs no allocation.
///   `{{` and `}}` are literal braces. Positional placeholders (`{}`),
///   expressions (`{self.id}`) and names that are not parameters are compile
///   errors. Default: empty.
/// - `nested`: start the action as a nesting one (`Timeline::start_nested`),
///   so that the actions of the calls inside it are recorded too, one at a
///   time.
/// - `err`: for a function returning `Result<T, E>` with `E: Display`, an
///   `Err(e)` return finishes the action with `Outcome::Error(e.to_string())`.
///   The return type must be written as a `Result` (`Result<T, E>`,
///   `io::Result<T>` and other aliases named `Result`).
/// - `crate = path`: the path to `timeline_core`, for a crate that re-exports
///   it under another name. Default: `::timeline_core`.
///
/// ## Every kind of function
///
/// Free functions, methods (`self`, `&self`, `&mut self`, `self: Box<Self>`),
/// generic functions, `impl Trait` arguments and returns, `unsafe fn`, trait
/// default methods and `async fn` (also in traits and their impls). The
/// signature, visibility, documentation and other attributes stay as written,
/// and so do auto traits: the future of an `async fn` is `Send` when its body
/// is. `#[timed]` combines with other attributes, such as `#[tokio::test]`,
/// in either order.
///
/// - **`async fn`**: the action starts at the first poll, on the timeline
///   current at that poll (see `WithTimeline::with_timeline`), and finishes
///   when the future completes. A future dropped before it completes
///   finishes its action with `Outcome::Cancelled`; a future never polled
///   records nothing. A function that is not `async` but returns a future is
///   timed while it creates the future, not while the future runs: write it
///   as an `async fn`.
/// - **Overlap**: when another non-nesting action is unfinished — a caller's,
///   or a sibling future's polled with `join!` — nothing is lost: the body
///   runs, its action is stored as *concurrent* (`Action::is_concurrent`),
///   and the timeline also records a `Violation` naming both actions —
///   unless it was built with `strict(true)`, in which case the call panics
///   before the body runs. Instrumentation never breaks the program it
///   measures.
///
/// `const fn`, items other than functions and trait methods without a body
/// are compile errors.
///
/// # Examples
///
/// `category` and `detail`; without a `category`, the function's name:
///
/// ```
/// use timeline_core::{Timeline, timed};
///
/// #[timed(category = "memcache-get", detail = "user:{id}")]
/// fn cached_user(id: u32) -> Option<String> {
///     None
/// }
///
/// #[timed(detail = "{{\"key\": {key:?}}}")] // `{{` and `}}` are braces
/// fn set_flag(key: &str) {}
///
/// let timeline = Timeline::new();
/// timeline.scope(|| {
///     cached_user(42);
///     set_flag("beta");
/// });
/// let actions = timeline.actions();
/// assert_eq!((actions[0].category(), actions[0].detail()), ("memcache-get", "user:42"));
/// assert_eq!((actions[1].category(), actions[1].detail()), ("set_flag", r#"{"key": "beta"}"#));
/// ```
///
/// `detail` naming `self` and the bindings of a pattern:
///
/// ```
/// use std::fmt;
/// use timeline_core::{Timeline, timed};
///
/// struct Bucket(&'static str);
///
/// impl fmt::Display for Bucket {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         write!(f, "s3://{}", self.0)
///     }
/// }
///
/// impl Bucket {
///     #[timed(category = "S3-put", detail = "{self}/{key} ({len} bytes)")]
///     fn put(&self, (key, len): (&str, usize)) {}
/// }
///
/// let timeline = Timeline::new();
/// timeline.scope(|| Bucket("logs").put(("today", 512)));
/// assert_eq!(timeline.actions()[0].detail(), "s3://logs/today (512 bytes)");
/// ```
///
/// `nested`: a transaction containing its statements:
///
/// ```
/// use timeline_core::{Timeline, timed};
///
/// #[timed(category = "SQL-transaction", detail = "transfer {from} → {to}", nested)]
/// fn transfer(from: u32, to: u32) {
///     execute("UPDATE account SET balance = balance - 10 WHERE id = 1");
///     execute("UPDATE account SET balance = balance + 10 WHERE id = 2");
/// }
///
/// #[timed(category = "SQL-main", detail = "{statement}")]
/// fn execute(statement: &str) {}
///
/// let timeline = Timeline::new();
/// timeline.scope(|| transfer(1, 2));
/// let categories: Vec<String> = timeline.log_tuples().into_iter().map(|t| t.category).collect();
/// assert_eq!(
///     categories,
///     ["SQL-transaction-start", "SQL-main", "SQL-main", "SQL-transaction-stop"]
/// );
/// assert!(timeline.violations().is_empty());
/// ```
///
/// `err`: an `Err` return — also through `?` — is the action's outcome:
///
/// ```
/// use timeline_core::{Outcome, Timeline, timed};
///
/// #[timed(category = "file-read", detail = "{path}", err)]
/// fn read_config(path: &str) -> std::io::Result<String> {
///     let text = std::fs::read_to_string(path)?;
///     Ok(text.trim().to_owned())
/// }
///
/// let timeline = Timeline::new();
/// assert!(timeline.scope(|| read_config("/definitely/not/here")).is_err());
/// let actions = timeline.actions();
/// let Outcome::Error(message) = actions[0].outcome() else {
///     panic!("not an error");
/// };
/// assert!(message.contains("No such file"));
/// ```
///
/// `crate = path`, in a crate that re-exports `timeline_core` under another
/// name:
///
/// ```
/// mod instrumentation {
///     pub use timeline_core as timeline;
/// }
///
/// use instrumentation::timeline::{Timeline, timed};
///
/// #[timed(crate = instrumentation::timeline, category = "mail-send", detail = "to: {to}")]
/// fn send_mail(to: &str) {}
///
/// let timeline = Timeline::new();
/// timeline.scope(|| send_mail("bob@example.com"));
/// assert_eq!(timeline.actions()[0].category(), "mail-send");
/// ```
///
/// An `async fn`: timed from its first poll to its completion, on the
/// timeline current while it is polled:
///
/// ```
/// use timeline_core::{Outcome, Timeline, WithTimeline, timed};
///
/// #[timed(category = "HTTP-get", detail = "{url}", err)]
/// async fn fetch(url: &str) -> Result<usize, String> {
///     if url.is_empty() {
///         return Err("no url".to_owned());
///     }
///     Ok(url.len())
/// }
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// let timeline = Timeline::new();
/// let future = fetch(""); // nothing happens until it is polled
/// assert!(block_on(future.with_timeline(timeline.clone())).is_err());
/// assert_eq!(timeline.actions()[0].outcome(), &Outcome::Error("no url".into()));
/// ```
///
/// Overlap: the body runs, its action is stored beside the open one, and the
/// timeline keeps a note:
///
/// ```
/// use timeline_core::{Timeline, timed};
///
/// #[timed(category = "SQL-main", detail = "SELECT 1")]
/// fn select_one() -> i32 {
///     1
/// }
///
/// let timeline = Timeline::new();
/// let one = timeline.scope(|| {
///     let _request = timeline.start("HTTP-get", "/api").unwrap();
///     select_one() // overlaps HTTP-get: concurrent
/// });
/// assert_eq!(one, 1);
/// assert!(timeline.actions()[1].is_concurrent());
/// assert_eq!(timeline.violations()[0].attempted_detail(), "SELECT 1");
/// ```
///
/// # Expands roughly to
///
/// The function keeps its signature; its body becomes:
///
/// ```text
/// // #[timed(category = "SQL-main", detail = "… {id}")] fn load_bug(id: i64) -> Bug { body }
/// let __timed_call = ::timeline_core::__private::TimedCall::start(
///     "SQL-main", /* nested: */ false, || ::std::format!("… {id}"),
/// );
/// { body } // dropping `__timed_call` finishes the action: Ok, or Panicked
///
/// // with `err`: a closure catches `return` and `?`, to see the `Result`
/// let __timed_call = /* as above */;
/// let __timed_result = (move || { body })();
/// __timed_call.complete_result(&__timed_result); // an `Err(e)` is Outcome::Error
/// __timed_result
///
/// // `async fn`: inside the future, so at its first poll
/// let __timed_call = ::timeline_core::__private::TimedCall::start_async(/* … */);
/// let __timed_result = async move { body }.await;
/// __timed_call.complete(); // or complete_result(&__timed_result) with `err`
/// __timed_result // dropped before this point: Outcome::Cancelled
/// ```
///
/// `TimedCall::start` reads the current timeline (one thread-local read),
/// and only if there is one formats the detail and starts the action, as
/// `Timeline::start` does: a timed call costs what a hand-written guard
/// costs. The generated code names the core crate by absolute path and its
/// own locals hygienically, so a crate's own `Timeline`, `Result`, `std` or
/// `format!` do not disturb it.
///
/// With `err`, the body of a synchronous function runs in a closure, so
/// `#[track_caller]` does not reach code in the body, and an `impl Trait`
/// inside the `Result` is inferred from the body rather than declared.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::timed(args.into(), item.into()).into()
}
