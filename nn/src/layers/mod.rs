//! Layers. Attention blocks as in the MDM spec live in `attention.rs`.

pub mod attention;
pub mod conv;
pub mod linear;
pub mod misc;
pub mod norm;

pub use attention::{AttentionFfn, SelfAttention};
pub use conv::{Conv2d, Downsample, Upsample};
pub use linear::Linear;
pub use misc::{Dropout, Embedding};
pub use norm::{GroupNorm, LayerNorm};
