use timeline_core::timed;

/// A type that is named `Result` but is not `std`'s.
enum Result<T> {
    Done(T),
}

#[timed(err)]
fn run() -> Result<u8> {
    Result::Done(1)
}

fn main() {
    let Result::Done(_) = run();
}
