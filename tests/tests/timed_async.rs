//! `#[timed]` on `async fn`: the action starts at the first poll, on the
//! timeline current then, and finishes when the future completes — or, for a
//! future dropped before that, as `Cancelled`.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::time::Duration;

use timeline_core::{Outcome, Timeline, WithTimeline, current, timed};
use timeline_tests::checks::{Counted, assert_send, details};
use timeline_tests::future::{block_on, poll_once, yield_once};

#[timed(category = "HTTP-get", detail = "{url}")]
async fn fetch(url: &str) -> usize {
    yield_once().await;
    url.len()
}

#[test]
fn the_action_starts_at_the_first_poll_on_the_timeline_current_then() {
    let created_under = Timeline::new();
    let polled_under = Timeline::new();
    let future = created_under.scope(|| fetch("https://example.com"));
    assert_eq!(block_on(future.with_timeline(polled_under.clone())), 19);
    assert!(created_under.is_empty());
    let action = &polled_under.actions()[0];
    assert_eq!(action.category(), "HTTP-get");
    assert_eq!(action.detail(), "https://example.com");
    assert_eq!(action.outcome(), &Outcome::Ok);
}

#[test]
fn the_action_finishes_when_the_future_completes() {
    let timeline = Timeline::new();
    let mut future = Box::pin(fetch("/a").with_timeline(timeline.clone()));
    assert_eq!(poll_once(&mut future), None);
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline.actions()[0].duration(), None, "still running");
    assert_eq!(poll_once(&mut future), Some(2));
    assert!(timeline.actions()[0].duration().is_some());
    assert_eq!(timeline.actions()[0].outcome(), &Outcome::Ok);
}

#[test]
fn a_future_dropped_before_completing_is_cancelled() {
    let timeline = Timeline::new();
    let mut future = Box::pin(fetch("/slow").with_timeline(timeline.clone()));
    assert_eq!(poll_once(&mut future), None);
    drop(future);
    let action = &timeline.actions()[0];
    assert_eq!(action.outcome(), &Outcome::Cancelled);
    assert!(action.duration().is_some());
    // Finished: the next action may start.
    assert!(timeline.start("after", "").is_ok());
}

#[test]
fn a_future_never_polled_records_nothing() {
    let timeline = Timeline::new();
    drop(fetch("/never").with_timeline(timeline.clone()));
    assert!(timeline.is_empty());
}

#[timed]
async fn early_exit(n: u32) -> Result<u32, std::num::TryFromIntError> {
    yield_once().await;
    if n == 0 {
        return Ok(0);
    }
    let small: u8 = n.try_into()?;
    Ok(u32::from(small) * 2)
}

#[test]
fn return_and_question_mark_complete_the_action_they_do_not_cancel_it() {
    let timeline = Timeline::new();
    let results = block_on(
        async {
            (
                early_exit(0).await,
                early_exit(300).await,
                early_exit(4).await,
            )
        }
        .with_timeline(timeline.clone()),
    );
    assert_eq!(results.0, Ok(0));
    assert!(results.1.is_err());
    assert_eq!(results.2, Ok(8));
    let actions = timeline.actions();
    assert_eq!(actions.len(), 3);
    assert!(
        actions
            .iter()
            .all(|action| action.outcome() == &Outcome::Ok)
    );
}

#[timed(category = "panics")]
async fn explode_after_a_yield() {
    yield_once().await;
    panic!("boom");
}

#[test]
fn a_panic_while_polled_is_panicked() {
    let timeline = Timeline::new();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(explode_after_a_yield().with_timeline(timeline.clone()))
    }));
    assert!(caught.is_err());
    assert_eq!(timeline.actions()[0].outcome(), &Outcome::Panicked);
}

#[timed(detail = "{value}")]
async fn show(value: &Counted) -> u32 {
    yield_once().await;
    42
}

#[test]
fn without_a_timeline_the_body_runs_and_the_detail_is_not_formatted() {
    let counted = Counted::default();
    assert_eq!(block_on(show(&counted)), 42);
    assert_eq!(counted.formatted.get(), 0);

    let timeline = Timeline::new();
    let future = show(&counted);
    assert_eq!(
        counted.formatted.get(),
        0,
        "formatted before the first poll"
    );
    assert_eq!(block_on(future.with_timeline(timeline.clone())), 42);
    assert_eq!(
        counted.formatted.get(),
        1,
        "formatted once, at the first poll"
    );
    assert_eq!(timeline.actions()[0].detail(), "value");
}

#[timed(category = "SQL-transaction", nested)]
async fn transaction(statements: &[&'static str]) -> usize {
    for statement in statements {
        execute(statement).await;
    }
    statements.len()
}

#[timed(category = "SQL-main", detail = "{statement}")]
async fn execute(statement: &str) {
    yield_once().await;
}

#[test]
fn nested_async_actions_contain_their_children() {
    let timeline = Timeline::new();
    let statements = ["INSERT 1", "INSERT 2"];
    assert_eq!(
        block_on(transaction(&statements).with_timeline(timeline.clone())),
        2
    );
    assert!(timeline.violations().is_empty());
    let details: Vec<String> = timeline
        .actions()
        .iter()
        .map(|action| format!("{} {}", action.category(), action.detail()))
        .collect();
    assert_eq!(
        details,
        ["SQL-transaction ", "SQL-main INSERT 1", "SQL-main INSERT 2"]
    );
}

#[test]
fn futures_of_send_bodies_stay_send() {
    assert_send(&fetch("/"));
    assert_send(&early_exit(1));
    assert_send(&transaction(&[]));
    assert_send(&Repository.find(1));
    assert_send(&Repository.count());
}

#[timed(category = "tokio", detail = "{n}")]
async fn hop(n: u32) -> u32 {
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    n * 10
}

#[test]
fn on_a_multi_thread_runtime_each_task_records_onto_its_own_timeline() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let timelines: Vec<Timeline> = (0..8).map(|_| Timeline::new()).collect();
    runtime.block_on(async {
        let tasks: Vec<_> = timelines
            .iter()
            .enumerate()
            .map(|(i, timeline)| {
                let i = u32::try_from(i).unwrap();
                tokio::spawn(
                    async move { hop(i).await + hop(i + 100).await }
                        .with_timeline(timeline.clone()),
                )
            })
            .collect();
        for (i, task) in (0u32..).zip(tasks) {
            assert_eq!(task.await.unwrap(), i * 10 + (i + 100) * 10);
        }
    });
    for (i, timeline) in timelines.iter().enumerate() {
        assert_eq!(details(timeline), [i.to_string(), (i + 100).to_string()]);
        assert!(
            timeline
                .actions()
                .iter()
                .all(|action| action.outcome() == &Outcome::Ok
                    && action.duration().unwrap() >= Duration::from_millis(1))
        );
    }
}

#[tokio::test]
#[timed(category = "tokio-test", err)]
async fn tokio_test_outside_timed() -> Result<(), String> {
    // The test body runs, with `#[timed]` inside `#[tokio::test]`.
    assert!(current().is_none());
    let timeline = Timeline::new();
    let n = hop(1).with_timeline(timeline.clone()).await;
    assert_eq!((n, timeline.len()), (10, 1));
    Ok(())
}

#[timed(category = "tokio-test")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_outside_tokio_test() {
    let timeline = Timeline::new();
    let n = tokio::spawn(hop(2).with_timeline(timeline.clone()))
        .await
        .unwrap();
    assert_eq!((n, timeline.len()), (20, 1));
}

trait Users {
    async fn find(&self, id: u32) -> Option<String>;

    #[timed(category = "SQL-main", detail = "SELECT count(*)")]
    async fn count(&self) -> usize {
        yield_once().await;
        self.find(0).await.map_or(0, |_| 1)
    }
}

struct Repository;

impl Users for Repository {
    #[timed(category = "cache-get", detail = "user:{id}")]
    async fn find(&self, id: u32) -> Option<String> {
        yield_once().await;
        (id > 0).then(|| format!("user {id}"))
    }
}

#[test]
fn async_fn_in_traits_and_their_impls() {
    let timeline = Timeline::new();
    let (found, count) = block_on(
        async { (Repository.find(7).await, Repository.count().await) }
            .with_timeline(timeline.clone()),
    );
    assert_eq!(found.as_deref(), Some("user 7"));
    assert_eq!(count, 0);
    let actions = timeline.actions();
    assert_eq!(actions[0].detail(), "user:7");
    assert_eq!(actions[1].detail(), "SELECT count(*)");
    // `find` inside `count` overlapped it: stored beside it, and noted.
    assert_eq!(actions.len(), 3);
    assert_eq!(actions[2].detail(), "user:0");
    assert!(actions[2].is_concurrent());
    assert_eq!(timeline.violations()[0].attempted_detail(), "user:0");
}

#[test]
fn an_async_block_completes_on_its_first_poll_when_nothing_is_pending() {
    #[timed(category = "ready")]
    async fn ready() -> &'static str {
        "done"
    }
    let timeline = Timeline::new();
    let mut future = pin!(ready().with_timeline(timeline.clone()));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_ready());
    assert_eq!(timeline.actions()[0].outcome(), &Outcome::Ok);
}

#[timed(category = "opaque")]
async fn opaque(n: u32) -> impl std::fmt::Display {
    yield_once().await;
    n
}

#[timed(category = "borrowed", detail = "{prefix}")]
async fn first_with<'a>(items: &'a [String], prefix: &str) -> Option<&'a str> {
    yield_once().await;
    items
        .iter()
        .find(|item| item.starts_with(prefix))
        .map(String::as_str)
}

#[test]
fn impl_trait_and_borrowed_returns_work() {
    let timeline = Timeline::new();
    let items = vec!["apple".to_owned(), "banana".to_owned()];
    let (shown, found) = block_on(
        async { (opaque(3).await.to_string(), first_with(&items, "ba").await) }
            .with_timeline(timeline.clone()),
    );
    assert_eq!((shown.as_str(), found), ("3", Some("banana")));
    let categories: Vec<String> = timeline
        .actions()
        .iter()
        .map(|action| action.category().to_owned())
        .collect();
    assert_eq!(categories, ["opaque", "borrowed"]);
}
