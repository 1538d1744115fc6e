//! `stephost serve`: upload steps, deploy workflows, trigger them over HTTP,
//! and inspect every run. Events are committed to the store before the
//! trigger answers; a bounded pool of workers runs them.

mod api;
mod auth;
mod trigger;
mod worker;

use crate::runtime::Runtime;
use crate::store::Store;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// Runs executing at once.
    pub workers: usize,
    /// Queued runs beyond which triggers answer 429.
    pub max_queued: u64,
    /// Largest step upload.
    pub max_upload_bytes: usize,
    /// Largest HTTP trigger body.
    pub max_event_bytes: usize,
    /// On SIGTERM, how long running runs may take to finish; queued ones
    /// stay queued for the next start.
    pub grace: std::time::Duration,
}

impl ServeConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            workers: 4,
            max_queued: 10_000,
            max_upload_bytes: 50 << 20,
            max_event_bytes: 512 << 10,
            grace: std::time::Duration::from_secs(30),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub config: ServeConfig,
    pub runtime: Arc<Runtime>,
    /// One connection; SQLite calls are short and never held across awaits.
    pub store: Mutex<Store>,
    /// SHA-256 of the API token.
    token_hash: [u8; 32],
    /// Wakes a worker when a run is queued.
    pub work: tokio::sync::Notify,
    /// Set on shutdown: workers finish their run and take no other.
    pub stopping: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// Opens the store, takes or makes the API token (returned in clear
    /// only when it was just generated, to be printed once), and requeues
    /// runs a crash left running.
    pub fn open(
        config: ServeConfig,
        runtime: Arc<Runtime>,
    ) -> Result<(Arc<Self>, Option<String>), crate::store::StoreError> {
        let store = Store::open(&config.data_dir)?;
        let (token_hash, generated) = auth::token_hash(&store)?;
        store.requeue_running()?;
        let state = Arc::new(Self {
            config,
            runtime,
            store: Mutex::new(store),
            token_hash,
            work: Default::default(),
            stopping: Default::default(),
        });
        Ok((state, generated))
    }

    /// The store, for one short call.
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where uploaded steps live.
    pub fn steps_dir(&self) -> PathBuf {
        self.config.data_dir.join("steps")
    }
}

/// The routes: management under `/v1` (bearer token), triggers under `/e`.
pub fn router(state: Arc<AppState>) -> Router {
    let management = api::routes(state.clone())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require));
    Router::new().nest("/v1", management).merge(trigger::routes(state.clone())).with_state(state)
}

/// Serves on `listener` with the workers until `shutdown` resolves; then
/// stops accepting, lets running runs finish within the grace period and
/// leaves queued ones in the store.
pub async fn serve_until(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let workers: Vec<_> =
        (0..state.config.workers.max(1)).map(|_| tokio::spawn(worker::work(state.clone()))).collect();
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    state.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    state.work.notify_waiters();
    let drained = tokio::time::timeout(state.config.grace, futures::future::join_all(workers)).await;
    if drained.is_err() {
        eprintln!("stephost: runs still running after the grace period are queued again on the next start");
    }
    Ok(())
}

/// [`serve_until`] SIGTERM or Ctrl-C.
pub async fn serve(state: Arc<AppState>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_until(state, listener, async {
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// An error answer: status and one line, as JSON `{"error": "…"}`.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}
