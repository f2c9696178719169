//! The cost of one action, against the physical floor and the peers, in one
//! run: `cargo bench -p timeline-core --bench action`.
//!
//! Every case performs `ACTIONS` actions per iteration as one "request",
//! including setting up the request and reading its records out, so the
//! per-action figure is the iteration time divided by `ACTIONS`.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::Mutex;
use timeline_core::{Timeline, timed};

const ACTIONS: u64 = 1_000;

/// What every peer stores per action: name, start and duration.
type Records = Arc<Mutex<Vec<(&'static str, Instant, Duration)>>>;

// --- the floor -------------------------------------------------------------

fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    group.throughput(Throughput::Elements(ACTIONS));
    // The physical floor every x86_64 CPU has: ratios are stated against it.
    #[cfg(target_arch = "x86_64")]
    group.bench_function("two_raw_tsc_reads", |b| {
        // SAFETY: RDTSC exists on every x86_64 CPU and touches no memory.
        #[allow(unsafe_code)]
        let read = || unsafe { core::arch::x86_64::_rdtsc() };
        b.iter(|| {
            for _ in 0..ACTIONS {
                let start = black_box(read());
                black_box(read().wrapping_sub(start));
            }
        })
    });
    group.bench_function("two_std_instant_now", |b| {
        b.iter(|| {
            for _ in 0..ACTIONS {
                let start = black_box(Instant::now());
                black_box(Instant::now().duration_since(start));
            }
        })
    });
    thread_local!(static LOCAL: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
    group.bench_function("thread_local_lookup", |b| {
        b.iter(|| {
            for _ in 0..ACTIONS {
                black_box(LOCAL.with(|l| l.get()));
            }
        })
    });
    group.bench_function("plain_call", |b| {
        b.iter(|| {
            for i in 0..ACTIONS {
                black_box(plain(black_box(i)));
            }
        })
    });
    group.bench_function("two_std_reads_mutex_vec_push", |b| {
        thread_local!(static STORE: Records = Arc::default());
        b.iter(|| {
            for _ in 0..ACTIONS {
                let start = Instant::now();
                let duration = start.elapsed();
                STORE.with(|s| s.lock().push(("SELECT 1", start, duration)));
            }
            STORE.with(|s| black_box(std::mem::take(&mut *s.lock())));
        })
    });
    group.finish();
}

#[inline(never)]
fn plain(i: u64) -> u64 {
    i.wrapping_mul(3)
}

// --- timeline --------------------------------------------------------------

#[timed(category = "SQL-main", detail = "SELECT 1")]
#[inline(never)]
fn timed_query(i: u64) -> u64 {
    i.wrapping_mul(3)
}

#[inline(never)]
fn hand_written_query(timeline: &Timeline, i: u64) -> u64 {
    let _guard = timeline.start("SQL-main", "SELECT 1");
    i.wrapping_mul(3)
}

/// What `#[timed]` does by hand: look up the current timeline at each call.
#[inline(never)]
fn hand_written_lookup_query(i: u64) -> u64 {
    let _guard = timeline_core::current().map(|timeline| timeline.start("SQL-main", "SELECT 1"));
    i.wrapping_mul(3)
}

fn timeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("timeline");
    group.throughput(Throughput::Elements(ACTIONS));
    group.bench_function("start_drop_held", |b| {
        b.iter(|| {
            let timeline = Timeline::new();
            for _ in 0..ACTIONS {
                drop(black_box(timeline.start("SQL-main", "SELECT 1")));
            }
            black_box(timeline.actions())
        })
    });
    group.bench_function("hand_written_guard_current", |b| {
        b.iter(|| {
            let timeline = Timeline::new();
            timeline.scope(|| {
                let current = timeline_core::current().expect("entered");
                for i in 0..ACTIONS {
                    black_box(hand_written_query(&current, black_box(i)));
                }
            });
            black_box(timeline.actions())
        })
    });
    group.bench_function("hand_written_lookup_per_call", |b| {
        b.iter(|| {
            let timeline = Timeline::new();
            timeline.scope(|| {
                for i in 0..ACTIONS {
                    black_box(hand_written_lookup_query(black_box(i)));
                }
            });
            black_box(timeline.actions())
        })
    });
    group.bench_function("timed_current", |b| {
        b.iter(|| {
            let timeline = Timeline::new();
            timeline.scope(|| {
                for i in 0..ACTIONS {
                    black_box(timed_query(black_box(i)));
                }
            });
            black_box(timeline.actions())
        })
    });
    group.bench_function("timed_no_timeline", |b| {
        b.iter(|| {
            for i in 0..ACTIONS {
                black_box(timed_query(black_box(i)));
            }
        })
    });
    group.bench_function("start_drop_dynamic_detail", |b| {
        b.iter(|| {
            let timeline = Timeline::new();
            for i in 0..ACTIONS {
                let detail = format!("SELECT * FROM bug WHERE id = {i}");
                drop(black_box(timeline.start("SQL-main", detail)));
            }
            black_box(timeline.actions())
        })
    });
    group.finish();
}

// --- tracing: #[instrument] + registry + a layer storing each span ---------

mod with_tracing {
    use super::*;
    use tracing::span;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    /// Stores name, start and duration of every closed span: the same job
    /// as a timeline.
    #[derive(Clone, Default)]
    pub(super) struct StoringLayer {
        pub(super) records: Records,
    }

    struct Started(Instant);

    impl<S> tracing_subscriber::Layer<S> for StoringLayer
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_new_span(&self, _attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(Started(Instant::now()));
            }
        }

        fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(&id) {
                if let Some(Started(start)) = span.extensions().get::<Started>() {
                    self.records
                        .lock()
                        .push((span.name(), *start, start.elapsed()));
                }
            }
        }
    }

    #[tracing::instrument(name = "SQL-main", skip_all)]
    #[inline(never)]
    pub(super) fn query(i: u64) -> u64 {
        i.wrapping_mul(3)
    }

    pub(super) fn subscriber(layer: StoringLayer) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::registry().with(layer)
    }
}

fn peers(c: &mut Criterion) {
    let mut group = c.benchmark_group("peers");
    group.throughput(Throughput::Elements(ACTIONS));

    let layer = with_tracing::StoringLayer::default();
    let records = Arc::clone(&layer.records);
    let dispatch = tracing::Dispatch::new(with_tracing::subscriber(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        group.bench_function("tracing_instrument_storing_layer", |b| {
            b.iter(|| {
                for i in 0..ACTIONS {
                    black_box(with_tracing::query(black_box(i)));
                }
                black_box(std::mem::take(&mut *records.lock()))
            })
        });
    });
    group.bench_function("tracing_no_subscriber", |b| {
        b.iter(|| {
            for i in 0..ACTIONS {
                black_box(with_tracing::query(black_box(i)));
            }
        })
    });

    let reported = with_fastrace::install();
    group.bench_function("fastrace_trace_flush_per_request", |b| {
        b.iter(|| {
            with_fastrace::request();
            fastrace::flush();
            black_box(std::mem::take(&mut *reported.lock()))
        })
    });
    group.bench_function("fastrace_trace_background_collector", |b| {
        b.iter(|| {
            with_fastrace::request();
        })
    });
    fastrace::flush();
    group.finish();
}

mod with_fastrace {
    use super::*;
    use fastrace::collector::{Config, Reporter, SpanContext};
    use fastrace::prelude::*;

    struct StoringReporter(Arc<Mutex<Vec<SpanRecord>>>);

    impl Reporter for StoringReporter {
        fn report(&mut self, spans: Vec<SpanRecord>) {
            self.0.lock().extend(spans);
        }
    }

    pub(super) fn install() -> Arc<Mutex<Vec<SpanRecord>>> {
        let store = Arc::new(Mutex::new(Vec::new()));
        fastrace::set_reporter(StoringReporter(Arc::clone(&store)), Config::default());
        store
    }

    #[trace(name = "SQL-main")]
    #[inline(never)]
    fn query(i: u64) -> u64 {
        i.wrapping_mul(3)
    }

    pub(super) fn request() {
        let root = Span::root("request", SpanContext::random());
        let _parent = root.set_local_parent();
        for i in 0..ACTIONS {
            black_box(query(black_box(i)));
        }
    }
}

// --- scaling: threads with timelines of their own --------------------------

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling");
    for threads in [1u64, 2] {
        group.throughput(Throughput::Elements(ACTIONS * threads));
        group.bench_with_input(
            BenchmarkId::new("own_timeline_per_thread", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    let workers: Vec<_> = (0..threads)
                        .map(|_| {
                            thread::spawn(move || {
                                for _ in 0..iters {
                                    let timeline = Timeline::new();
                                    timeline.scope(|| {
                                        for i in 0..ACTIONS {
                                            black_box(timed_query(black_box(i)));
                                        }
                                    });
                                    black_box(timeline.actions());
                                }
                            })
                        })
                        .collect();
                    for worker in workers {
                        worker.join().expect("worker");
                    }
                    start.elapsed()
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = floor, timeline, breakdown, peers, scaling
}
criterion_main!(benches);
/// Where the time of `timeline/start_drop_held` goes: without reading the
/// actions out, and without storing them at all.
fn breakdown(c: &mut Criterion) {
    let mut group = c.benchmark_group("breakdown");
    group.throughput(Throughput::Elements(ACTIONS));
    group.bench_function("start_drop_no_readout", |b| {
        b.iter(|| {
            let timeline = Timeline::new();
            for _ in 0..ACTIONS {
                drop(black_box(timeline.start("SQL-main", "SELECT 1")));
            }
            black_box(timeline.len())
        })
    });
    // `timeline/start_drop_held` records the caller's location; this is
    // the same without it.
    group.bench_function("start_drop_held_without_call_site", |b| {
        b.iter(|| {
            let timeline = Timeline::new();
            for _ in 0..ACTIONS {
                drop(black_box(timeline_core::__hooks::start_without_call_site(
                    &timeline, "SQL-main", "SELECT 1",
                )));
            }
            black_box(timeline.actions())
        })
    });
    group.bench_function("start_drop_not_stored", |b| {
        let timeline = Timeline::builder().max_actions(0).build();
        b.iter(|| {
            for _ in 0..ACTIONS {
                drop(black_box(timeline.start("SQL-main", "SELECT 1")));
            }
        })
    });
}
