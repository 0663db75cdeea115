//! reduce kernels (being written).
