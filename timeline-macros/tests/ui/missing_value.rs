use timeline_core::timed;

#[timed(category)]
fn query() {}

#[timed(detail =)]
fn fetch() {}

#[timed(crate)]
fn send() {}

fn main() {
    query();
    fetch();
    send();
}
