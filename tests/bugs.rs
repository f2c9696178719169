//! The example bug tracker's SQLite database, created fresh in a file of
//! its own for each test.

use std::path::PathBuf;

use timeline_examples::bugs;

/// Creates the bug tracker's database (`timeline_examples::bugs`) at
/// `timeline-{file}-{name}-{pid}.sqlite` in the temporary directory, and
/// returns its path. `file` names the test file and `name` the test, so no
/// two tests share a database, even when several files run as one binary.
/// The test removes the file when it is done.
///
/// ```
/// use timeline_examples::bugs;
/// use timeline_tests::bugs::database;
///
/// let path = database("doc", "bugs");
/// let conn = bugs::connect(&path).unwrap();
/// assert!(!bugs::bugs_of_product(&conn, 1).unwrap().is_empty());
/// drop(conn);
/// std::fs::remove_file(path).unwrap();
/// ```
pub fn database(file: &str, name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "timeline-{file}-{name}-{}.sqlite",
        std::process::id()
    ));
    bugs::create_database(&path).unwrap();
    path
}
