use timeline_core::timed;

#[timed(category = "SQL-main", detail = "SELECT 1", category = "SQL-replica")]
fn query() {}

fn main() {
    query();
}
