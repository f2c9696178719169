//! `timeline_core::testing` on real pages of the example bug tracker,
//! served from a real SQLite database.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use timeline_core::{Timeline, testing};
use timeline_examples::bugs;

fn database(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "timeline-testing-{name}-{}.sqlite",
        std::process::id()
    ));
    bugs::create_database(&path).unwrap();
    path
}

fn panic_message(f: impl FnOnce()) -> String {
    let payload = panic::catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn the_joined_product_page_issues_one_query() {
    let path = database("joined");
    let (page, timeline) = testing::record(|| {
        let conn = bugs::connect(&path).unwrap();
        bugs::product_page(&conn, 1)
    });
    assert!(page.unwrap().lines().count() > 5);
    testing::assert_max_actions(&timeline, "SQL-main", 1);
    testing::assert_max_repeats(&timeline, 1);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn the_n_plus_one_page_fails_both_assertions_naming_every_statement() {
    let path = database("n-plus-one");
    let (page, timeline) = testing::record(|| {
        let conn = bugs::connect(&path).unwrap();
        bugs::product_page_n_plus_one(&conn, 1)
    });
    let bugs_listed = page.unwrap().lines().count();

    let message = panic_message(|| testing::assert_max_actions(&timeline, "SQL", 5));
    assert!(
        message.starts_with(&format!(
            "expected at most 5 actions of category SQL…, found {}",
            bugs_listed + 2
        )),
        "{message}"
    );
    assert!(message.contains("SELECT id, title, status, assignee FROM bug WHERE product = 1"));
    // The N+1 is one group, most frequent first, with the call site of the
    // `#[timed]` function and one backtrace for all of its statements.
    let group = message.lines().nth(1).unwrap();
    assert!(
        group.contains(&format!("{bugs_listed}×"))
            && group.contains("SELECT name, email FROM person WHERE id = ?")
            && group.contains("(at examples/bugs.rs:"),
        "{message}"
    );
    assert!(
        message.contains(&format!("backtrace of {bugs_listed}:")),
        "{message}"
    );
    assert!(
        message.contains("product_page_n_plus_one"),
        "backtraces show the caller:\n{message}"
    );
    for runtime_frame in [": std::", ": core::", ": timeline_core::", "start_thread"] {
        assert!(
            !message.contains(runtime_frame),
            "only the application's frames:\n{message}"
        );
    }
    assert!(message.lines().count() < 60, "{message}");

    let message = panic_message(|| testing::assert_max_repeats(&timeline, 3));
    assert!(
        message.contains(&format!(r#"SQL-main "SELECT name, email FROM person WHERE id = ?" was issued {bugs_listed} times"#)),
        "{message}"
    );
    let groups = message.lines().filter(|l| l.contains("×  ")).count();
    assert_eq!(groups, 1, "one call site issued them all:\n{message}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn record_returns_the_result_and_a_timeline_that_is_no_longer_current() {
    let (value, timeline) = testing::record(|| timeline_core::current().is_some());
    assert!(value);
    assert!(timeline_core::current().is_none());
    assert!(timeline.is_empty());
}

fn timeline_of(statements: &[&'static str], max_actions: usize) -> Timeline {
    let timeline = Timeline::builder().max_actions(max_actions).build();
    for &statement in statements {
        timeline.start("SQL-main", statement).unwrap().finish();
    }
    timeline
}

#[test]
fn max_actions_is_a_bound_that_includes_itself() {
    let timeline = timeline_of(&["SELECT 1", "SELECT 2", "SELECT 3"], 100);
    testing::assert_max_actions(&timeline, "SQL", 3);
    let message = panic_message(|| testing::assert_max_actions(&timeline, "SQL", 2));
    assert!(
        message.starts_with("expected at most 2 actions of category SQL…, found 3:\n"),
        "nothing about actions not stored when none were dropped:\n{message}"
    );
}

#[test]
fn actions_not_stored_count_against_max_actions() {
    // Two stored, one dropped: the dropped one may have been SQL too.
    let timeline = timeline_of(&["SELECT 1", "SELECT 2", "SELECT 3"], 2);
    assert_eq!((timeline.len(), timeline.dropped()), (2, 1));
    testing::assert_max_actions(&timeline, "SQL", 3);
    let message = panic_message(|| testing::assert_max_actions(&timeline, "SQL", 2));
    assert!(
        message.starts_with(
            "expected at most 2 actions of category SQL…, found 2 \
             (and 1 actions not stored: max_actions or max_bytes reached):\n"
        ),
        "{message}"
    );
}

#[test]
fn max_repeats_is_a_bound_that_includes_itself() {
    let statements = [
        "SELECT name FROM product WHERE id = 7",
        "SELECT * FROM bug WHERE id = 1",
        "SELECT * FROM bug WHERE id = 2",
    ];
    let timeline = timeline_of(&statements, 100);
    testing::assert_max_repeats(&timeline, 2);
    let message = panic_message(|| testing::assert_max_repeats(&timeline, 1));
    assert!(message.contains("was issued 2 times"), "{message}");
    // The message shows the repeated statement's actions, and only those.
    let groups: Vec<&str> = message.lines().filter(|l| l.contains("×  ")).collect();
    assert_eq!(groups.len(), 1, "{message}");
    assert!(
        groups[0].contains("2×") && groups[0].contains("FROM bug"),
        "{message}"
    );
    assert!(!message.contains("FROM product"), "{message}");
}

#[test]
fn a_scaling_check_counts_only_its_category_and_no_nesting_action() {
    // Per item, a cache read and a nesting SQL action (a savepoint) with
    // nothing inside: neither is a growing SQL statement.
    let scenario = |size: usize| {
        let timeline = timeline_core::current().unwrap();
        timeline
            .start("SQL-main", "SELECT id FROM item")
            .unwrap()
            .finish();
        for n in 0..size {
            timeline
                .start("memcache-get", format!("item:{n}"))
                .unwrap()
                .finish();
            timeline
                .start_nested("SQL-main", "SAVEPOINT item")
                .unwrap()
                .finish();
        }
    };
    let runs = testing::scaling("SQL").check(|size| size, scenario);
    assert_eq!(runs.len(), 2, "one run per size");
    let message = panic_message(|| {
        testing::scaling("memcache").check(|size| size, scenario);
    });
    assert!(
        message.starts_with("the number of memcache… actions grows with the data"),
        "{message}"
    );
}

#[test]
fn a_scaling_check_counts_the_actions_its_timelines_dropped() {
    // 40,000 statements per item: at size 3 the default `max_actions`
    // (100,000) stores 100,000 and drops 20,000, which may all be SQL.
    let scenario = |size: usize| {
        let timeline = timeline_core::current().unwrap();
        for _ in 0..size * 40_000 {
            drop(timeline.start("SQL-main", "SELECT 1").unwrap());
        }
    };
    let runs = testing::scaling("SQL")
        .sizes([1, 3])
        .allow_per_item(40_000)
        .check(|size| size, scenario);
    assert_eq!(runs[1].dropped(), 20_000);
    let message = panic_message(|| {
        testing::scaling("SQL")
            .sizes([1, 3])
            .allow_per_item(39_999)
            .check(|size| size, scenario);
    });
    let counts = message
        .lines()
        .find(|l| l.trim_start().starts_with("actions"))
        .unwrap_or_default();
    assert!(counts.ends_with(" 40000  120000"), "{message}");
}
