//! A timeline of real work: files written and read, a child process, and a
//! sleeping worker thread, recorded as they happen and printed at the end.
//!
//! Run with `cargo run --example quickstart`.

use std::time::Duration;
use std::{env, fs, process, thread};

use timeline_core::{Outcome, Timeline, current, timed};

#[timed(category = "file-write", detail = "{path}")]
fn write_file(path: &str, bytes: usize) -> std::io::Result<()> {
    fs::write(path, vec![b'x'; bytes])
}

#[timed(category = "file-read", detail = "{path}", err)]
fn read_file(path: &str) -> std::io::Result<Vec<u8>> {
    fs::read(path)
}

fn main() -> std::io::Result<()> {
    let timeline = Timeline::new();
    let dir = env::temp_dir().join(format!("timeline-quickstart-{}", process::id()));
    fs::create_dir_all(&dir)?;
    let path = dir.join("data.bin").display().to_string();

    timeline.scope(|| -> std::io::Result<()> {
        write_file(&path, 1 << 20)?;
        for _ in 0..3 {
            read_file(&path)?;
        }
        let _ = read_file("/definitely/not/here"); // recorded with its error

        // An action on the current timeline, deep in the call stack.
        let timeline = current().expect("inside scope");
        let guard = timeline
            .start("subprocess", "uname -a")
            .expect("nothing else is open");
        match process::Command::new("uname").arg("-a").output() {
            Ok(_) => drop(guard),
            Err(e) => {
                guard.finish_with(Outcome::Error(e.to_string()));
            }
        }

        // A guard may finish on another thread.
        let guard = timeline
            .start("worker", "sleep 5ms")
            .expect("nothing else is open");
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            drop(guard);
        })
        .join()
        .expect("worker thread");
        Ok(())
    })?;
    fs::remove_dir_all(&dir)?;

    println!("{} actions in {:?}:", timeline.len(), timeline.elapsed());
    for action in timeline.actions() {
        println!(
            "  {:>9.3?} +{:>9.3?}  {:<12} {:<40} {}",
            action.start(),
            action.duration_or_elapsed(),
            action.category(),
            action.detail(),
            action.outcome()
        );
    }
    Ok(())
}
