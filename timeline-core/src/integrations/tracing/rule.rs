//! Rules: which spans or events the bridge records, and how each becomes an
//! action (category, detail, duration, outcome).

use std::borrow::Cow;
use std::fmt;

use tracing_core::Metadata;

use super::values::Values;

/// Whether a rule selects spans or events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Span,
    Event,
}

/// A test of a field's text, e.g. "is an absolute URI".
pub type Predicate = fn(&str) -> bool;

/// A field and the test its value must pass.
type Condition = (Cow<'static, str>, Predicate);

/// How a rule learns whether an action succeeded, besides its error
/// templates.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcomes {
    /// A span that closes, or an event that fires, without an error
    /// succeeded: what your own spans mean.
    Implied,
    /// The source never says: not reported, unless an error renders.
    NeverReported,
    /// Succeeded once one of these fields was recorded; not reported
    /// without any.
    Fields(Vec<Cow<'static, str>>),
}

/// Selects spans or events by target, name and fields, and says how each
/// becomes an action; see the [module documentation](super) for how spans
/// and events are recorded.
///
/// Category, detail and error messages are *templates*: text in which
/// `{field}` stands for the value of that field (`"HTTP-{http.request.method}"`).
/// A template renders only when every field it names has a non-blank value;
/// rules accept several detail and error templates and use the first that
/// renders.
///
/// ```
/// use timeline_core::Timeline;
/// use timeline_core::integrations::tracing::{Rule, TimelineLayer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let cache_gets = Rule::spans()
///     .target("my_app::cache")
///     .name("get")
///     .category("memcache-get")
///     .detail_field("key");
/// let subscriber = tracing_subscriber::registry().with(TimelineLayer::empty().rule(cache_gets));
///
/// let timeline = Timeline::new();
/// tracing::subscriber::with_default(subscriber, || {
///     timeline.scope(|| {
///         let _get = tracing::info_span!(target: "my_app::cache", "get", key = "user:42").entered();
///     })
/// });
/// assert_eq!(timeline.actions()[0].detail(), "user:42");
/// ```
#[derive(Clone, Debug)]
pub struct Rule {
    pub(crate) kind: Kind,
    target: Option<Cow<'static, str>>,
    name: Option<Cow<'static, str>>,
    required_fields: Vec<Cow<'static, str>>,
    condition: Option<Condition>,
    category: Option<Template>,
    /// Category templates, each applying only when its condition holds;
    /// the first that does wins over `category`.
    categories_when: Vec<(Condition, Template)>,
    details: Vec<Template>,
    /// Error templates, each applying only when its condition holds.
    errors: Vec<(Option<Condition>, Template)>,
    durations: Vec<Cow<'static, str>>,
    outcomes: Outcomes,
    /// Covered events that carry a duration time the span's action.
    pub(crate) timed_by_driver: bool,
    pub(crate) nested: bool,
    /// Every field any of the above reads: the only ones captured.
    read: Vec<Cow<'static, str>>,
}

impl Rule {
    fn new(kind: Kind) -> Self {
        Rule {
            kind,
            target: None,
            name: None,
            required_fields: Vec::new(),
            condition: None,
            category: None,
            categories_when: Vec::new(),
            details: Vec::new(),
            errors: Vec::new(),
            durations: Vec::new(),
            outcomes: Outcomes::Implied,
            timed_by_driver: false,
            nested: false,
            read: Vec::new(),
        }
    }

    /// Selects spans: each becomes an action when first entered inside a
    /// request, finished when the span closes.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().target("sqlx").name("query").detail_field("db.statement");
    /// # drop(rule);
    /// ```
    pub fn spans() -> Self {
        Rule::new(Kind::Span)
    }

    /// Selects events: each that carries a duration becomes an action that
    /// ended when the event fired (see [`duration_field`](Self::duration_field)).
    ///
    /// Select events by [`target`](Self::target) alone where the emitting
    /// crate asks `tracing::enabled!` before building its event, as sqlx
    /// does: that question carries the target and level only, no name and no
    /// fields, and a rule that needs them would not enable it.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::events()
    ///     .target("my_app::cache")
    ///     .category("memcache-get")
    ///     .detail_field("key")
    ///     .duration_field("elapsed_secs");
    /// # drop(rule);
    /// ```
    pub fn events() -> Self {
        Rule::new(Kind::Event)
    }

    /// Only targets that start with `prefix` (`"sqlx"` selects `sqlx::query`
    /// too). Without it, every target.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().target("my_app::db");
    /// # drop(rule);
    /// ```
    pub fn target(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.target = Some(prefix.into());
        self
    }

    /// Only spans or events with exactly this name. Without it, every name.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().name("HTTP request");
    /// # drop(rule);
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only spans or events that declare this field (set or not): a static
    /// test, made once per call site.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().target("aws_").has_field("rpc.method");
    /// # drop(rule);
    /// ```
    pub fn has_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.required_fields.push(field.into());
        self
    }

    /// Only spans whose `field` satisfies `predicate` when first entered
    /// (e.g. a `uri` that is absolute: a client's request, not a server's).
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().name("request").when("uri", |uri| uri.contains("://"));
    /// # drop(rule);
    /// ```
    pub fn when(mut self, field: impl Into<Cow<'static, str>>, predicate: Predicate) -> Self {
        let field = field.into();
        self.note_read(field.clone());
        self.condition = Some((field, predicate));
        self
    }

    /// The category template (default: the span's or event's name), e.g.
    /// `"SQL-main"` or `"HTTP-{http.request.method}"`.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().name("HTTP request").category("HTTP-{http.request.method}");
    /// # drop(rule);
    /// ```
    pub fn category(mut self, template: impl Into<Cow<'static, str>>) -> Self {
        let template = Template::parse(template.into());
        self.note_template(&template);
        self.category = Some(template);
        self
    }

    /// Adds a category template that applies instead of the
    /// [`category`](Self::category) when `field` satisfies `predicate`:
    /// the way the sqlx preset gives connection set-up its own category.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::events()
    ///     .target("my_app::cache")
    ///     .category("memcache-get")
    ///     .category_when("op", |op| op == "set", "memcache-set");
    /// # drop(rule);
    /// ```
    pub fn category_when(
        mut self,
        field: impl Into<Cow<'static, str>>,
        predicate: Predicate,
        template: impl Into<Cow<'static, str>>,
    ) -> Self {
        let field = field.into();
        let template = Template::parse(template.into());
        self.note_read(field.clone());
        self.note_template(&template);
        self.categories_when.push(((field, predicate), template));
        self
    }

    /// Adds a detail template; the first that renders is the detail (none:
    /// an empty detail).
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans()
    ///     .detail_field("url.full")
    ///     .detail("{url.scheme}://{server.address}:{server.port}");
    /// # drop(rule);
    /// ```
    pub fn detail(mut self, template: impl Into<Cow<'static, str>>) -> Self {
        let template = Template::parse(template.into());
        self.note_template(&template);
        self.details.push(template);
        self
    }

    /// Adds a field whose value, trimmed, is the detail: the same as
    /// `detail("{field}")`.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::events().detail_field("db.statement").detail_field("summary");
    /// # drop(rule);
    /// ```
    pub fn detail_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        let template = Template::field(field.into());
        self.note_template(&template);
        self.details.push(template);
        self
    }

    /// Adds an error template: when it renders, the action's outcome is
    /// [`Outcome::Error`](crate::Outcome::Error) with that text.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().error("{error.message}");
    /// # drop(rule);
    /// ```
    pub fn error(mut self, template: impl Into<Cow<'static, str>>) -> Self {
        let template = Template::parse(template.into());
        self.note_template(&template);
        self.errors.push((None, template));
        self
    }

    /// Adds an error template that applies only when `field` satisfies
    /// `predicate`, e.g. a status code of 400 or more.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().error_when(
    ///     "http.response.status_code",
    ///     |status| status.parse::<u16>().is_ok_and(|s| s >= 400),
    ///     "HTTP {http.response.status_code}",
    /// );
    /// # drop(rule);
    /// ```
    pub fn error_when(
        mut self,
        field: impl Into<Cow<'static, str>>,
        predicate: Predicate,
        template: impl Into<Cow<'static, str>>,
    ) -> Self {
        let field = field.into();
        let template = Template::parse(template.into());
        self.note_read(field.clone());
        self.note_template(&template);
        self.errors.push((Some((field, predicate)), template));
        self
    }

    /// Adds a field holding how long the event's action ran: an `f64` of
    /// seconds (`elapsed_secs = 0.0012`) or a `Duration` recorded with `?`
    /// (`?elapsed`, written `1.2ms`). The first valid one counts; with none,
    /// the action is recorded with zero length.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::events().duration_field("elapsed_secs").duration_field("elapsed");
    /// # drop(rule);
    /// ```
    pub fn duration_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        let field = field.into();
        self.note_read(field.clone());
        self.durations.push(field);
        self
    }

    /// Names a field the source records once it knows how the action
    /// ended — sea-orm's `otel.status_code`, reqwest-tracing's
    /// `http.response.status_code`. The outcome is then
    /// [`Ok`](crate::Outcome::Ok) only when one of these fields was
    /// recorded (and no error template renders), and
    /// [`NotReported`](crate::Outcome::NotReported) when none was.
    ///
    /// On a span, recording one also **ends the action**: the source
    /// is done, whoever still holds a clone of the span (sqlx's SQLite
    /// worker keeps the caller's span until after it has sent the rows).
    /// Fields recorded afterwards, until the span closes, still correct the
    /// outcome (an error message recorded after the status).
    ///
    /// Without this or [`outcome_not_reported`](Self::outcome_not_reported),
    /// a span that closes (an event that fires) without an error counts as
    /// a success, which is what your own spans mean.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans()
    ///     .target("my_app::rpc")
    ///     .error("{error}")
    ///     .outcome_field("status");
    /// # drop(rule);
    /// ```
    pub fn outcome_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        let field = field.into();
        self.note_read(field.clone());
        match &mut self.outcomes {
            Outcomes::Fields(fields) => fields.push(field),
            outcomes => *outcomes = Outcomes::Fields(vec![field]),
        }
        self
    }

    /// The source never says whether the action succeeded (sqlx's query
    /// event has no error field; tower-http and the AWS SDK report
    /// failures in events of their own): its outcome is
    /// [`NotReported`](crate::Outcome::NotReported) unless an error
    /// template renders. Never a success the source did not claim.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::events().target("my_driver::query").outcome_not_reported();
    /// # drop(rule);
    /// ```
    pub fn outcome_not_reported(mut self) -> Self {
        self.outcomes = Outcomes::NeverReported;
        self
    }

    /// The spans wrap one driver call whose own event — selected by
    /// another rule, with a [`duration_field`](Self::duration_field) —
    /// reports how long the driver worked: sea-orm's statement span
    /// around sqlx's query event. The span's action then takes the
    /// driver's timing: it ends when that event fires (or when the span's
    /// action ended, if that came first) and lasts the elapsed time the
    /// driver measured, rather than from the span's first enter to its
    /// close. With several such events in one span, it spans them all.
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().target("my_orm").detail_field("db.statement").timed_by_driver();
    /// # drop(rule);
    /// ```
    pub fn timed_by_driver(mut self) -> Self {
        self.timed_by_driver = true;
        self
    }

    /// Records the spans as nesting actions, which may contain the actions
    /// of other spans and events (a transaction around its statements).
    ///
    /// ```
    /// # use timeline_core::integrations::tracing::Rule;
    /// let rule = Rule::spans().name("transaction").nested();
    /// # drop(rule);
    /// ```
    pub fn nested(mut self) -> Self {
        self.nested = true;
        self
    }

    fn note_template(&mut self, template: &Template) {
        for field in template.fields() {
            self.note_read(field.clone());
        }
    }

    fn note_read(&mut self, field: Cow<'static, str>) {
        if !self.read.contains(&field) {
            self.read.push(field);
        }
    }

    /// Whether this rule selects the call site: a static decision.
    pub(super) fn selects(&self, metadata: &Metadata<'_>) -> bool {
        let kind = if metadata.is_span() {
            Kind::Span
        } else {
            Kind::Event
        };
        kind == self.kind
            && self
                .target
                .as_deref()
                .is_none_or(|prefix| metadata.target().starts_with(prefix))
            && self
                .name
                .as_deref()
                .is_none_or(|name| name == metadata.name())
            && self
                .required_fields
                .iter()
                .all(|field| metadata.fields().field(field).is_some())
    }

    /// The fields the rule reads.
    pub(super) fn reads(&self) -> &[Cow<'static, str>] {
        &self.read
    }

    /// Whether the values pass the rule's [`when`](Self::when) condition.
    pub(super) fn admits(&self, values: &Values) -> bool {
        match &self.condition {
            None => true,
            Some((field, predicate)) => values.text(field).is_some_and(|v| predicate(&v)),
        }
    }

    pub(super) fn render_category(
        &self,
        values: &Values,
        metadata: &'static Metadata<'static>,
    ) -> Cow<'static, str> {
        self.categories_when
            .iter()
            .find_map(|((field, predicate), template)| {
                values
                    .text(field)
                    .is_some_and(|v| predicate(&v))
                    .then(|| template.render(values))
                    .flatten()
            })
            .or_else(|| {
                self.category
                    .as_ref()
                    .and_then(|template| template.render(values))
            })
            .unwrap_or(Cow::Borrowed(metadata.name()))
    }

    pub(super) fn render_detail(&self, values: &Values) -> Cow<'static, str> {
        self.details
            .iter()
            .find_map(|template| template.render(values))
            .unwrap_or(Cow::Borrowed(""))
    }

    pub(super) fn render_error(&self, values: &Values) -> Option<String> {
        self.errors.iter().find_map(|(condition, template)| {
            if let Some((field, predicate)) = condition {
                if !values.text(field).is_some_and(|v| predicate(&v)) {
                    return None;
                }
            }
            template.render(values).map(Cow::into_owned)
        })
    }

    /// The outcome the values tell: an error that renders, else what the
    /// rule says a silent source means.
    pub(super) fn render_outcome(&self, values: &Values) -> crate::Outcome {
        use crate::Outcome;
        if let Some(error) = self.render_error(values) {
            return Outcome::Error(error);
        }
        match &self.outcomes {
            Outcomes::Implied => Outcome::Ok,
            Outcomes::NeverReported => Outcome::NotReported,
            Outcomes::Fields(_) if self.reported(values) => Outcome::Ok,
            Outcomes::Fields(_) => Outcome::NotReported,
        }
    }

    /// Whether one of the rule's outcome fields was recorded: for a span,
    /// the source is done with its action.
    pub(super) fn reported(&self, values: &Values) -> bool {
        match &self.outcomes {
            Outcomes::Fields(fields) => fields.iter().any(|field| values.text(field).is_some()),
            Outcomes::Implied | Outcomes::NeverReported => false,
        }
    }

    pub(super) fn duration_fields(&self) -> impl Iterator<Item = &str> {
        self.durations.iter().map(|f| &**f)
    }
}

/// Text in which `{field}` stands for a field's value.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(Cow<'static, str>),
    Field(Cow<'static, str>),
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for part in &self.parts {
            match part {
                Part::Text(text) => f.write_str(text)?,
                Part::Field(field) => write!(f, "{{{field}}}")?,
            }
        }
        f.write_str("\"")
    }
}

impl Template {
    fn field(field: Cow<'static, str>) -> Self {
        Template {
            parts: vec![Part::Field(field)],
        }
    }

    /// Splits at `{…}`; a `{` without a closing `}` is text.
    fn parse(source: Cow<'static, str>) -> Self {
        // Borrowed sources keep borrowing: a `&'static str` template costs
        // nothing per action.
        let piece = |range: std::ops::Range<usize>| -> Cow<'static, str> {
            match &source {
                Cow::Borrowed(s) => Cow::Borrowed(&s[range]),
                Cow::Owned(s) => Cow::Owned(s[range].to_owned()),
            }
        };
        let mut parts = Vec::new();
        let mut at = 0;
        while let Some(open) = source[at..].find('{').map(|i| at + i) {
            let Some(close) = source[open..].find('}').map(|i| open + i) else {
                break;
            };
            if open > at {
                parts.push(Part::Text(piece(at..open)));
            }
            parts.push(Part::Field(piece(open + 1..close)));
            at = close + 1;
        }
        if at < source.len() {
            parts.push(Part::Text(piece(at..source.len())));
        }
        Template { parts }
    }

    fn fields(&self) -> impl Iterator<Item = &Cow<'static, str>> {
        self.parts.iter().filter_map(|part| match part {
            Part::Field(field) => Some(field),
            Part::Text(_) => None,
        })
    }

    /// The text, if every field it names has a non-blank value.
    fn render(&self, values: &Values) -> Option<Cow<'static, str>> {
        match self.parts.as_slice() {
            [] => Some(Cow::Borrowed("")),
            [Part::Text(text)] => Some(text.clone()),
            [Part::Field(field)] => Some(Cow::Owned(values.text(field)?.into_owned())),
            parts => {
                let mut rendered = String::new();
                for part in parts {
                    match part {
                        Part::Text(text) => rendered.push_str(text),
                        Part::Field(field) => rendered.push_str(&values.text(field)?),
                    }
                }
                Some(Cow::Owned(rendered))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_at_braces_and_keep_unclosed_ones_as_text() {
        let template = Template::parse("HTTP-{http.request.method} {".into());
        assert_eq!(
            template.parts,
            [
                Part::Text("HTTP-".into()),
                Part::Field("http.request.method".into()),
                Part::Text(" {".into())
            ]
        );
        assert_eq!(Template::parse("".into()).parts, []);
        assert_eq!(
            Template::parse("{a}{b}".into()).parts,
            [Part::Field("a".into()), Part::Field("b".into())]
        );
    }

    #[test]
    fn a_template_renders_only_with_all_its_fields() {
        let values = Values::default();
        let template = Template::parse("HTTP-{method}".into());
        assert_eq!(template.render(&values), None);
        assert_eq!(
            Template::parse("SQL-main".into())
                .render(&values)
                .as_deref(),
            Some("SQL-main")
        );
    }
}
