use timeline_core::timed;

#[timed(detail = "SELECT * FROM bug WHERE id = {}")]
fn load_bug(id: i64) -> i64 {
    id
}

fn main() {
    load_bug(1);
}
