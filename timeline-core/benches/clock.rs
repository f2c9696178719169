//! The clocks a timeline could read, side by side in one run:
//! `cargo bench -p timeline-core --bench clock`.
//!
//! Every case reads the clock twice per "action", as a timeline does at an
//! action's start and end, 1,000 actions per iteration. `rdtsc` is the
//! floor every x86_64 CPU has; the fenced variants are what a clock needs
//! if the read must not be reordered before earlier loads; `quanta` and
//! `fastant` are the maintained crates that read the same counter.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ACTIONS: u64 = 1_000;

fn pairs(c: &mut Criterion) {
    let mut group = c.benchmark_group("clock");
    group.throughput(Throughput::Elements(ACTIONS));
    let mut case = |name: &str, read: &dyn Fn() -> u64| {
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..ACTIONS {
                    let start = read();
                    black_box(read().wrapping_sub(start));
                }
            })
        });
    };
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{__rdtscp, _mm_lfence, _rdtsc};
        // SAFETY (all three): the instructions exist on every x86_64 CPU
        // this bench runs on and touch no memory but `aux`.
        #[allow(unsafe_code)]
        case("two_rdtsc", &|| unsafe { _rdtsc() });
        #[allow(unsafe_code)]
        case("two_lfence_rdtsc", &|| unsafe {
            _mm_lfence();
            _rdtsc()
        });
        #[allow(unsafe_code)]
        case("two_rdtscp", &|| {
            let mut aux = 0;
            unsafe { __rdtscp(&mut aux) }
        });
    }
    // A timeline reads the TSC once the process-wide scale has been
    // measured over 10 ms: between the first clock and a later one.
    let _first = timeline_core::__hooks::BenchClock::new();
    std::thread::sleep(Duration::from_millis(15));
    let clock = timeline_core::__hooks::BenchClock::new();
    assert!(clock.reads_ticks(), "the TSC is not usable here");
    case("two_timeline_clock_reads", &|| clock.now_ns());
    let baseline = Instant::now();
    case("two_std_instant_now", &|| {
        Instant::now().duration_since(baseline).as_nanos() as u64
    });
    let quanta = quanta::Clock::new();
    case("two_quanta_raw", &|| quanta.raw());
    let quanta_start = quanta.now();
    case("two_quanta_now", &|| {
        quanta.now().duration_since(quanta_start).as_nanos() as u64
    });
    let start = fastant::Instant::now();
    case("two_fastant_now", &|| {
        fastant::Instant::now().duration_since(start).as_nanos() as u64
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = pairs
}
criterion_main!(benches);
