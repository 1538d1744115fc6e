//! Why a workflow file cannot be used.

use crate::runtime::error::LoadError;
use std::path::PathBuf;

/// Why a workflow file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The workflow file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },

    /// The file is not a valid workflow (TOML, names, limits, hosts…).
    #[error("{path}: {message}")]
    Invalid {
        /// The workflow file.
        path: PathBuf,
        /// What is wrong, in one line.
        message: String,
    },

    /// A step's component could not be loaded.
    #[error("{path}: step `{step}`: {source}")]
    Load {
        /// The workflow file.
        path: PathBuf,
        /// The step whose component failed.
        step: String,
        /// Why it failed to load.
        source: LoadError,
    },
}
