//! stephost: a WebAssembly sandboxed host for workflow code steps.
//!
//! A step is a WASM component targeting the `stephost:step` world (see
//! `wit/step.wit`). The [`Runtime`] compiles it once (cached on disk),
//! runs it under per-run [`Limits`] in a fresh store, hands it the event,
//! earlier steps' results and connected accounts through WIT imports, and
//! routes every outbound HTTP request through the egress hook.

pub mod apps;
pub mod audit;
mod bindings;
pub mod build;
pub mod cache;
pub mod clock;
pub mod component;
pub mod egress;
pub mod engine;
pub mod error;
mod interfaces;
pub mod limits;
pub mod logs;
pub mod oauth;
pub mod outcome;
pub mod runtime;
pub mod schedule;
pub mod secrets;
pub mod server;
mod state;
pub mod store;
pub mod templates;
pub mod workflow;

pub use apps::{App, Catalog};
pub use component::{ComponentReport, StepComponent};
pub use egress::{EgressConfig, EgressRecord, HostPattern, HostPolicy};
pub use error::{LoadError, StepError, WorkflowError};
pub use limits::Limits;
pub use logs::{LogLine, LogStream};
pub use outcome::{AccountFields, HttpResponse, StepInput, StepOutcome};
pub use runtime::{AccountTest, Runtime, RuntimeConfig, StepConfig};
pub use workflow::{Workflow, WorkflowOutcome, WorkflowStatus, WorkflowStep};
