//! The floors: bare wasmtime running the same step component with nothing
//! of stephost around it: the same engine configuration (pooling
//! allocator, epochs), a pre-linked `InstancePre`, an empty WASI context
//! and `event.get` answering a fixed string. stephost's per-run work
//! (sealing, egress context, logs, limits, outcome) is what lies between a
//! floor and stephost's row. [`Baseline`] is the suite's trivial-step floor;
//! [`HttpBaseline`] the egress floor of `stephost bench --egress` and the
//! suite.

use anyhow::{Context, Result};
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

/// A step component pre-linked on a bare engine with the same configuration
/// as stephost's (pooling allocator, epochs), `event.get` answering a fixed
/// event; each run a fresh store.
struct Prelinked<T: 'static> {
    engine: Engine,
    pre: InstancePre<T>,
    run: ComponentExportIndex,
}

impl<T: WasiView + Send + 'static> Prelinked<T> {
    /// Compiles and links `component` with WASI p2, whatever `link` adds,
    /// and `event` as its event.
    fn new(
        component: &Path,
        event: &str,
        link: impl FnOnce(&mut Linker<T>) -> wasmtime::Result<()>,
    ) -> Result<Self> {
        let engine = crate::runtime::engine::build_engine(1000, None)?;
        let component = Component::from_file(&engine, component)
            .map_err(|e| anyhow::anyhow!("cannot compile {}: {e:#}", component.display()))?;
        let mut linker = Linker::<T>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        link(&mut linker)?;
        let event: Arc<str> = event.into();
        linker
            .instance("stephost:step/event@0.1.0")?
            .func_wrap("get", move |_, (): ()| Ok((event.to_string(),)))?;
        let run = component.get_export_index(None, "run").context("the component exports no `run`")?;
        let pre = linker.instantiate_pre(&component)?;
        Ok(Self { engine, pre, run })
    }

    /// One run in a fresh store holding `state`: instantiate, call `run`,
    /// take its result.
    async fn run_once(&self, state: T) -> Result<String> {
        let mut store = Store::new(&self.engine, state);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let run = instance.get_typed_func::<(), (Result<String, String>,)>(&mut store, &self.run)?;
        let (result,) = run.call_async(&mut store, ()).await?;
        result.map_err(|error| anyhow::anyhow!("the bare step failed: {error}"))
    }
}

/// The trivial step with an empty WASI context: the floor of a run.
pub struct Baseline(Prelinked<Bare>);

impl Baseline {
    /// Compiles and links `component` (a step of the `stephost:step` world
    /// that reads only the event) with `event` as its event.
    pub fn new(component: &Path, event: &str) -> Result<Self> {
        Ok(Self(Prelinked::new(component, event, |_| Ok(()))?))
    }

    /// One run.
    pub async fn run_once(&self) -> Result<String> {
        self.0.run_once(Bare { wasi: WasiCtx::builder().build(), table: ResourceTable::new() }).await
    }
}

/// The egress floor: the same `fetch` step through bare
/// wasmtime-wasi-http, whose hook hands each request straight to one
/// shared reqwest client: no policy, no secret swap, no redaction, no
/// records. What lies between this and the proxied row is stephost's.
pub struct HttpBaseline {
    linked: Prelinked<BareHttp>,
    client: reqwest::Client,
    env: Vec<(String, String)>,
}

struct BareHttp {
    bare: Bare,
    http: wasmtime_wasi_http::WasiHttpCtx,
    hook: Forward,
}

impl WasiView for BareHttp {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.bare.ctx()
    }
}

impl wasmtime_wasi_http::WasiHttpView for BareHttp {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.bare.table,
            hooks: &mut self.hook,
        }
    }
}

/// Sends each request as it is with reqwest.
struct Forward(reqwest::Client);

type HttpResult = Result<
    (
        http::Response<wasmtime_wasi_http::WasiBody>,
        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ),
    wasmtime_wasi_http::Error,
>;

impl wasmtime_wasi_http::WasiHttpHooks for Forward {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _errors: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = HttpResult> + Send> {
        use futures::TryStreamExt;
        use http_body_util::BodyExt;
        let client = self.0.clone();
        Box::new(async move {
            let failed = |e: reqwest::Error| wasmtime_wasi_http::Error::InternalError(Some(e.to_string()));
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(failed)?;
            let mut out = http::Response::builder().status(response.status());
            if let Some(headers) = out.headers_mut() {
                *headers = response.headers().clone();
            }
            let stream = response.bytes_stream().map_ok(hyper::body::Frame::data).map_err(failed);
            let body = http_body_util::StreamBody::new(stream).boxed_unsync();
            let response =
                out.body(body).map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))?;
            let done: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

impl HttpBaseline {
    /// Links the `fetch` step with `event` and the environment `env` (the
    /// token in clear: nothing is sealed here).
    pub fn new(component: &Path, event: &str, env: Vec<(String, String)>) -> Result<Self> {
        let linked = Prelinked::new(component, event, |linker| {
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
            // The SDK asks why a request failed; nothing is refused here.
            linker
                .instance("stephost:step/egress@0.1.0")?
                .func_wrap("last-refusal", |_, (): ()| Ok((None::<String>,)))?;
            Ok(())
        })?;
        let client = reqwest::Client::builder().no_proxy().build()?;
        Ok(Self { linked, client, env })
    }

    /// One run of the step; its result.
    pub async fn run_once(&self) -> Result<String> {
        let state = BareHttp {
            bare: Bare { wasi: WasiCtx::builder().envs(&self.env).build(), table: ResourceTable::new() },
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            hook: Forward(self.client.clone()),
        };
        self.linked.run_once(state).await
    }
}
