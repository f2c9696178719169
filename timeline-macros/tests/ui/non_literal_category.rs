use timeline_core::timed;

const CATEGORY: &str = "SQL-main";

#[timed(category = CATEGORY)]
fn query() {}

fn main() {
    query();
    let _ = CATEGORY;
}
