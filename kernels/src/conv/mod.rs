//! conv kernels (being written).
