//! The recording core: the [`Timeline`] handle, its builder and settings,
//! the storage of actions, and the guard that finishes them.
//!
//! Only this module touches a timeline's storage. The rest of the crate
//! sees methods: readers take a [`Snapshot`] (plain data, under one lock),
//! and the integrations record through a small crate-private surface on
//! [`Timeline`]:
//!
//! - `start_unrefused`: start an action that is never refused (stored as
//!   concurrent on overlap), for bridges that cannot handle an error;
//! - `record_ended_now`: add an action that ended now, for events that
//!   report a duration when their work finished;
//!   both take as call site the one the application named for this
//!   thread (`call_site.rs`, `with_call_site`), else none;
//! - `start_for_timed`: what `#[timed]` expands to, refused only on a
//!   strict timeline;
//! - `max_detail_len` and `filter_detail`: the detail limits, for sources
//!   that render or filter text themselves;
//! - `action_count` and `with_timings`: the summary line's count and the
//!   time per action without copying any detail;
//! - `ActionGuard::end_correctable`: end a span's action when its source
//!   says the work is done, and get an `EndedAction` through which what
//!   the span records later corrects it (`set_outcome`, and
//!   `narrow_to_driver` for a driver's own timing), never beyond the
//!   interval it ended with;
//! - `work_begins` and `work_ends`: a thread inside the request's span
//!   that may still record (a driver's worker), counted as outstanding;
//!   `is_settled` and `poll_settled` for the web layer that waits for it,
//!   and `seal` once its report is made: then what the bridges bring is
//!   counted as [`late`](Timeline::late), not stored (`settle.rs`);
//! - `call_cover` and `start_call`: outgoing calls made outside a guard
//!   (`TraceContext::inject_current`, the reqwest middleware) — which
//!   action a call belongs to, which then gets a span id of its own, or a
//!   new action for the call alone. `ActionGuard::trace_context` (public)
//!   does it for a given action, and `Snapshot::call_span_id` tells
//!   readers which actions became calls, under which span id.
//!
//! Inside, in layers: `timeline.rs` (the handle) and `guard.rs` (its guard)
//! call `state.rs` (the state machine under the lock: the rule that
//! actions do not overlap), which stores [`Texts`](texts) prepared by
//! `detail.rs` into `slots.rs`, and the span ids of the actions that
//! became calls in `calls.rs`, a table beside the slots; `settle.rs` keeps
//! the outstanding work and the late count beside the lock.

mod action;
mod builder;
mod calls;
mod config;
mod detail;
mod guard;
mod pauses;
mod settle;
mod slots;
mod snapshot;
mod state;
mod texts;
mod timeline;

pub(crate) use action::whole_millis;
pub use action::{Action, CallSite, LogTuple, Outcome};
pub use builder::TimelineBuilder;
pub use guard::ActionGuard;
#[cfg(all(feature = "tower", feature = "tracing"))]
pub(crate) use guard::EndedAction;
pub use pauses::FindingsPause;
pub use snapshot::Snapshot;
#[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
pub(crate) use state::CallCover;
pub use timeline::Timeline;
