use timeline_core::timed;

#[timed(categroy = "SQL-main", nested, nested, detail = "{idd}")]
const fn query(id: i64) -> i64 {
    id
}

fn main() {
    let _ = query(1);
}
