//! `#[timed]` when its action would overlap an unfinished one: nothing is
//! lost to the rule. The body runs, its action is stored as concurrent, and
//! the timeline notes a `Violation` — or, when built `strict`, the call
//! panics.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};

use timeline_core::{Timeline, WithTimeline, timed};
use timeline_tests::future::{block_on, poll_once, yield_once};

static QUERIES_RUN: AtomicU32 = AtomicU32::new(0);

#[timed(category = "SQL-main", detail = "SELECT * FROM bug WHERE id = {id}")]
fn query(id: u32) -> u32 {
    QUERIES_RUN.fetch_add(1, Ordering::SeqCst);
    id * 2
}

#[test]
fn an_overlapping_call_is_stored_as_concurrent_and_noted_as_a_violation() {
    let timeline = Timeline::new();
    let value = timeline.scope(|| {
        let _open = timeline.start("HTTP-get", "https://example.com").unwrap();
        query(21)
    });
    assert_eq!(value, 42, "the body ran");
    let actions = timeline.actions();
    assert_eq!(actions.len(), 2, "both actions are stored");
    assert_eq!(actions[0].category(), "HTTP-get");
    assert!(!actions[0].is_concurrent());
    assert_eq!(actions[1].detail(), "SELECT * FROM bug WHERE id = 21");
    assert!(actions[1].is_concurrent());
    assert!(actions[1].duration().is_some());

    let violations = timeline.violations();
    assert_eq!(violations.len(), 1);
    let violation = &violations[0];
    assert_eq!(violation.open_category(), "HTTP-get");
    assert_eq!(violation.open_detail(), "https://example.com");
    assert_eq!(violation.attempted_category(), "SQL-main");
    assert_eq!(
        violation.attempted_detail(),
        "SELECT * FROM bug WHERE id = 21"
    );

    // Once the open action finished, calls are sequential again.
    timeline.scope(|| query(1));
    assert_eq!(timeline.len(), 3);
    assert!(!timeline.actions()[2].is_concurrent());
    assert_eq!(timeline.violations().len(), 1);
}

#[timed(category = "SQL-main", detail = "UPDATE bug SET title = {title:?}")]
fn update(title: &str, ran: &Cell<bool>) {
    ran.set(true);
}

#[test]
fn a_strict_timeline_panics_on_overlap_naming_both_actions() {
    let timeline = Timeline::builder().strict(true).build();
    let ran = Cell::new(false);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        timeline.scope(|| {
            let _open = timeline.start("memcache-get", "bug:7").unwrap();
            update("crash", &ran);
        })
    }));
    let payload = caught.expect_err("a strict timeline panics");
    let message = payload
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(message.contains("memcache-get"), "{message}");
    assert!(message.contains("bug:7"), "{message}");
    assert!(message.contains("SQL-main"), "{message}");
    assert!(
        message.contains(r#"UPDATE bug SET title = \"crash\""#),
        "{message}"
    );
    assert!(!ran.get(), "the panic comes before the body");
    assert!(timeline.violations().is_empty());
    // The open action was finished by the unwinding, and the timeline is
    // still usable.
    timeline.scope(|| update("ok", &ran));
    assert!(ran.get());
    assert_eq!(timeline.len(), 2);
}

#[timed(category = "page")]
fn page() -> u32 {
    // Not nesting: the query inside overlaps the page.
    query(1) + query(2)
}

#[test]
fn a_timed_function_calling_another_overlaps_unless_it_is_nested() {
    let timeline = Timeline::new();
    assert_eq!(timeline.scope(page), 6);
    let actions = timeline.actions();
    let shape: Vec<(&str, bool)> = actions
        .iter()
        .map(|a| (a.category(), a.is_concurrent()))
        .collect();
    assert_eq!(
        shape,
        [("page", false), ("SQL-main", true), ("SQL-main", true)]
    );
    assert!(actions.iter().all(|a| a.duration().is_some()));
    let attempted: Vec<String> = timeline
        .violations()
        .iter()
        .map(|violation| violation.attempted_detail().to_owned())
        .collect();
    assert_eq!(
        attempted,
        [
            "SELECT * FROM bug WHERE id = 1",
            "SELECT * FROM bug WHERE id = 2"
        ]
    );
}

#[timed(category = "transaction", nested)]
fn transaction() -> u32 {
    page()
}

#[test]
fn nesting_is_not_transitive() {
    let timeline = Timeline::new();
    assert_eq!(timeline.scope(transaction), 6);
    let categories: Vec<String> = timeline
        .actions()
        .iter()
        .map(|action| action.category().to_owned())
        .collect();
    // The page may run inside the transaction; the queries inside the page
    // overlap it, and run beside it.
    assert_eq!(categories, ["transaction", "page", "SQL-main", "SQL-main"]);
    let concurrent: Vec<bool> = timeline
        .actions()
        .iter()
        .map(|a| a.is_concurrent())
        .collect();
    assert_eq!(concurrent, [false, false, true, true]);
    assert_eq!(timeline.violations().len(), 2);
    assert_eq!(timeline.violations()[0].open_category(), "page");
}

#[test]
fn an_action_open_on_another_thread_blocks_too() {
    let timeline = Timeline::new();
    let open = timeline.start("worker", "batch").unwrap();
    let on_thread = timeline.clone();
    let value = std::thread::spawn(move || on_thread.scope(|| query(5)))
        .join()
        .unwrap();
    assert_eq!(value, 10);
    drop(open);
    assert_eq!(timeline.violations()[0].open_category(), "worker");
}

#[timed(category = "HTTP-get", detail = "{url}")]
async fn fetch(url: &str) -> usize {
    yield_once().await;
    url.len()
}

#[test]
fn an_overlapping_async_call_is_stored_as_concurrent_and_noted() {
    let timeline = Timeline::new();
    let guard = timeline.start("SQL-main", "SELECT 1").unwrap();
    let n = block_on(fetch("/a").with_timeline(timeline.clone()));
    drop(guard);
    assert_eq!(n, 2);
    assert_eq!(timeline.len(), 2);
    assert!(timeline.actions()[1].is_concurrent());
    let violation = &timeline.violations()[0];
    assert_eq!(violation.open_detail(), "SELECT 1");
    assert_eq!(violation.attempted_category(), "HTTP-get");
    assert_eq!(violation.attempted_detail(), "/a");
}

#[test]
fn two_concurrent_futures_on_one_timeline_are_both_timed() {
    let timeline = Timeline::new();
    let (a, b) = block_on(
        async {
            let mut first = Box::pin(fetch("/first"));
            // First poll: `/first` starts and stays open.
            assert!(poll_once(&mut first).is_none());
            let second = fetch("/second").await;
            (first.await, second)
        }
        .with_timeline(timeline.clone()),
    );
    assert_eq!((a, b), (6, 7));
    let actions = timeline.actions();
    let shape: Vec<(&str, bool)> = actions
        .iter()
        .map(|a| (a.detail(), a.is_concurrent()))
        .collect();
    assert_eq!(shape, [("/first", false), ("/second", true)]);
    assert!(actions[1].start() >= actions[0].start());
    assert!(
        actions[1].end() <= actions[0].end(),
        "/second ran inside /first"
    );
    assert_eq!(timeline.violations()[0].attempted_detail(), "/second");
}
