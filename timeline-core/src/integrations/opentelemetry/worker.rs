//! Exporting off the request's path: a policy says which requests are
//! exported, and a thread of its own builds their spans.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::trace::Tracer;

use super::{RequestSpan, export};
use crate::{Timeline, TraceContext, TraceId};

type ExportFn = dyn Fn(&Timeline, RequestSpan) + Send + Sync;

/// The largest export queue: std's bounded channel allocates all of it.
const MAX_QUEUE_CAPACITY: usize = 1 << 16;

/// A tracer and an export policy for the `tower` layer (see
/// [`RequestTimelineLayer::export_spans`](crate::integrations::tower::RequestTimelineLayer::export_spans)),
/// or for exporting timelines by hand without building spans on the
/// request's path.
///
/// Which requests are exported:
///
/// - every request that deserves an OOPS report — a 5xx, a failure, a
///   panic, past the soft time limit — when
///   [`always_export_oops`](Self::always_export_oops) (default `true`);
/// - of the rest, those whose trace is sampled: when a request arrives with
///   a `traceparent`, its sampled flag decides
///   ([`honour_sampled_flag`](Self::honour_sampled_flag), default `true`);
///   otherwise a [`sample_fraction`](Self::sample_fraction) of them (default
///   1.0, all), chosen by trace id when the request starts. Outgoing calls
///   carry that decision downstream as their sampled flag.
///
/// **With the SDK's sampler.** The exported request span's parent is
/// flagged sampled, so the SDK's default sampler, `ParentBased(AlwaysOn)`,
/// records exactly what this policy chose. A `ParentBased` sampler ignores
/// its root sampler here; a sampler that is not parent based
/// (`TraceIdRatioBased` alone) samples again, on top of this policy — and
/// may then drop OOPS'd requests too. Leave the SDK's sampler at its
/// default and sample here.
///
/// Exports are queued (at most [`queue_capacity`](Self::queue_capacity),
/// default 1,024; past it they are counted in [`dropped`](Self::dropped))
/// and built on one background thread, started at the first export. Call
/// [`flush`](Self::flush) before shutting the tracer provider down.
///
/// ```
/// use std::time::Duration;
/// use opentelemetry::trace::TracerProvider as _;
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use timeline_core::integrations::opentelemetry::{RequestSpan, SpanExport};
/// use timeline_core::Timeline;
///
/// let spans = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
/// let export = SpanExport::new(provider.tracer("timeline"))
///     .sample_fraction(0.1)
///     .always_export_oops(true);
///
/// let timeline = Timeline::new();
/// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
/// export.export(timeline, RequestSpan::new("nightly job"));
/// assert!(export.flush(Duration::from_secs(5)));
/// assert_eq!(spans.get_finished_spans().unwrap().len(), 2);
/// ```
#[derive(Clone)]
pub struct SpanExport {
    shared: Arc<Shared>,
    always_export_oops: bool,
    sample_fraction: f64,
    honour_sampled_flag: bool,
    queue_capacity: usize,
}

struct Shared {
    export: Arc<ExportFn>,
    queue: OnceLock<Option<SyncSender<Job>>>,
    dropped: AtomicU64,
    /// Shared with the export thread, which must not hold `Shared`: the
    /// queue's sender in it is what ends that thread when dropped.
    panicked: Arc<AtomicU64>,
}

enum Job {
    Export(Timeline, RequestSpan),
    Flush(mpsc::Sender<()>),
}

impl fmt::Debug for SpanExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanExport")
            .field("always_export_oops", &self.always_export_oops)
            .field("sample_fraction", &self.sample_fraction)
            .field("honour_sampled_flag", &self.honour_sampled_flag)
            .field("queue_capacity", &self.queue_capacity)
            .field("dropped", &self.dropped())
            .field("panicked", &self.panicked())
            .finish_non_exhaustive()
    }
}

impl SpanExport {
    /// Exports through `tracer` (e.g. `provider.tracer("timeline")`), with
    /// the default policy: OOPS'd requests always, the rest when sampled,
    /// all new traces sampled.
    pub fn new<T>(tracer: T) -> SpanExport
    where
        T: Tracer + Send + Sync + 'static,
    {
        SpanExport {
            shared: Arc::new(Shared {
                export: Arc::new(move |timeline, request| {
                    export(timeline, &tracer, request);
                }),
                queue: OnceLock::new(),
                dropped: AtomicU64::new(0),
                panicked: Arc::default(),
            }),
            always_export_oops: true,
            sample_fraction: 1.0,
            honour_sampled_flag: true,
            queue_capacity: 1024,
        }
    }

    /// Export every request that deserves an OOPS report, whatever the
    /// sampling (default `true`).
    pub fn always_export_oops(mut self, always: bool) -> SpanExport {
        self.always_export_oops = always;
        self
    }

    /// The share of new traces to sample, from 0.0 to 1.0 (default 1.0);
    /// out-of-range values are clamped, NaN counts as 0.
    pub fn sample_fraction(mut self, fraction: f64) -> SpanExport {
        self.sample_fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Whether an incoming `traceparent`'s sampled flag decides for its
    /// request (default `true`, as W3C intends); `false` applies the
    /// [`sample_fraction`](Self::sample_fraction) to those too.
    pub fn honour_sampled_flag(mut self, honour: bool) -> SpanExport {
        self.honour_sampled_flag = honour;
        self
    }

    /// How many exports may wait for the export thread (default 1,024,
    /// at least 1, at most 65,536: the queue is allocated whole); more are
    /// dropped and counted in [`dropped`](Self::dropped). Fixed by the
    /// first export.
    pub fn queue_capacity(mut self, capacity: usize) -> SpanExport {
        self.queue_capacity = capacity.clamp(1, MAX_QUEUE_CAPACITY);
        self
    }

    /// How many exports were dropped because the queue was full or the
    /// export thread could not be started.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// How many exports a panic cut short: in the tracer, a span processor
    /// or an exporter — user code. Such an export loses the spans not yet
    /// handed over when it panicked (the request span is still ended, see
    /// [`export`](super::export)); the export thread goes on with the next.
    /// The panic itself is reported by the panic hook, as any panic is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use opentelemetry::trace::noop::NoopTracer;
    /// use timeline_core::integrations::opentelemetry::{RequestSpan, SpanExport};
    /// use timeline_core::Timeline;
    ///
    /// let export = SpanExport::new(NoopTracer::new());
    /// export.export(Timeline::new(), RequestSpan::new("job"));
    /// assert!(export.flush(Duration::from_secs(5)));
    /// assert_eq!(export.panicked(), 0);
    /// ```
    pub fn panicked(&self) -> u64 {
        self.shared.panicked.load(Ordering::Relaxed)
    }

    /// Queues `timeline` for export on the export thread; `false` if it was
    /// dropped instead. Never blocks.
    pub fn export(&self, timeline: Timeline, request: RequestSpan) -> bool {
        let Some(queue) = self.queue() else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        match queue.try_send(Job::Export(timeline, request)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Waits until every export queued so far has been handed to the
    /// tracer, at most `timeout`; `true` if they all were. (The tracer's own
    /// processor may still batch them: flush the provider too.)
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(queue) = self.queue() else {
            return false;
        };
        let (done, wait) = mpsc::channel();
        // A timeout too long to represent waits without a deadline.
        let deadline = Instant::now().checked_add(timeout);
        let mut job = Job::Flush(done);
        // A full queue: wait for room rather than block past the deadline.
        loop {
            match queue.try_send(job) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(returned)) => {
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        return false;
                    }
                    job = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        match deadline {
            Some(deadline) => wait
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .is_ok(),
            None => wait.recv().is_ok(),
        }
    }

    /// The trace context of a request that starts with `incoming` (a valid
    /// `traceparent`, if any): the sampled flag set by the policy.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // the layer's
    pub(crate) fn start_context(&self, incoming: Option<TraceContext>) -> TraceContext {
        match incoming {
            Some(context) if self.honour_sampled_flag => context,
            Some(context) => {
                let sampled = self.fraction_samples(context.trace_id());
                context.with_sampled(sampled)
            }
            None => {
                let context = TraceContext::new_trace(false);
                let sampled = self.fraction_samples(context.trace_id());
                context.with_sampled(sampled)
            }
        }
    }

    /// Whether a finished request is exported.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // the layer's
    pub(crate) fn chooses(&self, context: Option<&TraceContext>, oops: bool) -> bool {
        (oops && self.always_export_oops) || context.is_some_and(TraceContext::is_sampled)
    }

    /// Whether a new trace falls in the sampled fraction: decided by its
    /// trace id, as the SDK's `TraceIdRatioBased` does, so the decision is
    /// the same wherever it is made.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // the layer's
    fn fraction_samples(&self, trace_id: TraceId) -> bool {
        if self.sample_fraction >= 1.0 {
            return true;
        }
        let bytes = trace_id.to_bytes();
        let mut low = [0; 8];
        low.copy_from_slice(&bytes[8..]);
        // 53 random bits: exactly representable as f64.
        let draw = (u64::from_be_bytes(low) >> 11) as f64 / (1u64 << 53) as f64;
        draw < self.sample_fraction
    }

    /// The queue to the export thread, started at the first call.
    fn queue(&self) -> Option<&SyncSender<Job>> {
        self.shared
            .queue
            .get_or_init(|| {
                let (queue, jobs) = mpsc::sync_channel(self.queue_capacity);
                let export = Arc::clone(&self.shared.export);
                let panicked = Arc::clone(&self.shared.panicked);
                std::thread::Builder::new()
                    .name("timeline-otel-export".into())
                    .spawn(move || {
                        // Ends when the last `SpanExport` clone is dropped.
                        for job in jobs {
                            match job {
                                Job::Export(timeline, request) => {
                                    // The tracer and exporters are user
                                    // code: a panic loses this export only.
                                    let export = AssertUnwindSafe(|| export(&timeline, request));
                                    if panic::catch_unwind(export).is_err() {
                                        panicked.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                Job::Flush(done) => {
                                    let _ = done.send(());
                                }
                            }
                        }
                    })
                    .ok()
                    .map(|_| queue)
            })
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::noop::NoopTracer;

    #[test]
    fn the_fraction_samples_about_its_share_of_new_traces() {
        let export = SpanExport::new(NoopTracer::new()).sample_fraction(0.25);
        let sampled = (0..4_000)
            .filter(|_| export.start_context(None).is_sampled())
            .count();
        assert!((800..1_200).contains(&sampled), "{sampled} of 4000");
        let none = SpanExport::new(NoopTracer::new()).sample_fraction(f64::NAN);
        assert!(!none.start_context(None).is_sampled());
        let all = SpanExport::new(NoopTracer::new()).sample_fraction(7.0);
        assert!(all.start_context(None).is_sampled());
    }

    #[test]
    fn the_incoming_flag_decides_unless_told_otherwise() {
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let incoming = || TraceContext::parse(unsampled, None);
        let honouring = SpanExport::new(NoopTracer::new());
        assert!(!honouring.start_context(incoming()).is_sampled());
        let overriding = SpanExport::new(NoopTracer::new()).honour_sampled_flag(false);
        assert!(overriding.start_context(incoming()).is_sampled());
    }

    #[test]
    fn extreme_settings_neither_panic_nor_allocate_without_bound() {
        let export = SpanExport::new(NoopTracer::new()).queue_capacity(usize::MAX);
        assert_eq!(export.queue_capacity, MAX_QUEUE_CAPACITY);
        assert!(export.export(Timeline::new(), RequestSpan::new("r")));
        assert!(export.flush(Duration::MAX));
        let export = SpanExport::new(NoopTracer::new()).queue_capacity(0);
        assert_eq!(export.queue_capacity, 1);
    }

    #[test]
    fn oopses_are_exported_unsampled_unless_told_otherwise() {
        let context = TraceContext::new_trace(false);
        let export = SpanExport::new(NoopTracer::new());
        assert!(export.chooses(Some(&context), true));
        assert!(!export.chooses(Some(&context), false));
        assert!(
            !export
                .clone()
                .always_export_oops(false)
                .chooses(Some(&context), true)
        );
        assert!(export.chooses(Some(&context.with_sampled(true)), false));
    }
}
