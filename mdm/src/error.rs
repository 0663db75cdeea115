//! Errors of the mdm crate: configuration errors name the field; model errors wrap the layers'.

/// A configuration problem, naming the file or the field (dotted path, e.g.
/// `unet.inner.resolution_channels[1]`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {msg}")]
    Io { path: String, msg: String },
    #[error("config {source_name}: parse error: {msg}")]
    Parse { source_name: String, msg: String },
    #[error("config field `{field}`: {msg}")]
    Invalid { field: String, msg: String },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), msg: msg.into() }
    }
}

/// Errors of model construction and forward passes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Nn(#[from] nn::Error),
    /// A forward input with the wrong shape, dtype or content; `input` names it.
    #[error("model input `{input}`: {msg}")]
    Input { input: String, msg: String },
}

impl From<autograd::Error> for Error {
    fn from(e: autograd::Error) -> Self {
        Error::Nn(nn::Error::Autograd(e))
    }
}

impl From<tensor::Error> for Error {
    fn from(e: tensor::Error) -> Self {
        Error::Nn(nn::Error::from(e))
    }
}

pub(crate) fn input_err(input: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Input { input: input.into(), msg: msg.into() }
}

/// Result with the mdm [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
