//! The one way out of the sandbox. Every `wasi:http` request a step makes
//! reaches [`EgressHook::send_request`] (wasmtime-wasi-http is built without
//! its default sender, so there is no other path) and runs one straight line:
//! guest → hook → policy → client → guest, with a record of each attempt.

mod client;
mod policy;

pub(crate) use client::EgressClient;
pub use client::EgressConfig;
pub use policy::{HostPattern, HostPolicy, PatternError, default_port, normalize_host};

use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One outbound request attempt, allowed or refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EgressRecord {
    pub method: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub allowed: bool,
    /// Why it was refused, or why it failed after being allowed.
    pub error: Option<String>,
    pub status: Option<u16>,
    pub duration_ms: u64,
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                HttpError,
            >,
        > + Send,
>;

/// Per-run egress state: the step's policy, the shared client, and where
/// records of this run go.
pub(crate) struct EgressHook {
    policy: Arc<HostPolicy>,
    client: EgressClient,
    records: Arc<Mutex<Vec<EgressRecord>>>,
}

impl EgressHook {
    pub(crate) fn new(policy: Arc<HostPolicy>, client: EgressClient) -> Self {
        Self { policy, client, records: Arc::default() }
    }

    /// Handle on this run's records, read after the run.
    pub(crate) fn records(&self) -> Arc<Mutex<Vec<EgressRecord>>> {
        self.records.clone()
    }
}

/// The destination of a request, normalized for policy checks.
struct Destination {
    scheme: String,
    host: String,
    port: u16,
}

impl Destination {
    fn of(uri: &http::Uri) -> Option<Self> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = normalize_host(uri.host()?);
        let port = uri.port_u16().or_else(|| default_port(&scheme))?;
        Some(Self { scheme, host, port })
    }
}

impl WasiHttpHooks for EgressHook {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let started = Instant::now();
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let records = self.records.clone();
        let record = move |dest: &Destination, allowed, status, error| {
            let entry = EgressRecord {
                method: method.clone(),
                scheme: dest.scheme.clone(),
                host: dest.host.clone(),
                port: dest.port,
                path: path.clone(),
                allowed,
                error,
                status,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            records.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
        };

        let Some(dest) = Destination::of(request.uri()) else {
            return Box::new(async { Err(HttpError::HttpRequestUriInvalid) });
        };
        if !self.policy.allows(&dest.scheme, &dest.host, dest.port) {
            let reason =
                format!("{}://{}:{} is not in the step's allowed hosts", dest.scheme, dest.host, dest.port);
            record(&dest, false, None, Some(reason));
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }

        let client = self.client.clone();
        Box::new(async move {
            match client.send(request, options).await {
                Ok(response) => {
                    record(&dest, true, Some(response.status().as_u16()), None);
                    let io_done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                        Box::new(async { Ok(()) });
                    Ok((response, io_done))
                }
                Err((error, message)) => {
                    record(&dest, true, None, Some(message));
                    Err(error)
                }
            }
        })
    }
}
