//! Every interleaving of the hot path's synchronisation, checked with
//! `loom`: an action is started under the timeline's lock, but the common
//! finish is one lock-free store of its end, which the next holder of the
//! lock settles into the action's slot. These models check that no end is
//! lost, no start slips in while an action is open, and a snapshot is
//! consistent whatever another thread does.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p timeline-core --test loom --release
//! ```
#![cfg(loom)]

use loom::thread;
use timeline_core::{Action, Timeline};

/// The invariants of any snapshot: non-nesting actions never overlap, and
/// only the last can still be running.
fn assert_consistent(actions: &[Action]) {
    for pair in actions.windows(2) {
        assert!(pair[0].duration().is_some(), "{actions:?}");
        assert!(pair[0].end() <= pair[1].start(), "{actions:?}");
    }
}

#[test]
fn a_guard_finished_on_another_thread_lets_the_next_start_in_once_settled() {
    loom::model(|| {
        let timeline = Timeline::new();
        let first = timeline.start("SQL-main", "first").unwrap();
        let finisher = thread::spawn(move || drop(first));
        // Refused while the first runs, stored once it has finished.
        let second = timeline.start("SQL-main", "second");
        let stored = second.is_ok();
        drop(second);
        finisher.join().unwrap();

        let actions = timeline.actions();
        assert_eq!(actions.len(), if stored { 2 } else { 1 });
        assert_consistent(&actions);
        assert!(
            actions.iter().all(|a| a.duration().is_some()),
            "{actions:?}"
        );
        assert!(
            timeline.start("SQL-main", "third").is_ok(),
            "nothing is left open"
        );
    });
}

#[test]
fn a_refused_start_changes_nothing() {
    loom::model(|| {
        let timeline = Timeline::new();
        let open = timeline.start("HTTP-get", "/api").unwrap();
        let other = timeline.clone();
        let refused = thread::spawn(move || other.start("SQL-main", "SELECT 1").is_err());
        assert!(
            refused.join().unwrap(),
            "the open action blocks every start"
        );
        drop(open);
        let actions = timeline.actions();
        assert_eq!(actions.len(), 1);
        assert_eq!(timeline.dropped(), 0);
        assert!(actions[0].duration().is_some());
    });
}

#[test]
fn a_snapshot_taken_while_another_thread_records_is_consistent() {
    loom::model(|| {
        let timeline = Timeline::new();
        let recorder = {
            let timeline = timeline.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    drop(timeline.start("SQL-main", "SELECT 1").unwrap());
                }
            })
        };
        let snapshot = timeline.actions();
        assert!(snapshot.len() <= 2);
        assert_consistent(&snapshot);
        let report = timeline.report();
        assert_eq!(
            report.summary().action_count() as usize,
            report.actions().len()
        );
        assert_consistent(report.actions());
        recorder.join().unwrap();

        let actions = timeline.actions();
        assert_eq!(actions.len(), 2);
        assert_consistent(&actions);
        assert!(actions.iter().all(|a| a.duration().is_some()));
    });
}

#[test]
fn nesting_and_concurrent_actions_take_the_locked_path_beside_a_lock_free_finish() {
    loom::model(|| {
        let timeline = Timeline::new();
        let transaction = timeline.start_nested("SQL-main", "BEGIN").unwrap();
        let statement = timeline.start("SQL-main", "INSERT").unwrap();
        let finisher = thread::spawn(move || drop(statement));
        // Recorded after the fact, concurrently with the statement's finish:
        // stored either way, as concurrent if the statement still ran.
        timeline.record(
            "memcache-get",
            "bug:1",
            std::time::Instant::now(),
            std::time::Duration::ZERO,
        );
        finisher.join().unwrap();
        drop(transaction);

        let actions = timeline.actions();
        assert_eq!(actions.len(), 3);
        assert!(
            actions.iter().all(|a| a.duration().is_some()),
            "{actions:?}"
        );
        let concurrent = actions.iter().filter(|a| a.is_concurrent()).count();
        assert_eq!(concurrent, timeline.violations().len());
    });
}
