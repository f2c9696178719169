use timeline_core::timed;

#[timed(category = "")]
fn query() {}

fn main() {
    query();
}
