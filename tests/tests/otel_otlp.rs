//! A real OTLP/HTTP export: `opentelemetry-otlp`'s exporter (binary
//! protobuf over HTTP) sends a timeline's spans to a receiver on loopback,
//! started by the test, which decodes them with the official protobuf
//! definitions (`opentelemetry-proto`) and checks what arrived.

use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::post;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode as Code};
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;
use timeline_core::integrations::opentelemetry::{
    RequestSpan, SpanExport, TimelineIdGenerator, export,
};
use timeline_core::{Outcome, Timeline, TraceContext};
use tokio::sync::mpsc;

/// Decodes every export request it receives and passes it on.
async fn receive(
    State(received): State<mpsc::UnboundedSender<ExportTraceServiceRequest>>,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let content_type = [(header::CONTENT_TYPE, "application/x-protobuf")];
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            let _ = received.send(request);
            let response = ExportTraceServiceResponse::default().encode_to_vec();
            (StatusCode::OK, content_type, response)
        }
        Err(_) => (StatusCode::BAD_REQUEST, content_type, Vec::new()),
    }
}

/// A receiver on a loopback port, on a runtime of its own: the exporter's
/// blocking HTTP client must not run inside it.
fn start_receiver() -> (
    tokio::runtime::Runtime,
    SocketAddr,
    mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (sender, received) = mpsc::unbounded_channel();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(sender);
    runtime.spawn(async move { axum::serve(listener, app).await });
    (runtime, address, received)
}

fn provider(address: SocketAddr) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("http://{address}/v1/traces"))
        .with_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(TimelineIdGenerator::default())
        .build()
}

/// Every span that arrived, until `count` did (or ten seconds passed).
fn spans(
    received: &mut mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
    count: usize,
) -> Vec<Span> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut spans = Vec::new();
    while spans.len() < count && Instant::now() < deadline {
        match received.try_recv() {
            Ok(request) => spans.extend(
                request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans),
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    spans
}

fn string_attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

fn unix_nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[test]
fn a_timeline_arrives_at_an_otlp_receiver_as_protobuf_spans() {
    let (runtime, address, mut received) = start_receiver();
    let provider = provider(address);
    let tracer = provider.tracer("timeline-tests");

    let timeline = Timeline::new();
    let context = TraceContext::parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        None,
    )
    .unwrap();
    timeline.set_trace_context(context.clone());
    let started = Instant::now();
    timeline.record(
        "SQL-main",
        "SELECT * FROM bug WHERE id = 1",
        started,
        Duration::from_millis(2),
    );
    timeline
        .start("HTTP-GET", "https://api.example.com/users/7")
        .unwrap()
        .finish_with(Outcome::Error("connection refused".into()));
    export(
        &timeline,
        &tracer,
        RequestSpan::new("GET").end(Duration::from_millis(50)),
    );
    provider.force_flush().unwrap();

    let spans = spans(&mut received, 3);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let trace_id = context.trace_id().to_bytes();
    assert!(spans.iter().all(|span| span.trace_id == trace_id));

    let root = spans.iter().find(|s| s.name == "GET").unwrap();
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(root.span_id, context.span_id().to_bytes());
    assert_eq!(
        root.parent_span_id,
        [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
    );
    assert_eq!(root.start_time_unix_nano, unix_nanos(timeline.baseline()));
    assert_eq!(
        root.end_time_unix_nano - root.start_time_unix_nano,
        50_000_000
    );

    let select = spans.iter().find(|s| s.name == "SQL-main").unwrap();
    assert_eq!(select.parent_span_id, root.span_id);
    assert_eq!(select.kind, SpanKind::Client as i32);
    assert_eq!(
        string_attribute(select, "db.query.text"),
        Some("SELECT * FROM bug WHERE id = 1")
    );
    assert_eq!(
        string_attribute(select, "db.system.name"),
        Some("other_sql")
    );
    assert_eq!(
        select.start_time_unix_nano,
        unix_nanos(timeline.baseline() + timeline.actions()[0].start())
    );
    assert_eq!(
        select.end_time_unix_nano - select.start_time_unix_nano,
        2_000_000
    );

    let call = spans.iter().find(|s| s.name == "HTTP-GET").unwrap();
    assert_eq!(call.parent_span_id, root.span_id);
    assert_eq!(
        string_attribute(call, "server.address"),
        Some("api.example.com")
    );
    let status = call.status.as_ref().unwrap();
    assert_eq!(status.code, Code::Error as i32);
    assert_eq!(status.message, "connection refused");

    provider.shutdown().unwrap();
    drop(runtime);
}

#[test]
fn the_export_thread_feeds_the_batch_exporter() {
    let (runtime, address, mut received) = start_receiver();
    let provider = provider(address);
    let export_queue = SpanExport::new(provider.tracer("timeline-tests"));
    for n in 0..20 {
        let timeline = Timeline::new();
        timeline
            .start("SQL-main", format!("SELECT * FROM bug WHERE id = {n}"))
            .unwrap()
            .finish();
        assert!(export_queue.export(timeline, RequestSpan::new("job")));
    }
    assert!(export_queue.flush(Duration::from_secs(10)));
    provider.force_flush().unwrap();
    let spans = spans(&mut received, 40);
    assert_eq!(spans.len(), 40);
    assert_eq!(spans.iter().filter(|s| s.name == "job").count(), 20);
    provider.shutdown().unwrap();
    drop(runtime);
}
