//! Criterion benchmarks of the nhrp codecs.

fn main() {}
