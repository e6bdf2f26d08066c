//! Criterion benchmarks of the ikev2 codecs.

fn main() {}
