use timeline_core::timed;

#[timed(nested = true)]
fn transaction() {}

#[timed(err(Display))]
fn query() -> Result<(), String> {
    Ok(())
}

fn main() {
    transaction();
    let _ = query();
}
