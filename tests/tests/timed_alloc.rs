//! `#[timed]` allocates nothing but the detail string: nothing at all
//! without a current timeline, nothing for a static detail, and exactly the
//! formatted string for a detail with placeholders — no more than a
//! hand-written guard.

use std::hint::black_box;

use allocation_counter::measure;
use timeline_core::{Timeline, WithTimeline, timed};
use timeline_tests::future::{block_on, yield_once};

#[timed(category = "SQL-main", detail = "SELECT 1")]
fn static_detail() -> u32 {
    1
}

#[timed(category = "SQL-main", detail = "SELECT * FROM bug WHERE id = {id}")]
fn formatted_detail(id: u32) -> u32 {
    id
}

#[timed(category = "SQL-main", detail = "SELECT 1", err)]
fn with_err() -> Result<u32, String> {
    Ok(1)
}

#[timed(category = "HTTP-get", detail = "/")]
async fn fetch() -> u32 {
    yield_once().await;
    1
}

/// A timeline with room for a few more actions, so that storing them does
/// not grow its buffer while allocations are measured.
fn timeline_with_room() -> Timeline {
    let timeline = Timeline::new();
    timeline.start("warm-up", "").unwrap().finish();
    timeline
}

#[test]
fn without_a_timeline_nothing_is_allocated() {
    let info = measure(|| {
        black_box(static_detail());
        black_box(formatted_detail(black_box(7)));
        black_box(with_err()).unwrap();
        black_box(block_on(fetch()));
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn a_static_detail_allocates_nothing_like_a_hand_written_guard() {
    let timeline = timeline_with_room();
    let _entered = timeline.enter();
    let hand_written = measure(|| {
        let _guard = timeline.start("SQL-main", "SELECT 1");
    });
    let timed = measure(|| {
        black_box(static_detail());
        black_box(with_err()).unwrap();
    });
    assert_eq!(timeline.len(), 4);
    assert_eq!(hand_written.count_total, 0, "{hand_written:?}");
    assert_eq!(timed.count_total, 0, "{timed:?}");
}

#[test]
fn a_formatted_detail_allocates_the_string_only() {
    let timeline = timeline_with_room();
    let _entered = timeline.enter();
    let info = measure(|| {
        black_box(formatted_detail(black_box(7)));
    });
    assert_eq!(
        timeline.actions()[1].detail(),
        "SELECT * FROM bug WHERE id = 7"
    );
    assert_eq!(info.count_total, 1, "{info:?}");
}

async fn untimed_fetch() -> u32 {
    yield_once().await;
    1
}

#[test]
fn an_async_call_allocates_nothing_more_than_the_untimed_future() {
    let timeline = timeline_with_room();
    // The first `with_timeline` of a thread sets up its thread-local stack.
    block_on(async {}.with_timeline(timeline.clone()));
    // Entering and leaving the timeline at each poll may allocate; the
    // timed future must add nothing to that.
    let untimed = measure(|| {
        black_box(block_on(untimed_fetch().with_timeline(timeline.clone())));
    });
    let timed = measure(|| {
        black_box(block_on(fetch().with_timeline(timeline.clone())));
    });
    assert_eq!(timeline.len(), 2);
    assert_eq!(
        timed.count_total, untimed.count_total,
        "{timed:?} {untimed:?}"
    );
}
