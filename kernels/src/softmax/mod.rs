//! softmax kernels (being written).
