//! Issue #20: a pool that opens a connection in the middle of a request
//! puts the driver's set-up statements on that request (sqlx-sqlite runs
//! `PRAGMA foreign_keys = ON; ` on every new connection). They are
//! connection set-up, `SQL-connect`: on the timeline and in its totals, but
//! no finding and not counted by `testing`, so that counts do not depend
//! on when the pool happened to connect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use timeline_core::testing;
use timeline_tests::checks::panic_message_async;

/// The table the pages read.
const TABLE: &str = "CREATE TABLE bug (id INTEGER PRIMARY KEY, title TEXT NOT NULL)";

/// A file database (every connection sees the same data) whose pool
/// replaces its idle connection with a new one on the next acquire after
/// [`Database::go_stale`], as a pool does when a connection went bad or
/// past its lifetime. Removed when the test ends.
struct Database {
    pool: SqlitePool,
    stale: Arc<AtomicBool>,
    path: std::path::PathBuf,
}

impl Database {
    async fn new(name: &str, connections: u32) -> Database {
        let path = std::env::temp_dir().join(format!(
            "timeline-set-up-{name}-{}.sqlite",
            std::process::id()
        ));
        let stale = Arc::new(AtomicBool::new(false));
        let stale_now = Arc::clone(&stale);
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .before_acquire(move |_, _| {
                let keep = !stale_now.swap(false, Ordering::SeqCst);
                Box::pin(async move { Ok(keep) })
            })
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        sqlx::query(TABLE).execute(&pool).await.unwrap();
        Database { pool, stale, path }
    }

    /// The next acquire closes the idle connection and opens a new one.
    fn go_stale(&self) {
        self.stale.store(true, Ordering::SeqCst);
    }

    /// Adds `bugs` bugs.
    async fn add_bugs(&self, bugs: usize) {
        for _ in 0..bugs {
            sqlx::query("INSERT INTO bug (title) VALUES ('a bug')")
                .execute(&self.pool)
                .await
                .unwrap();
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The bug list: one statement, whatever the number of bugs.
async fn bug_list(pool: &SqlitePool) -> usize {
    sqlx::query("SELECT id, title FROM bug")
        .fetch_all(pool)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaling_check_does_not_take_a_connection_opened_mid_run_for_growth() {
    timeline_tests::subscriber::install();
    let database = Database::new("scaling", 1).await;
    // Loading the larger data set takes long enough for the pool's
    // connection to be replaced: the larger run opens one, the others not.
    let setup = |size: usize| {
        let database = &database;
        async move {
            database.add_bugs(size).await;
            if size > 2 {
                database.go_stale();
            }
        }
    };
    let page = |()| {
        let pool = database.pool.clone();
        async move {
            bug_list(&pool).await;
        }
    };

    let runs = testing::scaling("SQL").check_async(setup, page).await;
    // The set-up statement did land on the larger run, as `SQL-connect`,
    // and counts in its totals.
    let categories: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            run.actions()
                .iter()
                .map(|a| a.category().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        categories,
        [vec!["SQL-main"], vec!["SQL-connect", "SQL-main"]]
    );
    let larger = &runs[1];
    let set_up = &larger.actions()[0];
    assert!(
        set_up.detail().starts_with("PRAGMA foreign_keys = ON;"),
        "{set_up:?}"
    );
    assert!(larger.summary().to_string().starts_with("2 queries"));
    assert!(larger.server_timing().contains("SQL-connect;"));

    // Counted, the same runs fail: the check above passed because the
    // set-up was left out, not because it was missing.
    let scaling = testing::scaling("SQL").include_connection_set_up(true);
    let message = panic_message_async(scaling.check_async(setup, page)).await;
    let grown = message
        .lines()
        .find(|l| l.contains("foreign_keys"))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(grown.trim_start().starts_with("0 → 1"), "{grown}");
    assert!(grown.contains("SQL-connect"), "{grown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_up_is_on_the_timeline_but_makes_no_finding_and_no_count() {
    timeline_tests::subscriber::install();
    let database = Database::new("counts", 1).await;
    database.add_bugs(3).await;
    let ((), timeline) = testing::run_async(async {
        // The pool replaces its connection twice during the request.
        database.go_stale();
        assert_eq!(bug_list(&database.pool).await, 3);
        database.go_stale();
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM bug")
            .fetch_one(&database.pool)
            .await
            .unwrap();
        assert_eq!(count, 3);
    })
    .await;

    let actions = timeline.actions();
    let set_up: Vec<&str> = actions
        .iter()
        .filter(|a| a.category() == "SQL-connect")
        .map(|a| a.detail())
        .collect();
    assert_eq!(set_up.len(), 2, "{actions:#?}");
    assert!(
        set_up.iter().all(|d| d.starts_with("PRAGMA ")),
        "{set_up:?}"
    );
    // In the totals…
    let summary = timeline.summary();
    assert!(summary.to_string().starts_with("4 queries"), "{summary}");
    assert!(timeline.violations().is_empty());
    assert!(
        summary
            .categories()
            .iter()
            .any(|c| c.category() == "SQL-connect" && c.count() == 2),
        "{summary:#}"
    );
    // …but the same PRAGMA twice is no duplicate to fix, and the counts of
    // `testing` are the page's own statements.
    assert!(summary.findings().is_empty(), "{summary:#}");
    testing::assert_max_repeats(&timeline, 1);
    testing::assert_max_actions(&timeline, "SQL", 2);
    testing::assert_max_actions(&timeline, "SQL-connect", 2);
}
