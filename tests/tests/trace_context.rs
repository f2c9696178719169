//! W3C trace context on a timeline: headers in and out, and the trace id in
//! the summary line and the OOPS report; and hostile headers, which give a
//! continued trace or a new one, never a panic nor a header W3C forbids.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use serde_json::Value;
use timeline_core::{SpanId, Timeline, TraceContext};

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
    // Huge headers are not kept: 4,000 members are over 32, 40 KB over
    // what is read at all.
    for huge in [
        vec!["k=v"; 4_000].join(","),
        format!("k=v{}", " ".repeat(40_000)),
    ] {
        let context = TraceContext::from_headers(&headers(&[
            ("traceparent", TRACEPARENT),
            ("tracestate", &huge),
        ]))
        .unwrap();
        assert_eq!(context.tracestate(), None);
    }
}

#[test]
fn tracestate_headers_are_one_list_whose_duplicates_go_one_by_one() {
    let context = TraceContext::from_headers(&headers(&[
        ("traceparent", TRACEPARENT),
        ("tracestate", "foo=1,bar=2"),
        ("tracestate", ""),
        ("tracestate", "foo=3, baz=4"),
    ]))
    .unwrap();
    assert_eq!(context.tracestate(), Some("foo=1,bar=2,baz=4"));
    // 32 members over four headers are a list; 33 are not.
    let members: Vec<String> = (1..=33).map(|n| format!("bar{n:02}={n:02}")).collect();
    let split = |members: &[String]| {
        let mut pairs = vec![("traceparent", TRACEPARENT.to_owned())];
        pairs.extend(
            members
                .chunks(10)
                .map(|chunk| ("tracestate", chunk.join(","))),
        );
        let pairs: Vec<(&'static str, &str)> =
            pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        TraceContext::from_headers(&headers(&pairs)).unwrap()
    };
    assert_eq!(
        split(&members[..32]).tracestate(),
        Some(members[..32].join(",").as_str())
    );
    assert_eq!(split(&members).tracestate(), None);
    // One header that is not ASCII: the list does not parse.
    let mut latin = headers(&[("traceparent", TRACEPARENT), ("tracestate", "foo=1")]);
    latin.append("tracestate", HeaderValue::from_bytes(b"bar=\xe9").unwrap());
    assert_eq!(
        TraceContext::from_headers(&latin).unwrap().tracestate(),
        None
    );
}

#[test]
fn whitespace_around_traceparent_and_its_random_flag_go_through_headers() {
    let random = TRACEPARENT.replace("-01", "-02");
    for value in [format!(" {random}"), format!("\t{random} \t")] {
        let context = TraceContext::from_headers(&headers(&[("traceparent", &value)])).unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        let mut outgoing = HeaderMap::new();
        context.inject(&mut outgoing);
        let sent = outgoing["traceparent"].to_str().unwrap();
        assert!(sent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
        assert!(sent.ends_with("-02"), "{sent}");
    }
    // A traceparent that is not ASCII starts a new trace.
    let mut latin = HeaderMap::new();
    latin.append(
        "traceparent",
        HeaderValue::from_bytes(format!("{TRACEPARENT}\u{e9}").as_bytes()).unwrap(),
    );
    assert!(TraceContext::from_headers(&latin).is_none());
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

// --- a span id per outgoing call ------------------------------------------

/// A timeline continuing `TRACEPARENT`, and its request's context.
fn traced() -> (Timeline, TraceContext) {
    let timeline = Timeline::new();
    let request = TraceContext::parse(TRACEPARENT, None).unwrap();
    timeline.set_trace_context(request.clone());
    (timeline, request)
}

/// The parent id `inject_current` sends from `timeline` now.
fn parent_sent(timeline: &Timeline) -> SpanId {
    let mut headers = HeaderMap::new();
    assert!(timeline.scope(|| TraceContext::inject_current(&mut headers)));
    let sent = TraceContext::from_headers(&headers).unwrap();
    assert_eq!(
        sent.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    sent.parent_span_id().unwrap()
}

#[test]
fn each_action_that_calls_names_itself_once_and_readers_learn_its_id() {
    let (timeline, request) = traced();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    let first = timeline.start("HTTP-GET", "http://b/1").unwrap();
    let one = parent_sent(&timeline);
    // A retry inside the same action: the same operation.
    assert_eq!(parent_sent(&timeline), one);
    assert_eq!(first.trace_context().unwrap().span_id(), one);
    first.finish();
    let two = timeline
        .start("HTTP-GET", "http://b/2")
        .unwrap()
        .trace_context()
        .unwrap();
    assert_eq!(two.parent_span_id(), Some(request.span_id()));
    // Between actions: the request's span.
    assert_eq!(parent_sent(&timeline), request.span_id());
    let ids: HashSet<SpanId> = [one, two.span_id(), request.span_id()].into();
    assert_eq!(ids.len(), 3);

    let snapshot = timeline.snapshot();
    let calls: Vec<Option<SpanId>> = (0..3).map(|n| snapshot.call_span_id(n)).collect();
    assert_eq!(calls, [None, Some(one), Some(two.span_id())]);
    assert_eq!(snapshot.call_span_id(3), None);
}

#[test]
fn a_call_span_id_follows_its_action_when_reports_sort_by_start() {
    let (timeline, _) = traced();
    std::thread::sleep(Duration::from_millis(2));
    let call = timeline.start("HTTP-GET", "http://b/1").unwrap();
    let sent = call.trace_context().unwrap().span_id();
    call.finish();
    // Recorded after the call, but it started before: stored second,
    // first in start order.
    let at_the_start = Instant::now() - timeline.elapsed();
    timeline.record("SQL-main", "SELECT 1", at_the_start, Duration::ZERO);
    let snapshot = timeline.snapshot();
    let actions = snapshot.actions();
    assert_eq!(actions[0].category(), "SQL-main");
    assert_eq!(actions[1].category(), "HTTP-GET");
    assert_eq!(snapshot.call_span_id(0), None);
    assert_eq!(snapshot.call_span_id(1), Some(sent));
}

#[test]
fn while_actions_overlap_a_call_outside_a_guard_names_the_request() {
    let (timeline, request) = traced();
    let open = timeline.start("HTTP-GET", "http://b/1").unwrap();
    let concurrent = timeline.scope(|| {
        timeline_core::__private::TimedCall::start_async("HTTP-GET", false, || "http://b/2")
    });
    assert!(timeline.actions()[1].is_concurrent());
    // Which of the two makes it is not known.
    assert_eq!(parent_sent(&timeline), request.span_id());
    // A guard knows its own action.
    assert_ne!(open.trace_context().unwrap().span_id(), request.span_id());
    drop(concurrent);
    // One action left: it is the call.
    assert_eq!(
        parent_sent(&timeline),
        open.trace_context().unwrap().span_id()
    );
    open.finish();
}

#[test]
fn a_nesting_action_alone_is_not_a_call() {
    let (timeline, request) = traced();
    let transaction = timeline.start_nested("SQL-main", "transaction").unwrap();
    assert_eq!(parent_sent(&timeline), request.span_id());
    transaction.finish();
    assert_eq!(timeline.snapshot().call_span_id(0), None);
}

#[test]
fn a_full_timeline_names_the_request_whose_span_is_exported() {
    // Not stored: there will be no span with the action's id.
    let timeline = Timeline::builder().max_actions(1).build();
    let request = TraceContext::parse(TRACEPARENT, None).unwrap();
    timeline.set_trace_context(request.clone());
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    let dropped = timeline.start("HTTP-GET", "http://b/1").unwrap();
    assert_eq!(parent_sent(&timeline), request.span_id());
    assert_eq!(dropped.trace_context(), Some(request.clone()));
    drop(dropped);
    assert_eq!(timeline.dropped(), 1);

    // Stored, but no room left for its id.
    let probe = Timeline::new();
    drop(probe.start("HTTP-GET", "http://b/1").unwrap());
    let one_action = timeline_core::__hooks::held_bytes(&probe);
    let timeline = Timeline::builder().max_bytes(one_action).build();
    timeline.set_trace_context(request.clone());
    let call = timeline.start("HTTP-GET", "http://b/1").unwrap();
    assert_eq!(call.trace_context(), Some(request.clone()));
    drop(call);
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline.snapshot().call_span_id(0), None);
    assert_eq!(timeline_core::__hooks::held_bytes(&timeline), one_action);
}

#[test]
fn without_a_trace_context_nothing_is_sent_and_no_id_drawn() {
    let timeline = Timeline::new();
    let call = timeline.start("HTTP-GET", "http://b/1").unwrap();
    assert_eq!(call.trace_context(), None);
    let mut headers = HeaderMap::new();
    assert!(!timeline.scope(|| TraceContext::inject_current(&mut headers)));
    assert!(headers.is_empty());
    call.finish();
    assert_eq!(timeline.snapshot().call_span_id(0), None);
}

/// Whether W3C says to continue the trace of this `traceparent`: around
/// optional whitespace, a version other than `ff`, then non-zero ids and
/// flags in lowercase hex, each followed by a dash or (for the flags)
/// the end; version `00` ends there.
fn continuable_traceparent(value: &str) -> bool {
    let value = value.trim_matches([' ', '\t']);
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let Some(version) = value.get(..2) else {
        return false;
    };
    let (Some(trace), Some(parent), Some(flags)) =
        (value.get(3..35), value.get(36..52), value.get(53..55))
    else {
        return false;
    };
    let rest = &value[55..];
    hex(version)
        && version != "ff"
        && value.as_bytes()[2] == b'-'
        && value.as_bytes()[35] == b'-'
        && value.as_bytes()[52] == b'-'
        && hex(trace)
        && trace != "0".repeat(32)
        && hex(parent)
        && parent != "0".repeat(16)
        && hex(flags)
        && (rest.is_empty() || (version != "00" && rest.starts_with('-')))
}

/// What W3C allows a `traceparent` sent by this version to be: version
/// `00`, non-zero lowercase hex ids, and only the flags it defines.
fn sendable_traceparent(value: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let parts: Vec<&str> = value.split('-').collect();
    matches!(
        parts.as_slice(),
        ["00", trace, parent, flags]
            if trace.len() == 32 && hex(trace) && *trace != "0".repeat(32)
                && parent.len() == 16 && hex(parent) && *parent != "0".repeat(16)
                && ["00", "01", "02", "03"].contains(flags)
    )
}

/// What W3C allows a `tracestate` to be, within the 512 characters and 32
/// members this library passes on: written without whitespace or empty
/// members, each key once.
fn sendable_tracestate(value: &str) -> bool {
    let key_ok = |key: &str| {
        key.len() <= 256
            && key
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b))
    };
    let value_ok = |v: &str| {
        (1..=256).contains(&v.len())
            && !v.ends_with(' ')
            && v.bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
    };
    let mut keys = HashSet::new();
    let members: Vec<&str> = value.split(',').collect();
    value.len() <= 512
        && members.len() <= 32
        && members.iter().all(|member| {
            member
                .split_once('=')
                .is_some_and(|(k, v)| key_ok(k) && value_ok(v) && keys.insert(k))
        })
}

/// `traceparent` values: valid ones (versions 00 and later, flags, OWS),
/// the same edited by a byte, arbitrary bytes, 10 KB repeats.
fn traceparent_value() -> impl Strategy<Value = Vec<u8>> {
    let valid = (
        prop_oneof![Just("00"), Just("cc"), Just("01")],
        prop_oneof![Just("00"), Just("01"), Just("02"), Just("03"), Just("ff")],
        prop_oneof![Just(""), Just("-future")],
        "[ \t]{0,2}",
        "[ \t]{0,2}",
    )
        .prop_map(|(version, flags, tail, before, after)| {
            let tail = if version == "00" { "" } else { tail };
            format!("{before}{version}-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-{flags}{tail}{after}")
        });
    let edited = (
        valid.clone(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0..3u8,
    )
        .prop_map(|(value, at, byte, how)| {
            let mut bytes = value.into_bytes();
            let at = at.index(bytes.len());
            match how {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
            bytes
        });
    prop_oneof![
        4 => valid.prop_map(String::into_bytes),
        2 => edited,
        1 => any_bytes(),
        1 => huge(),
    ]
}

/// `tracestate` values: lists of members mostly by the grammar, with small
/// key spaces (duplicates), long members, bad pieces, whitespace and empty
/// members, sometimes past 32; arbitrary bytes; 10 KB repeats.
fn tracestate_value() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        24 => "[a-c0-9][a-c0-9_*/@-]{0,3}",
        1 => "[a-z]{120,258}",
        1 => "[A-Z@ .=][a-z]{0,3}",
    ];
    let val = prop_oneof![
        24 => "[ -+\\--<>-~]{0,6}[!-+\\--<>-~]",
        1 => "[a-z]{120,260}",
        1 => "[ =,\t\u{e9}a]{0,4}",
    ];
    let member = prop_oneof![
        9 => (key, val, "[ \t]{0,2}").prop_map(|(k, v, ows)| format!("{ows}{k}={v}{ows}")),
        1 => "[ \t]{0,2}",
    ];
    let member = member.boxed();
    let list = prop_oneof![4 => 0..8usize, 1 => 28..36usize]
        .prop_flat_map(move |n| prop::collection::vec(member.clone(), n))
        .prop_map(|members| members.join(",").into_bytes());
    prop_oneof![8 => list, 1 => any_bytes(), 1 => huge()]
}

/// Bytes a header value may hold: tab, visible ASCII, and obs-text.
fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff],
        0..80,
    )
}

/// About 10 KB of one short piece repeated.
fn huge() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just("k=v,".to_owned()),
        Just(" ".to_owned()),
        "[a-z=,\t]{1,6}"
    ]
    .prop_map(|chunk| chunk.repeat(10_240 / chunk.len()).into_bytes())
}

/// A request's trace headers: up to two `traceparent`s, up to three
/// `tracestate`s, in any case of name, and headers of similar names.
fn trace_headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let traceparent = (
        prop_oneof![Just("traceparent"), Just("TraceParent")],
        traceparent_value(),
    );
    let tracestate = (
        prop_oneof![Just("tracestate"), Just("TRACESTATE")],
        tracestate_value(),
    );
    let other = (
        prop_oneof![Just("trace-parent"), Just("trace-state")],
        tracestate_value(),
    );
    let traceparent = traceparent.boxed();
    let parents = prop_oneof![3 => Just(1usize), 1 => 0..3usize]
        .prop_flat_map(move |n| prop::collection::vec(traceparent.clone(), n));
    (
        parents,
        prop::collection::vec(tracestate, 0..3),
        prop::collection::vec(other, 0..2),
    )
        .prop_map(|(parents, states, others)| {
            parents.into_iter().chain(states).chain(others).collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_headers_give_a_continued_or_new_trace_and_only_sendable_headers(
        pairs in trace_headers(),
    ) {
        let mut incoming = HeaderMap::new();
        for (name, value) in &pairs {
            // What HTTP itself refuses (control characters) never arrives.
            if let Ok(value) = HeaderValue::from_bytes(value) {
                incoming.append(*name, value);
            }
        }
        let continued = TraceContext::from_headers(&incoming);
        let parents: Vec<&HeaderValue> = incoming.get_all("traceparent").iter().collect();
        // Continued exactly when W3C says it must be.
        let must_continue = match parents.as_slice() {
            [parent] => parent.to_str().is_ok_and(continuable_traceparent),
            _ => false,
        };
        prop_assert_eq!(continued.is_some(), must_continue, "{:?}", parents);
        if let Some(context) = &continued {
            // Continued only from a single traceparent, with its trace id.
            prop_assert_eq!(parents.len(), 1);
            let parent = parents[0].to_str().unwrap().trim_matches([' ', '\t']);
            prop_assert_eq!(&parent[3..35], context.trace_id().to_string());
            prop_assert_eq!(&parent[36..52], context.parent_span_id().unwrap().to_string());
            // The random flag as it came.
            let flags = u8::from_str_radix(&parent[53..55], 16).unwrap();
            prop_assert_eq!(context.is_random(), flags & 2 == 2);
            // Members passed on were all in what came.
            let came: String = incoming
                .get_all("tracestate")
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(",");
            for member in context.tracestate().unwrap_or_default().split(',').filter(|m| !m.is_empty()) {
                prop_assert!(came.contains(member), "{member:?} was not in {came:?}");
            }
        }
        let context = continued.unwrap_or_else(|| TraceContext::new_trace(false));
        let mut outgoing = incoming.clone();
        context.inject(&mut outgoing);
        let sent: Vec<&HeaderValue> = outgoing.get_all("traceparent").iter().collect();
        prop_assert_eq!(sent.len(), 1);
        let traceparent = sent[0].to_str().unwrap();
        prop_assert!(sendable_traceparent(traceparent), "sent traceparent {traceparent:?}");
        let states: Vec<&HeaderValue> = outgoing.get_all("tracestate").iter().collect();
        prop_assert!(states.len() <= 1);
        if let Some(state) = states.first() {
            let state = state.to_str().unwrap();
            prop_assert!(sendable_tracestate(state), "sent tracestate {state:?}");
        }
    }
}

#[test]
fn the_checks_of_what_may_be_sent_refuse_what_w3c_forbids() {
    assert!(sendable_traceparent(TRACEPARENT));
    for bad in [
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-04",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ] {
        assert!(!sendable_traceparent(bad), "{bad}");
    }
    assert!(sendable_tracestate("foo=1,bar@=2"));
    for bad in [
        "",
        "foo=1,",
        "foo=1, bar=2",
        "foo=1,foo=2",
        "Foo=1",
        "foo=1 ",
        &"k=v".repeat(200),
    ] {
        assert!(!sendable_tracestate(bad), "{bad}");
    }
}
