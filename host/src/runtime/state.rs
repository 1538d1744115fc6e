//! The data of one run's `Store`: WASI and wasi:http contexts, the egress
//! hook, the step's inputs, and what the step produced so far.

use crate::audit::AuditSink;
use crate::egress::EgressHook;
use crate::runtime::limits::MemoryLimiter;
use crate::runtime::outcome::{HttpResponse, StepInput};
use serde_json::Value;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What the step produced through `flow` before it ended.
#[derive(Default)]
pub(crate) struct Produced {
    pub(crate) exports: Vec<(String, Value)>,
    pub(crate) export_bytes: usize,
    pub(crate) exit: Option<String>,
    pub(crate) response: Option<HttpResponse>,
    /// Set when an export pushed the exports over the output limit.
    pub(crate) exports_over_limit: Option<usize>,
}

/// One app's account as the step sees it: secret values sealed.
pub(crate) struct ShownAccount {
    pub(crate) app: String,
    /// Key, value shown to the step, and whether it is a sealed secret.
    pub(crate) fields: Vec<(String, String, bool)>,
}

pub(crate) struct StepState {
    pub(crate) run_id: String,
    pub(crate) accounts: Vec<ShownAccount>,
    pub(crate) audit: Option<Arc<dyn AuditSink>>,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) egress: EgressHook,
    pub(crate) input: Arc<StepInput>,
    pub(crate) produced: Produced,
    pub(crate) memory: MemoryLimiter,
    pub(crate) output_limit: usize,
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for StepState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}
