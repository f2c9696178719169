//! The OpenTelemetry SDK as the tests use it: a real tracer provider that
//! exports into memory, and the attributes of the spans it kept.

use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use timeline_core::integrations::opentelemetry::TimelineIdGenerator;

/// A tracer provider that exports each span as it ends into the returned
/// in-memory exporter, and takes its ids from [`TimelineIdGenerator`] so
/// that a timeline's trace id becomes the trace's.
///
/// ```
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use timeline_tests::otel::in_memory_provider;
///
/// let (spans, provider) = in_memory_provider();
/// provider.tracer("doc").in_span("work", |_| {});
/// assert_eq!(spans.get_finished_spans().unwrap()[0].name, "work");
/// ```
pub fn in_memory_provider() -> (InMemorySpanExporter, SdkTracerProvider) {
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .with_id_generator(TimelineIdGenerator::default())
        .build();
    (spans, provider)
}

/// The value of `span`'s attribute `key`, if it has one.
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
/// use timeline_tests::otel::{attribute, in_memory_provider};
///
/// let (spans, provider) = in_memory_provider();
/// provider
///     .tracer("doc")
///     .in_span("work", |cx| cx.span().set_attribute(KeyValue::new("db.system", "sqlite")));
/// let span = &spans.get_finished_spans().unwrap()[0];
/// assert_eq!(attribute(span, "db.system").unwrap().as_str(), "sqlite");
/// assert!(attribute(span, "url.full").is_none());
/// ```
pub fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}
