//! User code that the library calls — detail filters, `Display` of
//! `#[timed]` parameters, formatters — never hangs, recurses or crashes it,
//! and nothing from a request reaches a log line or header raw. A deadlock
//! or an abort shows as a failed test: such cases run in a child process
//! under a watchdog.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use timeline_core::{Outcome, Timeline, current, testing, timed};
use timeline_tests::checks::details;
use timeline_tests::process::wait_or_kill;

/// Runs the test `name` of this binary again in a child process with
/// `ISOLATED_CHILD` set, and fails unless it passes within `limit`.
fn run_isolated(name: &str, limit: Duration) {
    // The test's full name in this binary: the module path without the
    // crate, when the file is compiled as a module of another test binary.
    let full_name = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &full_name, "--test-threads=1"])
        .env("ISOLATED_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let Some(status) = wait_or_kill(&mut child, limit, Duration::from_millis(20)) else {
        panic!("{name} hung for {limit:?}: a deadlock");
    };
    assert!(
        status.success(),
        "{name} failed in its child process: {status}"
    );
    let mut output = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut output).unwrap();
    // A filter that matched nothing would pass without running it.
    assert!(
        output.contains("test result: ok. 1 passed"),
        "{full_name} did not run in its child process:\n{output}"
    );
}

fn in_child() -> bool {
    std::env::var_os("ISOLATED_CHILD").is_some()
}

#[timed(category = "cache-get", detail = "key {key}")]
fn cache_get(key: &str) -> usize {
    key.len()
}

#[test]
fn a_detail_filter_that_calls_instrumented_code_does_not_recurse() {
    if !in_child() {
        return run_isolated(
            "a_detail_filter_that_calls_instrumented_code_does_not_recurse",
            Duration::from_secs(60),
        );
    }
    let timeline = Timeline::builder()
        .detail_filter(|detail| {
            // The filter looks something up through timed code, and starts
            // an action of its own on the current timeline.
            cache_get("redactions");
            if let Some(timeline) = current() {
                timeline.record("filter", "lookup", Instant::now(), Duration::ZERO);
            }
            detail.replace("hunter2", "?")
        })
        .build();
    timeline.scope(|| {
        let guard = timeline.start("SQL-main", "SELECT 'hunter2'").unwrap();
        drop(guard);
    });
    let details = details(&timeline);
    assert!(details.contains(&"SELECT '?'".to_owned()), "{details:?}");
    assert!(details.iter().any(|d| d == "key redactions"), "{details:?}");
}

#[test]
fn debug_of_a_timeline_writing_to_code_that_records_does_not_hang() {
    if !in_child() {
        return run_isolated(
            "debug_of_a_timeline_writing_to_code_that_records_does_not_hang",
            Duration::from_secs(60),
        );
    }
    struct Recording<'a>(&'a Timeline);
    impl fmt::Write for Recording<'_> {
        fn write_str(&mut self, _: &str) -> fmt::Result {
            self.0
                .record("log-write", "", Instant::now(), Duration::ZERO);
            Ok(())
        }
    }
    let timeline = Timeline::new();
    fmt::write(&mut Recording(&timeline), format_args!("{timeline:?}")).unwrap();
    assert!(!timeline.is_empty());
}

struct Hostile {
    panics: bool,
}

impl fmt::Display for Hostile {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.panics {
            panic!("Display of a parameter panicked");
        }
        Err(fmt::Error)
    }
}

#[timed(
    category = "SQL-main",
    detail = "SELECT * FROM bug WHERE owner = {owner}"
)]
fn bugs_of(owner: &Hostile) -> u32 {
    let _ = owner;
    7
}

#[test]
fn a_parameter_whose_display_panics_or_fails_does_not_break_the_call() {
    let timeline = Timeline::new();
    for panics in [true, false] {
        let owner = Hostile { panics };
        let result = panic::catch_unwind(AssertUnwindSafe(|| timeline.scope(|| bugs_of(&owner))));
        assert_eq!(result.ok(), Some(7), "the call goes on (panics: {panics})");
    }
    let actions = timeline.actions();
    assert_eq!(actions.len(), 2);
    for action in &actions {
        assert!(action.detail().contains("Display"), "{:?}", action.detail());
        assert_eq!(action.outcome(), &Outcome::Ok);
    }
}

#[test]
fn an_action_started_while_unwinding_did_not_panic() {
    struct RollbackOnDrop(Timeline);
    impl Drop for RollbackOnDrop {
        fn drop(&mut self) {
            self.0.start("SQL-main", "ROLLBACK").unwrap().finish();
        }
    }
    let timeline = Timeline::new();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let _query = timeline.start_nested("SQL-main", "transaction").unwrap();
        let _rollback = RollbackOnDrop(timeline.clone());
        panic!("handler failed");
    }));
    assert!(result.is_err());
    let outcomes: Vec<(String, Outcome)> = timeline
        .actions()
        .iter()
        .map(|a| (a.detail().to_owned(), a.outcome().clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("transaction".to_owned(), Outcome::Panicked),
            ("ROLLBACK".to_owned(), Outcome::Ok)
        ]
    );
}

#[test]
fn a_report_taken_while_another_thread_records_is_one_snapshot() {
    let timeline = Timeline::builder().max_actions(5_000).build();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let timeline = timeline.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                timeline.start("SQL-main", "SELECT 1").unwrap().finish();
            }
        })
    };
    for _ in 0..200 {
        let report = timeline.report();
        let tuples = report.log_tuples().len() as u64;
        assert_eq!(report.summary().action_count(), tuples + report.dropped());
        assert_eq!(report.summary().dropped(), report.dropped());
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn instants_centuries_away_give_sane_actions() {
    let timeline = Timeline::new();
    let now = Instant::now();
    let centuries = Duration::from_secs(300 * 365 * 24 * 3600);
    let past = now.checked_sub(centuries).unwrap_or(now);
    let future = now.checked_add(centuries).unwrap_or(now);
    // Past the 584 years nanoseconds count up to in a `u64`.
    let beyond = now.checked_add(centuries * 3).unwrap_or(now);
    timeline.record("far", "past", past, Duration::from_millis(1));
    timeline.record("far", "future", future, Duration::from_millis(1));
    timeline.record("far", "forever", now, Duration::MAX);
    timeline.record("far", "beyond", beyond, Duration::from_millis(1));
    let actions = timeline.actions();
    for action in &actions {
        assert!(action.end() >= action.start(), "{action:?}");
    }
    let took = |detail: &str| {
        actions
            .iter()
            .find(|a| a.detail() == detail)
            .and_then(|a| a.duration())
    };
    assert_eq!(took("past"), Some(Duration::from_millis(1)));
    assert_eq!(took("future"), Some(Duration::from_millis(1)));
    assert!(took("forever").is_some());
    assert!(
        took("beyond").is_some(),
        "finished, though its time saturated"
    );
    let _ = timeline.report().to_json();
    let _ = timeline.waterfall(80);
    assert_eq!(timeline.log_tuples().len(), 4);
}

#[test]
fn hostile_categories_reach_no_line_raw_and_widen_nothing() {
    let timeline = Timeline::new();
    let huge = "x".repeat(70_000);
    for category in [
        "SQL\nFAKE LOG LINE".to_owned(),
        "\u{1b}[31mred\u{1b}[0m".to_owned(),
        huge.clone(),
    ] {
        timeline.record(
            category,
            "SELECT 1",
            Instant::now(),
            Duration::from_micros(10),
        );
    }
    let breakdown = format!("{:#}", timeline.summary());
    let waterfall = timeline.waterfall(40);
    let message = panic::catch_unwind(|| testing::assert_max_actions(&timeline, "", 0))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    for text in [&breakdown, &waterfall, &*message] {
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(!text.contains("\nFAKE"), "{text}");
        assert!(
            text.lines().all(|line| line.chars().count() < 600),
            "{text}"
        );
    }
    assert!(breakdown.len() < 4_000, "{}", breakdown.len());
    assert!(huge.len() > 60_000);
}

#[test]
fn the_server_timing_header_is_bounded_and_its_names_unique() {
    let timeline = Timeline::new();
    for n in 0..1_000 {
        let category = format!("{}-category-{n}", "very-long-name".repeat(10));
        timeline.record(category, "", Instant::now(), Duration::from_micros(n));
    }
    timeline.record("SQL main", "", Instant::now(), Duration::from_secs(2));
    timeline.record("SQL_main", "", Instant::now(), Duration::from_secs(1));
    let header = timeline.server_timing();
    assert!(header.len() < 2_048, "{} bytes", header.len());
    let names: Vec<&str> = header
        .split(", ")
        .map(|metric| metric.split(';').next().unwrap())
        .collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert_eq!(&names[..2], ["SQL_main", "SQL_main-2"]);
    assert!(names.iter().any(|n| n.starts_with("other")), "{names:?}");
    assert_eq!(names.last(), Some(&"total"));
    assert!(header.parse::<http::HeaderValue>().is_ok());
}

#[test]
fn to_json_and_serde_agree_on_every_value() {
    let timeline = Timeline::new();
    // Two of them: their total is beyond what nanoseconds in a u64 hold.
    timeline.record("far", "forever", Instant::now(), Duration::MAX);
    timeline.record("far", "forever", Instant::now(), Duration::MAX);
    timeline.record(
        "quote\"back\\slash\u{1}\u{7f}",
        "tab\there \u{2028} \u{1b}[0m é 😀",
        Instant::now(),
        Duration::from_nanos(1_234_567),
    );
    let report = timeline.report();
    let by_hand: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let by_serde = serde_json::to_value(&report).unwrap();
    assert_eq!(by_hand, by_serde);
}

#[test]
fn a_panic_in_a_services_call_itself_is_reported() {
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use timeline_core::integrations::tower::{RequestEnd, RequestTimelineLayer};
    use tower::{Layer, Service};

    /// Panics in `call`, before any future exists.
    struct PanicsInCall;

    impl Service<http::Request<()>> for PanicsInCall {
        type Response = http::Response<()>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            current()
                .unwrap()
                .start("SQL-main", "SELECT 1 -- in call")
                .unwrap()
                .finish();
            panic!("bug in call");
        }
    }

    let seen: Arc<Mutex<Vec<(RequestEnd, usize)>>> = Arc::default();
    let oopses: Arc<Mutex<usize>> = Arc::default();
    let layer = {
        let seen = seen.clone();
        let oopses = oopses.clone();
        RequestTimelineLayer::new()
            .on_request(move |request| {
                seen.lock()
                    .unwrap()
                    .push((request.end().clone(), request.timeline().len()));
            })
            .on_oops(move |_, _| *oopses.lock().unwrap() += 1)
    };
    let mut service = layer.layer(PanicsInCall);
    let request = http::Request::get("/boom").body(()).unwrap();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| drop(service.call(request))));
    assert!(caught.is_err(), "the panic goes on to the server");
    assert_eq!(*seen.lock().unwrap(), [(RequestEnd::Panicked, 1)]);
    assert_eq!(*oopses.lock().unwrap(), 1);
}

#[test]
fn overlap_errors_and_test_failures_stay_on_one_bounded_line() {
    let timeline = Timeline::new();
    let _open = timeline
        .start("SQL\r\n\u{1b}[2J", "x".repeat(10_000))
        .unwrap();
    let error = timeline.start("cache-get", "").unwrap_err().to_string();
    assert!(!error.chars().any(char::is_control), "{error:?}");
    assert!(error.len() < 600, "{} bytes", error.len());

    let repeated = Timeline::new();
    for _ in 0..2 {
        repeated
            .start("SQL-main", "y".repeat(3_000))
            .unwrap()
            .finish();
    }
    let message = panic::catch_unwind(|| testing::assert_max_repeats(&repeated, 1))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert!(message.lines().all(|line| line.len() < 600), "{message}");
}
