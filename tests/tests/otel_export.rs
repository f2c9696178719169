//! The OpenTelemetry export through the SDK's real tracer provider into its
//! in-memory exporter: the span tree, times, attributes, status, parents,
//! and the trace context it continues.

use std::time::{Duration, Instant, SystemTime};

use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracer, SdkTracerProvider, SpanData};
use timeline_core::integrations::opentelemetry::{RequestSpan, SpanExport, export};
use timeline_core::{Outcome, Timeline, TraceContext};
use timeline_tests::otel::{attribute, in_memory_provider};

struct Otel {
    spans: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

impl Otel {
    fn new() -> Otel {
        let (spans, provider) = in_memory_provider();
        Otel { spans, provider }
    }

    fn tracer(&self) -> SdkTracer {
        self.provider.tracer("timeline-tests")
    }

    fn finished(&self) -> Vec<SpanData> {
        self.spans.get_finished_spans().unwrap()
    }
}

fn by_detail<'a>(spans: &'a [SpanData], detail: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|span| {
            ["db.query.text", "url.full", "timeline.detail"]
                .iter()
                .any(|key| attribute(span, key).is_some_and(|v| v.as_str() == detail))
        })
        .unwrap_or_else(|| panic!("no span with detail {detail:?}"))
}

fn by_name<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|span| span.name == name).unwrap()
}

#[test]
fn a_request_span_with_one_child_per_action_at_the_measured_times() {
    let otel = Otel::new();
    let timeline = Timeline::new();
    let started = Instant::now();
    timeline.record(
        "SQL-main",
        "SELECT * FROM bug WHERE id = 1",
        started,
        Duration::from_millis(3),
    );
    timeline.record(
        "memcache-get",
        "bug:1",
        started + Duration::from_millis(5),
        Duration::from_millis(1),
    );
    let request = export(
        &timeline,
        &otel.tracer(),
        RequestSpan::new("GET").end(Duration::from_millis(20)),
    );

    let spans = otel.finished();
    assert_eq!(spans.len(), 3);
    let root = by_name(&spans, "GET");
    assert_eq!(root.span_context.span_id(), request.span_id());
    assert_eq!(root.span_kind, SpanKind::Server);
    assert_eq!(root.start_time, timeline.baseline());
    assert_eq!(
        root.end_time,
        timeline.baseline() + Duration::from_millis(20)
    );
    assert_eq!(attribute(root, "timeline.actions"), Some(&Value::I64(2)));

    let actions = timeline.actions();
    let select = by_detail(&spans, "SELECT * FROM bug WHERE id = 1");
    assert_eq!(select.name, "SQL-main");
    assert_eq!(select.span_kind, SpanKind::Client);
    assert_eq!(select.parent_span_id, request.span_id());
    assert_eq!(select.span_context.trace_id(), request.trace_id());
    assert_eq!(select.start_time, timeline.baseline() + actions[0].start());
    assert_eq!(
        select.end_time.duration_since(select.start_time).unwrap(),
        Duration::from_millis(3)
    );
    let get = by_detail(&spans, "bug:1");
    assert_eq!(get.name, "memcache-get");
    assert_eq!(get.start_time, timeline.baseline() + actions[1].start());
    assert_eq!(
        attribute(get, "timeline.category").unwrap().as_str(),
        "memcache-get"
    );
    assert!(get.start_time >= select.end_time);
}

#[test]
fn nesting_actions_parent_their_children_and_concurrent_ones_are_siblings() {
    let otel = Otel::new();
    let timeline = Timeline::new();
    let transaction = timeline.start_nested("SQL-main", "transaction").unwrap();
    timeline
        .start("SQL-main", "INSERT INTO bug VALUES (1)")
        .unwrap()
        .finish();
    let savepoint = timeline.start_nested("SQL-main", "savepoint").unwrap();
    timeline
        .start("SQL-main", "INSERT INTO bug VALUES (2)")
        .unwrap()
        .finish();
    savepoint.finish();
    transaction.finish();
    // Two calls side by side: the second is stored as concurrent.
    let first = timeline.start("HTTP-GET", "https://a.example/").unwrap();
    timeline.record(
        "HTTP-GET",
        "https://b.example/",
        Instant::now(),
        Duration::from_micros(10),
    );
    first.finish();
    assert!(timeline.actions()[5].is_concurrent());

    let request = export(&timeline, &otel.tracer(), RequestSpan::new("POST"));
    let spans = otel.finished();
    assert_eq!(spans.len(), 7);
    let transaction = by_detail(&spans, "transaction");
    let savepoint = by_detail(&spans, "savepoint");
    assert_eq!(transaction.span_kind, SpanKind::Internal);
    assert_eq!(
        attribute(transaction, "timeline.nested"),
        Some(&Value::Bool(true))
    );
    assert_eq!(transaction.parent_span_id, request.span_id());
    assert_eq!(
        by_detail(&spans, "INSERT INTO bug VALUES (1)").parent_span_id,
        transaction.span_context.span_id()
    );
    assert_eq!(savepoint.parent_span_id, transaction.span_context.span_id());
    assert_eq!(
        by_detail(&spans, "INSERT INTO bug VALUES (2)").parent_span_id,
        savepoint.span_context.span_id()
    );
    let a = by_detail(&spans, "https://a.example/");
    let b = by_detail(&spans, "https://b.example/");
    assert_eq!(a.parent_span_id, request.span_id());
    assert_eq!(b.parent_span_id, request.span_id());
    assert_eq!(
        attribute(b, "timeline.concurrent"),
        Some(&Value::Bool(true))
    );
    assert_eq!(attribute(a, "timeline.concurrent"), None);
}

#[test]
fn outcomes_become_span_status() {
    let otel = Otel::new();
    let timeline = Timeline::new();
    timeline.start("SQL-main", "SELECT ok").unwrap().finish();
    timeline
        .start("SQL-main", "SELECT broken")
        .unwrap()
        .finish_with(Outcome::Error("no such table: bug".into()));
    timeline
        .start("SQL-main", "SELECT cancelled")
        .unwrap()
        .finish_with(Outcome::Cancelled);
    timeline
        .start("SQL-main", "SELECT not reported")
        .unwrap()
        .finish_with(Outcome::NotReported);
    let _ = std::panic::catch_unwind(|| {
        let _guard = timeline.start("SQL-main", "SELECT panicked").unwrap();
        panic!("boom");
    });
    let in_flight = timeline.start("SQL-main", "SELECT in flight").unwrap();
    export(
        &timeline,
        &otel.tracer(),
        RequestSpan::new("GET").error("HTTP 500"),
    );
    drop(in_flight);

    let spans = otel.finished();
    assert_eq!(by_detail(&spans, "SELECT ok").status, Status::Unset);
    assert_eq!(
        by_detail(&spans, "SELECT broken").status,
        Status::error("no such table: bug")
    );
    let cancelled = by_detail(&spans, "SELECT cancelled");
    assert_eq!(cancelled.status, Status::Unset);
    assert_eq!(
        attribute(cancelled, "timeline.outcome").unwrap().as_str(),
        "cancelled"
    );
    // Not an error, and not an `Ok` the source never claimed.
    let not_reported = by_detail(&spans, "SELECT not reported");
    assert_eq!(not_reported.status, Status::Unset);
    assert_eq!(
        attribute(not_reported, "timeline.outcome")
            .unwrap()
            .as_str(),
        "not_reported"
    );
    assert_eq!(
        attribute(by_detail(&spans, "SELECT ok"), "timeline.outcome"),
        None
    );
    assert_eq!(
        by_detail(&spans, "SELECT panicked").status,
        Status::error("panicked")
    );
    let in_flight = by_detail(&spans, "SELECT in flight");
    assert_eq!(
        attribute(in_flight, "timeline.unfinished"),
        Some(&Value::Bool(true))
    );
    assert!(in_flight.end_time >= in_flight.start_time);
    assert_eq!(by_name(&spans, "GET").status, Status::error("HTTP 500"));
}

#[test]
fn semantic_convention_attributes_by_category_family() {
    let otel = Otel::new();
    let timeline = Timeline::new();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    timeline.start("SQL-sqlite", "SELECT 2").unwrap().finish();
    timeline
        .start(
            "HTTP-post",
            "https://bob:hunter2@api.example.com:8443/v1/bugs?q=1",
        )
        .unwrap()
        .finish();
    timeline
        .start("HTTP-PURGE", "http://cache.example/x")
        .unwrap()
        .finish();
    timeline
        .start("SMTP-send", "to: bob@example.com")
        .unwrap()
        .finish();
    export(&timeline, &otel.tracer(), RequestSpan::new("GET"));
    let spans = otel.finished();

    let main = by_detail(&spans, "SELECT 1");
    assert_eq!(
        attribute(main, "db.system.name").unwrap().as_str(),
        "other_sql"
    );
    assert_eq!(attribute(main, "db.statement"), None);
    let sqlite = by_detail(&spans, "SELECT 2");
    assert_eq!(
        attribute(sqlite, "db.system.name").unwrap().as_str(),
        "sqlite"
    );

    let post = by_detail(
        &spans,
        "https://REDACTED:REDACTED@api.example.com:8443/v1/bugs?q=1",
    );
    assert_eq!(
        attribute(post, "http.request.method").unwrap().as_str(),
        "POST"
    );
    assert_eq!(
        attribute(post, "server.address").unwrap().as_str(),
        "api.example.com"
    );
    assert_eq!(attribute(post, "server.port"), Some(&Value::I64(8443)));
    assert_eq!(post.span_kind, SpanKind::Client);
    let purge = by_detail(&spans, "http://cache.example/x");
    assert_eq!(
        attribute(purge, "http.request.method").unwrap().as_str(),
        "_OTHER"
    );
    assert_eq!(
        attribute(purge, "http.request.method_original")
            .unwrap()
            .as_str(),
        "PURGE"
    );
    assert_eq!(attribute(purge, "server.port"), Some(&Value::I64(80)));

    let smtp = by_detail(&spans, "to: bob@example.com");
    assert_eq!(
        attribute(smtp, "timeline.category").unwrap().as_str(),
        "SMTP-send"
    );
}

#[test]
fn details_are_filtered_before_export() {
    let otel = Otel::new();
    let timeline = Timeline::builder()
        .detail_filter(|sql| sql.replace("hunter2", "<password>"))
        .build();
    timeline
        .start(
            "SQL-main",
            "SELECT * FROM users WHERE password = 'hunter2' AND id = 42",
        )
        .unwrap()
        .finish();
    timeline
        .start("SQL-main", "SELECT secret")
        .unwrap()
        .finish();
    export(
        &timeline,
        &otel.tracer(),
        RequestSpan::new("GET").detail_filter(|detail| {
            assert!(
                !detail.contains("hunter2"),
                "the timeline's filter runs first"
            );
            if detail == "SELECT secret" {
                panic!("a filter bug");
            }
            detail.replace("42", "?")
        }),
    );
    let spans = otel.finished();
    by_detail(
        &spans,
        "SELECT * FROM users WHERE password = '<password>' AND id = ?",
    );
    by_detail(&spans, "<detail filter panicked>");
    assert!(spans.iter().all(|span| {
        span.attributes
            .iter()
            .all(|kv| !kv.value.as_str().contains("hunter2"))
    }));
}

#[test]
fn an_incoming_trace_is_continued_with_the_announced_span_id() {
    let otel = Otel::new();
    let timeline = Timeline::new();
    let context = TraceContext::parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("congo=t61rcWkgMzE"),
    )
    .unwrap();
    timeline.set_trace_context(context.clone());
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    let request = export(&timeline, &otel.tracer(), RequestSpan::new("GET"));

    let spans = otel.finished();
    let root = by_name(&spans, "GET");
    assert_eq!(
        root.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(root.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(root.parent_span_is_remote);
    // The id outgoing calls named as their parent.
    assert_eq!(
        root.span_context.span_id().to_bytes(),
        context.span_id().to_bytes()
    );
    assert_eq!(request.span_id(), root.span_context.span_id());
    assert_eq!(
        root.span_context.trace_state().header(),
        "congo=t61rcWkgMzE"
    );
    assert!(
        spans
            .iter()
            .all(|span| span.span_context.trace_id() == root.span_context.trace_id())
    );
    // The caller's trace id was not said to be random: neither are ours.
    assert!(
        spans
            .iter()
            .all(|span| span.span_context.trace_flags().to_u8() & 0x02 == 0)
    );
}

#[test]
fn a_trace_started_here_keeps_the_timeline_trace_id_and_has_a_root_span() {
    let otel = Otel::new();
    let timeline = Timeline::new();
    let context = TraceContext::new_trace(false);
    timeline.set_trace_context(context.clone());
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    export(&timeline, &otel.tracer(), RequestSpan::new("GET"));

    let spans = otel.finished();
    let root = by_name(&spans, "GET");
    assert_eq!(
        root.span_context.trace_id().to_bytes(),
        context.trace_id().to_bytes()
    );
    assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    assert!(!root.parent_span_is_remote);
    assert_eq!(
        root.span_context.span_id().to_bytes(),
        context.span_id().to_bytes()
    );
    // A trace started here has a random id, and every span says so, as the
    // outgoing traceparent does (Level 2's random-trace-id flag).
    assert!(context.is_random());
    assert_eq!(spans.len(), 2);
    assert!(
        spans
            .iter()
            .all(|span| span.span_context.trace_flags().to_u8() == 0x03)
    );
    // The summary line and the report name the same trace.
    let trace_id = context.trace_id().to_string();
    assert!(
        timeline
            .summary()
            .to_string()
            .ends_with(&format!(", trace {trace_id}"))
    );
    assert!(
        timeline
            .report()
            .to_json()
            .contains(&format!(r#""trace_id":"{trace_id}""#))
    );
}

#[test]
fn a_timeline_without_trace_context_gets_a_new_trace_from_the_sdk() {
    let otel = Otel::new();
    let timeline = Timeline::new();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    let request = export(&timeline, &otel.tracer(), RequestSpan::new("job"));
    let spans = otel.finished();
    assert_eq!(spans.len(), 2);
    assert!(request.is_valid());
    assert_eq!(
        by_name(&spans, "job").parent_span_id,
        opentelemetry::trace::SpanId::INVALID
    );
    assert!(!timeline.summary().to_string().contains("trace"));
    assert!(!timeline.report().to_json().contains("trace_id"));
}

#[test]
fn span_export_builds_spans_on_its_own_thread_and_survives_a_panicking_filter() {
    let otel = Otel::new();
    let export = SpanExport::new(otel.tracer());
    let timeline = Timeline::new();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    let threads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&threads);
    let noting_thread = RequestSpan::new("one").detail_filter(move |detail| {
        let name = std::thread::current().name().map(str::to_owned);
        seen.lock().unwrap().push(name);
        detail.to_owned()
    });
    assert!(export.export(timeline.clone(), noting_thread));
    let filter_panics = RequestSpan::new("two").detail_filter(|_| panic!("filter bug"));
    assert!(export.export(timeline.clone(), filter_panics));
    assert!(export.export(timeline.clone(), RequestSpan::new("three")));
    assert!(export.flush(Duration::from_secs(10)));
    let spans = otel.finished();
    assert_eq!(spans.len(), 6);
    assert_eq!(
        *threads.lock().unwrap(),
        [Some("timeline-otel-export".to_owned())]
    );
    assert_eq!(export.dropped(), 0);
}

#[test]
fn a_full_export_queue_drops_and_counts_instead_of_blocking() {
    let otel = Otel::new();
    let export = SpanExport::new(otel.tracer()).queue_capacity(2);
    let timeline = Timeline::new();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    // The first export's filter holds the export thread until released.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let holding = RequestSpan::new("held").detail_filter(move |detail| {
        let _ = held.lock().unwrap().recv();
        detail.to_owned()
    });
    let started = SystemTime::now();
    assert!(export.export(timeline.clone(), holding));
    let queued = (0..10)
        .filter(|_| export.export(timeline.clone(), RequestSpan::new("r")))
        .count();
    assert!(started.elapsed().unwrap() < Duration::from_secs(5));
    assert!(queued <= 2, "{queued} queued behind a held export thread");
    assert_eq!(export.dropped(), 10 - queued as u64);
    drop(release);
    assert!(export.flush(Duration::from_secs(10)));
    assert_eq!(otel.finished().len(), 2 * (1 + queued));
}

#[test]
fn an_action_s_call_site_is_exported_as_code_attributes() {
    let otel = Otel::new();
    let timeline = Timeline::new();
    let line = line!() + 1;
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    export(&timeline, &otel.tracer(), RequestSpan::new("GET"));
    let spans = otel.finished();
    let select = by_detail(&spans, "SELECT 1");
    assert_eq!(
        attribute(select, "code.file.path").unwrap().as_str(),
        file!()
    );
    assert_eq!(
        attribute(select, "code.line.number"),
        Some(&Value::I64(i64::from(line)))
    );
    assert_eq!(
        attribute(select, "code.column.number"),
        Some(&Value::I64(14))
    );
}
