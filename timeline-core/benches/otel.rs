//! The cost per exported action, against building the same spans live
//! through `tracing-opentelemetry`, in one run:
//! `cargo bench -p timeline-core --features opentelemetry --bench otel`.
//!
//! Every case is one "request" of `ACTIONS` SQL actions under a request
//! span, through the same SDK tracer provider (AlwaysOn, no processor: what
//! is measured is building and ending spans, not shipping them), so the
//! per-action figure is the iteration time divided by `ACTIONS`.
//!
//! - `timeline_record_and_export`: the whole cost — the actions recorded on
//!   a timeline while the request runs, then `export` after it.
//! - `timeline_export_only`: `export` of an already recorded timeline: what
//!   runs after the response, off the request's path.
//! - `timeline_record_only`: what stays on the request's path.
//! - `tracing_opentelemetry_live`: the same spans built while the request
//!   runs, by `tracing-opentelemetry` under a `tracing` registry.
//!
//! With `--features opentelemetry,tower`, the group `calls` measures a
//! traced request of `CALLS` outgoing calls, each an `HTTP-GET` action
//! with `TraceContext::inject_current` inside it (a span id per call), per
//! request: `request_with_calls` on the request's path,
//! `request_with_calls_and_export` with the export after it, and
//! `request_without_calls` the same actions with no call made, as a
//! reference.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use timeline_core::Timeline;
use timeline_core::integrations::opentelemetry::{RequestSpan, export};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

const ACTIONS: u64 = 100;
const STATEMENT: &str = "SELECT name, email FROM person WHERE id = ?";

fn record(timeline: &Timeline) {
    for _ in 0..ACTIONS {
        drop(timeline.start("SQL-main", STATEMENT));
    }
}

fn per_action(c: &mut Criterion) {
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("bench");
    let mut group = c.benchmark_group("otel_export");
    group.throughput(Throughput::Elements(ACTIONS));

    group.bench_function("timeline_record_and_export", |b| {
        b.iter(|| {
            let timeline = Timeline::new();
            record(&timeline);
            black_box(export(&timeline, &tracer, RequestSpan::new("GET")))
        })
    });
    group.bench_function("timeline_export_only", |b| {
        b.iter_batched(
            || {
                let timeline = Timeline::new();
                record(&timeline);
                timeline
            },
            |timeline| black_box(export(&timeline, &tracer, RequestSpan::new("GET"))),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("timeline_record_only", |b| {
        b.iter(|| {
            let timeline = Timeline::new();
            record(&timeline);
            black_box(timeline.len())
        })
    });

    let live = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"))),
    );
    tracing::dispatcher::with_default(&live, || {
        group.bench_function("tracing_opentelemetry_live", |b| {
            b.iter(|| {
                let request = tracing::info_span!("GET");
                let _request = request.enter();
                for _ in 0..ACTIONS {
                    let span = tracing::info_span!(
                        "SQL-main",
                        db.system.name = "other_sql",
                        db.query.text = STATEMENT
                    );
                    drop(span.enter());
                }
            })
        });
    });
    group.finish();
}

/// Outgoing calls per request in the `calls` group.
#[cfg(feature = "tower")]
const CALLS: usize = 20;

/// A traced request of `CALLS` actions, each an outgoing call when `call`.
#[cfg(feature = "tower")]
fn request(call: bool) -> Timeline {
    use timeline_core::TraceContext;

    let timeline = Timeline::new();
    timeline.set_trace_context(TraceContext::new_trace(true));
    timeline.scope(|| {
        for _ in 0..CALLS {
            let action = timeline
                .start("HTTP-GET", "http://bugs.internal/bugs/1")
                .unwrap();
            if call {
                let mut headers = http::HeaderMap::new();
                TraceContext::inject_current(&mut headers);
                black_box(headers);
            }
            action.finish();
        }
    });
    timeline
}

#[cfg(feature = "tower")]
fn calls(c: &mut Criterion) {
    use timeline_core::integrations::opentelemetry::TimelineIdGenerator;

    let provider = SdkTracerProvider::builder()
        .with_id_generator(TimelineIdGenerator::default())
        .build();
    let tracer = provider.tracer("bench");
    let mut group = c.benchmark_group("calls");
    group.bench_function("request_without_calls", |b| {
        b.iter(|| black_box(request(false).len()))
    });
    group.bench_function("request_with_calls", |b| {
        b.iter(|| black_box(request(true).len()))
    });
    group.bench_function("request_with_calls_and_export", |b| {
        b.iter(|| black_box(export(&request(true), &tracer, RequestSpan::new("GET"))))
    });
    group.finish();
}

#[cfg(not(feature = "tower"))]
fn calls(_: &mut Criterion) {}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = per_action, calls
}
criterion_main!(benches);
