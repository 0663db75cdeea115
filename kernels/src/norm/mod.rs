//! norm kernels (being written).
