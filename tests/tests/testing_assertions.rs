//! `timeline_core::testing` on real pages of the example bug tracker,
//! served from a real SQLite database.

use timeline_core::{Timeline, testing};
use timeline_examples::bugs;
use timeline_tests::bugs::database;
use timeline_tests::checks::panic_message;

#[test]
fn the_joined_product_page_issues_one_query() {
    let path = database("testing", "joined");
    let (page, timeline) = testing::run(|| {
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
    let path = database("testing", "n-plus-one");
    let (page, timeline) = testing::run(|| {
        let conn = bugs::connect(&path).unwrap();
        bugs::product_page_n_plus_one(&conn, 1)
    });
    let bugs_listed = page.unwrap().lines().count();

    // The list and one statement per bug; `bugs::connect` is connection
    // set-up, said and not counted.
    let message = panic_message(|| testing::assert_max_actions(&timeline, "SQL", 5));
    assert!(
        message.starts_with(&format!(
            "expected at most 5 actions of category SQL…, found {} \
             (1 connection set-up action not counted):",
            bugs_listed + 1
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
    let (value, timeline) = testing::run(|| timeline_core::current().is_some());
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

/// Thirteen statements that normalise to thirteen groups: one more than a
/// failure message lists.
const STATEMENTS: [&str; 13] = [
    "SELECT a FROM t",
    "SELECT b FROM t",
    "SELECT c FROM t",
    "SELECT d FROM t",
    "SELECT e FROM t",
    "SELECT f FROM t",
    "SELECT g FROM t",
    "SELECT h FROM t",
    "SELECT i FROM t",
    "SELECT j FROM t",
    "SELECT k FROM t",
    "SELECT l FROM t",
    "SELECT m FROM t",
];

#[test]
fn a_failure_lists_twelve_groups_and_counts_the_rest() {
    let twelve = timeline_of(&STATEMENTS[..12], 100);
    let message = panic_message(|| testing::assert_max_actions(&twelve, "SQL", 1));
    assert!(message.contains("SELECT l FROM t"), "{message}");
    assert!(!message.contains("… and"), "{message}");

    let thirteen = timeline_of(&STATEMENTS, 100);
    let message = panic_message(|| testing::assert_max_actions(&thirteen, "SQL", 1));
    assert!(!message.contains("SELECT m FROM t"), "{message}");
    assert!(
        message.contains("… and 1 more statements (1 actions)"),
        "{message}"
    );
}

#[test]
fn a_scaling_failure_lists_twelve_statements_and_counts_the_rest() {
    let message = |statements: &'static [&'static str]| {
        panic_message(|| {
            testing::scaling("SQL").check(
                |size| size,
                |size| {
                    let timeline = timeline_core::current().unwrap();
                    for _ in 0..size {
                        for &statement in statements {
                            timeline.start("SQL-main", statement).unwrap().finish();
                        }
                    }
                },
            );
        })
    };
    let twelve = message(&STATEMENTS[..12]);
    assert!(twelve.contains("SELECT l FROM t"), "{twelve}");
    assert!(!twelve.contains("… and"), "{twelve}");
    let thirteen = message(&STATEMENTS);
    assert!(thirteen.contains("… and 1 more\n"), "{thirteen}");
}

/// One query, called from three places: one group, three backtraces.
#[inline(never)]
fn query(timeline: &Timeline) {
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
}

#[inline(never)]
fn from_the_list(timeline: &Timeline) {
    query(timeline);
}

#[inline(never)]
fn from_the_page(timeline: &Timeline) {
    query(timeline);
}

#[inline(never)]
fn from_the_feed(timeline: &Timeline) {
    query(timeline);
}

/// `depth` more frames of the application above the query.
#[inline(never)]
fn nested_calls(timeline: &Timeline, depth: usize) {
    if depth == 0 {
        query(timeline);
    } else {
        nested_calls(timeline, depth - 1);
    }
    std::hint::black_box(depth);
}

fn timeline_with_backtraces() -> Timeline {
    Timeline::builder().capture_backtraces(true).build()
}

#[test]
fn a_failure_shows_two_backtraces_per_group_and_counts_the_rest() {
    let two = timeline_with_backtraces();
    from_the_list(&two);
    for _ in 0..2 {
        from_the_page(&two);
    }
    let message = panic_message(|| testing::assert_max_actions(&two, "SQL", 1));
    assert_eq!(message.matches("backtrace of").count(), 2, "{message}");
    assert!(message.contains("backtrace of 2:"), "{message}");
    assert!(!message.contains("other backtraces"), "{message}");

    from_the_feed(&two);
    let message = panic_message(|| testing::assert_max_actions(&two, "SQL", 1));
    assert_eq!(message.matches("backtrace of").count(), 2, "{message}");
    assert!(message.contains("… and 1 other backtraces"), "{message}");
}

#[test]
fn a_backtrace_shows_six_frames_with_their_lines() {
    let deep = timeline_with_backtraces();
    nested_calls(&deep, 20);
    let message = panic_message(|| testing::assert_max_actions(&deep, "SQL", 0));
    let trace: Vec<&str> = message
        .lines()
        .skip_while(|line| !line.contains("backtrace of 1:"))
        .skip(1)
        .map(str::trim)
        .collect();
    let shown: Vec<&str> = trace
        .iter()
        .copied()
        .take_while(|line| *line != "…")
        .collect();
    let frames = shown.iter().filter(|line| !line.starts_with("at ")).count();
    assert_eq!(frames, 6, "{message}");
    assert!(
        shown
            .iter()
            .any(|line| line.starts_with("at ") && line.contains("testing_assertions.rs")),
        "frames come with their source lines:\n{message}"
    );
    assert_eq!(trace.get(shown.len()), Some(&"…"), "{message}");
}
