//! A small bug tracker on a real SQLite database: the data layer and the
//! "pages" that the `bugtracker` and `server` examples serve.
//!
//! Every query function carries `#[timed]`, so each statement becomes an
//! action on the current request's timeline, with its bound values in the
//! detail. Wrapping the calls — rather than SQLite's profile hook — times
//! what the request really waits for (preparing, stepping and decoding the
//! rows into Rust values), names the statement with its values, and
//! attributes an error to the statement that failed.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use timeline_core::{Outcome, current, timed};

/// A bug as the product page lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Bug {
    /// The bug's number.
    pub id: i64,
    /// One line saying what is wrong.
    pub title: String,
    /// `New`, `Triaged`, `In Progress` or `Fixed`.
    pub status: String,
    /// Who works on it.
    pub assignee: i64,
}

/// Someone who works on bugs.
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    /// Display name.
    pub name: String,
    /// Where bug mail goes.
    pub email: String,
}

/// Errors of the pages: the database's, or a failed mail.
#[derive(Debug)]
pub enum PageError {
    /// A statement failed.
    Sql(rusqlite::Error),
    /// The mail could not be queued.
    Mail(std::io::Error),
    /// No such bug or product.
    NotFound,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Sql(e) => write!(f, "database error: {e}"),
            PageError::Mail(e) => write!(f, "mail error: {e}"),
            PageError::NotFound => f.write_str("not found"),
        }
    }
}

impl std::error::Error for PageError {}

impl From<rusqlite::Error> for PageError {
    fn from(e: rusqlite::Error) -> Self {
        PageError::Sql(e)
    }
}

const STATUSES: [&str; 4] = ["New", "Triaged", "In Progress", "Fixed"];

/// Creates the schema and fills it: 3 products, 20 people, 60 bugs.
/// Runs outside any timeline: setting up is not part of a request.
pub fn create_database(path: &Path) -> rusqlite::Result<()> {
    let _ = fs::remove_file(path);
    let mut conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
         CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE bug (
             id INTEGER PRIMARY KEY,
             product INTEGER NOT NULL REFERENCES product(id),
             title TEXT NOT NULL,
             status TEXT NOT NULL CHECK (status IN ('New', 'Triaged', 'In Progress', 'Fixed')),
             assignee INTEGER NOT NULL REFERENCES person(id));
         CREATE INDEX bug_product ON bug(product);",
    )?;
    let tx = conn.transaction()?;
    for id in 1..=20 {
        tx.execute(
            "INSERT INTO person (id, name, email) VALUES (?1, ?2, ?3)",
            params![
                id,
                format!("Person {id}"),
                format!("person{id}@bugs.example")
            ],
        )?;
    }
    for (id, name) in [(1, "launchpad"), (2, "timeline"), (3, "storm")] {
        tx.execute(
            "INSERT INTO product (id, name) VALUES (?1, ?2)",
            params![id, name],
        )?;
    }
    for id in 1..=60i64 {
        tx.execute(
            "INSERT INTO bug (id, product, title, status, assignee) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                id % 3 + 1,
                format!("Bug {id}: something is slow"),
                STATUSES[id as usize % 4],
                id % 20 + 1
            ],
        )?;
    }
    tx.commit()
}

/// Adds a product with `bug_count` bugs, assigned round-robin to the 20
/// people, and returns its id: data of a chosen size, for tests that check
/// a page's query count does not grow with it. Runs outside any timeline.
pub fn add_product(path: &Path, bug_count: usize) -> rusqlite::Result<i64> {
    let mut conn = Connection::open(path)?;
    let tx = conn.transaction()?;
    tx.execute("INSERT INTO product (name) VALUES ('sized')", [])?;
    let product = tx.last_insert_rowid();
    for n in 0..bug_count as i64 {
        tx.execute(
            "INSERT INTO bug (product, title, status, assignee) VALUES (?1, ?2, 'New', ?3)",
            params![product, format!("Bug {n} of product {product}"), n % 20 + 1],
        )?;
    }
    tx.commit()?;
    Ok(product)
}

/// A bug from a row whose first columns are `id, title, status, assignee`.
fn bug_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Bug> {
    Ok(Bug {
        id: row.get(0)?,
        title: row.get(1)?,
        status: row.get(2)?,
        assignee: row.get(3)?,
    })
}

/// Opens a connection for one request.
#[timed(category = "SQL-connect", detail = "{path:?}")]
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open(path)
}

/// The bugs of a product.
#[timed(
    category = "SQL-main",
    detail = "SELECT id, title, status, assignee FROM bug WHERE product = {product} ORDER BY id"
)]
pub fn bugs_of_product(conn: &Connection, product: i64) -> rusqlite::Result<Vec<Bug>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, title, status, assignee FROM bug WHERE product = ?1 ORDER BY id",
    )?;
    let bugs = statement.query_map([product], bug_from_row)?;
    bugs.collect()
}

/// One person, by id.
#[timed(
    category = "SQL-main",
    detail = "SELECT name, email FROM person WHERE id = {id}"
)]
pub fn person(conn: &Connection, id: i64) -> rusqlite::Result<Person> {
    conn.prepare_cached("SELECT name, email FROM person WHERE id = ?1")?
        .query_row([id], |row| {
            Ok(Person {
                name: row.get(0)?,
                email: row.get(1)?,
            })
        })
}

/// The bugs of a product with their assignees, in one statement.
#[timed(
    category = "SQL-main",
    detail = "SELECT bug.id, title, status, assignee, name, email FROM bug JOIN person ON person.id = assignee WHERE product = {product} ORDER BY bug.id"
)]
pub fn bugs_with_assignees(
    conn: &Connection,
    product: i64,
) -> rusqlite::Result<Vec<(Bug, Person)>> {
    let mut statement = conn.prepare_cached(
        "SELECT bug.id, title, status, assignee, name, email FROM bug JOIN person ON person.id = assignee \
         WHERE product = ?1 ORDER BY bug.id",
    )?;
    let rows = statement.query_map([product], |row| {
        Ok((
            bug_from_row(row)?,
            Person {
                name: row.get(4)?,
                email: row.get(5)?,
            },
        ))
    })?;
    rows.collect()
}

/// One bug, by id.
#[timed(
    category = "SQL-main",
    detail = "SELECT id, title, status, assignee FROM bug WHERE id = {id}"
)]
pub fn bug(conn: &Connection, id: i64) -> rusqlite::Result<Option<Bug>> {
    conn.prepare_cached("SELECT id, title, status, assignee FROM bug WHERE id = ?1")?
        .query_row([id], bug_from_row)
        .optional()
}

/// Sets a bug's status; the schema refuses unknown statuses.
#[timed(
    category = "SQL-main",
    detail = "UPDATE bug SET status = {status:?} WHERE id = {id}",
    err
)]
pub fn set_status(conn: &Connection, id: i64, status: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE bug SET status = ?1 WHERE id = ?2",
        params![status, id],
    )
}

/// A transaction, as a nesting action around its statements.
#[timed(category = "SQL-main", detail = "BEGIN … COMMIT", nested)]
fn in_transaction<T>(
    conn: &Connection,
    work: impl FnOnce() -> Result<T, PageError>,
) -> Result<T, PageError> {
    conn.execute_batch("BEGIN")?;
    match work() {
        Ok(value) => {
            conn.execute_batch("COMMIT")?;
            Ok(value)
        }
        Err(error) => {
            conn.execute_batch("ROLLBACK")?;
            Err(error)
        }
    }
}

/// Queues a mail as a file in a local spool directory: a real write, timed
/// with a guard on the current timeline.
pub fn send_mail(spool: &Path, to: &str, subject: &str) -> Result<PathBuf, PageError> {
    let guard = current().and_then(|timeline| {
        timeline
            .start("mail-send", format!("to: {to} subject: {subject}"))
            .ok()
    });
    let path = spool.join(format!("{}-{}.eml", std::process::id(), unique()));
    let written = fs::create_dir_all(spool).and_then(|()| {
        fs::write(
            &path,
            format!("To: {to}\nSubject: {subject}\n\nThis bug changed.\n"),
        )
    });
    match (written, guard) {
        (Ok(()), guard) => {
            drop(guard);
            Ok(path)
        }
        (Err(e), Some(guard)) => {
            guard.finish_with(Outcome::Error(e.to_string()));
            Err(PageError::Mail(e))
        }
        (Err(e), None) => Err(PageError::Mail(e)),
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The product page, written the naive way: one statement for the bugs,
/// then one more per bug for its assignee — the classic N+1.
pub fn product_page_n_plus_one(conn: &Connection, product: i64) -> Result<String, PageError> {
    let bugs = bugs_of_product(conn, product)?;
    if bugs.is_empty() {
        return Err(PageError::NotFound);
    }
    let mut page = String::new();
    for bug in &bugs {
        let assignee = person(conn, bug.assignee)?;
        let _ = writeln!(
            page,
            "#{} {} [{}] → {}",
            bug.id, bug.title, bug.status, assignee.name
        );
    }
    Ok(page)
}

/// The same page with one statement.
pub fn product_page(conn: &Connection, product: i64) -> Result<String, PageError> {
    let rows = bugs_with_assignees(conn, product)?;
    if rows.is_empty() {
        return Err(PageError::NotFound);
    }
    let mut page = String::new();
    for (bug, assignee) in &rows {
        let _ = writeln!(
            page,
            "#{} {} [{}] → {}",
            bug.id, bug.title, bug.status, assignee.name
        );
    }
    Ok(page)
}

/// Changes a bug's status in a transaction and mails its assignee. Fails
/// for a status the schema does not know (a CHECK constraint), after the
/// bug was read — the failing request of the examples.
pub fn change_status(
    conn: &Connection,
    spool: &Path,
    id: i64,
    status: &str,
) -> Result<String, PageError> {
    let bug = bug(conn, id)?.ok_or(PageError::NotFound)?;
    let assignee = person(conn, bug.assignee)?;
    in_transaction(conn, || {
        set_status(conn, id, status)?;
        send_mail(
            spool,
            &assignee.email,
            &format!("Bug #{id} is now {status}"),
        )?;
        Ok(format!("#{id} {} is now {status}", bug.title))
    })
}
