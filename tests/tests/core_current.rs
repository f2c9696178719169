//! The current timeline: `enter`, `scope`, `current` and `with_timeline`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use timeline_core::{Timeline, WithTimeline, current};
use timeline_tests::checks::{assert_send, details};

fn is_current(timeline: &Timeline) -> bool {
    current().is_some_and(|c| Timeline::ptr_eq(&c, timeline))
}

#[test]
fn there_is_no_current_timeline_outside_any_scope() {
    assert!(current().is_none());
}

#[test]
fn enter_makes_a_timeline_current_until_the_guard_drops() {
    let timeline = Timeline::new();
    let entered = timeline.enter();
    assert!(is_current(&timeline));
    drop(entered);
    assert!(current().is_none());
}

#[test]
fn nested_enters_restore_the_outer_timeline() {
    let outer = Timeline::new();
    let inner = Timeline::new();
    outer.scope(|| {
        inner.scope(|| assert!(is_current(&inner)));
        assert!(is_current(&outer));
    });
    assert!(current().is_none());
}

#[test]
fn dropping_an_outer_guard_first_exits_the_inner_scope_too_without_panicking() {
    let outer = Timeline::new();
    let inner = Timeline::new();
    let outer_guard = outer.enter();
    let inner_guard = inner.enter();
    drop(outer_guard);
    assert!(current().is_none());
    drop(inner_guard);
    assert!(current().is_none());
}

#[test]
fn the_current_timeline_belongs_to_one_thread() {
    let timeline = Timeline::new();
    timeline.scope(|| {
        thread::spawn(|| assert!(current().is_none()))
            .join()
            .unwrap();
    });
}

#[test]
fn scope_returns_the_closures_value_and_restores_on_panic() {
    let timeline = Timeline::new();
    assert_eq!(timeline.scope(|| 7), 7);
    let result = std::panic::catch_unwind(|| timeline.scope(|| panic!("in scope")));
    assert!(result.is_err());
    assert!(current().is_none());
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A future that is pending once, then ready, and notes whether the
/// expected timeline was current at each poll.
struct YieldOnce {
    polls: usize,
    saw_current: Vec<bool>,
    expected: Timeline,
}

impl Future for YieldOnce {
    type Output = Vec<bool>;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<bool>> {
        let expected = self.expected.clone();
        self.saw_current.push(is_current(&expected));
        self.polls += 1;
        if self.polls == 1 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(std::mem::take(&mut self.saw_current))
        }
    }
}

#[test]
fn with_timeline_makes_it_current_during_every_poll_and_only_then() {
    let timeline = Timeline::new();
    let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
    let mut cx = Context::from_waker(&waker);
    let inner = YieldOnce {
        polls: 0,
        saw_current: Vec::new(),
        expected: timeline.clone(),
    };
    let mut future = pin!(inner.with_timeline(timeline.clone()));
    assert!(future.as_mut().poll(&mut cx).is_pending());
    assert!(current().is_none(), "not current between polls");
    let Poll::Ready(seen) = future.as_mut().poll(&mut cx) else {
        panic!("ready at the second poll")
    };
    assert_eq!(seen, [true, true]);
}

#[test]
fn with_timeline_keeps_send_futures_send() {
    let future = async { 1 }.with_timeline(Timeline::new());
    assert_send(&future);
}

#[test]
fn with_timeline_follows_a_future_moved_between_threads_between_polls() {
    let timeline = Timeline::new();
    let inner = YieldOnce {
        polls: 0,
        saw_current: Vec::new(),
        expected: timeline.clone(),
    };
    let mut future = Box::pin(inner.with_timeline(timeline.clone()));
    let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
    assert!(
        future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let seen = thread::spawn(move || {
        let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
        match future.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(seen) => seen,
            Poll::Pending => panic!("ready at the second poll"),
        }
    })
    .join()
    .unwrap();
    assert_eq!(seen, [true, true]);
}

#[test]
fn with_timeline_on_a_work_stealing_runtime_gives_each_task_its_own_timeline() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let timelines: Vec<Timeline> = (0..16).map(|_| Timeline::new()).collect();
    runtime.block_on(async {
        let tasks: Vec<_> = timelines
            .iter()
            .enumerate()
            .map(|(task, timeline)| {
                tokio::spawn(
                    async move {
                        for step in 0..10 {
                            let timeline = current().expect("current in every poll");
                            timeline
                                .start("task", format!("{task}:{step}"))
                                .unwrap()
                                .finish();
                            tokio::task::yield_now().await;
                        }
                    }
                    .with_timeline(timeline.clone()),
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    for (task, timeline) in timelines.iter().enumerate() {
        let details = details(timeline);
        let expected: Vec<String> = (0..10).map(|step| format!("{task}:{step}")).collect();
        assert_eq!(details, expected);
    }
}

#[test]
fn with_current_carries_the_timeline_into_spawn_blocking() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let timeline = Timeline::new();
    runtime.block_on(
        async {
            let blocking = timeline_core::with_current(|| {
                let timeline = current().expect("carried into the blocking pool");
                timeline.start("SQL-main", "SELECT 1").unwrap().finish();
                thread::current().id()
            });
            let worker = tokio::task::spawn_blocking(blocking).await.unwrap();
            assert_ne!(worker, thread::current().id());
            tokio::spawn(
                async {
                    current()
                        .expect("carried into the task")
                        .start("HTTP-get", "/")
                        .unwrap()
                        .finish()
                }
                .with_current_timeline(),
            )
            .await
            .unwrap();
        }
        .with_timeline(timeline.clone()),
    );
    let categories: Vec<String> = timeline
        .actions()
        .iter()
        .map(|a| a.category().to_owned())
        .collect();
    assert_eq!(categories, ["SQL-main", "HTTP-get"]);
}

#[test]
fn with_current_without_a_timeline_runs_with_none() {
    let run = timeline_core::with_current(|| current().is_none());
    assert!(thread::spawn(run).join().unwrap());
}
