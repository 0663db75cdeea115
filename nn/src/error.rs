//! Errors of the nn layer.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Autograd(#[from] autograd::Error),
    #[error("configuration error: {0}")]
    Config(String),
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: String, msg: String },
    #[error("parameter {name}: {source}")]
    Param { name: String, source: Box<autograd::Error> },
    #[error("io error on {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl From<tensor::Error> for Error {
    fn from(e: tensor::Error) -> Self {
        Error::Autograd(autograd::Error::Tensor(e))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
