//! rng kernels (being written).
