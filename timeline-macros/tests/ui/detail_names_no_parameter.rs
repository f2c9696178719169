use timeline_core::timed;

#[timed(category = "SQL-main", detail = "SELECT * FROM bug WHERE id = {bug_id}")]
fn load_bug(id: i64) -> i64 {
    id
}

fn main() {
    load_bug(1);
}
