//! Building reports is linear in the number of actions:
//! `cargo bench -p timeline-core --bench report`.
//!
//! A third of the actions repeat one statement with varying values (so the
//! N+1 grouping has work to do), the rest are distinct.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use timeline_core::__hooks::normalise;
use timeline_core::Timeline;

fn timeline_of(actions: usize) -> Timeline {
    let timeline = Timeline::builder().max_actions(actions).build();
    for n in 0..actions {
        let detail = if n % 3 == 0 {
            format!("SELECT name, email FROM person WHERE id = {n}")
        } else {
            format!(
                "SELECT * FROM bug_{} WHERE id IN ({n}, {}, 'x''{n}')",
                n % 50,
                n + 1
            )
        };
        let category = if n % 10 == 0 {
            "memcache-get"
        } else {
            "SQL-main"
        };
        timeline.start(category, detail).unwrap().finish();
    }
    timeline
}

fn reports(c: &mut Criterion) {
    let mut group = c.benchmark_group("report");
    for actions in [1_000usize, 10_000, 100_000] {
        let timeline = timeline_of(actions);
        group.throughput(Throughput::Elements(actions as u64));
        group.bench_with_input(BenchmarkId::new("summary", actions), &timeline, |b, t| {
            b.iter(|| black_box(t.summary()))
        });
        group.bench_with_input(
            BenchmarkId::new("report_to_json", actions),
            &timeline,
            |b, t| b.iter(|| black_box(t.report().to_json())),
        );
        group.bench_with_input(
            BenchmarkId::new("chrome_trace", actions),
            &timeline,
            |b, t| b.iter(|| black_box(t.to_chrome_trace())),
        );
    }
    group.finish();
}

/// The statement normaliser alone, on the details of [`timeline_of`].
fn normaliser(c: &mut Criterion) {
    let details: Vec<String> = timeline_of(1_000)
        .actions()
        .iter()
        .map(|a| a.detail().to_owned())
        .collect();
    let mut group = c.benchmark_group("normalise");
    group.throughput(Throughput::Elements(details.len() as u64));
    group.bench_function("details/1000", |b| {
        b.iter(|| {
            for detail in &details {
                black_box(normalise(detail));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = reports, normaliser
}
criterion_main!(benches);
