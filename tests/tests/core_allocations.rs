//! Allocations on the hot path, counted by a global allocator that counts
//! per thread (so parallel tests do not disturb each other).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use timeline_core::{Timeline, current};
use timeline_tests::checks::assert_send;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Bytes allocated and not yet freed by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(allocated: usize, freed: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + allocated as isize - freed as isize));
}

// SAFETY: delegates every call to `System` unchanged; counting touches only
// a const-initialised thread-local, which never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        count(layout.size(), 0);
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, layout.size());
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        count(new_size, layout.size());
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Bytes `f` left allocated on this thread.
fn retained_by(f: impl FnOnce()) -> isize {
    let before = LIVE.with(Cell::get);
    f();
    LIVE.with(Cell::get) - before
}

/// One request's worth of actions on a timeline of its own, dropped at the
/// end as a request's is.
fn request(actions: usize) {
    let timeline = Timeline::new();
    for _ in 0..actions {
        drop(timeline.start("SQL-main", "SELECT 1").unwrap());
    }
    assert_eq!(timeline.len(), actions);
}

/// On a thread of its own, whose spare storage starts empty.
fn on_a_new_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(f).join().unwrap())
}

/// The storage of a timeline grows in chunks of 32, 64, 128… slots: the
/// first 32 actions share the first chunk.
const FIRST_CHUNK: usize = 32;

#[test]
fn static_category_and_detail_allocate_nothing_per_action() {
    let timeline = Timeline::new();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish(); // the first chunk
    let allocations = allocations_in(|| {
        for _ in 1..FIRST_CHUNK {
            drop(timeline.start("SQL-main", "SELECT 1").unwrap());
        }
    });
    assert_eq!(allocations, 0);
    assert_eq!(timeline.len(), FIRST_CHUNK);
}

#[test]
fn storage_allocations_are_amortised_to_nothing() {
    let timeline = Timeline::new();
    let allocations = allocations_in(|| {
        for _ in 0..10_000 {
            drop(timeline.start("SQL-main", "SELECT 1").unwrap());
        }
    });
    // 10,000 slots span 9 chunks, listed in one more allocation; nothing
    // else allocates.
    assert!(
        allocations <= 10,
        "{allocations} allocations for 10,000 actions"
    );
}

#[test]
fn actions_on_the_current_timeline_allocate_nothing() {
    let timeline = Timeline::new();
    timeline.scope(|| {
        current()
            .unwrap()
            .start("SQL-main", "SELECT 1")
            .unwrap()
            .finish();
        let allocations = allocations_in(|| {
            for _ in 1..FIRST_CHUNK {
                let current = current().unwrap();
                drop(current.start("SQL-main", "SELECT 1").unwrap());
            }
        });
        assert_eq!(allocations, 0);
    });
}

#[test]
fn a_dynamic_detail_costs_its_own_allocation_only() {
    let timeline = Timeline::new();
    timeline.start("SQL-main", "first").unwrap().finish();
    let allocations = allocations_in(|| {
        for id in 1..FIRST_CHUNK {
            let detail = format!("SELECT * FROM bug WHERE id = {id}");
            drop(timeline.start("SQL-main", detail).unwrap());
        }
    });
    assert_eq!(
        allocations,
        (FIRST_CHUNK - 1) as u64,
        "one per detail, the format! itself"
    );
    assert_eq!(
        timeline.actions()[5].detail(),
        "SELECT * FROM bug WHERE id = 5"
    );
}

#[test]
fn no_allocation_without_a_current_timeline() {
    let allocations = allocations_in(|| {
        for _ in 0..1_000 {
            assert!(current().is_none());
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn entering_and_leaving_a_timeline_allocates_nothing() {
    let timeline = Timeline::new();
    timeline.scope(|| ()); // the thread's stack gets its capacity
    let allocations = allocations_in(|| {
        for _ in 0..100 {
            timeline.scope(|| assert!(current().is_some()));
        }
    });
    assert_eq!(allocations, 0);
}

/// With the `tracing` feature on (this crate enables it) but no subscriber
/// that wants the request span, `with_timeline` creates none: polling
/// allocates nothing, and the future stays `Send`.
#[test]
fn with_timeline_allocates_nothing_without_a_timeline_layer() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    use timeline_core::WithTimeline;

    let timeline = Timeline::new();
    let run = |timeline: &Timeline| {
        let mut cx = Context::from_waker(Waker::noop());
        let future = async { current().is_some() }.with_timeline(timeline.clone());
        assert_send(&future);
        let mut future = std::pin::pin!(future);
        assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(true)));
    };
    run(&timeline); // the thread's stack gets its capacity
    let allocations = allocations_in(|| {
        for _ in 0..100 {
            run(&timeline);
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn the_next_request_on_a_thread_reuses_the_storage_of_the_last() {
    on_a_new_thread(|| {
        request(1_000);
        // 1,000 slots span chunks of 32 to 512 slots: all kept, all reused.
        // What is left to allocate is the timeline itself and the list of
        // its chunks.
        let allocations = allocations_in(|| request(1_000));
        assert!(
            allocations <= 2,
            "{allocations} allocations for a second request of 1,000 actions"
        );
        // Reused storage is reused again, chunk for chunk: none is stored in
        // a chunk of the wrong size and grows on a later push.
        let allocations = allocations_in(|| request(1_000));
        assert!(allocations <= 2, "{allocations} allocations the third time");
    });
}

#[test]
fn a_thread_keeps_at_most_16_ki_spare_slots() {
    on_a_new_thread(|| {
        // 100,000 actions span chunks of up to 64 Ki slots, about 11 MB.
        let kept = retained_by(|| request(100_000));
        assert!(kept > 0, "nothing kept for the next request");
        // 16 Ki slots at most, whatever their size (80 bytes today).
        assert!(
            kept <= 16 * 1024 * 128,
            "{kept} bytes kept after a request of 100,000 actions"
        );
        // What is kept is what a request of up to 16 Ki actions needs.
        let allocations = allocations_in(|| request(16 * 1024 - 32));
        assert!(
            allocations <= 2,
            "{allocations} allocations for a request that fits what was kept"
        );
    });
}

/// Actions with a backtrace each.
fn traced_actions(timeline: &Timeline, count: usize) {
    for n in 0..count {
        drop(timeline.start("SQL-main", format!("traced {n}")).unwrap());
    }
}

/// What `f` left allocated, and how much more `timeline` counts against its
/// `max_bytes` after it.
fn allocated_and_counted(timeline: &Timeline, f: &mut dyn FnMut(&Timeline)) -> (isize, isize) {
    use timeline_core::__hooks::held_bytes;

    let counted = held_bytes(timeline) as isize;
    let allocated = retained_by(|| f(timeline));
    (allocated, held_bytes(timeline) as isize - counted)
}

/// `max_bytes` bounds what a timeline holds only if its count of bytes is
/// what the allocator really gave it: every kind of thing it keeps, counted
/// exactly, checked against this file's counting allocator.
#[test]
fn max_bytes_counts_exactly_what_the_allocator_gave() {
    use std::time::{Duration, Instant};
    use timeline_core::__hooks::push_fixed;
    use timeline_core::Outcome;

    type Step = (&'static str, fn(&Timeline));
    let steps: [Step; 7] = [
        ("the first action", |timeline| {
            drop(timeline.start("SQL-main", "SELECT 1").unwrap());
        }),
        ("owned categories and details", |timeline| {
            for n in 0..100 {
                let category = format!("SQL-{}", n % 3);
                drop(timeline.start(category, format!("SELECT {n}")).unwrap());
            }
        }),
        ("error outcomes", |timeline| {
            for n in 0..100 {
                let guard = timeline.start("SQL-main", "UPDATE").unwrap();
                guard.finish_with(Outcome::Error("x".repeat(n)));
            }
        }),
        ("backtraces", |timeline| traced_actions(timeline, 50)),
        ("actions stored with an error", |timeline| {
            // As the tracing bridge stores a statement that failed.
            for n in 0..10 {
                let error = Outcome::Error("no such table: bug".repeat(n));
                push_fixed(
                    timeline,
                    "SQL-main",
                    "SELECT",
                    Duration::ZERO,
                    None,
                    false,
                    error,
                );
            }
        }),
        ("violations", |timeline| {
            let open = timeline.start("HTTP-get", "/api".repeat(10)).unwrap();
            for n in 0..20 {
                timeline.record(
                    "SQL-main",
                    format!("late {n}"),
                    Instant::now(),
                    Duration::ZERO,
                );
            }
            drop(open);
        }),
        ("nesting actions", |timeline| {
            for n in 0..10 {
                let outer = timeline
                    .start_nested("SQL-main", format!("transaction {n}"))
                    .unwrap();
                drop(timeline.start("SQL-main", "INSERT").unwrap());
                outer.finish_with(Outcome::Error("rolled back".to_owned()));
            }
        }),
    ];
    on_a_new_thread(|| {
        // Symbolising a backtrace loads debug info for good, and the one-off
        // allocations of a thread and of formatting are made once: run every
        // step once unmeasured, on a timeline kept alive so that its storage
        // is not reused.
        let build = || {
            Timeline::builder()
                .capture_backtraces_if(|_, detail| detail.starts_with("traced"))
                .build()
        };
        let warm_up = build();
        for (_, mut step) in steps {
            allocated_and_counted(&warm_up, &mut step);
        }
        let timeline = build();
        for (what, mut step) in steps {
            let (allocated, counted) = allocated_and_counted(&timeline, &mut step);
            assert_eq!(allocated, counted, "{what}");
        }
        assert_eq!(timeline.len(), 1 + 100 + 100 + 50 + 10 + 21 + 20);
        assert_eq!(timeline.violations().len(), 20);
    });
}
