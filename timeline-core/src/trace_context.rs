//! W3C trace context: the ids that tie a request's timeline to the
//! distributed trace it belongs to.
//!
//! A timeline may carry a [`TraceContext`]: the trace id shared by every
//! service the request crossed, and the span id of this request within it.
//! Reports and the summary line then name the trace id, so an OOPS report
//! leads to the trace in Jaeger, Tempo or any OTLP backend; spans exported
//! with the `opentelemetry` feature continue that trace; and outgoing calls
//! carry it on in a `traceparent` header.
//!
//! Parsing follows the W3C Trace Context recommendation: a malformed
//! `traceparent` is ignored (the request starts a new trace), a malformed
//! `tracestate` is dropped, and neither is ever an error.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The 16-byte id of a distributed trace, shown as 32 lowercase hex digits.
///
/// ```
/// use timeline_core::TraceContext;
///
/// let context = TraceContext::parse(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
///     None,
/// )
/// .unwrap();
/// assert_eq!(context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId([u8; 16]);

/// The 8-byte id of a span within a trace, shown as 16 lowercase hex digits.
///
/// ```
/// use timeline_core::TraceContext;
///
/// let context = TraceContext::parse(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
///     None,
/// )
/// .unwrap();
/// assert_eq!(context.parent_span_id().unwrap().to_string(), "00f067aa0ba902b7");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId([u8; 8]);

impl TraceId {
    /// The id from its bytes; `None` for all zeros, which W3C reserves as
    /// invalid.
    ///
    /// ```
    /// use timeline_core::TraceId;
    ///
    /// assert!(TraceId::from_bytes([0; 16]).is_none());
    /// assert_eq!(TraceId::from_bytes([1; 16]).unwrap().to_bytes(), [1; 16]);
    /// ```
    pub fn from_bytes(bytes: [u8; 16]) -> Option<TraceId> {
        (bytes != [0; 16]).then_some(TraceId(bytes))
    }

    /// The id's 16 bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// A new random id.
    fn random() -> TraceId {
        let high = random_u64().to_be_bytes();
        let low = random_u64().to_be_bytes();
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&high);
        bytes[8..].copy_from_slice(&low);
        TraceId(bytes)
    }
}

impl SpanId {
    /// The id from its bytes; `None` for all zeros, which W3C reserves as
    /// invalid.
    ///
    /// ```
    /// use timeline_core::SpanId;
    ///
    /// assert!(SpanId::from_bytes([0; 8]).is_none());
    /// assert_eq!(SpanId::from_bytes([7; 8]).unwrap().to_string(), "0707070707070707");
    /// ```
    pub fn from_bytes(bytes: [u8; 8]) -> Option<SpanId> {
        (bytes != [0; 8]).then_some(SpanId(bytes))
    }

    /// The id's 8 bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    /// A new random id.
    fn random() -> SpanId {
        SpanId(random_u64().to_be_bytes())
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// A non-zero pseudo-random number, without a dependency: std's randomly
/// keyed SipHash over a process-wide counter and the time. Ids need to be
/// unique, not secret.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        hasher.write_u128(now.as_nanos());
        let n = hasher.finish();
        if n != 0 {
            return n;
        }
    }
}

/// Where a request stands in a distributed trace: the trace id, the span id
/// of this request's own span, the caller's span (when the trace came in
/// with a `traceparent` header), whether the trace is sampled, and the
/// caller's `tracestate`.
///
/// A request either continues its caller's trace ([`parse`](Self::parse)
/// a `traceparent`) or starts one ([`new_trace`](Self::new_trace)); either
/// way it gets a span id of its own, which outgoing calls name as their
/// parent ([`traceparent`](Self::traceparent)).
///
/// ```
/// use timeline_core::{TraceContext, Timeline};
///
/// let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let context = TraceContext::parse(incoming, Some("congo=t61rcWkgMzE"))
///     .unwrap_or_else(|| TraceContext::new_trace(true));
///
/// let timeline = Timeline::new();
/// timeline.set_trace_context(context.clone());
/// assert_eq!(timeline.trace_id(), Some(context.trace_id()));
///
/// // What an outgoing call sends: same trace, this request as the parent.
/// let outgoing = context.traceparent();
/// assert!(outgoing.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
/// assert!(outgoing.ends_with("-01"));
/// assert_eq!(context.tracestate(), Some("congo=t61rcWkgMzE"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    sampled: bool,
    trace_state: Option<Arc<str>>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("trace_id", &self.trace_id)
            .field("span_id", &self.span_id)
            .field("parent_span_id", &self.parent_span_id)
            .field("sampled", &self.sampled)
            .field("trace_state", &self.trace_state)
            .finish()
    }
}

/// The most `tracestate` list members W3C lets a vendor propagate.
const MAX_TRACESTATE_MEMBERS: usize = 32;
/// A `tracestate` longer than this (all its headers together) is dropped:
/// W3C asks to propagate at least 512 bytes; this bounds what a request's
/// headers can make the library keep.
const MAX_TRACESTATE_LEN: usize = 8 * 1024;

impl TraceContext {
    /// A new trace, started by this request: random trace and span ids, no
    /// parent. `sampled` is the flag outgoing calls carry: whether this
    /// request's spans are meant to be recorded.
    ///
    /// ```
    /// use timeline_core::TraceContext;
    ///
    /// let context = TraceContext::new_trace(false);
    /// assert!(context.parent_span_id().is_none());
    /// assert!(context.traceparent().ends_with("-00"));
    /// ```
    pub fn new_trace(sampled: bool) -> TraceContext {
        TraceContext {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
            sampled,
            trace_state: None,
        }
    }

    /// Continues the trace of an incoming W3C `traceparent` header (and its
    /// `tracestate`, if any): the same trace id, the caller's span as parent,
    /// its sampled flag, and a new span id for this request.
    ///
    /// `None` if `traceparent` is malformed (wrong length or version,
    /// uppercase or non-hex digits, all-zero ids, version `ff`): as W3C
    /// says, the caller's context is then ignored and the request should
    /// start a new trace. A malformed `tracestate` is dropped on its own.
    /// Versions above `00` are read as W3C requires: the first four fields,
    /// if what follows them starts with `-`.
    ///
    /// ```
    /// use timeline_core::TraceContext;
    ///
    /// assert!(TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).is_some());
    /// // Uppercase hex, a zero trace id, a truncated header: ignored.
    /// assert!(TraceContext::parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None).is_none());
    /// assert!(TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None).is_none());
    /// assert!(TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", None).is_none());
    /// ```
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let (trace_id, parent, flags) = parse_traceparent(traceparent.as_bytes())?;
        Some(TraceContext {
            trace_id,
            span_id: SpanId::random(),
            parent_span_id: Some(parent),
            sampled: flags & 1 == 1,
            trace_state: tracestate.and_then(valid_tracestate).map(Arc::from),
        })
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// This request's own span id: the parent that outgoing calls name, and
    /// (with `TimelineIdGenerator`, feature `opentelemetry`) the id of the
    /// exported request span.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The caller's span, when the trace came in with a `traceparent`.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent_span_id
    }

    /// Whether the trace is sampled: the incoming flag, or the decision
    /// made when the trace started here.
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// The same context with another sampled flag.
    ///
    /// ```
    /// use timeline_core::TraceContext;
    ///
    /// assert!(TraceContext::new_trace(false).with_sampled(true).is_sampled());
    /// ```
    pub fn with_sampled(mut self, sampled: bool) -> TraceContext {
        self.sampled = sampled;
        self
    }

    /// The caller's `tracestate`, if it had a valid one: passed on
    /// unchanged to outgoing calls.
    pub fn tracestate(&self) -> Option<&str> {
        self.trace_state.as_deref()
    }

    /// The `traceparent` header value for an outgoing call made by this
    /// request: version `00`, the trace id, this request's span id as the
    /// parent, and the sampled flag.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

/// `(trace id, parent id, flags)` of a valid `traceparent`.
fn parse_traceparent(value: &[u8]) -> Option<(TraceId, SpanId, u8)> {
    // version "-" trace-id "-" parent-id "-" trace-flags: 2+1+32+1+16+1+2.
    const LEN: usize = 55;
    let version = hex_byte(value.get(0..2)?)?;
    if version == 0xff || value.len() < LEN || (version == 0 && value.len() != LEN) {
        return None;
    }
    // A later version may append fields, after a dash.
    if value.len() > LEN && value[LEN] != b'-' {
        return None;
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let mut trace_id = [0; 16];
    for (n, byte) in trace_id.iter_mut().enumerate() {
        *byte = hex_byte(&value[3 + 2 * n..5 + 2 * n])?;
    }
    let mut parent = [0; 8];
    for (n, byte) in parent.iter_mut().enumerate() {
        *byte = hex_byte(&value[36 + 2 * n..38 + 2 * n])?;
    }
    let flags = hex_byte(&value[53..55])?;
    Some((
        TraceId::from_bytes(trace_id)?,
        SpanId::from_bytes(parent)?,
        flags,
    ))
}

/// Two lowercase hex digits.
fn hex_byte(digits: &[u8]) -> Option<u8> {
    fn digit(d: u8) -> Option<u8> {
        match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        }
    }
    match digits {
        [high, low] => Some(digit(*high)? << 4 | digit(*low)?),
        _ => None,
    }
}

/// The `tracestate` trimmed of empty members, if every member is valid,
/// keys are unique, and there are at most 32 of them.
fn valid_tracestate(value: &str) -> Option<String> {
    if value.len() > MAX_TRACESTATE_LEN {
        return None;
    }
    let mut members: Vec<&str> = Vec::new();
    for member in value.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, val) = member.split_once('=')?;
        if !valid_tracestate_key(key) || !valid_tracestate_value(val) {
            return None;
        }
        if members
            .iter()
            .any(|m| m.split_once('=').is_some_and(|(k, _)| k == key))
        {
            return None;
        }
        members.push(member);
        if members.len() > MAX_TRACESTATE_MEMBERS {
            return None;
        }
    }
    (!members.is_empty()).then(|| members.join(","))
}

fn valid_tracestate_key(key: &str) -> bool {
    fn simple(key: &str, max: usize, first_digit_ok: bool) -> bool {
        let bytes = key.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || (first_digit_ok && b.is_ascii_digit()));
        first_ok
            && bytes.len() <= max
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'-' | b'*' | b'/')
            })
    }
    match key.split_once('@') {
        None => simple(key, 256, false),
        Some((tenant, system)) => simple(tenant, 241, true) && simple(system, 14, false),
    }
}

fn valid_tracestate_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes.last() != Some(&b' ')
        && bytes
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

#[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
mod headers {
    use http::{HeaderMap, HeaderName, HeaderValue};

    use super::{MAX_TRACESTATE_LEN, TraceContext};

    const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

    impl TraceContext {
        /// Continues the trace of a request's `traceparent` and `tracestate`
        /// headers, as [`parse`](Self::parse) does; `None` when there is no
        /// valid `traceparent` (also when there are several). Several
        /// `tracestate` headers are read as one list, as HTTP combines them.
        ///
        /// ```
        /// use http::HeaderMap;
        /// use timeline_core::TraceContext;
        ///
        /// let mut headers = HeaderMap::new();
        /// headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
        /// let context = TraceContext::from_headers(&headers).unwrap();
        /// assert_eq!(context.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        /// assert!(TraceContext::from_headers(&HeaderMap::new()).is_none());
        /// ```
        pub fn from_headers(headers: &HeaderMap) -> Option<TraceContext> {
            let mut parents = headers.get_all(TRACEPARENT).iter();
            let traceparent = parents.next()?.to_str().ok()?;
            if parents.next().is_some() {
                return None;
            }
            let mut tracestate = String::new();
            for value in headers.get_all(TRACESTATE) {
                let Ok(value) = value.to_str() else {
                    tracestate.clear();
                    break;
                };
                if tracestate.len() + value.len() > MAX_TRACESTATE_LEN {
                    tracestate.clear();
                    break;
                }
                if !tracestate.is_empty() {
                    tracestate.push(',');
                }
                tracestate.push_str(value);
            }
            TraceContext::parse(
                traceparent,
                Some(tracestate.as_str()).filter(|s| !s.is_empty()),
            )
        }

        /// Sets `traceparent` (and `tracestate`, if any) on an outgoing
        /// request's headers, replacing any there: the callee continues this
        /// request's trace, with this request's span as its parent.
        ///
        /// ```
        /// use http::HeaderMap;
        /// use timeline_core::TraceContext;
        ///
        /// let context = TraceContext::new_trace(true);
        /// let mut headers = HeaderMap::new();
        /// context.inject(&mut headers);
        /// assert_eq!(TraceContext::from_headers(&headers).unwrap().trace_id(), context.trace_id());
        /// ```
        pub fn inject(&self, headers: &mut HeaderMap) {
            if let Ok(value) = HeaderValue::try_from(self.traceparent()) {
                headers.insert(TRACEPARENT, value);
            }
            headers.remove(TRACESTATE);
            if let Some(value) = self
                .tracestate()
                .and_then(|s| HeaderValue::try_from(s).ok())
            {
                headers.insert(TRACESTATE, value);
            }
        }

        /// Injects the trace context of the [current](crate::current)
        /// timeline into an outgoing request's headers, as
        /// [`inject`](Self::inject) does; `false` (headers untouched) when
        /// no timeline is current or it carries no trace context.
        ///
        /// Call it where an HTTP client request is built inside a handler,
        /// or from a client middleware (reqwest-middleware, a tower
        /// `map_request`).
        ///
        /// ```
        /// use http::HeaderMap;
        /// use timeline_core::{TraceContext, Timeline};
        ///
        /// let timeline = Timeline::new();
        /// timeline.set_trace_context(TraceContext::new_trace(true));
        /// let mut headers = HeaderMap::new();
        /// assert!(timeline.scope(|| TraceContext::inject_current(&mut headers)));
        /// assert!(headers.contains_key("traceparent"));
        /// assert!(!TraceContext::inject_current(&mut HeaderMap::new())); // nothing current
        /// ```
        pub fn inject_current(headers: &mut HeaderMap) -> bool {
            let Some(context) = crate::current().and_then(|timeline| timeline.trace_context())
            else {
                return false;
            };
            context.inject(headers);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued() {
        let context = TraceContext::parse(VALID, None).unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            context.parent_span_id().unwrap().to_string(),
            "00f067aa0ba902b7"
        );
        assert_ne!(Some(context.span_id()), context.parent_span_id());
        assert!(context.is_sampled());
        let unsampled = TraceContext::parse(&VALID.replace("-01", "-00"), None).unwrap();
        assert!(!unsampled.is_sampled());
        // Other flag bits are ignored, only "sampled" is read.
        assert!(
            TraceContext::parse(&VALID.replace("-01", "-03"), None)
                .unwrap()
                .is_sampled()
        );
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        let malformed = [
            "",
            "00",
            &VALID[..54],
            &format!("{VALID}-"),
            &format!("{VALID}0"),
            &VALID.replace("4bf9", "4BF9"),
            &VALID.replace("4bf9", "4bg9"),
            &VALID.replace('-', "_"),
            &VALID.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
            &VALID.replace("00f067aa0ba902b7", &"0".repeat(16)),
            &VALID.replacen("00", "ff", 1),
            &VALID.replacen("00", "0x", 1),
            &VALID.replace("-01", "-1x"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{e9}",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        ];
        for value in malformed {
            assert!(
                TraceContext::parse(value, None).is_none(),
                "accepted {value:?}"
            );
        }
    }

    #[test]
    fn a_later_version_is_read_up_to_its_known_fields() {
        let later = VALID.replacen("00", "cc", 1);
        assert!(TraceContext::parse(&later, None).is_some());
        assert!(TraceContext::parse(&format!("{later}-what-comes-next"), None).is_some());
        assert!(TraceContext::parse(&format!("{later}x"), None).is_none());
    }

    #[test]
    fn tracestate_is_kept_only_when_valid() {
        let keep = |state: &str| {
            TraceContext::parse(VALID, Some(state))
                .unwrap()
                .tracestate()
                .map(str::to_owned)
        };
        assert_eq!(
            keep("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE").as_deref(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        assert_eq!(
            keep("tenant1@vendor=x,,").as_deref(),
            Some("tenant1@vendor=x")
        );
        assert_eq!(keep("Upper=x"), None);
        assert_eq!(keep("a=1,a=2"), None);
        assert_eq!(keep("a=b=c"), None);
        assert_eq!(keep("a=\u{7f}"), None);
        assert_eq!(keep(""), None);
        let many: Vec<String> = (0..33).map(|n| format!("k{n}=v")).collect();
        assert_eq!(keep(&many.join(",")), None);
        assert_eq!(
            keep(&many[..32].join(",")).map(|s| s.split(',').count()),
            Some(32)
        );
    }

    #[test]
    fn outgoing_traceparent_round_trips() {
        let context = TraceContext::new_trace(true);
        let child = TraceContext::parse(&context.traceparent(), None).unwrap();
        assert_eq!(child.trace_id(), context.trace_id());
        assert_eq!(child.parent_span_id(), Some(context.span_id()));
        assert!(child.is_sampled());
    }

    #[test]
    fn new_ids_differ() {
        let a = TraceContext::new_trace(false);
        let b = TraceContext::new_trace(false);
        assert_ne!(a.trace_id(), b.trace_id());
        assert_ne!(a.span_id(), b.span_id());
    }
}
