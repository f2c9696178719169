//! W3C trace context on a timeline: headers in and out, and the trace id in
//! the summary line and the OOPS report.

use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use timeline_core::{Timeline, TraceContext};

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(*name, HeaderValue::from_str(value).unwrap());
    }
    headers
}

#[test]
fn the_report_names_the_trace_in_both_json_forms() {
    let timeline = Timeline::new();
    timeline.set_trace_context(TraceContext::parse(TRACEPARENT, None).unwrap());
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    let report = timeline.report();
    let from_serde = serde_json::to_value(&report).unwrap();
    let by_hand: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(from_serde, by_hand);
    assert_eq!(from_serde["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(
        report.summary().trace_id().unwrap().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert!(
        from_serde["summary"]["line"]
            .as_str()
            .unwrap()
            .ends_with(", trace 0af7651916cd43dd8448eb211c80319c")
    );
}

#[test]
fn without_a_trace_context_reports_are_as_before() {
    let timeline = Timeline::new();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    let report = timeline.report();
    assert_eq!(report.trace_id(), None);
    let value = serde_json::to_value(&report).unwrap();
    assert!(value.get("trace_id").is_none());
    assert!(!report.to_json().contains("trace_id"));
    assert!(timeline.summary().to_string().ends_with(" seconds"));
}

#[test]
fn incoming_headers_are_read_as_w3c_says() {
    let context = TraceContext::from_headers(&headers(&[
        ("traceparent", TRACEPARENT),
        ("tracestate", "rojo=00f067aa0ba902b7"),
        ("tracestate", "congo=t61rcWkgMzE"),
    ]))
    .unwrap();
    assert_eq!(
        context.tracestate(),
        Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    );
    // Two traceparents: neither is trusted.
    assert!(
        TraceContext::from_headers(&headers(&[
            ("traceparent", TRACEPARENT),
            ("traceparent", TRACEPARENT)
        ]))
        .is_none()
    );
    // A bad tracestate is dropped, the traceparent kept.
    let context = TraceContext::from_headers(&headers(&[
        ("traceparent", TRACEPARENT),
        ("tracestate", "not a list member"),
    ]))
    .unwrap();
    assert_eq!(context.tracestate(), None);
    // A tracestate without traceparent means nothing.
    assert!(TraceContext::from_headers(&headers(&[("tracestate", "rojo=1")])).is_none());
    // Huge headers are not kept.
    let huge = vec!["k=v"; 4_000].join(",");
    let context = TraceContext::from_headers(&headers(&[
        ("traceparent", TRACEPARENT),
        ("tracestate", &huge),
    ]))
    .unwrap();
    assert_eq!(context.tracestate(), None);
}

#[test]
fn injection_replaces_what_an_outgoing_request_had() {
    let context = TraceContext::parse(TRACEPARENT, Some("rojo=1")).unwrap();
    let mut outgoing = headers(&[
        (
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-00",
        ),
        ("tracestate", "stale=1"),
        ("tracestate", "stale=2"),
    ]);
    context.inject(&mut outgoing);
    assert_eq!(outgoing.get_all("traceparent").iter().count(), 1);
    assert_eq!(outgoing["traceparent"], context.traceparent());
    assert_eq!(outgoing.get_all("tracestate").iter().count(), 1);
    assert_eq!(outgoing["tracestate"], "rojo=1");
    let callee = TraceContext::from_headers(&outgoing).unwrap();
    assert_eq!(callee.trace_id(), context.trace_id());
    assert_eq!(callee.parent_span_id(), Some(context.span_id()));
    assert!(callee.is_sampled());
}

#[test]
fn the_first_trace_context_of_a_timeline_stays() {
    let timeline = Timeline::new();
    let first = TraceContext::new_trace(true);
    assert!(timeline.set_trace_context(first.clone()));
    assert!(!timeline.set_trace_context(TraceContext::new_trace(true)));
    assert_eq!(timeline.trace_context(), Some(first.clone()));
    // Clones share it: it is the timeline's.
    assert_eq!(timeline.clone().trace_id(), Some(first.trace_id()));
}
