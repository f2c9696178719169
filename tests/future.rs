//! Polling futures by hand on the test's own thread: no runtime, so a test
//! sees exactly which poll did what.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

/// Polls `future` to completion on this thread, without a runtime.
///
/// It polls again at once whenever the future is pending, so it suits
/// futures that make progress on each poll (such as [`yield_once`]), not
/// ones that wait for a timer or a socket.
///
/// ```
/// use timeline_tests::future::{block_on, yield_once};
///
/// let doubled = block_on(async {
///     yield_once().await;
///     21 * 2
/// });
/// assert_eq!(doubled, 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Polls `future` once: `Some(output)` if that completed it.
///
/// ```
/// use timeline_tests::future::{poll_once, yield_once};
///
/// let mut future = Box::pin(yield_once());
/// assert_eq!(poll_once(&mut future), None);
/// assert_eq!(poll_once(&mut future), Some(()));
/// ```
pub fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(future).poll(&mut cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// A future that is pending at its first poll and ready at the second.
///
/// ```
/// use timeline_tests::future::{poll_once, yield_once};
///
/// let mut future = Box::pin(async {
///     yield_once().await;
///     "done"
/// });
/// assert_eq!(poll_once(&mut future), None);
/// assert_eq!(poll_once(&mut future), Some("done"));
/// ```
pub async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|_| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            Poll::Pending
        }
    })
    .await;
}
