//! Diesel's statements, transactions and connections appear on the current
//! timeline, against real diesel on bundled SQLite.

use std::sync::{Arc, Barrier};

use diesel::connection::{Connection, SimpleConnection};
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Integer;
use diesel::sqlite::{Sqlite, SqliteConnection};
use timeline_core::integrations::diesel::{TimelineInstrumentation, install};
use timeline_core::{Outcome, Timeline};
use timeline_tests::checks::{details, log_categories};

diesel::table! {
    /// The people of the test database (its `age` column is left out).
    person (id) {
        /// The primary key.
        id -> Integer,
        /// A name, `person N` unless a test changed it.
        name -> Text,
    }
}

/// An in-memory database with 20 people, set up while no timeline is
/// current, recording onto the current timeline from then on.
fn database_of_twenty() -> SqliteConnection {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    conn.set_instrumentation(TimelineInstrumentation::new());
    conn.batch_execute(
        "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
         age INTEGER NOT NULL DEFAULT 0 CHECK (age >= 0))",
    )
    .unwrap();
    for id in 1..=20 {
        diesel::insert_into(person::table)
            .values((person::id.eq(id), person::name.eq(format!("person {id}"))))
            .execute(&mut conn)
            .unwrap();
    }
    conn
}

#[test]
fn an_n_plus_one_loop_is_one_repeated_statement_despite_its_binds() {
    let mut conn = database_of_twenty();
    let timeline = Timeline::new();
    let names = timeline.scope(|| {
        let ids: Vec<i32> = person::table.select(person::id).load(&mut conn).unwrap();
        ids.into_iter()
            .map(|id| {
                person::table
                    .find(id)
                    .select(person::name)
                    .first::<String>(&mut conn)
                    .unwrap()
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(names.len(), 20);

    let actions = timeline.actions();
    assert_eq!(actions.len(), 21);
    assert!(actions.iter().all(|a| a.category() == "SQL-main"));
    assert!(actions.iter().all(|a| a.outcome() == &Outcome::Ok));
    assert!(actions.iter().all(|a| a.duration().is_some()));
    assert_eq!(
        actions[1].detail(),
        "SELECT `person`.`name` FROM `person` WHERE (`person`.`id` = ?) LIMIT ? -- binds: [1, 1]"
    );
    assert!(actions[20].detail().ends_with("-- binds: [20, 1]"));

    let summary = timeline.summary();
    let repeated = summary.repeated_statements();
    assert_eq!(repeated.len(), 1, "{summary:#}");
    assert_eq!(repeated[0].count(), 20);
    assert_eq!(
        repeated[0].statement(),
        "SELECT person.name FROM person WHERE (person.id = ?) LIMIT ?"
    );
}

#[test]
fn a_transaction_nests_its_statements() {
    let mut conn = database_of_twenty();
    let timeline = Timeline::new();
    timeline
        .scope(|| {
            conn.transaction(|conn| {
                diesel::update(person::table.find(1))
                    .set(person::name.eq("Ada"))
                    .execute(conn)?;
                diesel::delete(person::table.find(2)).execute(conn)
            })
        })
        .unwrap();

    let tuples: Vec<(String, String)> = timeline
        .log_tuples()
        .into_iter()
        .map(|t| (t.category, t.detail))
        .collect();
    let expected = [
        ("SQL-main-start", "transaction"),
        ("SQL-main", "BEGIN"),
        (
            "SQL-main",
            "UPDATE `person` SET `name` = ? WHERE (`person`.`id` = ?) -- binds: [\"Ada\", 1]",
        ),
        (
            "SQL-main",
            "DELETE FROM `person` WHERE (`person`.`id` = ?) -- binds: [2]",
        ),
        ("SQL-main", "COMMIT"),
        ("SQL-main-stop", "transaction"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(c, d)| (c.to_string(), d.to_string()))
        .collect();
    assert_eq!(tuples, expected);

    let actions = timeline.actions();
    let transaction = &actions[0];
    assert!(transaction.is_nested());
    assert_eq!(transaction.outcome(), &Outcome::Ok);
    let commit = actions.last().unwrap();
    let transaction_end = transaction.start() + transaction.duration().unwrap();
    assert!(commit.start() + commit.duration().unwrap() <= transaction_end);
    assert!(timeline.violations().is_empty());
}

#[test]
fn a_rolled_back_savepoint_nests_inside_its_transaction() {
    let mut conn = database_of_twenty();
    let timeline = Timeline::new();
    timeline
        .scope(|| {
            conn.transaction(|conn| {
                let inner = conn.transaction(|conn| {
                    diesel::delete(person::table).execute(conn)?;
                    Err::<(), _>(diesel::result::Error::RollbackTransaction)
                });
                assert!(inner.is_err());
                person::table.count().get_result::<i64>(conn)
            })
        })
        .map(|count| assert_eq!(count, 20))
        .unwrap();

    let categories = log_categories(&timeline);
    assert_eq!(
        categories,
        [
            "SQL-main-start", // transaction
            "SQL-main",       // BEGIN
            "SQL-main-start", // savepoint 1
            "SQL-main",       // SAVEPOINT diesel_savepoint_1
            "SQL-main",       // DELETE
            "SQL-main",       // ROLLBACK TO SAVEPOINT diesel_savepoint_1
            "SQL-main-stop",  // savepoint 1
            "SQL-main",       // SELECT COUNT(*)
            "SQL-main",       // COMMIT
            "SQL-main-stop",  // transaction
        ]
    );
    let actions = timeline.actions();
    let savepoint = actions
        .iter()
        .find(|a| a.detail() == "savepoint 1")
        .unwrap();
    assert!(savepoint.is_nested());
    assert_eq!(savepoint.outcome(), &Outcome::Error("rolled back".into()));
    assert_eq!(actions[0].detail(), "transaction");
    assert_eq!(actions[0].outcome(), &Outcome::Ok);
}

#[test]
fn a_failing_statement_records_diesel_s_error() {
    let mut conn = database_of_twenty();
    let timeline = Timeline::new();
    let (check, syntax) = timeline.scope(|| {
        let check = diesel::sql_query("UPDATE person SET age = ? WHERE id = 1")
            .bind::<Integer, _>(-1)
            .execute(&mut conn)
            .unwrap_err();
        let syntax = conn.batch_execute("SELEC 1").unwrap_err();
        (check, syntax)
    });

    let actions = timeline.actions();
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0].outcome(), &Outcome::Error(check.to_string()));
    assert!(
        check.to_string().contains("CHECK constraint failed"),
        "{check}"
    );
    assert_eq!(actions[1].outcome(), &Outcome::Error(syntax.to_string()));
    assert!(syntax.to_string().contains("syntax error"), "{syntax}");
    assert!(actions.iter().all(|a| a.duration().is_some()));
}

#[test]
fn install_makes_a_new_connection_record_without_setup() {
    install().unwrap();
    let timeline = Timeline::new();
    let mut conn = timeline.scope(|| SqliteConnection::establish(":memory:").unwrap());
    timeline.scope(|| conn.batch_execute("CREATE TABLE t (a INTEGER)").unwrap());

    let actions = timeline.actions();
    let recorded: Vec<(&str, &str)> = actions.iter().map(|a| (a.category(), a.detail())).collect();
    assert_eq!(
        recorded,
        [
            ("SQL-connect", ":memory:"),
            ("SQL-main", "CREATE TABLE t (a INTEGER)")
        ]
    );
    assert!(actions.iter().all(|a| a.outcome() == &Outcome::Ok));
}

#[test]
fn a_failed_connection_is_recorded_with_its_error() {
    install().unwrap();
    let timeline = Timeline::new();
    let error = timeline
        .scope(|| SqliteConnection::establish("/no/such/directory/app.db"))
        .map(drop)
        .unwrap_err();

    let actions = timeline.actions();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].category(), "SQL-connect");
    assert_eq!(actions[0].outcome(), &Outcome::Error(error.to_string()));
}

#[test]
fn statements_with_no_current_timeline_record_nothing() {
    let mut conn = database_of_twenty();
    let timeline = Timeline::new();
    let count: i64 = person::table.count().get_result(&mut conn).unwrap();
    conn.transaction(|conn| diesel::delete(person::table.find(1)).execute(conn))
        .unwrap();
    assert_eq!(count, 20);
    assert!(timeline.is_empty());

    // The same connection records again once a timeline is current.
    timeline.scope(|| conn.batch_execute("SELECT 1").unwrap());
    assert_eq!(details(&timeline), ["SELECT 1"]);
}

#[test]
fn one_connection_serves_request_after_request() {
    let mut conn = database_of_twenty();
    let first = Timeline::new();
    let second = Timeline::new();
    first.scope(|| conn.batch_execute("SELECT 1").unwrap());
    second.scope(|| conn.batch_execute("SELECT 2").unwrap());
    assert_eq!(details(&first), ["SELECT 1"]);
    assert_eq!(details(&second), ["SELECT 2"]);
}

#[test]
fn threads_with_their_own_timeline_and_connection_do_not_mix() {
    const THREADS: i32 = 4;
    const STATEMENTS: i32 = 25;
    let start_together = Arc::new(Barrier::new(THREADS as usize));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let start_together = Arc::clone(&start_together);
            std::thread::spawn(move || {
                let mut conn = database_of_twenty();
                let timeline = Timeline::new();
                start_together.wait();
                timeline.scope(|| {
                    for i in 0..STATEMENTS {
                        conn.batch_execute(&format!("SELECT {thread}, {i}"))
                            .unwrap();
                    }
                });
                (thread, timeline)
            })
        })
        .collect();
    for worker in workers {
        let (thread, timeline) = worker.join().unwrap();
        let expected: Vec<String> = (0..STATEMENTS)
            .map(|i| format!("SELECT {thread}, {i}"))
            .collect();
        assert_eq!(details(&timeline), expected);
        assert!(timeline.violations().is_empty());
    }
}

/// A bind value that fails to serialize: diesel then reports the start of
/// the statement but never its end.
#[derive(Debug)]
struct Unserializable;

impl ToSql<Integer, Sqlite> for Unserializable {
    fn to_sql<'b>(&'b self, _out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        Err("this value cannot be serialized".into())
    }
}

#[test]
fn a_statement_diesel_never_finishes_ends_at_the_next_event() {
    let mut conn = database_of_twenty();
    let timeline = Timeline::new();
    timeline.scope(|| {
        let failed = diesel::sql_query("SELECT ?")
            .bind::<Integer, _>(Unserializable)
            .execute(&mut conn);
        assert!(failed.is_err());
        conn.batch_execute("SELECT 1").unwrap();
    });

    let actions = timeline.actions();
    assert_eq!(actions.len(), 2);
    assert_eq!(
        actions[0].outcome(),
        &Outcome::Error("diesel reported no end of this".into())
    );
    assert_eq!(actions[1].detail(), "SELECT 1");
    assert_eq!(actions[1].outcome(), &Outcome::Ok);
    // The unfinished statement did not make the next one concurrent.
    assert!(timeline.violations().is_empty());
    assert!(!actions[1].is_concurrent());
}

#[test]
fn a_connection_dropped_with_a_statement_open_finishes_it() {
    let mut conn = database_of_twenty();
    let timeline = Timeline::new();
    timeline.scope(|| {
        let failed = diesel::sql_query("SELECT ?")
            .bind::<Integer, _>(Unserializable)
            .execute(&mut conn);
        assert!(failed.is_err());
    });
    assert_eq!(timeline.actions()[0].duration(), None);

    drop(conn);
    let actions = timeline.actions();
    assert!(actions[0].duration().is_some());
    assert!(matches!(actions[0].outcome(), Outcome::Error(_)));
}

#[test]
fn a_huge_bind_value_is_cut_to_max_detail_len() {
    let mut conn = database_of_twenty();
    let timeline = Timeline::builder().max_detail_len(100).build();
    let huge = "x".repeat(1 << 20);
    let length: i32 = timeline.scope(|| {
        diesel::select(
            diesel::dsl::sql::<Integer>("length(")
                .bind::<diesel::sql_types::Text, _>(&huge)
                .sql(")"),
        )
        .get_result(&mut conn)
        .unwrap()
    });
    assert_eq!(length, 1 << 20);

    let actions = timeline.actions();
    let detail = actions[0].detail();
    assert!(detail.len() <= 100, "{detail}");
    assert!(
        detail.starts_with("SELECT length(?) -- binds: [\"xxx"),
        "{detail}"
    );
    assert!(detail.ends_with('…'), "{detail}");
}

/// A bind value whose `Debug`, which diesel uses to display the statement,
/// panics.
struct DebugPanics;

impl std::fmt::Debug for DebugPanics {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("DebugPanics::fmt")
    }
}

impl ToSql<Integer, Sqlite> for DebugPanics {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(7);
        Ok(serialize::IsNull::No)
    }
}

#[test]
fn a_statement_that_cannot_be_displayed_still_runs_and_is_recorded() {
    let mut conn = database_of_twenty();
    let timeline = Timeline::new();
    let ran = timeline.scope(|| {
        diesel::sql_query("UPDATE person SET age = ? WHERE id = 1")
            .bind::<Integer, _>(DebugPanics)
            .execute(&mut conn)
    });
    assert_eq!(ran, Ok(1));
    let age: i32 = diesel::dsl::sql::<Integer>("SELECT age FROM person WHERE id = 1")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(age, 7);

    let actions = timeline.actions();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].detail(), "<displaying this panicked>");
    assert_eq!(actions[0].outcome(), &Outcome::Ok);
}

#[test]
fn a_transaction_sqlite_ended_by_itself_ends_at_the_next_transaction() {
    let mut conn = database_of_twenty();
    // RAISE(ROLLBACK) makes SQLite end the transaction itself: diesel sees
    // the connection back in autocommit and emits no rollback event.
    conn.batch_execute(
        "CREATE TRIGGER keep_people BEFORE DELETE ON person \
         BEGIN SELECT RAISE(ROLLBACK, 'people are kept'); END",
    )
    .unwrap();
    let timeline = Timeline::new();
    timeline.scope(|| {
        let deleted = conn.transaction(|conn| conn.batch_execute("DELETE FROM person"));
        assert!(deleted.is_err());
        conn.transaction(|conn| conn.batch_execute("SELECT 1"))
            .unwrap();
    });

    let actions = timeline.actions();
    let summary: Vec<(&str, bool)> = actions
        .iter()
        .map(|a| (a.detail(), a.outcome() == &Outcome::Ok))
        .collect();
    assert_eq!(
        summary,
        [
            ("transaction", false),
            ("BEGIN", true),
            ("DELETE FROM person", false),
            ("transaction", true),
            ("BEGIN", true),
            ("SELECT 1", true),
            ("COMMIT", true),
        ]
    );
    assert_eq!(
        actions[0].outcome(),
        &Outcome::Error("diesel reported no end of this".into())
    );
    assert!(matches!(actions[2].outcome(), Outcome::Error(e) if e.contains("people are kept")));
    let first_end = actions[0].start() + actions[0].duration().unwrap();
    assert!(first_end <= actions[3].start());
    assert!(timeline.violations().is_empty());
}

#[test]
fn a_statement_on_a_blocking_thread_inside_the_request_span_lands_on_its_timeline() {
    use timeline_core::WithTimeline;
    use timeline_core::integrations::tracing::TimelineLayer;
    use tracing_subscriber::layer::SubscriberExt;

    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(TimelineLayer::new()));
    let mut conn = database_of_twenty();
    let timeline = Timeline::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(
            async {
                // What `spawn_blocking(…).in_current_span()` does: the
                // request's span goes along, the current timeline does not.
                let span = tracing::Span::current();
                let dispatch = dispatch.clone();
                std::thread::scope(|threads| {
                    threads
                        .spawn(|| {
                            tracing::dispatcher::with_default(&dispatch, || {
                                span.in_scope(|| {
                                    assert!(timeline_core::current().is_none());
                                    conn.batch_execute("SELECT 1")
                                })
                            })
                        })
                        .join()
                        .unwrap()
                })
                .unwrap();
            }
            .with_timeline(timeline.clone()),
        );
    });
    assert_eq!(details(&timeline), ["SELECT 1"]);
}

#[test]
fn with_backtraces_a_statement_s_call_site_is_the_application_s_line() {
    let mut conn = database_of_twenty();
    let plain = Timeline::new();
    plain.scope(|| {
        person::table
            .select(person::id)
            .load::<i32>(&mut conn)
            .unwrap()
    });
    assert_eq!(
        plain.actions()[0].call_site(),
        None,
        "diesel calls the bridge: without a backtrace, no call site"
    );

    let traced = Timeline::builder().capture_backtraces(true).build();
    let load = |conn: &mut SqliteConnection| person::table.select(person::id).load::<i32>(conn);
    let line = line!() - 1;
    traced.scope(|| load(&mut conn).unwrap());
    let actions = traced.actions();
    let call_site = actions[0].call_site().expect("the first application frame");
    assert!(
        call_site.file().ends_with("integration_diesel.rs"),
        "{call_site}"
    );
    assert_eq!(call_site.line(), line);
    let backtrace = actions[0].backtrace().unwrap();
    assert!(!backtrace.contains(" diesel::"), "{backtrace}");
}
