//! The N+1 tools as a developer uses them: call sites, conditional
//! backtraces, async and served-app tests, and scaling assertions, on the
//! example bug tracker's real SQLite database and axum app.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use futures_util::FutureExt;
use http::{Request, StatusCode};
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::{Timeline, testing, timed};
use timeline_examples::{bugs, web};
use timeline_tests::bugs::database;
use timeline_tests::checks::panic_message;
use tower::ServiceExt;

#[timed(category = "SQL-main", detail = "SELECT {id}")]
fn timed_query(id: u32) -> u32 {
    id
}

#[test]
fn every_action_knows_its_call_site() {
    let timeline = Timeline::new();
    let line = line!() + 1;
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    timeline.start_nested("SQL-main", "BEGIN").unwrap().finish();
    timeline.record(
        "SQL-main",
        "SELECT 2",
        Instant::now(),
        Duration::from_micros(5),
    );
    timeline.scope(|| timed_query(3));

    let actions = timeline.actions();
    let sites: Vec<(String, u32)> = actions
        .iter()
        .map(|a| {
            let site = a.call_site().expect("known without backtraces");
            (site.file().to_owned(), site.line())
        })
        .collect();
    let here = file!().to_owned();
    assert_eq!(
        sites[..3],
        [
            (here.clone(), line),
            (here.clone(), line + 1),
            (here.clone(), line + 2)
        ]
    );
    // `#[timed]`: the attribute on the function.
    let timed_line = sites[3].1;
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/n_plus_one_tools.rs"
    ))
    .unwrap();
    let attribute = source.lines().nth(timed_line as usize - 1).unwrap();
    assert!(attribute.starts_with("#[timed("), "{attribute}");
    assert!(actions.iter().all(|a| a.backtrace().is_none()));

    // In the Chrome trace and the breakdown too.
    let trace: serde_json::Value = serde_json::from_str(&timeline.to_chrome_trace()).unwrap();
    let first = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ph"] == "X")
        .unwrap();
    assert_eq!(
        first["args"]["call_site"].as_str().unwrap(),
        format!("{here}:{line}:14")
    );
    assert!(format!("{:#}", timeline.summary()).contains(&format!("(at {here}:")));
}

#[timed(category = "SQL-main", detail = "SELECT {n:?}")]
fn unwraps(n: Option<u32>) -> u32 {
    n.unwrap() // the panic's location is this line, not the caller's
}

#[test]
fn a_panic_inside_a_timed_function_keeps_its_own_location() {
    let seen = std::sync::Arc::new(Mutex::new(None));
    let hook_seen = seen.clone();
    let test_thread = std::thread::current().id();
    let previous = panic::take_hook();
    // Other tests of this binary panic on purpose, on their own threads.
    panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == test_thread {
            *hook_seen.lock().unwrap() = info.location().map(|l| (l.file().to_owned(), l.line()));
        }
    }));
    let timeline = Timeline::new();
    let result = panic::catch_unwind(|| timeline.scope(|| unwraps(None)));
    panic::set_hook(previous);
    assert!(result.is_err());
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/n_plus_one_tools.rs"
    ))
    .unwrap();
    let (file, line) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(file, file!());
    assert!(
        source
            .lines()
            .nth(line as usize - 1)
            .unwrap()
            .contains("n.unwrap()"),
        "line {line}"
    );
}

#[test]
fn backtraces_only_where_the_predicate_says_and_only_the_applications_frames() {
    let seen = Mutex::new(std::collections::HashSet::new());
    let timeline = Timeline::builder()
        .detail_filter(|detail| detail.replace("secret", "?"))
        .capture_backtraces_if(move |category, detail| {
            assert!(
                !detail.contains("secret"),
                "the predicate sees the filtered detail"
            );
            category == "SQL-main" && !seen.lock().unwrap().insert(detail.to_owned())
        })
        .build();
    timeline.scope(|| {
        for _ in 0..3 {
            timed_query(7);
        }
        timeline.start("cache-get", "secret").unwrap().finish();
    });
    let actions = timeline.actions();
    let traced: Vec<bool> = actions.iter().map(|a| a.backtrace().is_some()).collect();
    assert_eq!(traced, [false, true, true, false]);
    let backtrace = actions[1].backtrace().unwrap();
    assert!(backtrace.contains("n_plus_one_tools::"), "{backtrace}");
    for not_ours in [
        ": std::",
        ": core::",
        ": timeline_core::",
        "start_thread",
        ": clone",
    ] {
        assert!(!backtrace.contains(not_ours), "{not_ours} in\n{backtrace}");
    }
}

#[test]
fn a_backtrace_predicate_that_panics_or_records_breaks_nothing() {
    let timeline = Timeline::builder()
        .capture_backtraces_if(|_, detail| {
            if detail == "boom" {
                panic!("predicate bug");
            }
            // Instrumented code inside the predicate: its own action gets no
            // predicate run (no recursion), and is stored.
            timed_query(99);
            true
        })
        .build();
    timeline.scope(|| {
        timeline.start("SQL-main", "boom").unwrap().finish();
        timeline.start("SQL-main", "fine").unwrap().finish();
    });
    let actions = timeline.actions();
    let details: Vec<&str> = actions.iter().map(|a| a.detail()).collect();
    assert_eq!(details, ["boom", "SELECT 99", "fine"]);
    assert!(
        actions[0].backtrace().is_none(),
        "a panicking predicate: none"
    );
    assert!(actions[1].backtrace().is_none(), "started inside it: none");
    assert!(actions[2].backtrace().is_some());
}

#[timed(category = "SQL-main", detail = "SELECT * FROM bug WHERE id = {id}")]
async fn load_bug_async(id: u32) -> u32 {
    tokio::task::yield_now().await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_async_follows_the_future_across_awaits_and_threads() {
    let (sum, timeline) = testing::run_async(async {
        let mut sum = 0;
        for id in 1..=5 {
            sum += load_bug_async(id).await;
        }
        sum
    })
    .await;
    assert_eq!(sum, 15);
    assert_eq!(timeline.len(), 5);
    let message = panic_message(|| testing::assert_max_repeats(&timeline, 2));
    assert!(message.contains("was issued 5 times"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_built_in_sync_record_and_awaited_outside_fails_loudly() {
    let (future, timeline) = testing::run(|| load_bug_async(1));
    assert_eq!(future.await, 1);
    let message = panic_message(|| testing::assert_max_actions(&timeline, "SQL", 5));
    assert!(message.contains("recorded no action at all"), "{message}");
    assert!(message.contains("run_async"), "{message}");
    let message = panic_message(|| testing::assert_max_repeats(&timeline, 1));
    assert!(message.contains("recorded no action at all"), "{message}");
    // A bound of zero is a claim about nothing recorded: it holds.
    testing::assert_max_actions(&timeline, "SQL", 0);
}

fn get(uri: &str) -> Request<Body> {
    Request::builder().uri(uri).body(Body::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_app_records_onto_the_tests_timeline() {
    let path = database("n-plus-one", "served");
    let app = web::router(path.clone(), std::env::temp_dir())
        .layer(RequestTimelineLayer::new().server_timing(true));

    let (response, timeline) =
        testing::run_async(app.clone().oneshot(get("/products/1/naive"))).await;
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("server-timing"));
    let bugs_listed = 20;
    testing::assert_max_actions(&timeline, "SQL-connect", 1);
    let message = panic_message(|| testing::assert_max_repeats(&timeline, 1));
    assert!(
        message.contains(&format!("was issued {bugs_listed} times")),
        "{message}"
    );
    assert!(message.contains("(at examples/bugs.rs:"), "{message}");
    assert!(message.contains("product_page_n_plus_one"), "{message}");

    let (response, timeline) = testing::run_async(app.oneshot(get("/products/1"))).await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    testing::assert_max_actions(&timeline, "SQL-main", 1);
    testing::assert_max_repeats(&timeline, 1);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_scaling_check_catches_the_n_plus_one_page_and_passes_the_fixed_one() {
    let path = database("n-plus-one", "scaling");
    let setup = |size| bugs::add_product(&path, size).unwrap();

    let message = panic_message(|| {
        testing::scaling("SQL").check(setup, |product| {
            let conn = bugs::connect(&path).unwrap();
            bugs::product_page_n_plus_one(&conn, product).unwrap();
        });
    });
    // Runs side by side, then the statement that grew, with its call site.
    assert!(
        message.starts_with("the number of SQL… actions grows with the data"),
        "{message}"
    );
    // `bugs::connect` is connection set-up (`SQL-connect`): not counted.
    let counts: Vec<&str> = message.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(counts, ["actions", "3", "6"], "{message}");
    let grown = message
        .lines()
        .find(|l| l.contains("FROM person WHERE id = ?"))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(grown.trim_start().starts_with("2 → 5"), "{grown}");
    assert!(grown.contains("(at examples/bugs.rs:"), "{grown}");
    assert!(
        !message.contains("FROM bug WHERE product"),
        "did not grow:\n{message}"
    );

    let runs = testing::scaling("SQL")
        .sizes([1, 4, 16])
        .check(setup, |product| {
            let conn = bugs::connect(&path).unwrap();
            bugs::product_page(&conn, product).unwrap();
        });
    let counts: Vec<usize> = runs.iter().map(Timeline::len).collect();
    assert_eq!(counts, [2, 2, 2]);

    // The known N+1 tolerated, one query per bug; not a second one.
    testing::scaling("SQL")
        .allow_per_item(1)
        .check(setup, |product| {
            let conn = bugs::connect(&path).unwrap();
            bugs::product_page_n_plus_one(&conn, product).unwrap();
        });
    let message = panic_message(|| {
        testing::scaling("SQL")
            .allow_per_item(1)
            .check(setup, |product| {
                let conn = bugs::connect(&path).unwrap();
                bugs::product_page_n_plus_one(&conn, product).unwrap();
                bugs::product_page_n_plus_one(&conn, product).unwrap();
            });
    });
    assert!(message.contains("allowed: 1 more per item"), "{message}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_scaling_check_that_records_nothing_or_is_misused_fails_loudly() {
    let message = panic_message(|| {
        testing::scaling("SQL").check(|size| size, |_| {});
    });
    assert!(message.contains("recorded none at any size"), "{message}");
    let message = panic_message(|| {
        testing::scaling("SQL")
            .sizes([5, 2])
            .check(|size| size, |_| {});
    });
    assert!(message.contains("strictly increasing"), "{message}");
}

#[test]
fn the_warm_up_run_keeps_a_one_off_cost_from_hiding_growth() {
    // The first run fills a cache; later runs read it.
    let filled = AtomicUsize::new(0);
    let scenario = |size: usize| {
        let timeline = timeline_core::current().unwrap();
        if filled.fetch_add(1, Ordering::Relaxed) == 0 {
            timeline
                .start("SQL-main", "SELECT * FROM settings")
                .unwrap()
                .finish();
        }
        for id in 0..size {
            timeline
                .start("SQL-main", format!("SELECT {id}"))
                .unwrap()
                .finish();
        }
    };
    let sizes = [1, 2];
    // Without the warm-up, 2 (settings + 1) against 2: the growth is hidden.
    filled.store(0, Ordering::Relaxed);
    testing::scaling("SQL")
        .sizes(sizes)
        .warm_up(false)
        .check(|size| size, scenario);
    filled.store(0, Ordering::Relaxed);
    let message = panic_message(|| {
        testing::scaling("SQL")
            .sizes(sizes)
            .check(|size| size, scenario);
    });
    assert!(message.contains("1 → 2"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaling_check_of_the_served_app() {
    let path = database("n-plus-one", "scaling-served");
    let app = web::router(path.clone(), std::env::temp_dir()).layer(RequestTimelineLayer::new());
    let setup = |size| {
        let path = path.clone();
        async move { bugs::add_product(&path, size).unwrap() }
    };
    let runs = testing::scaling("SQL")
        .check_async(setup, |product| {
            let app = app.clone();
            async move {
                let response = app
                    .oneshot(get(&format!("/products/{product}")))
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        })
        .await;
    assert!(runs.iter().all(|run| run.len() == 2));

    let failed = AssertUnwindSafe(testing::scaling("SQL").check_async(setup, |product| {
        let app = app.clone();
        async move {
            app.oneshot(get(&format!("/products/{product}/naive")))
                .await
                .unwrap();
        }
    }))
    .catch_unwind()
    .await
    .expect_err("the N+1 page grows");
    let message = failed.downcast_ref::<String>().unwrap();
    assert!(message.contains("grows with the data"), "{message}");
    assert!(message.contains("scaling check at"), "{message}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn failure_messages_stay_short_however_many_statements() {
    let timeline = Timeline::builder().capture_backtraces(true).build();
    timeline.scope(|| {
        for n in 0..2_000 {
            // 40 distinct statements, each 50 times, from one call site.
            timeline
                .start(
                    "SQL-main",
                    format!("SELECT * FROM t{} WHERE id = {n}", n % 40),
                )
                .unwrap()
                .finish();
        }
    });
    let message = panic_message(|| testing::assert_max_actions(&timeline, "SQL", 10));
    assert!(
        message.lines().count() < 200,
        "{} lines",
        message.lines().count()
    );
    assert!(
        message.contains("… and 28 more statements (1400 actions)"),
        "{message}"
    );
    assert!(
        message.contains("backtrace of 50:"),
        "identical traces grouped"
    );
}
