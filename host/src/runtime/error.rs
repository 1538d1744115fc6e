//! Typed errors: each names the step or file, the limit, and what happened,
//! in one line; details (a wasm backtrace) are kept apart from the message.

use crate::base::units::{human_bytes, human_duration};
use std::path::PathBuf;
use std::time::Duration;

/// Why a file could not be loaded as a step component.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (missing, unreadable, a directory...).
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The file is not WebAssembly at all (wrong file, or text such as WAT).
    #[error("{path} is not a WebAssembly file (it does not start with the `\\0asm` header)")]
    NotWasm {
        /// The file that was asked for.
        path: PathBuf,
    },

    /// The file is a core WebAssembly module, not a component: it was built
    /// for the wrong target.
    #[error(
        "{path} is a core module, not a component: build with --target wasm32-wasip2 or cargo component build"
    )]
    CoreModule {
        /// The file that was asked for.
        path: PathBuf,
    },

    /// The file has the WebAssembly header but did not compile: an unknown
    /// binary version or a malformed component.
    #[error("{path} is not a valid component: {message}")]
    Invalid {
        /// The file that was asked for.
        path: PathBuf,
        /// The first line of the compiler's complaint.
        message: String,
    },

    /// The component compiled but cannot be linked as a step: it imports an
    /// interface the host does not provide, or lacks the `run` export.
    #[error("{path} does not fit the stephost:step world: {reason}")]
    WrongWorld {
        /// The file that was asked for.
        path: PathBuf,
        /// Which import is missing, or what the component exports instead of `run`.
        reason: String,
    },

    /// The component compiled, but its compiled code could not be written to
    /// the cache directory.
    #[error("compiled-component cache at {path}: {message}")]
    Cache {
        /// The cache file that could not be written.
        path: PathBuf,
        /// What went wrong while serializing or writing it.
        message: String,
    },
}

/// Why a step did not complete. Every variant names the step.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepError {
    /// The step ran past its wall-clock limit and was stopped.
    #[error("step `{step}` timed out after {}", human_duration(*limit))]
    TimedOut {
        /// The step's name.
        step: String,
        /// The wall-clock limit it ran into (serialized as `limit_ms`).
        #[serde(rename = "limit_ms", with = "crate::base::wire::duration_ms")]
        limit: Duration,
    },

    /// The step tried to grow its memory past its limit and was stopped.
    #[error("step `{step}` exceeded its {} memory limit", human_bytes(*limit))]
    MemoryLimit {
        /// The step's name.
        step: String,
        /// The memory limit, in bytes.
        limit: usize,
    },

    /// The step crashed: a wasm trap, such as a Rust guest's panic or an
    /// out-of-bounds access.
    #[error("step `{step}` trapped: {message}")]
    Trapped {
        /// The step's name.
        step: String,
        /// The trap, preceded by the guest's panic message when it printed one.
        message: String,
        /// The wasm backtrace, if wasmtime captured one; shown below the message.
        backtrace: Option<String>,
    },

    /// The step's `run` returned a string that does not parse as JSON.
    #[error("step `{step}` returned invalid JSON: {detail}")]
    InvalidJson {
        /// The step's name.
        step: String,
        /// The JSON parser's error.
        detail: String,
    },

    /// The step's return value or exports went over its output limit.
    #[error("step `{step}` produced {what} of {size} bytes, over its {} output limit", human_bytes(*limit))]
    OutputTooLarge {
        /// The step's name.
        step: String,
        /// Which output overflowed: "a return value" or "exports".
        what: String,
        /// How large that output was, in bytes.
        size: usize,
        /// The output limit, in bytes.
        limit: usize,
    },

    /// The step ran to the end and reported failure: its `run` returned an error.
    #[error("step `{step}` failed: {message}")]
    Failed {
        /// The step's name.
        step: String,
        /// The error text the step returned.
        message: String,
    },

    /// The step could not be instantiated, so its `run` was never called.
    #[error("step `{step}` could not start: {message}")]
    Instantiate {
        /// The step's name.
        step: String,
        /// The root cause wasmtime gave.
        message: String,
    },
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
