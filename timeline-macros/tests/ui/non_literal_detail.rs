use timeline_core::timed;

#[timed(detail = concat!("SELECT ", "1"))]
fn query() {}

#[timed(detail = 42)]
fn fetch() {}

fn main() {
    query();
    fetch();
}
