//! Checkpoints in the [safetensors](https://github.com/huggingface/safetensors) format.
//!
//! | file | what |
//! |---|---|
//! | `format.rs` | dtype names, header building and validation, little-endian data conversion |
//! | `value.rs` | a JSON value that keeps duplicate keys, so the validator can reject them |
//! | `writer.rs` | [`save`] (atomic: temp file, fsync, rename, directory fsync) and [`serialize`] |
//! | `reader.rs` | [`SafeTensors`]: memory-mapped, fully validated on open, tensors copied out on demand |
//! | `module_io.rs` | [`state_dict`], [`save_module`], [`load_into`] with a [`LoadReport`] |
//! | `training.rs` | [`TrainingCheckpoint`]: model / EMA / optimizer tensors + step, RNG, config |
//!
//! Every malformed file gives [`crate::Error::Checkpoint`] naming the file, the tensor and the problem;
//! the reader never panics and never reads outside the file. The validation rules (exact coverage of
//! the data buffer, no duplicate keys, …) are listed in [`format`](mod@format).

/// Named tensors, as a module's `state_dict` or a checkpoint section.
pub type StateDict = Vec<(String, tensor::Tensor)>;

pub mod format;
mod module_io;
mod reader;
mod training;
mod value;
mod writer;

pub use format::{MAX_HEADER_LEN, METADATA_KEY, TensorInfo, dtype_name, parse_dtype};
pub use module_io::{
    KeyMismatch, LoadReport, load_into, load_into_prefixed, load_state_dict, save_module, state_dict,
};
pub use reader::{SafeTensors, load};
pub use training::{TRAINING_FORMAT, TRAINING_FORMAT_VERSION, TrainingCheckpoint};
pub use writer::{save, serialize};
