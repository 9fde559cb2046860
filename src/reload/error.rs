//! Why a bundle or an activation was refused. Messages name the object and the reason, so the
//! admin API and `claimgate rules verify` can show them as they are.

/// A bundle that cannot be read, is not trusted, or does not match its manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    #[error("bundle: not a readable gzip tar archive: {0}")]
    Archive(String),
    #[error("bundle: {what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("bundle: unsafe entry path {0:?} (absolute, `..` or not UTF-8)")]
    UnsafePath(String),
    #[error("bundle: entry {path:?} is a {kind}, only regular files are allowed")]
    NotAFile { path: String, kind: String },
    #[error("bundle: unexpected entry {0:?} (a bundle holds manifest.json, signatures.json and pack/ with manifest.yaml, rules/*.yaml, tables/*.csv, tests/*.yaml)")]
    Unexpected(String),
    #[error("bundle: entry {0:?} appears twice")]
    Duplicate(String),
    #[error("bundle: no manifest.json")]
    NoManifest,
    #[error("bundle: unsigned (no signatures.json or no signature in it)")]
    Unsigned,
    #[error("bundle: not signed by a trusted key (signed by key ids: {0})")]
    Untrusted(String),
    #[error("bundle: bad {file}: {reason}")]
    Malformed { file: &'static str, reason: String },
    #[error("bundle: file {0} is in the archive but not in the manifest")]
    Extra(String),
    #[error("bundle: file {0} is in the manifest but not in the archive")]
    Missing(String),
    #[error("bundle: file {0}: SHA-256 does not match the manifest (changed after signing)")]
    Digest(String),
    #[error("bundle: {0}")]
    Dates(String),
    #[error("bundle: {0}")]
    Older(String),
    #[error("key: {0}")]
    Key(String),
}

/// The stage at which an activation failed (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Fetch,
    Verify,
    Compile,
    SelfTest,
    Persist,
    Rollback,
    Shadow,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Verify => "verify",
            Stage::Compile => "compile",
            Stage::SelfTest => "selftest",
            Stage::Persist => "persist",
            Stage::Rollback => "rollback",
            Stage::Shadow => "shadow",
        }
    }
}

/// Why a candidate rule set was not activated. The running set stays in every case.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ActivateError {
    #[error("fetch: {0}")]
    Fetch(String),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("compile: {0}")]
    Compile(String),
    #[error("the pack's own test cases failed:\n{0}")]
    SelfTest(String),
    #[error("persist: {0}")]
    Persist(String),
    #[error("rollback: {0}")]
    Rollback(String),
    #[error("bundles are disabled: no trusted keys are configured")]
    Disabled,
    #[error("shadow: no candidate is under shadow evaluation")]
    NoCandidate,
}

impl ActivateError {
    pub fn stage(&self) -> Stage {
        match self {
            ActivateError::Fetch(_) => Stage::Fetch,
            ActivateError::Bundle(_) | ActivateError::Disabled => Stage::Verify,
            ActivateError::Compile(_) => Stage::Compile,
            ActivateError::SelfTest(_) => Stage::SelfTest,
            ActivateError::Persist(_) => Stage::Persist,
            ActivateError::Rollback(_) => Stage::Rollback,
            ActivateError::NoCandidate => Stage::Shadow,
        }
    }
}
