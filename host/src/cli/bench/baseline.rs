//! The floor of the suite: bare wasmtime running the same trivial component
//! with nothing of stephost around it: the same engine configuration
//! (pooling allocator, epochs), a pre-linked `InstancePre`, an empty WASI
//! context and `event.get` answering a fixed string. stephost's per-run
//! work (sealing, egress context, logs, limits, outcome) is what lies
//! between this row and the step row.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A pre-linked step component on a bare engine.
pub struct Baseline {
    engine: Engine,
    pre: InstancePre<Bare>,
    run: ComponentExportIndex,
}

impl Baseline {
    /// Compiles and links `component` (a step of the `stephost:step` world
    /// that reads only the event) with `event` as its event.
    pub fn new(component: &Path, event: &str) -> Result<Self> {
        let engine = stephost::engine::build_engine(1000)?;
        let component = Component::from_file(&engine, component)
            .map_err(|e| anyhow::anyhow!("cannot compile {}: {e:#}", component.display()))?;
        let mut linker = Linker::<Bare>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let event: Arc<str> = event.into();
        linker
            .instance("stephost:step/event@0.1.0")?
            .func_wrap("get", move |_, (): ()| Ok((event.to_string(),)))?;
        let run = component.get_export_index(None, "run").context("the component exports no `run`")?;
        let pre = linker.instantiate_pre(&component)?;
        Ok(Self { engine, pre, run })
    }

    /// One run: a fresh store, instantiate, call `run`, take its result.
    pub async fn run_once(&self) -> Result<String> {
        let state = Bare { wasi: WasiCtx::builder().build(), table: ResourceTable::new() };
        let mut store = Store::new(&self.engine, state);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let run = instance.get_typed_func::<(), (Result<String, String>,)>(&mut store, &self.run)?;
        let (result,) = run.call_async(&mut store, ()).await?;
        match result {
            Ok(json) => Ok(json),
            Err(error) => bail!("the baseline step failed: {error}"),
        }
    }
}
