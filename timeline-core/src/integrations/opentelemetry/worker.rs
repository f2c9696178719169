//! Exporting off the request's path: a policy says which requests are
//! exported, and a thread of its own builds their spans.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::trace::Tracer;
use parking_lot::{Condvar, Mutex};

use super::{RequestSpan, export};
use crate::{Timeline, TraceContext, TraceId};

type ExportFn = dyn Fn(&Timeline, RequestSpan) + Send + Sync;

/// The largest export queue.
const MAX_QUEUE_CAPACITY: usize = 1 << 16;

/// How long the export thread, woken by a first export, lets others gather
/// before it builds them: one wake-up per batch instead of one per request,
/// as the SDK's own batch processor does (it waits up to 5 s).
const BATCH_DELAY: Duration = Duration::from_millis(50);

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
/// and built in batches on one background thread, started at the first
/// export: a request's export costs it a push onto the queue, and the
/// thread wakes once per batch (within 50 ms of the first export waiting,
/// or sooner when half the queue is full). Call [`flush`](Self::flush)
/// before shutting the tracer provider down.
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
    queue: OnceLock<Option<Arc<Queue>>>,
    dropped: AtomicU64,
    /// Shared with the export thread, which must not hold `Shared`: its
    /// drop is what ends that thread.
    panicked: Arc<AtomicU64>,
}

impl Drop for Shared {
    /// The last `SpanExport` clone is gone: the export thread builds what is
    /// queued, then ends.
    fn drop(&mut self) {
        if let Some(Some(queue)) = self.queue.get() {
            queue.jobs.lock().closed = true;
            queue.wake.notify_one();
        }
    }
}

enum Job {
    Export(Timeline, RequestSpan),
    Flush(mpsc::Sender<()>),
}

/// The jobs waiting for the export thread, and how to wake it.
struct Queue {
    jobs: Mutex<Jobs>,
    wake: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct Jobs {
    waiting: VecDeque<Job>,
    /// The thread sleeps until woken: the next export must wake it.
    idle: bool,
    /// A flush or a half-full queue: build now, without the batch delay.
    hurry: bool,
    closed: bool,
}

impl Queue {
    /// Queues `job` unless the queue is full; wakes the thread when it
    /// sleeps, or is to hurry.
    fn push(&self, job: Job, hurry: bool) -> Result<(), Job> {
        let mut jobs = self.jobs.lock();
        if jobs.waiting.len() >= self.capacity {
            return Err(job);
        }
        jobs.waiting.push_back(job);
        let hurry = hurry || jobs.waiting.len() >= self.capacity.div_ceil(2);
        let wake = jobs.idle || (hurry && !jobs.hurry);
        jobs.idle = false;
        jobs.hurry |= hurry;
        drop(jobs);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The next batch, after sleeping until there is one; `None` once the
    /// last `SpanExport` is gone and nothing is left.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut jobs = self.jobs.lock();
        while jobs.waiting.is_empty() {
            if jobs.closed {
                return None;
            }
            jobs.idle = true;
            self.wake.wait(&mut jobs);
        }
        // Woken by a first export: let the batch gather.
        if !jobs.hurry && !jobs.closed {
            let _ = self.wake.wait_for(&mut jobs, BATCH_DELAY);
        }
        jobs.hurry = false;
        Some(jobs.waiting.drain(..).collect())
    }
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
        let queued = self
            .queue()
            .is_some_and(|queue| queue.push(Job::Export(timeline, request), false).is_ok());
        if !queued {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
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
        while let Err(returned) = queue.push(job, true) {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return false;
            }
            job = returned;
            std::thread::sleep(Duration::from_millis(1));
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
    fn queue(&self) -> Option<&Queue> {
        self.shared
            .queue
            .get_or_init(|| {
                let queue = Arc::new(Queue {
                    jobs: Mutex::new(Jobs::default()),
                    wake: Condvar::new(),
                    capacity: self.queue_capacity,
                });
                let jobs = Arc::clone(&queue);
                let export = Arc::clone(&self.shared.export);
                let panicked = Arc::clone(&self.shared.panicked);
                std::thread::Builder::new()
                    .name("timeline-otel-export".into())
                    .spawn(move || {
                        // Ends when the last `SpanExport` clone is dropped.
                        while let Some(batch) = jobs.next_batch() {
                            for job in batch {
                                match job {
                                    Job::Export(timeline, request) => {
                                        // The tracer and exporters are user
                                        // code: a panic loses this export only.
                                        let export =
                                            AssertUnwindSafe(|| export(&timeline, request));
                                        if panic::catch_unwind(export).is_err() {
                                            panicked.fetch_add(1, Ordering::Relaxed);
                                        }
                                    }
                                    Job::Flush(done) => {
                                        let _ = done.send(());
                                    }
                                }
                            }
                        }
                    })
                    .ok()
                    .map(|_| queue)
            })
            .as_deref()
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
    fn the_last_handle_dropped_exports_what_is_queued_without_a_flush() {
        use opentelemetry::trace::TracerProvider as _;
        use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

        let spans = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let export = SpanExport::new(provider.tracer("timeline"));
        for _ in 0..10 {
            assert!(export.export(Timeline::new(), RequestSpan::new("r")));
        }
        drop(export);
        let deadline = Instant::now() + Duration::from_secs(30);
        let exported = || spans.get_finished_spans().unwrap().len();
        while exported() < 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(exported(), 10, "one request span per queued export");
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_a_flush_still_gets_through() {
        // A tracer that blocks until released keeps the thread busy with
        // the first batch while the queue fills behind it.
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let held = Arc::clone(&release);
        let export = SpanExport {
            shared: Arc::new(Shared {
                export: Arc::new(move |_, _| {
                    let (released, wake) = &*held;
                    let mut released = released.lock();
                    while !*released {
                        wake.wait(&mut released);
                    }
                }),
                queue: OnceLock::new(),
                dropped: AtomicU64::new(0),
                panicked: Arc::default(),
            }),
            ..SpanExport::new(NoopTracer::new()).queue_capacity(4)
        };
        assert!(export.flush(Duration::from_secs(30)), "the thread runs");
        assert!(export.export(Timeline::new(), RequestSpan::new("first")));
        // Until the thread has taken the first export, the queue holds it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while export.queue().unwrap().jobs.lock().waiting.len() == 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let accepted = (0..10)
            .filter(|_| export.export(Timeline::new(), RequestSpan::new("r")))
            .count();
        assert_eq!(accepted, 4, "the queue holds 4");
        assert_eq!(export.dropped(), 6);
        let (released, wake) = &*release;
        *released.lock() = true;
        wake.notify_all();
        assert!(export.flush(Duration::from_secs(30)));
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
