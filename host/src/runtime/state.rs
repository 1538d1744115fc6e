//! The data of one run's `Store`: WASI and wasi:http contexts, the egress
//! hook, and the contexts of the four step interfaces.

use super::interfaces::{AuthsContext, EventContext, FlowContext, StepsContext};
use crate::egress::EgressHook;
use crate::runtime::limits::MemoryLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// A run's store data: WASI and wasi:http with the egress hook, the memory
/// limiter, and one small context per `stephost:step` interface (each
/// interface's host side sees only its own; see `interfaces/`).
pub(crate) struct StepState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) egress: EgressHook,
    pub(crate) memory: MemoryLimiter,
    pub(crate) event: EventContext,
    pub(crate) steps: StepsContext,
    pub(crate) auths: AuthsContext,
    pub(crate) flow: FlowContext,
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
