use timeline_core::timed;

#[timed(err)]
fn parse() -> Result<u8, String> {
    Ok("not a number")
}

#[timed]
async fn fetch() -> u8 {
    "not a number"
}

#[timed]
async fn send() {
    42
}

fn main() {
    let _ = parse();
    let _ = fetch();
    let _ = send();
}
