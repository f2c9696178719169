use timeline_core::timed;

#[timed(category = "SQL-main" nested)]
fn transaction() {}

fn main() {
    transaction();
}
