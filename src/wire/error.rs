//! Why a message could not be read. Every variant names the field for the caller.

/// A message claimgate cannot read. Shown to the HIS in `err_msg` (Chinese prefix added by the
/// renderer), so every variant names the field.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("JSON nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}: required field is missing or empty")]
    Missing(String),
    #[error("{path}: {reason}")]
    Field { path: String, reason: String },
    #[error("infno {0}: no claim in this transaction")]
    NotAClaim(String),
    #[error("input is encrypted ({0}); it cannot be checked")]
    Encrypted(String),
}

impl ParseError {
    pub(crate) fn from_path(prefix: &str, e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let inner = e.inner().to_string();
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            return ParseError::Json(inner);
        }
        let path = if prefix.is_empty() { path } else { format!("{prefix}.{path}") };
        // serde's text ends with " at line L column C"; keep it, it helps integrators.
        ParseError::Field { path, reason: inner }
    }

    pub fn field(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError::Field { path: path.into(), reason: reason.into() }
    }
}
