//! The code `#[timed]` generates names the core crate by absolute path and
//! its own locals hygienically: it works in modules that define their own
//! `Timeline`, `Result`, `current`, `core`, `std`, `format!` or
//! `timeline_core`, in bodies that use its local names, and through
//! `crate = path` in crates that re-export `timeline_core` under another
//! name.

use timeline_core::{Outcome, Timeline, WithTimeline};
use timeline_tests::future::block_on;

/// A module whose names shadow everything the expansion could refer to.
mod shadowing {
    #![allow(dead_code, unused_macros, reason = "the items only shadow names")]

    use ::timeline_core::timed;

    pub(crate) struct Timeline;
    pub(crate) struct TimedCall;
    pub(crate) struct Outcome;
    pub(crate) type Result<T> = ::core::result::Result<T, String>;
    pub(crate) type Option = u8;
    pub(crate) fn current() -> u8 {
        0
    }
    mod core {}
    mod std {}
    mod timeline_core {}
    mod __private {}
    macro_rules! format {
        ($($tokens:tt)*) => {
            compile_error!("the crate's own `format!` was used")
        };
    }

    #[timed(category = "hygiene", detail = "{id}", err)]
    pub(crate) fn lookup(id: u32) -> Result<u32> {
        // The expansion's locals do not clash with the body's.
        let __timed_call = 1;
        let __timed_result = 2;
        if id == 0 {
            return Err("zero".to_owned());
        }
        Ok(id + __timed_call + __timed_result)
    }

    #[timed(category = "hygiene-async", detail = "{id}")]
    pub(crate) async fn lookup_async(id: u32) -> u32 {
        let __timed_call = 10;
        ::timeline_tests::future::yield_once().await;
        id + __timed_call
    }

    pub(crate) struct Receiver(pub(crate) u32);

    impl ::std::fmt::Display for Receiver {
        fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
            ::std::write!(f, "receiver {}", self.0)
        }
    }

    impl Receiver {
        #[timed(category = "hygiene-self", detail = "{self} {__timed_self}")]
        pub(crate) fn method(&self, __timed_self: u8) -> u32 {
            self.0
        }
    }
}

#[test]
fn the_expansion_ignores_the_crates_own_names() {
    let timeline = Timeline::new();
    timeline.scope(|| {
        assert_eq!(shadowing::lookup(3), Ok(6));
        assert_eq!(shadowing::lookup(0), Err("zero".to_owned()));
        assert_eq!(shadowing::Receiver(4).method(9), 4);
    });
    assert_eq!(
        block_on(shadowing::lookup_async(1).with_timeline(timeline.clone())),
        11
    );
    let actions = timeline.actions();
    assert_eq!(actions.len(), 4);
    assert_eq!(actions[0].detail(), "3");
    assert_eq!(actions[1].outcome(), &Outcome::Error("zero".into()));
    assert_eq!(actions[2].detail(), "receiver 4 9");
    assert_eq!(actions[3].category(), "hygiene-async");
}

/// How a crate re-exports `timeline_core` under another name.
mod instrumentation {
    pub(crate) use ::timeline_core as timeline;
}

mod reexported {
    use super::instrumentation::timeline::timed;

    #[timed(crate = super::instrumentation::timeline, category = "renamed", err)]
    pub(crate) fn renamed(n: u8) -> Result<u8, String> {
        Ok(n)
    }
}

#[test]
fn crate_argument_names_a_re_export() {
    let timeline = Timeline::new();
    assert_eq!(timeline.scope(|| reexported::renamed(1)), Ok(1));
    assert_eq!(timeline.actions()[0].category(), "renamed");
}

/// A stand-in for the core crate, to show that `crate = path` is the path
/// the expansion uses.
mod stand_in {
    pub(crate) mod __private {
        use std::cell::Cell;

        thread_local! {
            pub(crate) static STARTED: Cell<Option<&'static str>> = const { Cell::new(None) };
        }

        pub(crate) struct TimedCall;

        impl TimedCall {
            pub(crate) fn start<D, F>(category: &'static str, _nested: bool, _detail: F) -> Self
            where
                F: FnOnce() -> D,
            {
                STARTED.with(|started| started.set(Some(category)));
                TimedCall
            }
        }
    }
}

#[timeline_core::timed(crate = stand_in, category = "stand-in")]
fn through_the_stand_in() -> u8 {
    5
}

#[test]
fn crate_argument_is_the_path_the_expansion_uses() {
    let timeline = Timeline::new();
    assert_eq!(timeline.scope(through_the_stand_in), 5);
    assert!(timeline.is_empty(), "the real core crate was not used");
    let started = stand_in::__private::STARTED.with(std::cell::Cell::get);
    assert_eq!(started, Some("stand-in"));
}
