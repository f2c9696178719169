//! The main example: a bug tracker's pages served from a real SQLite
//! database, each request with its own timeline.
//!
//! ```sh
//! cargo run --example bugtracker
//! ```
//!
//! It prints each request's summary line; for the slow N+1 page and the
//! failing request, the breakdown with the repeated statements and a
//! waterfall; and it writes their OOPS reports, their pages
//! (`Report::to_html`) and Chrome traces under `target/oops/`.

use std::error::Error;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use timeline_core::Timeline;
use timeline_examples::bugs::{self, PageError};

type Page = fn(&Connection, &Path) -> Result<String, PageError>;

struct Request {
    name: &'static str,
    page: Page,
    /// Print the breakdown and the waterfall, and write the report.
    inspect: bool,
}

const REQUESTS: [Request; 4] = [
    Request {
        name: "GET /products/1/naive",
        page: |conn, _| bugs::product_page_n_plus_one(conn, 1),
        inspect: true,
    },
    Request {
        name: "GET /products/1",
        page: |conn, _| bugs::product_page(conn, 1),
        inspect: false,
    },
    Request {
        name: "POST /bugs/8/status/Fixed",
        page: |conn, spool| bugs::change_status(conn, spool, 8, "Fixed"),
        inspect: false,
    },
    Request {
        name: "POST /bugs/7/status/Won't Fix",
        page: |conn, spool| bugs::change_status(conn, spool, 7, "Won't Fix"),
        inspect: true,
    },
];

fn main() -> Result<(), Box<dyn Error>> {
    let oops_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/oops");
    std::fs::create_dir_all(&oops_dir)?;
    let oops_dir = oops_dir.canonicalize()?;
    let database =
        std::env::temp_dir().join(format!("timeline-bugtracker-{}.sqlite", std::process::id()));
    bugs::create_database(&database)?;
    let spool = oops_dir.join("mail-spool");

    for request in &REQUESTS {
        let timeline = Timeline::new();
        let result = timeline.scope(|| {
            let conn = bugs::connect(&database)?;
            (request.page)(&conn, &spool)
        });
        let status = match &result {
            Ok(_) => "200 OK".to_owned(),
            Err(PageError::NotFound) => "404 Not Found".to_owned(),
            Err(error) => format!("500 Internal Server Error ({error})"),
        };
        println!("{} → {status}\n  {}", request.name, timeline.summary());
        if request.inspect {
            println!("\n{:#}\n", timeline.summary());
            println!("{}", timeline.waterfall(60));
            let (report, page, trace) = write_oops(&timeline, &oops_dir)?;
            println!(
                "  OOPS report:  {}\n  Page:         {}\n  Chrome trace: {}\n",
                report.display(),
                page.display(),
                trace.display()
            );
        }
    }
    println!(
        "Open a trace at https://ui.perfetto.dev (\"Open trace file\") or in chrome://tracing."
    );
    std::fs::remove_file(&database)?;
    Ok(())
}

/// Writes the report, its page and the trace of `timeline`, named by the
/// report's id.
fn write_oops(
    timeline: &Timeline,
    dir: &Path,
) -> Result<(PathBuf, PathBuf, PathBuf), Box<dyn Error>> {
    let report = timeline.report();
    let report_path = dir.join(format!("{}.json", report.id()));
    std::fs::write(&report_path, serde_json::to_vec_pretty(&report)?)?;
    let trace_path = dir.join(format!("{}.trace.json", report.id()));
    std::fs::write(&trace_path, timeline.to_chrome_trace())?;
    let page_path = dir.join(format!("{}.html", report.id()));
    std::fs::write(&page_path, report.to_html())?;
    Ok((report_path, page_path, trace_path))
}
