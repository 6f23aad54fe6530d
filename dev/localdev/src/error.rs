//! Error type shared by the library.

use std::path::PathBuf;

/// Everything that can go wrong while reading the template or talking to the local services.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File that failed.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The template is not valid YAML.
    #[error("cannot parse template: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// A `Name=Value` override string is malformed or names an unknown parameter.
    #[error("parameter overrides: {0}")]
    Override(String),
    /// A parameter value violates its declared constraints (or has no value).
    #[error("parameter {name}: {reason}")]
    Parameter {
        /// Parameter logical name.
        name: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// The template lacks something this tool needs, or uses an unsupported construct.
    #[error("template: {0}")]
    Template(String),
    /// A call to DynamoDB or Secrets Manager failed.
    #[error("{0}")]
    Aws(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for [`Error::Template`].
pub(crate) fn template_error(message: impl Into<String>) -> Error {
    Error::Template(message.into())
}
