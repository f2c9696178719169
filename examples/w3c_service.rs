//! Serves the service that W3C's trace-context test harness drives (see
//! `examples/w3c.rs`), for a run of the harness by hand:
//!
//! ```text
//! cargo run --example w3c_service [ADDRESS]      # default 127.0.0.1:5000
//! cd tests/w3c-trace-context
//! SPEC_LEVEL=2 STRICT_LEVEL=2 /usr/bin/python3 test.py http://127.0.0.1:5000/test
//! ```
//!
//! `tests/tests/w3c_harness.rs` runs the same in the test suite.

use timeline_examples::w3c;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5000".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let url = format!("http://{}{}", listener.local_addr()?, w3c::PATH);
    println!("the harness's service: {url}");
    println!(
        "run the harness: cd tests/w3c-trace-context && SPEC_LEVEL=2 STRICT_LEVEL=2 /usr/bin/python3 test.py {url}"
    );
    axum::serve(listener, w3c::router()).await
}
