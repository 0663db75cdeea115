//! attention kernels (being written).
