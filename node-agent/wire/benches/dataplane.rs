//! Criterion benchmarks of the dataplane codecs.

fn main() {}
