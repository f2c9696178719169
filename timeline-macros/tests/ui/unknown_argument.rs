use timeline_core::timed;

#[timed(name = "SQL-main")]
fn query() {}

fn main() {
    query();
}
