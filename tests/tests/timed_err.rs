//! `#[timed(err)]`: an `Err` return becomes the action's
//! `Outcome::Error(e.to_string())`, however the function returns it.

use std::fmt;
use std::num::ParseIntError;
use std::panic::{self, AssertUnwindSafe};

use timeline_core::{Outcome, Timeline, WithTimeline, timed};
use timeline_tests::future::{block_on, yield_once};

#[derive(Debug, PartialEq)]
struct LoadError(String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot load: {}", self.0)
    }
}

impl From<ParseIntError> for LoadError {
    fn from(error: ParseIntError) -> Self {
        LoadError(error.to_string())
    }
}

#[timed(category = "parse", detail = "{text}", err)]
fn parse(text: &str) -> Result<i32, LoadError> {
    if text == "early" {
        return Err(LoadError("returned early".into()));
    }
    if text.is_empty() {
        return Ok(0);
    }
    // `?` converts with `From`, as in the function as written.
    let n: i32 = text.parse()?;
    Ok(n)
}

fn outcomes(timeline: &Timeline) -> Vec<Outcome> {
    timeline
        .actions()
        .iter()
        .map(|action| action.outcome().clone())
        .collect()
}

#[test]
fn err_records_the_error_of_every_way_out() {
    let timeline = Timeline::new();
    timeline.scope(|| {
        assert_eq!(parse("42"), Ok(42));
        assert_eq!(parse(""), Ok(0));
        assert_eq!(parse("early"), Err(LoadError("returned early".into())));
        assert!(parse("x").is_err());
    });
    assert_eq!(
        outcomes(&timeline),
        [
            Outcome::Ok,
            Outcome::Ok,
            Outcome::Error("cannot load: returned early".into()),
            Outcome::Error("cannot load: invalid digit found in string".into()),
        ]
    );
    assert!(
        timeline
            .actions()
            .iter()
            .all(|action| action.duration().is_some())
    );
}

#[timed(err)]
fn read_missing() -> std::io::Result<Vec<u8>> {
    std::fs::read("/definitely/not/here")
}

#[test]
fn err_accepts_a_result_alias() {
    let timeline = Timeline::new();
    assert!(timeline.scope(read_missing).is_err());
    assert!(matches!(
        timeline.actions()[0].outcome(),
        Outcome::Error(message) if message.contains("No such file")
    ));
}

struct Store {
    names: Vec<String>,
}

impl Store {
    #[timed(category = "store-get", detail = "{index}", err)]
    fn name(&self, index: usize) -> Result<&str, String> {
        let name = self.names.get(index).ok_or(format!("no name {index}"))?;
        Ok(name.as_str())
    }

    #[timed(err)]
    fn push(&mut self, name: String) -> Result<usize, String> {
        if name.is_empty() {
            return Err("empty name".to_owned());
        }
        self.names.push(name);
        Ok(self.names.len())
    }

    #[timed(err)]
    fn into_first(self) -> Result<String, &'static str> {
        self.names.into_iter().next().ok_or("empty store")
    }
}

#[test]
fn err_works_on_methods_and_with_borrowed_results() {
    let timeline = Timeline::new();
    let mut store = Store {
        names: vec!["a".into()],
    };
    timeline.scope(|| {
        assert_eq!(store.name(0), Ok("a"));
        assert_eq!(store.name(3), Err("no name 3".to_owned()));
        assert_eq!(store.push(String::new()), Err("empty name".to_owned()));
        assert_eq!(store.push("b".into()), Ok(2));
        assert_eq!(store.into_first(), Ok("a".to_owned()));
    });
    assert_eq!(
        outcomes(&timeline),
        [
            Outcome::Ok,
            Outcome::Error("no name 3".into()),
            Outcome::Error("empty name".into()),
            Outcome::Ok,
            Outcome::Ok,
        ]
    );
    assert_eq!(timeline.actions()[1].detail(), "3");
}

#[timed(err)]
fn generic_error<E: fmt::Display>(error: E) -> Result<(), E> {
    Err(error)
}

#[timed(err)]
fn opaque_ok(n: u32) -> Result<impl fmt::Display, String> {
    if n == 0 {
        return Err("zero".to_owned());
    }
    Ok(n)
}

#[test]
fn err_works_with_generic_errors_and_impl_trait_values() {
    let timeline = Timeline::new();
    timeline.scope(|| {
        assert!(generic_error("generic").is_err());
        assert_eq!(opaque_ok(3).unwrap().to_string(), "3");
        assert!(opaque_ok(0).is_err());
    });
    assert_eq!(
        outcomes(&timeline),
        [
            Outcome::Error("generic".into()),
            Outcome::Ok,
            Outcome::Error("zero".into())
        ]
    );
}

#[timed(err)]
fn panics_before_returning() -> Result<(), String> {
    panic!("boom")
}

#[test]
fn a_panic_in_an_err_function_is_panicked() {
    let timeline = Timeline::new();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| timeline.scope(panics_before_returning)));
    assert!(caught.is_err());
    assert_eq!(outcomes(&timeline), [Outcome::Panicked]);
}

#[timed(category = "HTTP-get", detail = "{url}", err)]
async fn fetch(url: &str) -> Result<usize, LoadError> {
    yield_once().await;
    if url.is_empty() {
        return Err(LoadError("no url".into()));
    }
    let status: i32 = url.parse()?;
    Ok(status as usize)
}

#[test]
fn err_works_on_async_functions() {
    let timeline = Timeline::new();
    let results = block_on(
        async {
            (
                fetch("200").await,
                fetch("").await,
                fetch("not a status").await,
            )
        }
        .with_timeline(timeline.clone()),
    );
    assert_eq!(results.0, Ok(200));
    assert!(results.1.is_err() && results.2.is_err());
    assert_eq!(
        outcomes(&timeline),
        [
            Outcome::Ok,
            Outcome::Error("cannot load: no url".into()),
            Outcome::Error("cannot load: invalid digit found in string".into()),
        ]
    );
}

#[test]
fn err_without_a_timeline_returns_the_result_unchanged() {
    assert_eq!(parse("7"), Ok(7));
    assert!(parse("x").is_err());
}
