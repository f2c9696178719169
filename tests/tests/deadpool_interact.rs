//! Issue #20: the diesel documentation's snippet for `deadpool_diesel`,
//! compiled and run against the real crate: `interact` runs its closure on
//! a blocking thread, which knows no timeline, and lends it the connection
//! — so the closure that carries the timeline there takes an argument
//! (`with_current_mut`; `with_current`'s closure takes none).
//!
//! No `TimelineLayer` is installed in this binary: the timeline reaches the
//! blocking thread through the closure alone.

use deadpool_diesel::sqlite::{Manager, Pool, Runtime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use timeline_core::{Timeline, WithTimeline, testing};

diesel::table! {
    /// The bugs the handler loads.
    bug (id) {
        /// The primary key.
        id -> Integer,
        /// Its title.
        title -> Text,
    }
}

/// A row of `bug`.
#[derive(Debug, Queryable)]
struct Bug {
    #[allow(dead_code)] // loaded, as a handler would
    id: i32,
    title: String,
}

/// A pool of one connection to an in-memory database with two bugs, made
/// outside any timeline.
async fn pool() -> Pool {
    timeline_core::integrations::diesel::install().unwrap();
    let pool = Pool::builder(Manager::new(":memory:", Runtime::Tokio1))
        .max_size(1)
        .build()
        .unwrap();
    let conn = pool.get().await.unwrap();
    conn.interact(|conn| {
        conn.batch_execute(
            "CREATE TABLE bug (id INTEGER PRIMARY KEY, title TEXT NOT NULL); \
             INSERT INTO bug (id, title) VALUES (1, 'crash'), (2, 'typo');",
        )
    })
    .await
    .unwrap()
    .unwrap();
    pool
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_interact_closure_records_onto_the_request_s_timeline() {
    let pool = pool().await;
    let (bugs, timeline) = testing::run_async(async {
        let conn = pool.get().await.unwrap();
        // As the diesel module documentation and the README write it.
        let line = line!() + 3; // the closure's statement
        let bugs = conn
            .interact(timeline_core::with_current_mut(move |conn| {
                bug::table.load::<Bug>(conn)
            }))
            .await
            .unwrap()
            .unwrap();
        (bugs, line)
    })
    .await;
    let (bugs, line) = bugs;
    let titles: Vec<&str> = bugs.iter().map(|b| b.title.as_str()).collect();
    assert_eq!(titles, ["crash", "typo"]);

    let actions = timeline.actions();
    assert_eq!(actions.len(), 1, "{actions:#?}");
    assert_eq!(
        actions[0].detail(),
        "SELECT `bug`.`id`, `bug`.`title` FROM `bug` -- binds: []"
    );
    // The closure runs on the blocking thread: its line is the call site.
    let call_site = actions[0].call_site().expect("a frame of this file");
    assert!(
        call_site.file().ends_with("deadpool_interact.rs"),
        "{call_site}"
    );
    assert_eq!(call_site.line(), line);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_it_the_blocking_thread_records_nowhere() {
    let pool = pool().await;
    let timeline = Timeline::new();
    let loaded = async {
        let conn = pool.get().await.unwrap();
        conn.interact(|conn| bug::table.load::<Bug>(conn))
            .await
            .unwrap()
            .unwrap()
    }
    .with_timeline(timeline.clone())
    .await;
    assert_eq!(loaded.len(), 2);
    assert!(timeline.is_empty(), "{:#?}", timeline.actions());
}
