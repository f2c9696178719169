//! Placeholder, replaced by the export bench.

fn main() {}
