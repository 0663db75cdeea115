//! # mdm
//!
//! Matryoshka Diffusion Models: configuration ([`ModelConfig`], TOML), the allocation-free
//! parameter count ([`count_params`]) and the NestedUNet network ([`Mdm`], [`UNet`]) with ml-mdm's
//! parameter names (spec §3, §8). Forward passes label graph nodes with the module path
//! (`inner_unet.down_blocks.1.attn.0.qkv`).
//!
//! Deviations from ml-mdm: class-label conditioning (`num_classes`, `class_emb`) is an extension;
//! mixed-ratio batches (a larger low-resolution batch) and text-side transformer blocks
//! (`num_lm_head_layers`) are not supported; a token mask row without real tokens is an error
//! instead of a NaN.

pub mod config;
pub mod count;
pub mod data;
pub mod diffusion;
mod error;
pub mod image_io;
pub mod model;
pub mod run_config;
pub mod sampler;
pub mod text;
pub mod train;

pub use config::{MicroCondition, ModelConfig, UNetConfig};
pub use count::count_params;
pub use error::{ConfigError, Error, Result};
pub use model::{Conditioning, Mdm, UNet};

/// Micro-conditioning values by key, each [B].
pub type Micros = std::collections::BTreeMap<String, tensor::Tensor>;
