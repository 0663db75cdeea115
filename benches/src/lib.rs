//! Benchmark helpers shared by the criterion benches and the `roofline` program.
