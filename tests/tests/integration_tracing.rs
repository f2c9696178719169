//! Spans emitted through `tracing` appear on the current timeline.

use timeline_core::integrations::tracing::TimelineLayer;
use timeline_core::{Timeline, WithTimeline};
use tracing::Instrument;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::SubscriberExt;

fn sql_layer() -> TimelineLayer {
    TimelineLayer::new()
        .target("sqlx")
        .name("query")
        .category("SQL-main")
        .detail_field("db.statement")
}

fn with_layer<R>(layer: TimelineLayer, f: impl FnOnce() -> R) -> R {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f)
}

fn query(statement: &str) {
    let span = tracing::info_span!(target: "sqlx::query", "query", db.statement = statement);
    let _entered = span.enter();
    std::thread::sleep(std::time::Duration::from_millis(1));
}

#[test]
fn selected_spans_become_actions_with_their_statement() {
    let timeline = Timeline::new();
    with_layer(sql_layer(), || {
        timeline.scope(|| {
            query("SELECT * FROM bug WHERE id = 1");
            query("SELECT * FROM person WHERE id = 2");
        })
    });
    let actions = timeline.actions();
    let details: Vec<&str> = actions.iter().map(|a| a.detail()).collect();
    assert_eq!(
        details,
        [
            "SELECT * FROM bug WHERE id = 1",
            "SELECT * FROM person WHERE id = 2"
        ]
    );
    assert!(actions.iter().all(|a| a.category() == "SQL-main"));
    assert!(
        actions
            .iter()
            .all(|a| a.duration().unwrap() >= std::time::Duration::from_millis(1))
    );
}

#[test]
fn spans_of_other_targets_and_names_are_ignored() {
    let timeline = Timeline::new();
    with_layer(sql_layer(), || {
        timeline.scope(|| {
            let _a = tracing::info_span!(target: "hyper::client", "query", db.statement = "no")
                .entered();
            drop(_a);
            let _b = tracing::info_span!(target: "sqlx::pool", "acquire").entered();
        })
    });
    assert!(timeline.is_empty());
}

#[test]
fn spans_without_a_current_timeline_are_not_recorded_and_do_not_fail() {
    with_layer(sql_layer(), || query("SELECT 1"));
}

#[test]
fn category_and_detail_can_come_from_fields_recorded_later() {
    let layer = TimelineLayer::new()
        .name("http.request")
        .category_field("otel.kind")
        .detail_field("url");
    let timeline = Timeline::new();
    with_layer(layer, || {
        timeline.scope(|| {
            let span = tracing::info_span!(
                "http.request",
                otel.kind = "HTTP-get",
                url = tracing::field::Empty
            );
            span.record("url", tracing::field::display("https://example.com/a"));
            let _entered = span.enter();
        })
    });
    let action = &timeline.actions()[0];
    assert_eq!(action.category(), "HTTP-get");
    assert_eq!(action.detail(), "https://example.com/a");
}

#[test]
fn nested_selected_spans_record_the_inner_one_as_concurrent_and_a_violation() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::new().detail_field("db.statement"), || {
        timeline.scope(|| {
            let _outer = tracing::info_span!("transaction", db.statement = "BEGIN").entered();
            query("INSERT INTO bug VALUES (1)");
        })
    });
    let actions = timeline.actions();
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0].category(), "transaction");
    assert!(actions[1].is_concurrent());
    let violation = &timeline.violations()[0];
    assert_eq!(violation.open_category(), "transaction");
    assert_eq!(violation.attempted_detail(), "INSERT INTO bug VALUES (1)");
}

#[test]
fn nesting_names_contain_the_actions_of_inner_spans() {
    let layer = TimelineLayer::new()
        .name("query")
        .nesting_name("transaction")
        .detail_field("db.statement");
    let timeline = Timeline::new();
    with_layer(layer, || {
        timeline.scope(|| {
            let _outer = tracing::info_span!("transaction", db.statement = "BEGIN").entered();
            query("INSERT INTO bug VALUES (1)");
            query("INSERT INTO bug VALUES (2)");
        })
    });
    let categories: Vec<String> = timeline
        .log_tuples()
        .into_iter()
        .map(|t| t.category)
        .collect();
    assert_eq!(
        categories,
        ["transaction-start", "query", "query", "transaction-stop"]
    );
    assert!(timeline.violations().is_empty());
}

#[test]
fn instrumented_futures_on_a_multi_thread_runtime_record_onto_their_own_timeline() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(sql_layer()));
    let timelines: Vec<Timeline> = (0..8).map(|_| Timeline::new()).collect();
    runtime.block_on(async {
        let tasks: Vec<_> = timelines
            .iter()
            .enumerate()
            .map(|(n, timeline)| {
                let dispatch = dispatch.clone();
                tokio::spawn(
                    async move {
                        for step in 0..3 {
                            let statement = format!("SELECT {n}.{step}");
                            async { tokio::time::sleep(std::time::Duration::from_millis(1)).await }
                                .instrument(tracing::info_span!(target: "sqlx::query", "query", db.statement = %statement))
                                .await;
                        }
                    }
                    .with_timeline(timeline.clone())
                    .with_subscriber(dispatch),
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    for (n, timeline) in timelines.iter().enumerate() {
        let details: Vec<String> = timeline
            .actions()
            .iter()
            .map(|a| a.detail().to_owned())
            .collect();
        assert_eq!(
            details,
            [
                format!("SELECT {n}.0"),
                format!("SELECT {n}.1"),
                format!("SELECT {n}.2")
            ]
        );
    }
}
