//! Two services, one trace: a `frontend` that calls the `bugs` service over
//! HTTP, each with the request layer exporting its timelines as
//! OpenTelemetry spans. The frontend records each call as an action and,
//! inside it, carries the trace on with `TraceContext::inject_current`: the
//! call's action becomes a span of its own, named as the parent. The bugs
//! service continues the trace, so its request, and its SQLite statements,
//! hang under the frontend's call. Prints the span tree.
//!
//! Run with `cargo run --example otel`. To send the spans to a collector
//! (Jaeger, Tempo, an OpenTelemetry Collector) as well, set the standard
//! variable: `OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 cargo run
//! --example otel` (OTLP over HTTP with protobuf).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use opentelemetry::trace::{SpanId, Status, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use timeline_core::integrations::opentelemetry::{SpanExport, TimelineIdGenerator};
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::{Outcome, TraceContext, current};
use timeline_examples::{bugs, web};

/// One service's telemetry pipeline.
struct Service {
    name: &'static str,
    provider: SdkTracerProvider,
    spans: InMemorySpanExporter,
    export: SpanExport,
}

impl Service {
    /// The SDK as a service would set it up: a tracer provider with the
    /// timeline's id generator, exporting to memory (for the printout) and,
    /// when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, to that collector.
    fn new(name: &'static str) -> Result<Service, Box<dyn std::error::Error>> {
        let spans = InMemorySpanExporter::default();
        let mut builder = SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name(name).build())
            .with_id_generator(TimelineIdGenerator::default())
            .with_simple_exporter(spans.clone());
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            // Reads OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS, _TIMEOUT…).
            let otlp = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()?;
            builder = builder.with_batch_exporter(otlp);
        }
        let provider = builder.build();
        let export = SpanExport::new(provider.tracer("timeline"));
        Ok(Service {
            name,
            provider,
            spans,
            export,
        })
    }

    fn layer(&self) -> RequestTimelineLayer {
        let name = self.name;
        RequestTimelineLayer::new()
            .export_spans(self.export.clone())
            .on_request(move |request| {
                eprintln!(
                    "[{name}] {} {} {}",
                    request.method(),
                    request.uri(),
                    request.timeline().summary_line()
                );
            })
    }
}

#[derive(Clone)]
struct Frontend {
    bugs: SocketAddr,
    client: reqwest::Client,
}

/// Calls the bugs service, recording the call on the request's timeline and
/// carrying the trace context in its headers, with the call as the parent.
async fn call(frontend: &Frontend, method: reqwest::Method, path: &str) -> String {
    let url = format!("http://{}{path}", frontend.bugs);
    let timeline = current().expect("the request's timeline");
    let action = timeline
        .start(format!("HTTP-{method}"), url.clone())
        .expect("one call at a time");
    // Inside the action: it becomes the call's span.
    let mut headers = reqwest::header::HeaderMap::new();
    TraceContext::inject_current(&mut headers);
    let sent = frontend
        .client
        .request(method, &url)
        .headers(headers)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => {
            let body = response.text().await.unwrap_or_default();
            action.finish();
            body
        }
        Ok(response) => {
            action.finish_with(Outcome::Error(format!("HTTP {}", response.status())));
            String::new()
        }
        Err(error) => {
            action.finish_with(Outcome::Error(error.to_string()));
            String::new()
        }
    }
}

/// The frontend's page: the product's bugs (the N+1 version, to have
/// something to see), then an attempt at a status the bugs service refuses.
async fn dashboard(State(frontend): State<Frontend>) -> String {
    let page = call(&frontend, reqwest::Method::GET, "/products/1/naive").await;
    call(&frontend, reqwest::Method::POST, "/bugs/1/status/Bogus").await;
    page
}

async fn serve(app: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("timeline-otel-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let database = dir.join("bugs.sqlite");
    bugs::create_database(&database)?;

    // Built outside the runtime: the OTLP exporter's HTTP client blocks.
    let frontend = Service::new("frontend")?;
    let bugs_service = Service::new("bugs")?;

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let bugs =
            serve(web::router(database.clone(), dir.join("spool")).layer(bugs_service.layer()))
                .await?;
        let state = Frontend {
            bugs,
            client: reqwest::Client::new(),
        };
        let address = serve(
            Router::new()
                .route("/dashboard", get(dashboard))
                .with_state(state)
                .layer(frontend.layer()),
        )
        .await?;
        // The browser's request arrives with a trace already started.
        let response = reqwest::Client::new()
            .get(format!("http://{address}/dashboard"))
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .send()
            .await?;
        response.text().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    drop(runtime);

    let mut spans = Vec::new();
    for service in [&frontend, &bugs_service] {
        // Exports run after the response, on the export's thread.
        service.export.flush(Duration::from_secs(10));
        service.provider.force_flush()?;
        for span in service.spans.get_finished_spans()? {
            spans.push((service.name, span));
        }
        service.provider.shutdown()?;
    }
    print_tree(&spans);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Prints each trace as a tree: offset and duration from the trace's first
/// span, the service, the span's name and what it did.
fn print_tree(spans: &[(&str, SpanData)]) {
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let ids: Vec<SpanId> = spans
        .iter()
        .map(|(_, s)| s.span_context.span_id())
        .collect();
    let mut roots = Vec::new();
    for (n, (_, span)) in spans.iter().enumerate() {
        if ids.contains(&span.parent_span_id) {
            children.entry(span.parent_span_id).or_default().push(n);
        } else {
            roots.push(n);
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|&n| spans[n].1.start_time);
    }
    for &root in &roots {
        let (_, span) = &spans[root];
        println!(
            "trace {} (caller's span {})",
            span.span_context.trace_id(),
            span.parent_span_id
        );
        print_span(spans, &children, root, span.start_time, "");
    }
}

fn print_span(
    spans: &[(&str, SpanData)],
    children: &HashMap<SpanId, Vec<usize>>,
    n: usize,
    origin: SystemTime,
    indent: &str,
) {
    let (service, span) = &spans[n];
    let offset = span.start_time.duration_since(origin).unwrap_or_default();
    let took = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    let what = ["db.query.text", "url.full", "url.path", "timeline.detail"]
        .iter()
        .find_map(|key| span.attributes.iter().find(|kv| kv.key.as_str() == *key))
        .map(|kv| kv.value.as_str().into_owned())
        .unwrap_or_default();
    let status = match &span.status {
        Status::Error { description } => format!("  ERROR: {description}"),
        _ => String::new(),
    };
    println!(
        "{:>8.2} ms {:>8.2} ms  {indent}{} [{service}] {what}{status}",
        offset.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3,
        span.name,
    );
    let deeper = format!("{indent}  ");
    for &child in children
        .get(&span.span_context.span_id())
        .into_iter()
        .flatten()
    {
        print_span(spans, children, child, origin, &deeper);
    }
}
