//! The floor ratio that criterion's medians blur on a shared machine:
//! `cargo bench -p timeline-core --bench interleaved`.
//!
//! One "request" (a fresh timeline, 1,000 `start` + drop with static
//! strings, then `actions()`) alternates with 1,000 pairs of raw `rdtsc`
//! reads, 4,000 times each, and the distribution of each is printed in
//! ticks per action. Measured in alternation, the two see the same state of
//! the machine, so their ratio holds however loaded it is.
//!
//! On the 2-vCPU VMs of this project that state is bimodal over tens of
//! milliseconds: while the other hardware thread is busy (another tenant),
//! the timeline's instructions run at about two thirds of the speed while
//! `rdtsc`'s cost barely changes, so the ratio moves by half. The minimum
//! is the ratio on a quiet core; the median, what criterion reports, mixes
//! both states in whatever proportion the run met. BENCHMARKS.md quotes
//! both.
//!
//! Target 2 of the same issue is measured the same way: a request of
//! `#[timed]` calls against one of hand-written guards that look up
//! `current()` per call, in alternation.
//!
//! With three places that start actions, the compiler no longer inlines
//! the start into each of them, as in an application that starts actions
//! from many places. With one, it does, and the floor ratio reads lower
//! than an application gets: by about 0.4 before the out-of-line start
//! stopped copying through the stack, by about 0.15 since.
//!
//! The same goes for two threads against one, each with a timeline of its
//! own: two parked workers run rounds of 20 requests, one worker or both
//! in alternation, and the throughput of both is compared with one's.
//!
//! Set `MALLOC_TRIM_THRESHOLD_=4000000000`: otherwise glibc gives the freed
//! `actions()` vector back to the kernel between requests, and faulting it
//! in again is counted too.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use timeline_core::{Timeline, timed};

const ACTIONS: u64 = 1_000;
const REQUESTS: usize = 4_000;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn ticks() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and touches no memory.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(target_arch = "x86_64")]
fn two_raw_tsc_reads() -> u64 {
    let began = ticks();
    for _ in 0..ACTIONS {
        let start = black_box(ticks());
        black_box(ticks().wrapping_sub(start));
    }
    ticks() - began
}

#[cfg(target_arch = "x86_64")]
fn start_drop_held() -> u64 {
    let began = ticks();
    request();
    ticks() - began
}

fn request() {
    let timeline = Timeline::new();
    for _ in 0..ACTIONS {
        drop(black_box(timeline.start("SQL-main", "SELECT 1")));
    }
    black_box(timeline.actions());
}

#[timed(category = "SQL-main", detail = "SELECT 1")]
#[inline(never)]
fn timed_query(i: u64) -> u64 {
    i.wrapping_mul(3)
}

/// What `#[timed]` does, by hand: look up the current timeline at each call.
#[inline(never)]
fn hand_written_lookup_query(i: u64) -> u64 {
    let _guard = timeline_core::current().map(|timeline| timeline.start("SQL-main", "SELECT 1"));
    i.wrapping_mul(3)
}

/// Ticks for a request of `ACTIONS` calls of `query` on a current timeline.
#[cfg(target_arch = "x86_64")]
fn current_request(query: fn(u64) -> u64) -> u64 {
    let began = ticks();
    let timeline = Timeline::new();
    timeline.scope(|| {
        for i in 0..ACTIONS {
            black_box(query(black_box(i)));
        }
    });
    black_box(timeline.actions());
    ticks() - began
}

/// Ticks per round of `ROUND` requests with one worker busy, and with both.
#[cfg(target_arch = "x86_64")]
fn one_and_two_threads() -> (Vec<u64>, Vec<u64>) {
    const ROUND: usize = 20;
    const ROUNDS: usize = 300;
    let go = Arc::new(Barrier::new(3));
    let done = Arc::new(Barrier::new(3));
    let busy = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let (go, done, busy, stop) = (go.clone(), done.clone(), busy.clone(), stop.clone());
            thread::spawn(move || {
                loop {
                    go.wait();
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    if worker < busy.load(Ordering::Acquire) {
                        for _ in 0..ROUND {
                            request();
                        }
                    }
                    done.wait();
                }
            })
        })
        .collect();
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for (threads, times) in [(1, &mut one), (2, &mut two)] {
            busy.store(threads, Ordering::Release);
            let began = ticks();
            go.wait();
            done.wait();
            times.push(ticks() - began);
        }
    }
    stop.store(true, Ordering::Release);
    go.wait();
    for worker in workers {
        worker.join().expect("worker");
    }
    (one, two)
}

/// Ticks per action at the minimum, the 10th percentile and the median.
fn quantiles(mut per_request: Vec<u64>) -> [f64; 3] {
    per_request.sort_unstable();
    [0.0, 0.1, 0.5].map(|q| {
        let at = ((per_request.len() - 1) as f64 * q) as usize;
        per_request[at] as f64 / ACTIONS as f64
    })
}

#[cfg(target_arch = "x86_64")]
fn print_row(label: &str, quantiles: [f64; 3]) {
    let [min, p10, p50] = quantiles;
    println!("{label:<26} {min:6.1} {p10:6.1} {p50:6.1}");
}

#[cfg(target_arch = "x86_64")]
fn print_ratio(label: &str, over: [f64; 3], under: [f64; 3]) {
    let [min, p10, p50] = [0, 1, 2].map(|at| over[at] / under[at]);
    println!("{label:<26} {min:6.2} {p10:6.2} {p50:6.2}");
}

#[cfg(target_arch = "x86_64")]
fn main() {
    // A timeline reads the TSC once its scale has been measured over 10 ms.
    drop(Timeline::new());
    std::thread::sleep(std::time::Duration::from_millis(15));
    let (mut floor, mut held) = (Vec::new(), Vec::new());
    for _ in 0..REQUESTS {
        floor.push(two_raw_tsc_reads());
        held.push(start_drop_held());
    }
    let (mut lookup, mut timed) = (Vec::new(), Vec::new());
    for _ in 0..REQUESTS {
        lookup.push(current_request(hand_written_lookup_query));
        timed.push(current_request(timed_query));
    }
    let floor = quantiles(floor);
    let held = quantiles(held);
    let (lookup, timed) = (quantiles(lookup), quantiles(timed));
    println!("ticks per action            min    p10    p50");
    print_row("two raw TSC reads", floor);
    print_row("start_drop_held", held);
    print_ratio("× the floor", held, floor);
    print_row("guard, current() per call", lookup);
    print_row("#[timed], timeline current", timed);
    print_ratio("#[timed] × the guard", timed, lookup);
    let (one, two) = one_and_two_threads();
    // Two threads do twice the work of one in their round: throughput over
    // all rounds, and in the median round.
    let total = |rounds: &[u64]| rounds.iter().sum::<u64>() as f64;
    let over_all = 2.0 * total(&one) / total(&two);
    let (one, two) = (quantiles(one), quantiles(two));
    println!(
        "two threads' throughput × one's: {over_all:.2} over all rounds, {:.2} in the median",
        2.0 * one[2] / two[2]
    );
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("the TSC floor is measured on x86_64 only");
}
