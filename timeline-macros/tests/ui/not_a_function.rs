use timeline_core::timed;

#[timed(category = "SQL-main")]
struct Query;

#[timed]
impl Query {
    fn run(&self) {}
}

fn main() {
    Query.run();
}
