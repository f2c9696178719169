//! W3C trace context: the ids that tie a request's timeline to the
//! distributed trace it belongs to.
//!
//! A timeline may carry a [`TraceContext`]: the trace id shared by every
//! service the request crossed, and the span id of this request within it.
//! Reports and the summary line then name the trace id, so an OOPS report
//! leads to the trace in Jaeger, Tempo or any OTLP backend; spans exported
//! with the `opentelemetry` feature continue that trace; and outgoing calls
//! carry it on in a `traceparent` header. As W3C's processing model has
//! it, each call is an operation of its own: the action that makes it gets
//! a span id, which the call names as its parent and the export gives the
//! action's span (see [`ActionGuard::trace_context`](crate::ActionGuard::trace_context)).
//!
//! Parsing and propagation follow W3C Trace Context Level 2 (the
//! `spec/` of the w3c/trace-context repository, checked against W3C's own
//! test harness at strict level: `tests/tests/w3c_harness.rs`):
//!
//! - a malformed `traceparent` is ignored and the request starts a new
//!   trace; never an error, never a panic;
//! - the `random-trace-id` flag (`02`) is propagated as it came, and set
//!   on the traces started here, whose ids are random; flags this version
//!   does not define go out as zero;
//! - `tracestate` is read by its grammar and limits, see
//!   [`TraceContext::parse`]; what goes out is always valid.
//!
//! Level 1 asked senders to zero every flag but `sampled`; Level 2 gives
//! bit `02` its meaning. Level 1 receivers ignore flags they do not know,
//! so propagating it breaks none of them, and Level 2 is all this module
//! speaks.

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

    /// A new random id: what an outgoing call costs (see
    /// `record/calls.rs`).
    pub(crate) fn random() -> SpanId {
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
/// unique, not secret; and under a random key SipHash's bits are uniform,
/// which is what the `random-trace-id` flag promises of a new trace id.
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
/// way it gets a span id of its own. Each action that makes an outgoing
/// call gets one too, and its calls name it as their parent
/// ([`ActionGuard::trace_context`](crate::ActionGuard::trace_context)):
/// the context of such an action is the request's with the action's span
/// id, and the request's span as its parent.
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
/// // What a call from the action `call` sends: same trace, the call's
/// // own span as the parent.
/// let call = timeline.start("HTTP-GET", "http://bugs.internal/").unwrap();
/// let outgoing = call.trace_context().unwrap().traceparent();
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
    random: bool,
    trace_state: Option<Arc<str>>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("trace_id", &self.trace_id)
            .field("span_id", &self.span_id)
            .field("parent_span_id", &self.parent_span_id)
            .field("sampled", &self.sampled)
            .field("random", &self.random)
            .field("trace_state", &self.trace_state)
            .finish()
    }
}

/// `trace-flags`: the caller may have recorded trace data.
const FLAG_SAMPLED: u8 = 0x01;
/// `trace-flags` (Level 2): at least the right-most 7 bytes of the trace
/// id are random.
const FLAG_RANDOM: u8 = 0x02;

/// The most list members a `tracestate` may have; one with more does not
/// parse and is dropped whole.
const MAX_TRACESTATE_MEMBERS: usize = 32;
/// The longest `tracestate` passed on, commas included: the 512 characters
/// W3C asks every vendor to propagate at least. A longer one is cut by
/// W3C's rule, whole members at a time (see [`truncate_tracestate`]).
const MAX_TRACESTATE_LEN: usize = 512;
/// Members longer than this go first when a `tracestate` is cut.
const LONG_TRACESTATE_MEMBER: usize = 128;
/// The longest `tracestate` read at all (all its headers together): 32
/// members of the longest key and value take 16,447 characters, so twice
/// that leaves room for whitespace and empty members; beyond it the header
/// is "prohibitively large" in W3C's words and dropped unread.
const MAX_TRACESTATE_INPUT: usize = 32 * 1024;

impl TraceContext {
    /// A new trace, started by this request: random trace and span ids, no
    /// parent. `sampled` is the flag outgoing calls carry: whether this
    /// request's spans are meant to be recorded. The trace id is random, so
    /// the Level 2 `random-trace-id` flag is set.
    ///
    /// ```
    /// use timeline_core::TraceContext;
    ///
    /// let context = TraceContext::new_trace(false);
    /// assert!(context.parent_span_id().is_none());
    /// assert!(context.is_random());
    /// assert!(context.traceparent().ends_with("-02")); // random, not sampled
    /// assert!(context.with_sampled(true).traceparent().ends_with("-03"));
    /// ```
    pub fn new_trace(sampled: bool) -> TraceContext {
        TraceContext {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
            sampled,
            random: true,
            trace_state: None,
        }
    }

    /// Continues the trace of an incoming W3C `traceparent` header (and its
    /// `tracestate`, if any): the same trace id, the caller's span as parent,
    /// its `sampled` and `random-trace-id` flags, and a new span id for this
    /// request.
    ///
    /// **`traceparent`.** `None` if it is malformed (wrong length, uppercase
    /// or non-hex digits, all-zero ids, version `ff`): as W3C says, the
    /// caller's context is then ignored and the request should start a new
    /// trace. Spaces and tabs around it are optional whitespace and
    /// ignored. A version above `00` is read by the prefix this version
    /// knows — version, trace id, parent id and flags, each followed by a
    /// dash or the end — and the rest left unread. Flags other than
    /// `sampled` and `random-trace-id` are dropped.
    ///
    /// **`tracestate`** (its headers joined with commas, as HTTP combines
    /// them) is read only when `traceparent` is valid:
    ///
    /// - each member is `key=value` with spaces and tabs around it ignored,
    ///   keys by W3C's grammar (a lowercase letter or digit, then up to 255
    ///   of `a-z 0-9 _ - * / @`), values of 1 to 256 printable ASCII
    ///   characters other than `,` and `=` (leading spaces kept, trailing
    ///   ones are whitespace); empty members are skipped;
    /// - a later member with a key already seen is dropped, the first kept;
    /// - a header that does not parse — one member off the grammar, more
    ///   than 32 members, more than 32 KiB — is dropped whole, as W3C
    ///   allows ("MAY discard the entire header") and its test harness
    ///   requires at strict level;
    /// - a header longer than 512 characters, the length W3C asks vendors
    ///   to propagate at least, is cut by W3C's rule: whole members, those
    ///   over 128 characters first (the largest first), then from the end.
    ///
    /// ```
    /// use timeline_core::TraceContext;
    ///
    /// assert!(TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).is_some());
    /// // Uppercase hex, a zero trace id, a truncated header: ignored.
    /// assert!(TraceContext::parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None).is_none());
    /// assert!(TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None).is_none());
    /// assert!(TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", None).is_none());
    ///
    /// // A later version, around whitespace: its known prefix is read.
    /// let context = TraceContext::parse(
    ///     " cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future\t",
    ///     Some("rojo=1, congo=2 ,rojo=3,tenant@vendor=x"),
    /// )
    /// .unwrap();
    /// assert!(context.is_sampled() && context.is_random());
    /// assert!(context.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    /// assert_eq!(context.tracestate(), Some("rojo=1,congo=2,tenant@vendor=x"));
    /// ```
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let (trace_id, parent, flags) = parse_traceparent(trim_ows(traceparent).as_bytes())?;
        Some(TraceContext {
            trace_id,
            span_id: SpanId::random(),
            parent_span_id: Some(parent),
            sampled: flags & FLAG_SAMPLED != 0,
            random: flags & FLAG_RANDOM != 0,
            trace_state: tracestate.and_then(valid_tracestate).map(Arc::from),
        })
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span id of this context: for a request's own context, the id of
    /// the request's span (with `TimelineIdGenerator`, feature
    /// `opentelemetry`, the exported request span's), which calls made
    /// outside any action name as their parent; for a call's
    /// ([`ActionGuard::trace_context`](crate::ActionGuard::trace_context)),
    /// the id of the call's action.
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

    /// Whether at least the right-most 7 bytes of the trace id are random
    /// (the Level 2 `random-trace-id` flag): set on traces started here,
    /// as the caller said on traces continued, and passed on unchanged.
    ///
    /// ```
    /// use timeline_core::TraceContext;
    ///
    /// let id = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
    /// assert!(TraceContext::parse(&format!("00-{id}-02"), None).unwrap().is_random());
    /// assert!(!TraceContext::parse(&format!("00-{id}-01"), None).unwrap().is_random());
    /// ```
    pub fn is_random(&self) -> bool {
        self.random
    }

    /// The same context with another sampled flag; the `random-trace-id`
    /// flag stays, it belongs to the trace id.
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

    /// The caller's `tracestate`, as read by [`parse`](Self::parse):
    /// passed on to outgoing calls. Always valid by W3C's grammar, at most
    /// 32 members with distinct keys and 512 characters; `None` when there
    /// was none, or nothing of it was valid.
    pub fn tracestate(&self) -> Option<&str> {
        self.trace_state.as_deref()
    }

    /// The context of an operation of this request with its own span id,
    /// `span_id`: an action that is an outgoing call. Its parent is this
    /// request's span; all else is the request's.
    pub(crate) fn for_call(&self, span_id: SpanId) -> TraceContext {
        TraceContext {
            span_id,
            parent_span_id: Some(self.span_id),
            ..self.clone()
        }
    }

    /// The `traceparent` header value for an outgoing call made by this
    /// span: version `00`, the trace id, this context's span id as the
    /// parent, and the `sampled` and `random-trace-id` flags.
    ///
    /// For a request's own context that names the request's span. W3C
    /// wants each call to name a span of its own: take the context of the
    /// call's action instead
    /// ([`ActionGuard::trace_context`](crate::ActionGuard::trace_context)).
    pub fn traceparent(&self) -> String {
        let flags =
            if self.sampled { FLAG_SAMPLED } else { 0 } | if self.random { FLAG_RANDOM } else { 0 };
        format!("00-{}-{}-{flags:02x}", self.trace_id, self.span_id)
    }
}

/// `(trace id, parent id, flags)` of a valid `traceparent`, OWS trimmed;
/// the flags hold only those this version defines.
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
    let flags = hex_byte(&value[53..55])? & (FLAG_SAMPLED | FLAG_RANDOM);
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

/// `s` without the optional whitespace (spaces and tabs) around it.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// The `tracestate` to pass on, read as [`TraceContext::parse`] documents:
/// `None` if it does not parse or holds no member.
fn valid_tracestate(value: &str) -> Option<String> {
    if value.len() > MAX_TRACESTATE_INPUT {
        return None;
    }
    let mut members: Vec<(&str, &str)> = Vec::new();
    let mut count = 0;
    for member in value.split(',') {
        let member = trim_ows(member);
        if member.is_empty() {
            continue;
        }
        count += 1;
        let (key, val) = member.split_once('=')?;
        if count > MAX_TRACESTATE_MEMBERS
            || !valid_tracestate_key(key)
            || !valid_tracestate_value(val)
        {
            return None;
        }
        // The left-most is the latest a vendor wrote: it stays.
        if members.iter().all(|(k, _)| *k != key) {
            members.push((key, val));
        }
    }
    truncate_tracestate(&mut members);
    if members.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(joined_len(&members));
    for (n, (key, val)) in members.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(val);
    }
    Some(out)
}

/// The length of `members` joined as `k=v,k=v`.
fn joined_len(members: &[(&str, &str)]) -> usize {
    let items: usize = members.iter().map(|(k, v)| k.len() + 1 + v.len()).sum();
    items + members.len().saturating_sub(1)
}

/// Cuts `members` to [`MAX_TRACESTATE_LEN`] by W3C's rule: whole members,
/// those longer than 128 characters first — the largest first, so that as
/// few go as can be — then from the end.
fn truncate_tracestate(members: &mut Vec<(&str, &str)>) {
    while joined_len(members) > MAX_TRACESTATE_LEN {
        let member_len = |(k, v): &(&str, &str)| k.len() + 1 + v.len();
        let largest = members
            .iter()
            .enumerate()
            .filter(|(_, m)| member_len(m) > LONG_TRACESTATE_MEMBER)
            .max_by_key(|(n, m)| (member_len(m), *n))
            .map(|(n, _)| n);
        match largest {
            Some(n) => {
                members.remove(n);
            }
            None => {
                members.pop();
            }
        }
    }
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, with
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`: Level 2
/// dropped Level 1's `tenant@system` limits (241 and 14 characters, one
/// `@`), so `foo@`, `foo@@bar` and `1special` are keys.
fn valid_tracestate_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.len() <= 256
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
        })
}

/// `value = 0*255(chr) nblk-chr`: 1 to 256 printable ASCII characters but
/// `,` and `=`, the last not a space.
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

    use super::{MAX_TRACESTATE_INPUT, TraceContext};
    use crate::record::CallCover;

    const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

    impl TraceContext {
        /// Continues the trace of a request's `traceparent` and `tracestate`
        /// headers, as [`parse`](Self::parse) does; `None` when there is no
        /// valid `traceparent` (also when there are several: which to
        /// trust?). Several `tracestate` headers are read as one list, as
        /// HTTP combines them; one that is not ASCII does not parse, and
        /// drops the list.
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
                if tracestate.len() + value.len() > MAX_TRACESTATE_INPUT {
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
        /// or from a client middleware (a tower `map_request`; for
        /// reqwest-middleware there is
        /// [`TraceContextMiddleware`](crate::integrations::reqwest_middleware::TraceContextMiddleware)).
        ///
        /// **Which span is the parent.** Called while an action is open —
        /// the `HTTP-GET` you started around the call, a `#[timed]`
        /// wrapper's, the action the `tracing` bridge records for a
        /// tower-http or reqwest-tracing client span — that action becomes
        /// the call: it gets a span id of its own (drawn once, one random
        /// number), the header names it as the parent, and the
        /// `opentelemetry` export gives its span that id, so the service
        /// called hangs under the call in a trace viewer. Outside any
        /// action the parent is the request's span. What is open is the
        /// timeline's one non-nesting action, whichever task started it:
        /// while [concurrent](crate::Action::is_concurrent) actions run,
        /// which of them makes the call is not known, and the parent is the
        /// request's span. Where you hold the call's guard,
        /// [`ActionGuard::trace_context`](crate::ActionGuard::trace_context)
        /// names exactly that action.
        ///
        /// ```
        /// use http::HeaderMap;
        /// use timeline_core::{TraceContext, Timeline};
        ///
        /// let timeline = Timeline::new();
        /// let request = TraceContext::new_trace(true);
        /// timeline.set_trace_context(request.clone());
        /// let parent = |headers: &HeaderMap| {
        ///     TraceContext::from_headers(headers).unwrap().parent_span_id().unwrap()
        /// };
        ///
        /// // Outside any action: the request's span.
        /// let mut headers = HeaderMap::new();
        /// assert!(timeline.scope(|| TraceContext::inject_current(&mut headers)));
        /// assert_eq!(parent(&headers), request.span_id());
        ///
        /// // Inside one: that action's span, one per call.
        /// let mut first = HeaderMap::new();
        /// let call = timeline.start("HTTP-GET", "http://bugs.internal/1").unwrap();
        /// timeline.scope(|| TraceContext::inject_current(&mut first));
        /// call.finish();
        /// let mut second = HeaderMap::new();
        /// let call = timeline.start("HTTP-GET", "http://bugs.internal/2").unwrap();
        /// timeline.scope(|| TraceContext::inject_current(&mut second));
        /// call.finish();
        /// assert_ne!(parent(&first), parent(&second));
        /// assert_eq!(timeline.snapshot().call_span_id(1), Some(parent(&second)));
        ///
        /// assert!(!TraceContext::inject_current(&mut HeaderMap::new())); // nothing current
        /// ```
        pub fn inject_current(headers: &mut HeaderMap) -> bool {
            let Some(timeline) = crate::current() else {
                return false;
            };
            let context = match timeline.call_cover() {
                CallCover::Covered(context) => context,
                CallCover::Bare => timeline.trace_context(),
            };
            let Some(context) = context else {
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
    const IDS: &str = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";

    /// The tracestate passed on after reading `state`.
    fn keep(state: &str) -> Option<String> {
        TraceContext::parse(VALID, Some(state))
            .unwrap()
            .tracestate()
            .map(str::to_owned)
    }

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
        // Flags are bits: 03 is sampled too.
        assert!(
            TraceContext::parse(&VALID.replace("-01", "-03"), None)
                .unwrap()
                .is_sampled()
        );
    }

    #[test]
    fn the_random_flag_goes_out_as_it_came_and_unknown_flags_as_zero() {
        for (incoming, outgoing) in [
            ("00", "00"),
            ("01", "01"),
            ("02", "02"),
            ("03", "03"),
            // Bits this version does not define are set to zero.
            ("04", "00"),
            ("fe", "02"),
            ("ff", "03"),
        ] {
            let context = TraceContext::parse(&format!("00-{IDS}-{incoming}"), None).unwrap();
            assert!(
                context.traceparent().ends_with(&format!("-{outgoing}")),
                "{incoming} went out as {}",
                context.traceparent()
            );
            assert_eq!(context.is_random(), outgoing == "02" || outgoing == "03");
        }
        // Changing the sampled flag keeps the random one, and back.
        let random = TraceContext::parse(&format!("00-{IDS}-02"), None).unwrap();
        assert!(
            random
                .clone()
                .with_sampled(true)
                .traceparent()
                .ends_with("-03")
        );
        let plain = TraceContext::parse(&format!("00-{IDS}-01"), None).unwrap();
        assert!(plain.with_sampled(false).traceparent().ends_with("-00"));
    }

    #[test]
    fn a_new_trace_has_random_ids_and_says_so() {
        for sampled in [false, true] {
            let context = TraceContext::new_trace(sampled);
            assert!(context.is_random());
            let flags = if sampled { "-03" } else { "-02" };
            assert!(context.traceparent().ends_with(flags));
        }
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        let malformed = [
            "",
            "00",
            " ",
            &VALID[..54],
            &format!("{VALID}-"),
            &format!("{VALID}0"),
            &format!("{VALID}-what-the-future-will-be-like"),
            &VALID.replace("4bf9", "4BF9"),
            &VALID.replace("4bf9", "4bg9"),
            &VALID.replace('-', "_"),
            &VALID.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
            &VALID.replace("00f067aa0ba902b7", &"0".repeat(16)),
            &VALID.replacen("00", "ff", 1),
            &VALID.replacen("00", "0x", 1),
            &VALID.replacen("00", "0A", 1),
            &VALID.replace("-01", "-1x"),
            &VALID.replace("-01", "-0A"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{e9}",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            // Whitespace is optional around the value, never inside it.
            "00 -4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7- 01",
            "\u{a0}00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "\n00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ];
        for value in malformed {
            assert!(
                TraceContext::parse(value, None).is_none(),
                "accepted {value:?}"
            );
        }
    }

    #[test]
    fn spaces_and_tabs_around_a_traceparent_are_optional_whitespace() {
        for value in [
            format!(" {VALID}"),
            format!("\t{VALID}"),
            format!("{VALID} "),
            format!("{VALID}\t"),
            format!("\t {VALID} \t"),
        ] {
            let context = TraceContext::parse(&value, None).unwrap_or_else(|| panic!("{value:?}"));
            assert_eq!(
                context.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_known_prefix() {
        let later = VALID.replacen("00", "cc", 1);
        let context = TraceContext::parse(&later, None).unwrap();
        // Sent on as the version this module knows.
        assert!(
            context
                .traceparent()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
        assert!(TraceContext::parse(&format!("{later}-what-comes-next"), None).is_some());
        assert!(TraceContext::parse(&format!("{later}x"), None).is_none());
        assert!(TraceContext::parse(&format!("{later}.what-comes-next"), None).is_none());
        assert!(TraceContext::parse(&later[..54], None).is_none());
        // Version 01, the next, likewise; ff never.
        assert!(TraceContext::parse(&VALID.replacen("00", "01", 1), None).is_some());
        assert!(TraceContext::parse(&format!("ff{}", &later[2..]), None).is_none());
        // A later version's flags: what this version defines, no more.
        let flags = TraceContext::parse(&format!("cc-{IDS}-ff-x"), None).unwrap();
        assert!(flags.traceparent().ends_with("-03"));
    }

    #[test]
    fn tracestate_members_are_read_with_the_whitespace_around_them_ignored() {
        assert_eq!(
            keep("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE").as_deref(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        assert_eq!(
            keep("foo=1 \t , \t bar=2, \t baz=3").as_deref(),
            Some("foo=1,bar=2,baz=3")
        );
        assert_eq!(keep("\t foo=1 \t").as_deref(), Some("foo=1"));
        // Leading spaces belong to the value; trailing ones do not.
        assert_eq!(keep("foo=  1  ").as_deref(), Some("foo=  1"));
        // Empty and blank members are allowed, and skipped.
        assert_eq!(keep(",, \t ,foo=1,").as_deref(), Some("foo=1"));
        assert_eq!(keep(""), None);
        assert_eq!(keep(" , "), None);
    }

    #[test]
    fn tracestate_keys_follow_the_level_2_grammar() {
        let valid = [
            "foo",
            "foo@",
            "foo@@bar",
            "foo@bar@baz",
            "1special",
            "tenant1@vendor",
            "a_-*/@z09",
            &"z".repeat(256),
            &format!("{}@{}", "t".repeat(241), "v".repeat(14)),
            &format!("{}@v", "t".repeat(242)),
            &format!("t@{}", "v".repeat(15)),
        ];
        for key in valid {
            assert_eq!(
                keep(&format!("{key}=1,bar=2")),
                Some(format!("{key}=1,bar=2")),
                "{key}"
            );
        }
        let invalid = [
            "@foo",
            "_foo",
            "Foo",
            "FOO",
            "foo.bar",
            "foo ",
            "fo o",
            "",
            "f\u{e9}",
            &"z".repeat(257),
        ];
        for key in invalid {
            assert_eq!(keep(&format!("bar=2,{key}=1")), None, "{key}");
        }
    }

    #[test]
    fn tracestate_values_follow_the_grammar() {
        let all: String = (0x20u8..=0x7e)
            .filter(|b| !matches!(b, b',' | b'='))
            .map(char::from)
            .collect();
        assert_eq!(keep(&format!("k={all}")), Some(format!("k={all}")));
        assert_eq!(
            keep(&format!("k={}", "v".repeat(256))).map(|s| s.len()),
            Some(258)
        );
        for value in ["", "a=b", "\u{7f}", "tab\there", "\u{e9}", &"v".repeat(257)] {
            assert_eq!(keep(&format!("foo={value},bar=3")), None, "{value:?}");
        }
        assert_eq!(keep("no-equals-sign"), None);
    }

    #[test]
    fn duplicate_tracestate_members_are_dropped_one_by_one_keeping_the_first() {
        assert_eq!(keep("foo=1,foo=1").as_deref(), Some("foo=1"));
        assert_eq!(
            keep("foo=1,bar=2,foo=3,baz=4,bar=5").as_deref(),
            Some("foo=1,bar=2,baz=4")
        );
    }

    #[test]
    fn a_tracestate_of_more_than_32_members_does_not_parse() {
        let members: Vec<String> = (1..=33).map(|n| format!("bar{n:02}={n:02}")).collect();
        let kept = keep(&members[..32].join(",")).unwrap();
        assert_eq!(kept.split(',').count(), 32);
        assert_eq!(keep(&members.join(",")), None);
        // Empty members are not members.
        assert!(keep(&format!("{},,,", members[..32].join(",,"))).is_some());
        // Duplicates are members of the list as it came.
        assert_eq!(keep(&vec!["k=v"; 33].join(",")), None);
    }

    #[test]
    fn a_long_tracestate_is_cut_by_whole_members_the_largest_over_128_first() {
        let member = |key: &str, len: usize| format!("{key}={}", "v".repeat(len - key.len() - 1));
        // 8 members of 40 characters, one of 150, one of 200: 679 in all.
        let mut members: Vec<String> = (0..8).map(|n| member(&format!("k{n}"), 40)).collect();
        members.insert(2, member("big", 200));
        members.insert(5, member("mid", 150));
        let kept = keep(&members.join(",")).unwrap();
        // Without the 200 one: 8 * 41 + 150 = 478, short enough.
        let mut expected = members.clone();
        expected.remove(2);
        assert_eq!(kept, expected.join(","));

        // Only short members: dropped from the end until it fits.
        let short: Vec<String> = (0..32).map(|n| member(&format!("s{n}"), 20)).collect();
        let kept = keep(&short.join(",")).unwrap();
        assert!(kept.len() <= MAX_TRACESTATE_LEN);
        assert_eq!(kept, short[..24].join(","));

        // Exactly 512 characters: nothing to cut.
        let exact = [member("a", 255), member("b", 256)].join(",");
        assert_eq!(exact.len(), 512);
        assert_eq!(keep(&exact), Some(exact));

        // Ties between long members: the right-most goes first.
        let tie = [member("x", 200), member("y", 200), member("z", 200)].join(",");
        assert_eq!(
            keep(&tie),
            Some([member("x", 200), member("y", 200)].join(","))
        );
    }

    #[test]
    fn a_prohibitively_large_tracestate_is_not_read() {
        let padded = format!("foo=1{}", " ".repeat(MAX_TRACESTATE_INPUT));
        assert_eq!(keep(&padded), None);
        let fits = format!("foo=1{}", " ".repeat(MAX_TRACESTATE_INPUT - 5));
        assert_eq!(keep(&fits).as_deref(), Some("foo=1"));
    }

    #[test]
    fn outgoing_traceparent_round_trips() {
        let context = TraceContext::new_trace(true);
        let child = TraceContext::parse(&context.traceparent(), None).unwrap();
        assert_eq!(child.trace_id(), context.trace_id());
        assert_eq!(child.parent_span_id(), Some(context.span_id()));
        assert!(child.is_sampled());
        assert!(child.is_random());
    }

    #[test]
    fn new_ids_differ() {
        let a = TraceContext::new_trace(false);
        let b = TraceContext::new_trace(false);
        assert_ne!(a.trace_id(), b.trace_id());
        assert_ne!(a.span_id(), b.span_id());
    }
}
