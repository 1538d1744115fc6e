//! The stephost API the service commands (`steps`, `workflow deploy`,
//! `trigger`, `runs`, `nodes`) call: over HTTP to a server given `--server
//! URL`, otherwise in this process on the local store (the data directory,
//! or the `--database` other nodes share), through the same routes either
//! way.

use super::args::{EgressArgs, ServerArgs};
use super::context::{Storage, backend, runtime};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use stephost::server::{AppState, ServeConfig};
use stephost::store::Run;
use tower::ServiceExt;

/// How long `--wait` waits for a run on a server before giving up.
const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// A stephost API: a server over HTTP, or the routes in this process.
pub enum Api {
    Remote { base: String, token: String, http: reqwest::Client },
    Local { state: Arc<AppState>, router: axum::Router },
}

impl Api {
    /// Connects to `--server`, or opens the local store (the data
    /// directory's, or `--database`'s) in this process.
    pub async fn open(args: &ServerArgs, storage: &Storage) -> Result<Self> {
        match &args.server {
            Some(base) => {
                let base = base.trim_end_matches('/').to_string();
                if !(base.starts_with("http://") || base.starts_with("https://")) {
                    bail!("--server `{base}` must be an http:// or https:// URL");
                }
                let token = args.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
                    anyhow!("--server needs the API token: pass --token or set STEPHOST_API_TOKEN")
                })?;
                Ok(Api::Remote { base, token, http: reqwest::Client::new() })
            }
            None => {
                // The store first: a refused master key is the one line shown.
                let store = backend(storage).await?;
                let runtime = runtime(storage, &EgressArgs::default())?;
                let config = ServeConfig::new(storage.data.clone());
                let state = AppState::open_local_on(config, Arc::new(runtime), store);
                let router = stephost::server::local_router(state.clone());
                Ok(Api::Local { state, router })
            }
        }
    }

    /// One API call; a non-2xx answer is an error carrying the server's
    /// one-line reason.
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Value> {
        let (status, bytes) = match self {
            Api::Remote { base, token, http } => {
                let response = http
                    .request(method.clone(), format!("{base}{path}"))
                    .bearer_auth(token)
                    .header(http::header::CONTENT_TYPE, content_type)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "cannot reach the server at {base}: {:#}",
                            anyhow::Error::from(e.without_url())
                        )
                    })?;
                let status = response.status();
                (status, response.bytes().await.with_context(|| format!("reading the answer from {base}"))?)
            }
            Api::Local { router, .. } => {
                let request = http::Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .header(http::header::CONTENT_TYPE, content_type)
                    .body(axum::body::Body::from(body))?;
                let response = router.clone().oneshot(request).await?;
                let status = response.status();
                (status, axum::body::to_bytes(response.into_body(), usize::MAX).await?)
            }
        };
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            // A non-JSON answer (a proxy's error page): its first line, shortened.
            let reason = value["error"].as_str().map_or_else(
                || {
                    String::from_utf8_lossy(&bytes)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect()
                },
                String::from,
            );
            bail!("{reason} ({method} {path}: {status})");
        }
        Ok(value)
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(http::Method::GET, path, Vec::new(), "application/json").await
    }

    /// A GET answer read as the API's own type.
    pub async fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        serde_json::from_value(self.get(path).await?)
            .with_context(|| format!("the server's answer to GET {path}"))
    }

    /// Waits for a run to finish (running it here when local) and returns
    /// it; gives up after [`WAIT_LIMIT`], naming the run to look at later.
    pub async fn finished(&self, run: &str) -> Result<Run> {
        if let Api::Local { state, .. } = self {
            stephost::server::run_until_finished(state.clone(), run).await?;
        }
        let deadline = std::time::Instant::now() + WAIT_LIMIT;
        loop {
            let record: Run = self.get_as(&format!("/v1/runs/{run}")).await?;
            if record.status.is_finished() {
                return Ok(record);
            }
            if std::time::Instant::now() >= deadline {
                bail!(
                    "run {run} is still {} after {} min; see `stephost runs show {run}`",
                    record.status,
                    WAIT_LIMIT.as_secs() / 60
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Api::Local { .. })
    }

    /// Uploads a step component, named by the file's stem (`hello.wasm`
    /// is `hello`); the answer holds its id.
    pub async fn upload(&self, file: &Path) -> Result<Value> {
        let bytes = std::fs::read(file).with_context(|| format!("step file {}", file.display()))?;
        let path = match file.file_stem().map(|s| s.to_string_lossy()) {
            Some(stem) if !stem.is_empty() && !stem.chars().any(char::is_control) => {
                let name: String = url::form_urlencoded::byte_serialize(stem.as_bytes()).collect();
                format!("/v1/steps?name={name}")
            }
            _ => "/v1/steps".to_string(),
        };
        self.call(http::Method::POST, &path, bytes, "application/wasm")
            .await
            .with_context(|| format!("uploading {}", file.display()))
    }
}
