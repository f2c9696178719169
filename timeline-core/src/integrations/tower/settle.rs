//! The settle step: before a request's report, log line and
//! `Server-Timing` header are made, wait — bounded — for the work still
//! recording onto its timeline.
//!
//! sqlx's SQLite worker sends a statement's rows, or its error, to the
//! caller before it emits the query event, inside the request's span: a
//! handler that returns at once (a failed `INSERT` answered with a 500)
//! can end before its last statement reached the timeline. The `tracing`
//! bridge counts a thread with no timeline of its own inside a request's
//! span as outstanding work, until its event is recorded or it leaves the
//! span; when the handler returns, the layer waits until none is left, or
//! until the deadline.
//!
//! Nothing outstanding — every request whose driver already finished —
//! costs one load: no wait, no timer. Otherwise the response future
//! returns `Pending`, and is woken by the last work to end or, at the
//! deadline, by one timer thread shared by the process, started the first
//! time a request has to wait.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::Timeline;

/// How long a request waits at most for work still outstanding when its
/// handler returns, unless configured.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// A request waiting for its timeline to settle.
#[derive(Debug)]
pub(super) struct Settling {
    deadline: Instant,
    timer_set: bool,
}

impl Settling {
    pub(super) fn new(timeout: Duration) -> Settling {
        let now = Instant::now();
        Settling {
            deadline: now.checked_add(timeout).unwrap_or(now),
            timer_set: false,
        }
    }

    /// Ready once no work is outstanding on `timeline`, or at the deadline.
    pub(super) fn poll(&mut self, timeline: &Timeline, cx: &mut Context<'_>) -> Poll<()> {
        if timeline.poll_settled(cx).is_ready() || Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        if !self.timer_set {
            self.timer_set = true;
            if !wake_at(self.deadline, cx.waker().clone()) {
                // No timer thread: no wait that could not be bounded.
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

/// Whether no work is outstanding: what the layer asks first, so that a
/// request with nothing outstanding builds no `Settling` at all.
pub(super) fn is_settled(timeline: &Timeline) -> bool {
    timeline.is_settled()
}

/// Wakes `waker` at `at`, from the timer thread. `false` if the thread
/// could not be started.
fn wake_at(at: Instant, waker: Waker) -> bool {
    let Some(timer) = timer() else {
        return false;
    };
    let earliest = {
        let mut queue = timer.queue.lock();
        let sequence = timer.sequence(&mut queue);
        queue.heap.push(Reverse(Due {
            at,
            sequence,
            waker,
        }));
        queue
            .heap
            .peek()
            .is_some_and(|Reverse(due)| due.sequence == sequence)
    };
    if earliest {
        timer.thread.unpark();
    }
    true
}

struct Timer {
    queue: Mutex<Queue>,
    thread: Thread,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Due>>,
    next_sequence: u64,
}

impl Timer {
    fn sequence(&self, queue: &mut Queue) -> u64 {
        queue.next_sequence = queue.next_sequence.wrapping_add(1);
        queue.next_sequence
    }
}

/// A waker due at `at`; ordered by time, then by arrival.
struct Due {
    at: Instant,
    sequence: u64,
    waker: Waker,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

/// The timer, started on first use; `None` if its thread could not be.
fn timer() -> Option<&'static Timer> {
    static TIMER: OnceLock<Option<Timer>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let thread = std::thread::Builder::new()
                .name("timeline-settle".into())
                .spawn(run)
                .ok()?;
            Some(Timer {
                queue: Mutex::new(Queue::default()),
                thread: thread.thread().clone(),
            })
        })
        .as_ref()
}

/// The timer thread: wakes what is due, then sleeps until the next is.
fn run() {
    // Started while `TIMER` is being set: this waits until it is.
    let Some(timer) = timer() else { return };
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        let next = {
            let mut queue = timer.queue.lock();
            while queue.heap.peek().is_some_and(|Reverse(d)| d.at <= now) {
                if let Some(Reverse(d)) = queue.heap.pop() {
                    due.push(d.waker);
                }
            }
            queue.heap.peek().map(|Reverse(d)| d.at)
        };
        // Outside the lock: a waker is the executor's code.
        for waker in due {
            waker.wake();
        }
        match next {
            Some(at) => std::thread::park_timeout(at.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_timer_wakes_at_the_deadline_in_order() {
        let first = Arc::new(Count(AtomicUsize::new(0)));
        let second = Arc::new(Count(AtomicUsize::new(0)));
        let start = Instant::now();
        assert!(wake_at(
            start + Duration::from_millis(60),
            Waker::from(Arc::clone(&second))
        ));
        assert!(wake_at(
            start + Duration::from_millis(20),
            Waker::from(Arc::clone(&first))
        ));
        while first.0.load(Ordering::SeqCst) == 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "never woken");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(second.0.load(Ordering::SeqCst), 0, "woken early");
        while second.0.load(Ordering::SeqCst) == 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "never woken");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(start.elapsed() >= Duration::from_millis(60));
    }
}
