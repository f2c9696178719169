//! One ceiling for a timeline's memory: `max_bytes` counts everything a
//! timeline keeps, and reports cost a small constant times what is stored.
//! Measured with a counting allocator, not assumed.

use std::time::{Duration, Instant};

use allocation_counter::measure;
use timeline_core::{Timeline, timed};

const MIB: usize = 1 << 20;

/// The bytes still allocated after `f` ran and returned what it built.
fn retained<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let mut kept = None;
    let counted = measure(|| kept = Some(f()));
    (
        kept.unwrap(),
        usize::try_from(counted.bytes_current.max(0)).unwrap(),
    )
}

fn flood(timeline: &Timeline, statements: usize, detail_len: usize) {
    let padding = "x".repeat(detail_len);
    for n in 0..statements {
        timeline
            .start("SQL-main", format!("SELECT {n} /* {padding} */"))
            .unwrap()
            .finish();
    }
}

#[test]
fn a_flood_of_large_details_stays_under_max_bytes() {
    for (max_bytes, detail_len) in [(MIB, 300), (4 * MIB, 4_000), (MIB, 60_000)] {
        let (timeline, bytes) = retained(|| {
            let timeline = Timeline::builder().max_bytes(max_bytes).build();
            flood(&timeline, 5_000, detail_len);
            timeline
        });
        assert!(timeline.dropped() > 0, "the flood reached the ceiling");
        assert_eq!(timeline.len() as u64 + timeline.dropped(), 5_000);
        assert!(
            bytes <= max_bytes + 64 * 1024,
            "{bytes} bytes held under max_bytes {max_bytes} ({detail_len}-byte details)"
        );
        assert!(
            bytes >= max_bytes / 2,
            "{bytes} bytes: the ceiling is not wildly pessimistic"
        );
    }
}

#[test]
fn violations_and_error_outcomes_count_too() {
    #[timed(category = "SQL-main", detail = "{statement}")]
    fn query(statement: &str) -> Result<(), String> {
        Err(format!("no such table in {statement}"))
    }
    let max_bytes = MIB;
    let (timeline, bytes) = retained(|| {
        let timeline = Timeline::builder().max_bytes(max_bytes).build();
        let statement = "y".repeat(20_000);
        timeline.scope(|| {
            let _open = timeline.start("HTTP-get", "/slow").unwrap();
            for _ in 0..500 {
                // Each overlaps the open request: concurrent, and noted.
                let _ = query(&statement);
            }
        });
        timeline
    });
    assert!(timeline.dropped() > 0);
    assert!(!timeline.violations().is_empty());
    assert!(
        timeline.violations()[0].attempted_detail().len() <= 512,
        "a violation keeps an excerpt, not a copy"
    );
    assert!(bytes <= max_bytes + 64 * 1024, "{bytes}");
}

#[test]
fn an_owned_detail_is_kept_without_spare_capacity() {
    let (timeline, bytes) = retained(|| {
        let timeline = Timeline::new();
        for _ in 0..100 {
            let mut detail = String::with_capacity(10_000);
            detail.push_str("SELECT 1");
            timeline.start("SQL-main", detail).unwrap().finish();
        }
        timeline
    });
    assert_eq!(timeline.len(), 100);
    assert!(bytes < 100 * 1_000, "{bytes} bytes for 100 short details");
}

#[test]
fn categories_are_bounded() {
    let timeline = Timeline::new();
    timeline.record("c".repeat(100_000), "", Instant::now(), Duration::ZERO);
    assert!(timeline.actions()[0].category().len() <= 256);
}

#[test]
fn reports_cost_a_small_constant_times_what_is_stored() {
    let (timeline, stored) = retained(|| {
        let timeline = Timeline::builder().max_bytes(4 * MIB).build();
        flood(&timeline, 100_000, 200);
        timeline
    });
    for (name, peak) in [
        ("summary", measure(|| drop(timeline.summary())).bytes_max),
        ("report", measure(|| drop(timeline.report())).bytes_max),
        (
            "report and its page",
            measure(|| drop(timeline.report().to_html())).bytes_max,
        ),
        (
            "server_timing",
            measure(|| drop(timeline.server_timing())).bytes_max,
        ),
        (
            "chrome trace",
            measure(|| drop(timeline.to_chrome_trace())).bytes_max,
        ),
        (
            "waterfall",
            measure(|| drop(timeline.waterfall(80))).bytes_max,
        ),
    ] {
        let peak = usize::try_from(peak).unwrap();
        println!(
            "{name}: peak {peak} bytes, {:.2}× the {stored} stored",
            peak as f64 / stored as f64
        );
        assert!(
            peak <= 3 * stored,
            "{name} peaked at {peak} bytes for {stored} stored"
        );
    }
    let header_peak =
        usize::try_from(measure(|| drop(timeline.server_timing())).bytes_max).unwrap();
    assert!(
        header_peak < 64 * 1024,
        "Server-Timing needs no copy of the details: {header_peak}"
    );
}

#[test]
fn error_messages_count_against_max_bytes() {
    let max_bytes = MIB;
    // Sequential actions, and nesting ones, which finish under the lock.
    for nested in [false, true] {
        let (timeline, bytes) = retained(|| {
            let timeline = Timeline::builder().max_bytes(max_bytes).build();
            for _ in 0..200 {
                let guard = if nested {
                    timeline.start_nested("SQL-main", "BEGIN")
                } else {
                    timeline.start("SQL-main", "SELECT 1")
                };
                guard
                    .unwrap()
                    .finish_with(timeline_core::Outcome::Error("e".repeat(20_000)));
            }
            timeline
        });
        assert!(
            timeline.dropped() > 0,
            "4 MB of error messages exceed 1 MiB"
        );
        // About 50 messages of 20 KB fit in 1 MiB: each counted once.
        assert!(timeline.len() > 40, "{} stored", timeline.len());
        assert!(bytes <= max_bytes + 64 * 1024, "{bytes}");
    }
}

/// What a timeline holding one detail of `len` bytes in a buffer of
/// `capacity` keeps for it, beyond one holding a static detail. Each is
/// measured on a new thread: a thread keeps the storage of finished
/// timelines for its next one.
fn kept_for_detail(len: usize, capacity: usize) -> usize {
    let measure_on_new_thread = |owned: bool| {
        std::thread::spawn(move || {
            retained(|| {
                let timeline = Timeline::new();
                if owned {
                    let mut detail = String::with_capacity(capacity);
                    detail.push_str(&"x".repeat(len));
                    timeline.start("SQL-main", detail).unwrap().finish();
                } else {
                    timeline.start("SQL-main", "static").unwrap().finish();
                }
                timeline
            })
            .1
        })
        .join()
        .unwrap()
    };
    measure_on_new_thread(true) - measure_on_new_thread(false)
}

#[test]
fn slack_up_to_half_the_length_plus_64_bytes_is_kept_and_more_is_trimmed() {
    // Up to len / 2 + 64 bytes spare: kept as it is, saving a reallocation
    // per action (what `format!` leaves is less).
    assert_eq!(kept_for_detail(700, 1_000), 1_000);
    assert_eq!(kept_for_detail(700, 700 + 350 + 64), 700 + 350 + 64);
    // One byte more, and the buffer is trimmed to the detail.
    assert_eq!(kept_for_detail(700, 700 + 350 + 65), 700);
    assert_eq!(kept_for_detail(700, 1_700), 700);
}
