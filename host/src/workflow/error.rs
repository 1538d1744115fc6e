//! Why a workflow file cannot be used.

use crate::runtime::error::LoadError;
use std::path::PathBuf;

/// Why a workflow file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },

    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },

    #[error("{path}: step `{step}`: {source}")]
    Load { path: PathBuf, step: String, source: LoadError },
}
