//! Delivery benchmarks (placeholder; being written).
fn main() {}
