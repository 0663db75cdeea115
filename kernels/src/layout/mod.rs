//! layout kernels (being written).
