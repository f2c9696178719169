//! A [`tracing_subscriber::Layer`] that records selected spans as actions on
//! the current timeline, so crates already instrumented with `tracing` —
//! sqlx, reqwest, your own — feed timelines unchanged.
//!
//! ```
//! use timeline_core::Timeline;
//! use timeline_core::integrations::tracing::TimelineLayer;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let layer = TimelineLayer::new()
//!     .target("sqlx::query")
//!     .category("SQL-main")
//!     .detail_field("db.statement");
//! let subscriber = tracing_subscriber::registry().with(layer);
//!
//! let timeline = Timeline::new();
//! tracing::subscriber::with_default(subscriber, || {
//!     timeline.scope(|| {
//!         // What an instrumented database driver does:
//!         let span = tracing::info_span!(target: "sqlx::query", "query", db.statement = "SELECT 1");
//!         let _entered = span.enter();
//!     });
//! });
//! let action = &timeline.actions()[0];
//! assert_eq!((action.category(), action.detail()), ("SQL-main", "SELECT 1"));
//! ```
//!
//! # When an action starts and finishes
//!
//! A selected span becomes an action when it is first entered, on the
//! timeline current at that moment (for async code, the one made current by
//! [`with_timeline`](crate::WithTimeline::with_timeline)); the action
//! finishes when the span closes. A span entered with no current timeline is
//! not recorded.
//!
//! # Nesting and the overlap rule
//!
//! Actions do not overlap. If a selected span is entered while the action of
//! another selected span is still open — say an `http.request` span around a
//! `query` span, both selected — the inner span is not recorded: the
//! timeline notes a [`Violation`](crate::Violation) naming both (even on a
//! `strict` timeline, a subscriber never panics). Select only the innermost
//! spans that do the external work, or mark outer spans with
//! [`nesting_name`](TimelineLayer::nesting_name) so that they are recorded
//! as nesting actions, which may contain others.

use std::borrow::Cow;
use std::fmt;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::{ActionGuard, current};

/// Records selected `tracing` spans as actions on the current timeline; see
/// the [module documentation](self).
#[derive(Clone, Debug, Default)]
pub struct TimelineLayer {
    targets: Vec<Cow<'static, str>>,
    names: Vec<Cow<'static, str>>,
    nesting_names: Vec<Cow<'static, str>>,
    category: Option<Cow<'static, str>>,
    category_field: Option<Cow<'static, str>>,
    detail_field: Option<Cow<'static, str>>,
}

impl TimelineLayer {
    /// A layer that records every span, with the span's name as category and
    /// an empty detail. Narrow it with [`target`](Self::target) and
    /// [`name`](Self::name).
    ///
    /// ```
    /// use timeline_core::integrations::tracing::TimelineLayer;
    ///
    /// let layer = TimelineLayer::new().name("query").detail_field("db.statement");
    /// # drop(layer);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Also select spans whose target starts with `prefix` (e.g. `sqlx`).
    /// With no target given, spans of every target are selected.
    pub fn target(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.targets.push(prefix.into());
        self
    }

    /// Also select spans with this name. With no name given, spans of every
    /// name (of the selected targets) are selected.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.names.push(name.into());
        self
    }

    /// Record selected spans with this name as nesting actions, which may
    /// contain the actions of other spans.
    pub fn nesting_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.nesting_names.push(name.into());
        self
    }

    /// The category of every recorded span (default: the span's name).
    pub fn category(mut self, category: impl Into<Cow<'static, str>>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Take the category from this field of the span when it has one (e.g.
    /// `db.system`), else from [`category`](Self::category) or the name.
    pub fn category_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.category_field = Some(field.into());
        self
    }

    /// Take the detail from this field of the span (e.g. `db.statement` or
    /// `url`); without it, or when the span lacks the field, the detail is
    /// empty.
    pub fn detail_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.detail_field = Some(field.into());
        self
    }

    fn selects(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_span()
            && (self.targets.is_empty()
                || self
                    .targets
                    .iter()
                    .any(|t| metadata.target().starts_with(&**t)))
            && (self.names.is_empty()
                || self.names.iter().any(|n| n == metadata.name())
                || self.nesting_names.iter().any(|n| n == metadata.name()))
    }
}

/// What a selected span will be recorded as, until it is first entered.
struct Pending {
    category: Cow<'static, str>,
    detail: Cow<'static, str>,
    nested: bool,
}

/// The action of an entered span, finished when the span closes.
struct Recording(#[allow(dead_code)] ActionGuard);

/// Reads the category and detail fields of a span.
struct FieldReader<'a> {
    layer: &'a TimelineLayer,
    pending: &'a mut Pending,
}

impl FieldReader<'_> {
    fn take(&mut self, field: &Field, value: Cow<'_, str>) {
        if self.layer.detail_field.as_deref() == Some(field.name()) {
            self.pending.detail = Cow::Owned(value.into_owned());
        } else if self.layer.category_field.as_deref() == Some(field.name()) {
            self.pending.category = Cow::Owned(value.into_owned());
        }
    }
}

impl Visit for FieldReader<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.take(field, Cow::Borrowed(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.layer.detail_field.as_deref() == Some(field.name())
            || self.layer.category_field.as_deref() == Some(field.name())
        {
            // `%value` fields arrive here too, formatted with `Display`.
            self.take(field, Cow::Owned(format!("{value:?}")));
        }
    }
}

impl<S> Layer<S> for TimelineLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let metadata = attrs.metadata();
        if !self.selects(metadata) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut pending = Pending {
            category: self
                .category
                .clone()
                .unwrap_or(Cow::Borrowed(metadata.name())),
            detail: Cow::Borrowed(""),
            nested: self.nesting_names.iter().any(|n| n == metadata.name()),
        };
        attrs.record(&mut FieldReader {
            layer: self,
            pending: &mut pending,
        });
        span.extensions_mut().insert(pending);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(pending) = extensions.get_mut::<Pending>() {
            values.record(&mut FieldReader {
                layer: self,
                pending,
            });
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(pending) = extensions.remove::<Pending>() else {
            return; // not selected, or already recording
        };
        let Some(timeline) = current() else { return };
        let guard = timeline.start_unrefused(pending.category, pending.detail, pending.nested);
        extensions.insert(Recording(guard));
    }
}
