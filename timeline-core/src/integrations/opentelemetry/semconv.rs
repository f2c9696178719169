//! What the OpenTelemetry semantic conventions call things, as data: the
//! attribute keys, which categories belong to which family, and the
//! attributes each family's actions get. Updating for a new semconv release
//! is an edit here.
//!
//! Checked against semantic conventions 1.37 (database spans: `db.system.name`
//! and `db.query.text`, renamed from `db.system` and `db.statement` in 1.26;
//! HTTP client spans: `http.request.method`, `url.full`, `server.address`,
//! `server.port`).

use std::borrow::Cow;

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;

use crate::Action;

/// The database, as a well-known semconv value.
pub(super) const DB_SYSTEM_NAME: &str = "db.system.name";
/// The statement, after the timeline's detail filter.
pub(super) const DB_QUERY_TEXT: &str = "db.query.text";
/// The HTTP method, upper case; `_OTHER` for a method semconv does not know.
pub(crate) const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// The method as the category spelled it, when it is not a known one.
pub(super) const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
/// The server's response status (request spans).
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// The absolute URL of a client call, credentials redacted.
pub(super) const URL_FULL: &str = "url.full";
/// The path of the request a server handled (request spans).
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) const URL_PATH: &str = "url.path";
/// The host of a client call's URL.
pub(super) const SERVER_ADDRESS: &str = "server.address";
/// The port of a client call's URL, explicit or the scheme's default.
pub(super) const SERVER_PORT: &str = "server.port";
/// The class of error that ended a span (request spans: the 5xx status).
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) const ERROR_TYPE: &str = "error.type";
/// The backtrace captured when the action started, if the timeline captures them.
pub(super) const CODE_STACKTRACE: &str = "code.stacktrace";
/// Where the action was started: [`Action::call_site`](crate::Action::call_site).
pub(super) const CODE_FILE_PATH: &str = "code.file.path";
pub(super) const CODE_LINE_NUMBER: &str = "code.line.number";
pub(super) const CODE_COLUMN_NUMBER: &str = "code.column.number";
/// The application's function, for a call site worked out from a
/// backtrace ([`CallSite::function`](crate::CallSite::function)).
pub(super) const CODE_FUNCTION_NAME: &str = "code.function.name";

/// The timeline's own attributes: what semconv has no name for.
pub(super) const TIMELINE_CATEGORY: &str = "timeline.category";
pub(super) const TIMELINE_DETAIL: &str = "timeline.detail";
pub(super) const TIMELINE_NESTED: &str = "timeline.nested";
pub(super) const TIMELINE_CONCURRENT: &str = "timeline.concurrent";
pub(super) const TIMELINE_UNFINISHED: &str = "timeline.unfinished";
pub(crate) const TIMELINE_OUTCOME: &str = "timeline.outcome";
pub(super) const TIMELINE_ACTIONS: &str = "timeline.actions";
pub(super) const TIMELINE_DROPPED: &str = "timeline.dropped";
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) const TIMELINE_OOPS: &str = "timeline.oops";

/// Which conventions an action's category calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    /// A database statement: `db.*`.
    Database,
    /// An HTTP client call: `http.*`, `url.*`, `server.*`.
    Http,
    /// Anything else (cache, mail, queue…): the timeline's own attributes.
    Other,
}

/// Category prefixes, compared ignoring ASCII case, and their family: the
/// library's own presets name statements `SQL-…` and HTTP calls
/// `HTTP-<method>`.
const FAMILIES: &[(&str, Family)] = &[
    ("SQL", Family::Database),
    ("sqlx", Family::Database),
    ("DB-", Family::Database),
    ("HTTP-", Family::Http),
];

/// Words in a database category that name the system, and its semconv
/// value; other databases are `other_sql`.
const DB_SYSTEMS: &[(&str, &str)] = &[
    ("postgres", "postgresql"),
    ("mysql", "mysql"),
    ("mariadb", "mariadb"),
    ("sqlite", "sqlite"),
    ("mssql", "microsoft.sql_server"),
    ("oracle", "oracle.db"),
];

/// The methods semconv knows; any other is `_OTHER`.
const HTTP_METHODS: &[&str] = &[
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// The family of a category.
pub(super) fn family(category: &str) -> Family {
    FAMILIES
        .iter()
        .find(|(prefix, _)| starts_with_ignore_case(category, prefix))
        .map_or(Family::Other, |&(_, family)| family)
}

/// The span kind of an action: calls out of the process are clients;
/// nesting actions (transactions and the like) group others.
pub(super) fn kind(action: &Action) -> SpanKind {
    if action.is_nested() {
        SpanKind::Internal
    } else {
        SpanKind::Client
    }
}

/// The conventions' attributes of an action with this (filtered) detail.
pub(super) fn attributes(
    action: &Action,
    family: Family,
    detail: Cow<'static, str>,
    out: &mut Vec<KeyValue>,
) {
    match family {
        Family::Database => {
            let lower = action.category().to_ascii_lowercase();
            let system = DB_SYSTEMS
                .iter()
                .find(|(word, _)| lower.contains(word))
                .map_or("other_sql", |&(_, value)| value);
            out.push(KeyValue::new(DB_SYSTEM_NAME, system));
            out.push(KeyValue::new(DB_QUERY_TEXT, detail));
        }
        Family::Http => {
            let original = action.category().get("HTTP-".len()..).unwrap_or("");
            let upper = original.to_ascii_uppercase();
            match HTTP_METHODS.iter().find(|&&method| method == upper) {
                Some(&method) => out.push(KeyValue::new(HTTP_REQUEST_METHOD, method)),
                None => {
                    out.push(KeyValue::new(HTTP_REQUEST_METHOD, "_OTHER"));
                    out.push(KeyValue::new(
                        HTTP_REQUEST_METHOD_ORIGINAL,
                        original.to_owned(),
                    ));
                }
            }
            match Url::parse(&detail) {
                Some(url) => {
                    out.push(KeyValue::new(SERVER_ADDRESS, url.host.to_owned()));
                    if let Some(port) = url.port {
                        out.push(KeyValue::new(SERVER_PORT, i64::from(port)));
                    }
                    out.push(KeyValue::new(URL_FULL, url.redacted()));
                }
                None => out.push(KeyValue::new(TIMELINE_DETAIL, detail)),
            }
        }
        Family::Other => out.push(KeyValue::new(TIMELINE_DETAIL, detail)),
    }
}

/// Just enough of an absolute URL for `server.*` and a `url.full` without
/// credentials.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Url<'a> {
    scheme: &'a str,
    userinfo: bool,
    host: &'a str,
    port: Option<u16>,
    /// The authority as written after any userinfo.
    host_port: &'a str,
    /// Path, query and fragment.
    rest: &'a str,
}

impl<'a> Url<'a> {
    pub(super) fn parse(text: &'a str) -> Option<Url<'a>> {
        let (scheme, after) = text.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return None;
        }
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((_, host_port)) => (true, host_port),
            None => (false, authority),
        };
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some(port) => Some(port.parse().ok()?),
            None => match scheme.to_ascii_lowercase().as_str() {
                "http" | "ws" => Some(80),
                "https" | "wss" => Some(443),
                _ => None,
            },
        };
        Some(Url {
            scheme,
            userinfo,
            host,
            port,
            host_port,
            rest,
        })
    }

    /// The URL with any credentials replaced, as semconv requires of
    /// `url.full`.
    pub(super) fn redacted(&self) -> String {
        let credentials = if self.userinfo {
            "REDACTED:REDACTED@"
        } else {
            ""
        };
        format!(
            "{}://{credentials}{}{}",
            self.scheme, self.host_port, self.rest
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_find_their_family() {
        assert_eq!(family("SQL-main"), Family::Database);
        assert_eq!(family("sql-replica"), Family::Database);
        assert_eq!(family("HTTP-GET"), Family::Http);
        assert_eq!(family("http-post"), Family::Http);
        assert_eq!(family("memcache-get"), Family::Other);
        assert_eq!(family("HTTP"), Family::Other);
        assert_eq!(family("é"), Family::Other);
    }

    #[test]
    fn urls_give_server_and_redacted_full_url() {
        let url = Url::parse("https://bob:hunter2@api.example.com/v1/bugs?id=1").unwrap();
        assert_eq!((url.host, url.port), ("api.example.com", Some(443)));
        assert_eq!(
            url.redacted(),
            "https://REDACTED:REDACTED@api.example.com/v1/bugs?id=1"
        );
        let url = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((url.host, url.port), ("127.0.0.1", Some(8080)));
        assert_eq!(url.redacted(), "http://127.0.0.1:8080");
        let url = Url::parse("http://[::1]:3000/x").unwrap();
        assert_eq!((url.host, url.port), ("::1", Some(3000)));
        assert!(Url::parse("/bugs/1").is_none());
        assert!(Url::parse("http://host:99999/").is_none());
        assert!(Url::parse("http:///path").is_none());
        assert!(Url::parse("a b://host").is_none());
    }
}
