//! Placeholder, replaced by the otel example.

fn main() {}
