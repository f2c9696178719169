//! What the tests' assertions are built on: the message of a panic (of a
//! closure or a future), the
//! details a timeline holds, `Send` bounds, and a value that counts how
//! often it was formatted.

use std::cell::Cell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::task::Poll;

use timeline_core::Timeline;

/// Runs `f`, which must panic, and returns the panic's message (empty when
/// the payload is neither a `String` nor a `&str`).
///
/// # Panics
///
/// When `f` returns without panicking: the assertion it was meant to trip
/// held.
///
/// ```
/// use timeline_core::{Timeline, testing};
/// use timeline_tests::checks::panic_message;
///
/// let timeline = Timeline::new();
/// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
/// let message = panic_message(|| testing::assert_max_actions(&timeline, "SQL", 0));
/// assert!(message.contains("SELECT 1"), "{message}");
/// ```
pub fn panic_message(f: impl FnOnce()) -> String {
    let payload = panic::catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should fail");
    message_of(payload)
}

/// [`panic_message`] for a future, which must panic while it is polled:
/// for async assertions such as `testing::scaling(…).check_async(…)`.
///
/// # Panics
///
/// When `future` completes without panicking.
///
/// ```
/// use timeline_tests::checks::panic_message_async;
/// use timeline_tests::future::block_on;
///
/// let message = block_on(panic_message_async(async { panic!("grew") }));
/// assert_eq!(message, "grew");
/// ```
pub async fn panic_message_async<F: Future>(future: F) -> String {
    let mut future = pin!(future);
    let payload = std::future::poll_fn(|cx| {
        match panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(_)) => panic!("the assertion should fail"),
            Err(payload) => Poll::Ready(payload),
        }
    })
    .await;
    message_of(payload)
}

fn message_of(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The details of `timeline`'s actions, in the order
/// [`Timeline::actions`] gives them.
///
/// ```
/// use timeline_core::Timeline;
/// use timeline_tests::checks::details;
///
/// let timeline = Timeline::new();
/// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
/// timeline.start("SQL-main", "SELECT 2").unwrap().finish();
/// assert_eq!(details(&timeline), ["SELECT 1", "SELECT 2"]);
/// ```
pub fn details(timeline: &Timeline) -> Vec<String> {
    timeline
        .actions()
        .iter()
        .map(|a| a.detail().to_owned())
        .collect()
}

/// The categories of `timeline`'s log tuples, in their order: nesting
/// actions show as their `-start` and `-stop` markers.
///
/// ```
/// use timeline_core::Timeline;
/// use timeline_tests::checks::log_categories;
///
/// let timeline = Timeline::new();
/// let transaction = timeline.start_nested("txn", "BEGIN").unwrap();
/// timeline.start("SQL-main", "INSERT 1").unwrap().finish();
/// transaction.finish();
/// assert_eq!(log_categories(&timeline), ["txn-start", "SQL-main", "txn-stop"]);
/// ```
pub fn log_categories(timeline: &Timeline) -> Vec<String> {
    timeline
        .log_tuples()
        .into_iter()
        .map(|t| t.category)
        .collect()
}

/// Compiles only if the type of `value` is `Send`: for types without a
/// name, such as the future of an `async fn`.
///
/// ```
/// use timeline_tests::checks::assert_send;
///
/// assert_send(&async { 1 });
/// ```
///
/// ```compile_fail
/// use timeline_tests::checks::assert_send;
///
/// assert_send(&std::rc::Rc::new(1));
/// ```
pub fn assert_send<T: Send>(_value: &T) {}

/// Compiles only if `T` is `Send`: for types with a name.
///
/// ```
/// use timeline_tests::checks::assert_send_type;
///
/// assert_send_type::<timeline_core::ActionGuard>();
/// ```
pub fn assert_send_type<T: Send>() {}

/// Displays as `value`, counting how often it was formatted: a detail that
/// is never needed must never be formatted.
///
/// ```
/// use timeline_tests::checks::Counted;
///
/// let counted = Counted::default();
/// assert_eq!(counted.to_string(), "value");
/// assert_eq!(counted.formatted.get(), 1);
/// ```
#[derive(Debug, Default)]
pub struct Counted {
    /// How often `Display` ran.
    pub formatted: Cell<u32>,
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.formatted.set(self.formatted.get() + 1);
        f.write_str("value")
    }
}
