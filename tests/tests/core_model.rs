//! Property test: random sequences of start / start_nested / finish (in any
//! order) / record / leak, checked against a small reference model of the
//! overlap and nesting rules.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use timeline_core::{ActionGuard, Timeline};

#[derive(Clone, Debug)]
enum Op {
    Start,
    StartNested,
    /// Finish the live guard at this index (modulo the number live).
    Finish(usize),
    /// Leak the live guard at this index (modulo the number live).
    Leak(usize),
    Record {
        offset_us: u64,
        duration_us: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Start),
        2 => Just(Op::StartNested),
        5 => any::<usize>().prop_map(Op::Finish),
        1 => any::<usize>().prop_map(Op::Leak),
        1 => (0..5_000u64, 0..5_000u64)
            .prop_map(|(offset_us, duration_us)| Op::Record { offset_us, duration_us }),
    ]
}

/// What the model knows of each action, by detail.
#[derive(Debug, PartialEq)]
struct Expected {
    nested: bool,
    finished: bool,
    /// For a recorded action, the duration it was recorded with.
    recorded: Option<Duration>,
}

struct Model {
    /// Non-nesting actions started and not finished (leaked ones stay open
    /// for ever).
    open_plain: usize,
    expected: HashMap<String, Expected>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn timeline_matches_the_reference_model(ops in prop::collection::vec(op(), 0..60), max_actions in prop_oneof![Just(usize::MAX), 0..20usize]) {
        let timeline = Timeline::builder().max_actions(max_actions).build();
        let base = Instant::now();
        let mut model = Model { open_plain: 0, expected: HashMap::new() };
        let mut live: Vec<(String, bool, ActionGuard)> = Vec::new();
        let mut leaked: Vec<ActionGuard> = Vec::new();
        let mut attempted = 0usize;

        for (n, op) in ops.into_iter().enumerate() {
            let detail = format!("a{n}");
            match op {
                Op::Start | Op::StartNested => {
                    let nested = matches!(op, Op::StartNested);
                    attempted += 1;
                    let result = if nested {
                        timeline.start_nested("cat", detail.clone())
                    } else {
                        timeline.start("cat", detail.clone())
                    };
                    let refused = model.open_plain > 0;
                    prop_assert_eq!(result.is_err(), refused, "refusal of {}", detail);
                    if let Ok(guard) = result {
                        if !nested {
                            model.open_plain += 1;
                        }
                        model.expected.insert(detail.clone(), Expected { nested, finished: false, recorded: None });
                        live.push((detail, nested, guard));
                    }
                }
                Op::Finish(i) if !live.is_empty() => {
                    let (detail, nested, guard) = live.remove(i % live.len());
                    drop(guard);
                    if !nested {
                        model.open_plain -= 1;
                    }
                    model.expected.get_mut(&detail).unwrap().finished = true;
                }
                Op::Leak(i) if !live.is_empty() => {
                    let (_, _, guard) = live.remove(i % live.len());
                    // Kept alive, never dropped: a leak as far as the
                    // timeline can tell (and no real memory leak in tests).
                    leaked.push(guard);
                }
                Op::Record { offset_us, duration_us } => {
                    timeline.record("rec", detail.clone(), base + Duration::from_micros(offset_us), Duration::from_micros(duration_us));
                    model.expected.insert(detail, Expected { nested: false, finished: true, recorded: Some(Duration::from_micros(duration_us)) });
                    attempted += 1;
                }
                Op::Finish(_) | Op::Leak(_) => {}
            }
            prop_assert!(model.open_plain <= 1, "the rule allows one open plain action");
        }

        // Every accepted action is stored once, or counted as dropped.
        let actions = timeline.actions();
        let accepted = model.expected.len();
        prop_assert_eq!(actions.len() as u64 + timeline.dropped(), accepted as u64);
        prop_assert_eq!(actions.len(), accepted.min(max_actions));
        prop_assert!(attempted >= accepted);
        let mut seen = HashMap::new();
        for action in &actions {
            *seen.entry(action.detail().to_owned()).or_insert(0) += 1;
            let expected = &model.expected[action.detail()];
            prop_assert_eq!(action.is_nested(), expected.nested);
            prop_assert_eq!(action.duration().is_some(), expected.finished, "{:?}", action);
            if let Some(recorded) = expected.recorded {
                // Placed in the sequence or beside it, a recorded interval
                // keeps its length, less at most the emitters' clock skew.
                let kept = action.duration().unwrap();
                prop_assert!(kept <= recorded && kept + Duration::from_micros(50) >= recorded, "{:?} recorded for {:?}", action, recorded);
            }
        }
        prop_assert!(seen.values().all(|&count| count == 1));
        prop_assert!(actions.windows(2).all(|w| w[0].start() <= w[1].start()), "start order");

        // The sequence — plain actions not marked concurrent — never
        // overlaps itself, and every concurrent action was noted.
        let sequence: Vec<_> = actions.iter().filter(|a| !a.is_nested() && !a.is_concurrent()).collect();
        for pair in sequence.windows(2) {
            prop_assert!(pair[0].end() <= pair[1].start(), "{:?} overlaps {:?}", pair[0], pair[1]);
        }
        let concurrent = actions.iter().filter(|a| a.is_concurrent()).count();
        prop_assert!(actions.iter().all(|a| !a.is_concurrent() || a.category() == "rec"), "only records may run beside the sequence here");
        if max_actions == usize::MAX {
            prop_assert_eq!(timeline.violations().len(), concurrent);
        }

        // Log tuples: well formed, one per plain action, markers balanced.
        let tuples = timeline.log_tuples();
        let mut open_markers: HashMap<String, usize> = HashMap::new();
        let mut plain = 0;
        for tuple in &tuples {
            prop_assert!(tuple.end_ms >= tuple.start_ms);
            if tuple.category.ends_with("-start") {
                prop_assert_eq!(tuple.start_ms, tuple.end_ms);
                *open_markers.entry(tuple.detail.clone()).or_default() += 1;
            } else if tuple.category.ends_with("-stop") {
                prop_assert_eq!(open_markers.get(&tuple.detail), Some(&1), "-stop after its -start");
                open_markers.insert(tuple.detail.clone(), 2);
            } else {
                plain += 1;
            }
        }
        let stored_nested: Vec<_> = actions.iter().filter(|a| a.is_nested()).collect();
        prop_assert_eq!(plain, actions.len() - stored_nested.len());
        for action in stored_nested {
            let markers = open_markers.get(action.detail()).copied().unwrap_or(0);
            prop_assert_eq!(markers, if action.duration().is_some() { 2 } else { 1 });
        }
        drop(live);
        drop(leaked);
    }
}

#[test]
fn handles_of_one_timeline_are_ptr_eq_and_no_other() {
    let timeline = Timeline::new();
    let handle = timeline.clone();
    assert!(Timeline::ptr_eq(&timeline, &handle));
    assert!(!Timeline::ptr_eq(&timeline, &Timeline::new()));
}

#[test]
fn elapsed_counts_from_the_timeline_s_start() {
    let timeline = Timeline::new();
    std::thread::sleep(Duration::from_millis(2));
    let elapsed = timeline.elapsed();
    assert!(elapsed >= Duration::from_millis(2), "{elapsed:?}");
    assert!(timeline.elapsed() >= elapsed, "and keeps counting");
}

#[test]
fn a_builder_s_debug_shows_its_settings() {
    let builder = Timeline::builder()
        .max_actions(7)
        .capture_backtraces_if(|_, _| true)
        .strict(true);
    let shown = format!("{builder:?}");
    for setting in [
        "max_actions: 7",
        "backtraces: \"if\"",
        "strict: true",
        "detail_filter: false",
    ] {
        assert!(shown.contains(setting), "{setting} in {shown}");
    }
}
