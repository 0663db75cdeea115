//! # nn
//!
//! Modules with PyTorch-style dotted parameter names ([`Module`], [`Param`]), layers, initialisers
//! with PyTorch's defaults, optimizers and safetensors checkpoints.
//!
//! Forward passes label their graph nodes with the module path: a composite module enters
//! `autograd::scope(child_name)` around each child call, so every node carries e.g.
//! `inner_unet.down_blocks.1.attn.0`.

pub mod checkpoint;
mod error;
pub mod init;
pub mod layers;
mod module;
pub mod optim;

pub use error::{Error, Result};
pub use init::Init;
pub use layers::*;
pub use module::{Module, Param, join};
