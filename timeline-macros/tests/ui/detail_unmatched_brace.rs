use timeline_core::timed;

#[timed(detail = "SELECT '{' FROM {table}")]
fn select(table: &str) {}

fn main() {
    select("bug");
}
