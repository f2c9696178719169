use timeline_core::timed;

#[timed(err)]
fn find(id: i64) -> Option<i64> {
    Some(id)
}

#[timed(category = "SQL-main", err)]
fn execute() {}

fn main() {
    find(1);
    execute();
}
