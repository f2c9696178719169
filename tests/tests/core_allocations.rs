//! Allocations on the hot path, counted by a global allocator that counts
//! per thread (so parallel tests do not disturb each other).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use timeline_core::{Timeline, current};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates every call to `System` unchanged; counting touches only
// a const-initialised thread-local, which never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
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

    fn assert_send<T: Send>(_: &T) {}

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
