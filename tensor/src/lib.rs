//! The strided tensor (being written).
