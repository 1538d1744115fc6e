//! Typed errors: each names the step or file, the limit, and what happened,
//! in one line; details (a wasm backtrace) are kept apart from the message.

use crate::base::units::{human_bytes, human_duration};
use std::path::PathBuf;
use std::time::Duration;

/// Why a file could not be loaded as a step component.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },

    #[error("{path} is not a WebAssembly file (it does not start with the `\\0asm` header)")]
    NotWasm { path: PathBuf },

    #[error(
        "{path} is a core module, not a component: build with --target wasm32-wasip2 or cargo component build"
    )]
    CoreModule { path: PathBuf },

    #[error("{path} is not a valid component: {message}")]
    Invalid { path: PathBuf, message: String },

    #[error("{path} does not fit the stephost:step world: {reason}")]
    WrongWorld { path: PathBuf, reason: String },

    #[error("compiled-component cache at {path}: {message}")]
    Cache { path: PathBuf, message: String },
}

/// Why a step did not complete. Every variant names the step.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepError {
    #[error("step `{step}` timed out after {}", human_duration(*limit))]
    TimedOut {
        step: String,
        #[serde(rename = "limit_ms", with = "crate::base::wire::duration_ms")]
        limit: Duration,
    },

    #[error("step `{step}` exceeded its {} memory limit", human_bytes(*limit))]
    MemoryLimit { step: String, limit: usize },

    #[error("step `{step}` trapped: {message}")]
    Trapped { step: String, message: String, backtrace: Option<String> },

    #[error("step `{step}` returned invalid JSON: {detail}")]
    InvalidJson { step: String, detail: String },

    #[error("step `{step}` produced {what} of {size} bytes, over its {} output limit", human_bytes(*limit))]
    OutputTooLarge { step: String, what: String, size: usize, limit: usize },

    #[error("step `{step}` failed: {message}")]
    Failed { step: String, message: String },

    #[error("step `{step}` could not start: {message}")]
    Instantiate { step: String, message: String },
}

impl StepError {
    /// The step this error belongs to.
    pub fn step(&self) -> &str {
        match self {
            StepError::TimedOut { step, .. }
            | StepError::MemoryLimit { step, .. }
            | StepError::Trapped { step, .. }
            | StepError::InvalidJson { step, .. }
            | StepError::OutputTooLarge { step, .. }
            | StepError::Failed { step, .. }
            | StepError::Instantiate { step, .. } => step,
        }
    }

    /// The same error with every text in it passed through `f` (used to
    /// redact secret values before an error is stored or printed).
    pub fn map_text(self, f: impl Fn(&str) -> String) -> Self {
        match self {
            StepError::Trapped { step, message, backtrace } => {
                StepError::Trapped { step, message: f(&message), backtrace: backtrace.map(|b| f(&b)) }
            }
            StepError::InvalidJson { step, detail } => StepError::InvalidJson { step, detail: f(&detail) },
            StepError::Failed { step, message } => StepError::Failed { step, message: f(&message) },
            StepError::Instantiate { step, message } => StepError::Instantiate { step, message: f(&message) },
            other => other,
        }
    }

    /// Extra detail worth showing below the one-line message (the wasm
    /// backtrace of a trap).
    pub fn detail(&self) -> Option<&str> {
        match self {
            StepError::Trapped { backtrace, .. } => backtrace.as_deref(),
            _ => None,
        }
    }
}
