//! Nothing is lost to the overlap rule: actions from `#[timed]` and `record`
//! that overlap an unfinished one are stored as concurrent, counted, drawn
//! on lanes of their own and noted as violations, while an explicit `start`
//! is still refused.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use timeline_core::{Timeline, WithTimeline, timed};

/// A real SQLite database shared by the queries of one test.
#[derive(Clone)]
struct SharedConnection(Arc<Mutex<rusqlite::Connection>>);

impl SharedConnection {
    fn with_bugs(count: i64) -> Self {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE bug (id INTEGER PRIMARY KEY, title TEXT NOT NULL)")
            .unwrap();
        for id in 1..=count {
            connection
                .execute("INSERT INTO bug VALUES (?1, ?2)", (id, format!("bug {id}")))
                .unwrap();
        }
        SharedConnection(Arc::new(Mutex::new(connection)))
    }
}

#[timed(
    category = "SQL-main",
    detail = "SELECT title FROM bug WHERE id = {id}"
)]
async fn load_title(db: SharedConnection, id: i64) -> String {
    // A real round trip: the statement runs on a blocking thread while the
    // other futures of the join are polled.
    tokio::time::sleep(Duration::from_millis(2)).await;
    tokio::task::spawn_blocking(move || {
        let connection = db.0.lock().unwrap();
        connection
            .query_row("SELECT title FROM bug WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_all_of_ten_timed_queries_keeps_ten_actions() {
    let db = SharedConnection::with_bugs(10);
    let timeline = Timeline::new();
    let titles = join_all((1..=10).map(|id| load_title(db.clone(), id)))
        .with_timeline(timeline.clone())
        .await;
    assert_eq!(titles.len(), 10);
    assert_eq!(titles[9], "bug 10");

    let actions = timeline.actions();
    assert_eq!(actions.len(), 10, "{actions:#?}");
    let mut details: Vec<&str> = actions.iter().map(|a| a.detail()).collect();
    details.sort_unstable();
    let mut expected: Vec<String> = (1..=10)
        .map(|id| format!("SELECT title FROM bug WHERE id = {id}"))
        .collect();
    expected.sort_unstable();
    assert_eq!(details, expected);
    assert!(actions.iter().all(|a| a.duration().is_some()));
    // All ten are polled before the first finishes: one sequence, nine
    // beside it.
    let concurrent = actions.iter().filter(|a| a.is_concurrent()).count();
    assert_eq!(concurrent, 9);
    assert_eq!(timeline.violations().len(), 9);

    let summary = timeline.summary();
    assert_eq!(summary.action_count(), 10);
    assert_eq!(summary.concurrent_count(), 9);
    assert!(
        summary.to_string().ends_with("seconds (9 concurrent)"),
        "{summary}"
    );
    // The N+1 the library exists to show is there.
    let repeated = &summary.repeated_statements()[0];
    assert_eq!(repeated.count(), 10);
    assert_eq!(repeated.statement(), "SELECT title FROM bug WHERE id = ?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_actions_get_lanes_in_the_waterfall_and_the_trace() {
    let db = SharedConnection::with_bugs(3);
    let timeline = Timeline::new();
    join_all((1..=3).map(|id| load_title(db.clone(), id)))
        .with_timeline(timeline.clone())
        .await;

    let waterfall = timeline.waterfall(40);
    let header = waterfall.lines().next().unwrap();
    assert!(header.contains("lane"), "{waterfall}");
    let lanes: Vec<&str> = waterfall
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(lanes, ["0", "1", "2"], "{waterfall}");

    let trace: serde_json::Value = serde_json::from_str(&timeline.to_chrome_trace()).unwrap();
    let mut tids: Vec<u64> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["ph"] == "X")
        .map(|event| event["tid"].as_u64().unwrap())
        .collect();
    tids.sort_unstable();
    assert_eq!(tids, [1, 2, 3]);
    let lane_names: Vec<&str> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["name"] == "thread_name")
        .map(|event| event["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(lane_names, ["sequence", "concurrent 1", "concurrent 2"]);
}

#[test]
fn an_explicit_start_is_still_refused() {
    let timeline = Timeline::new();
    let _open = timeline.start("HTTP-get", "/bugs").unwrap();
    let refused = timeline.start("SQL-main", "SELECT 1").unwrap_err();
    assert_eq!(refused.open_detail(), "/bugs");
    assert_eq!(timeline.len(), 1, "a refused start stores nothing");
    assert!(timeline.violations().is_empty());
}

#[test]
fn a_recorded_interval_over_a_running_action_is_concurrent() {
    let timeline = Timeline::new();
    let open = timeline.start("HTTP-get", "/bugs").unwrap();
    timeline.record(
        "SQL-main",
        "SELECT 1",
        Instant::now(),
        Duration::from_micros(100),
    );
    drop(open);
    let actions = timeline.actions();
    assert!(actions[1].is_concurrent());
    let violation = &timeline.violations()[0];
    assert_eq!(
        (violation.open_detail(), violation.attempted_detail()),
        ("/bugs", "SELECT 1")
    );
}

#[test]
fn back_to_back_records_stay_in_the_sequence_and_overlapping_ones_do_not() {
    let timeline = Timeline::new();
    let base = Instant::now();
    let ms = Duration::from_millis;
    timeline.record("SQL-main", "first", base, ms(10));
    // Starts a little (under the emitters' clock skew) before the first
    // ended: back to back.
    timeline.record(
        "SQL-main",
        "second",
        base + ms(10) - Duration::from_micros(5),
        ms(10),
    );
    // Starts well inside the second: it ran beside it.
    timeline.record("SQL-main", "third", base + ms(12), ms(3));
    let actions = timeline.actions();
    let shape: Vec<(&str, bool)> = actions
        .iter()
        .map(|a| (a.detail(), a.is_concurrent()))
        .collect();
    assert_eq!(
        shape,
        [("first", false), ("second", false), ("third", true)]
    );
    assert!(actions[1].start() >= actions[0].end(), "clamped to follow");
    assert_eq!(timeline.violations()[0].open_detail(), "second");
}

#[test]
fn a_record_before_a_running_action_fits_the_sequence() {
    let timeline = Timeline::new();
    let before = Instant::now();
    std::thread::sleep(Duration::from_millis(2));
    let _open = timeline.start("HTTP-get", "/bugs").unwrap();
    timeline.record("SQL-main", "SELECT 1", before, Duration::from_micros(500));
    let actions = timeline.actions();
    assert_eq!(actions[0].detail(), "SELECT 1");
    assert!(!actions[0].is_concurrent());
    assert!(timeline.violations().is_empty());
}

#[test]
fn concurrent_actions_from_many_threads_are_all_kept() {
    #[timed(category = "cache-get", detail = "key:{n}")]
    fn cache_get(n: u32) {
        std::thread::sleep(Duration::from_micros(200));
        std::hint::black_box(n);
    }
    let timeline = Timeline::new();
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let timeline = timeline.clone();
            std::thread::spawn(move || {
                timeline.scope(|| {
                    for n in 0..25 {
                        cache_get(thread * 100 + n);
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let actions = timeline.actions();
    assert_eq!(actions.len(), 200);
    let concurrent = actions.iter().filter(|a| a.is_concurrent()).count();
    assert_eq!(timeline.violations().len(), concurrent);
    let sequence: Vec<_> = actions.iter().filter(|a| !a.is_concurrent()).collect();
    assert!(!sequence.is_empty());
    for pair in sequence.windows(2) {
        assert!(pair[0].end() <= pair[1].start());
    }
}
