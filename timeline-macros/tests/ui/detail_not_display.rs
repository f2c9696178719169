use timeline_core::timed;

struct Id(i64);

#[timed(detail = "SELECT * FROM bug WHERE id = {id}")]
fn load_bug(id: Id) -> i64 {
    id.0
}

fn main() {
    load_bug(Id(1));
}
