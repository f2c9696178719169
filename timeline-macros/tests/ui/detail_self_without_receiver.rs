use timeline_core::timed;

#[timed(detail = "{self}")]
fn load(id: i64) -> i64 {
    id
}

fn main() {
    load(1);
}
