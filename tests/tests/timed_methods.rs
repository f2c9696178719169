//! `#[timed]` on methods: every receiver, generic impls, associated
//! functions, trait default methods and trait impls.

use std::fmt;

use timeline_core::{Timeline, timed};

#[derive(Debug, Default)]
struct Counter {
    count: u32,
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "counter at {}", self.count)
    }
}

impl Counter {
    #[timed(category = "new")]
    fn new() -> Self {
        Counter::default()
    }

    #[timed(category = "get", detail = "{self}")]
    fn get(&self) -> u32 {
        self.count
    }

    #[timed(category = "add", detail = "{self:?} + {by}")]
    fn add(&mut self, by: u32) -> &mut Self {
        self.count += by;
        self
    }

    #[timed(category = "into_inner", detail = "{self}")]
    fn into_inner(self) -> u32 {
        self.count
    }

    #[timed(category = "boxed")]
    fn boxed(self: Box<Self>) -> Box<dyn fmt::Display> {
        self
    }

    #[timed(category = "pick", detail = "{self} / {choice}")]
    fn pick<T: fmt::Display>(&self, choice: T) -> String {
        format!("{choice} from {self}")
    }
}

fn details(timeline: &Timeline) -> Vec<String> {
    timeline
        .actions()
        .iter()
        .map(|action| format!("{}: {}", action.category(), action.detail()))
        .collect()
}

#[test]
fn every_receiver_works_and_self_can_be_named_in_the_detail() {
    let timeline = Timeline::new();
    timeline.scope(|| {
        let mut counter = Counter::new();
        counter.add(2);
        assert_eq!(counter.get(), 2);
        assert_eq!(counter.pick('x'), "x from counter at 2");
        assert_eq!(
            Box::new(Counter { count: 5 }).boxed().to_string(),
            "counter at 5"
        );
        assert_eq!(counter.into_inner(), 2);
    });
    assert_eq!(
        details(&timeline),
        [
            "new: ",
            "add: Counter { count: 0 } + 2",
            "get: counter at 2",
            "pick: counter at 2 / x",
            "boxed: ",
            "into_inner: counter at 2",
        ]
    );
}

#[test]
fn a_mut_self_method_returning_a_borrow_chains() {
    let timeline = Timeline::new();
    let mut counter = Counter::default();
    timeline.scope(|| {
        // The first `add` has finished by the time the second starts.
        counter.add(1).add(1);
    });
    assert_eq!(counter.count, 2);
    assert_eq!(timeline.len(), 2);
    assert!(timeline.violations().is_empty());
}

struct Wrapper<T> {
    inner: T,
}

impl<T: fmt::Display + Clone> Wrapper<T> {
    #[timed(category = "unwrap", detail = "{self}")]
    fn unwrap(&self) -> T {
        self.inner.clone()
    }
}

impl<T: fmt::Display> fmt::Display for Wrapper<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.inner)
    }
}

impl<T> Wrapper<T> {
    #[timed(category = "map")]
    fn map<U, F>(self, f: F) -> Wrapper<U>
    where
        F: FnOnce(T) -> U,
    {
        Wrapper {
            inner: f(self.inner),
        }
    }
}

#[test]
fn methods_of_generic_impls_work() {
    let timeline = Timeline::new();
    let wrapped = timeline.scope(|| Wrapper { inner: 2 }.map(|n| n * 21));
    assert_eq!(timeline.scope(|| wrapped.unwrap()), 42);
    assert_eq!(details(&timeline), ["map: ", "unwrap: [42]"]);
}

trait Cache {
    fn name(&self) -> &str;

    #[timed(category = "memcache-get", detail = "{key}")]
    fn get(&self, key: &str) -> Option<String> {
        (key == self.name()).then(|| format!("hit {key}"))
    }

    fn set(&mut self, key: &str);
}

struct Memcache {
    name: String,
}

impl Cache for Memcache {
    fn name(&self) -> &str {
        &self.name
    }

    #[timed(category = "memcache-set-impl", detail = "{key}")]
    fn set(&mut self, key: &str) {
        key.clone_into(&mut self.name);
    }
}

#[test]
fn trait_default_methods_and_trait_impls_are_timed() {
    let timeline = Timeline::new();
    let mut cache = Memcache {
        name: "a".to_owned(),
    };
    timeline.scope(|| {
        assert_eq!(cache.get("a").as_deref(), Some("hit a"));
        cache.set("b");
        assert_eq!(cache.get("a"), None);
        // Through a trait object too.
        let dynamic: &dyn Cache = &cache;
        assert_eq!(dynamic.get("b").as_deref(), Some("hit b"));
    });
    assert_eq!(
        details(&timeline),
        [
            "memcache-get: a",
            "memcache-set-impl: b",
            "memcache-get: a",
            "memcache-get: b"
        ]
    );
}
