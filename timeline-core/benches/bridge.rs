//! The cost of the tracing bridge, against the peers in one run:
//! `cargo bench -p timeline-core --features tracing --bench bridge`.
//!
//! - `sqlx_event`: the event sqlx emits per query (same target, fields and
//!   level), recorded by `TimelineLayer` onto an entered timeline, against
//!   the same event formatted by `tracing_subscriber::fmt` into
//!   `std::io::sink`.
//! - `unselected_event`: a DEBUG event nobody records, under the registry
//!   alone, with `TimelineLayer`, and — what its forwarding of
//!   `downcast_raw` buys — beside an `info` fmt layer, as it is and with the
//!   per-layer filter hidden from `tracing_subscriber`.
//!
//! Every case emits `EVENTS` events per iteration, so the per-event figure
//! is the iteration time divided by `EVENTS`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use timeline_core::Timeline;
use timeline_core::integrations::tracing::TimelineLayer;
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, fmt};

const EVENTS: u64 = 1_000;

/// What sqlx-core 0.8.6's `QueryLogger::finish` emits for a short query.
#[inline(never)]
fn sqlx_event() {
    let elapsed = Duration::from_micros(120);
    tracing::debug!(
        target: "sqlx::query",
        summary = "select name from person …",
        db.statement = "\n\nselect name from person where id = ?\n",
        rows_affected = 0u64,
        rows_returned = 1u64,
        ?elapsed,
        elapsed_secs = elapsed.as_secs_f64(),
    );
}

#[inline(never)]
fn unselected_event() {
    tracing::debug!(target: "my_app::cache", key = 42, "cache hit");
}

fn sqlx_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("sqlx_event");
    group.throughput(Throughput::Elements(EVENTS));
    let timeline_layer = Dispatch::new(tracing_subscriber::registry().with(TimelineLayer::new()));
    tracing::dispatcher::with_default(&timeline_layer, || {
        group.bench_function("timeline_layer", |b| {
            b.iter(|| {
                // One request: a fresh timeline, entered, read out at the end.
                let timeline = Timeline::new();
                timeline.scope(|| {
                    for _ in 0..EVENTS {
                        sqlx_event();
                    }
                });
                black_box(timeline.len())
            })
        });
    });
    let fmt_sink =
        Dispatch::new(tracing_subscriber::registry().with(fmt::layer().with_writer(std::io::sink)));
    tracing::dispatcher::with_default(&fmt_sink, || {
        group.bench_function("fmt_to_sink", |b| {
            b.iter(|| {
                for _ in 0..EVENTS {
                    sqlx_event();
                }
            })
        });
    });
    group.finish();
}

/// Forwards everything to `L` except the downcast through which
/// `tracing_subscriber` recognises a per-layer filtered layer: what
/// `TimelineLayer` would be without its one `unsafe` method.
struct Unrecognised<L>(L);

impl<S, L> Layer<S> for Unrecognised<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.0.register_callsite(metadata)
    }
    fn enabled(&self, metadata: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.0.enabled(metadata, ctx)
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.0.max_level_hint()
    }
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        self.0.on_event(event, ctx);
    }
}

fn unselected_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("unselected_event");
    group.throughput(Throughput::Elements(EVENTS));
    let mut run = |name: &str, dispatch: Dispatch| {
        tracing::dispatcher::with_default(&dispatch, || {
            group.bench_function(name, |b| {
                b.iter(|| {
                    for _ in 0..EVENTS {
                        unselected_event();
                    }
                })
            });
        });
    };
    run(
        "registry_alone",
        Dispatch::new(tracing_subscriber::registry()),
    );
    run(
        "registry_timeline_layer",
        Dispatch::new(tracing_subscriber::registry().with(TimelineLayer::new())),
    );
    let info_log = || {
        fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(EnvFilter::new("info"))
    };
    run(
        "registry_info_fmt",
        Dispatch::new(tracing_subscriber::registry().with(info_log())),
    );
    run(
        "registry_info_fmt_timeline_layer",
        Dispatch::new(
            tracing_subscriber::registry()
                .with(info_log())
                .with(TimelineLayer::new()),
        ),
    );
    run(
        "registry_info_fmt_timeline_layer_unrecognised",
        Dispatch::new(
            tracing_subscriber::registry()
                .with(info_log())
                .with(Unrecognised(TimelineLayer::new())),
        ),
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = sqlx_events, unselected_events
}
criterion_main!(benches);
