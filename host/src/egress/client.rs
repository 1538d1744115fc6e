//! The host's HTTP client (reqwest), shared by every run: no redirects, no
//! environment proxies, names resolved through the SSRF guard; and the
//! conversion of its responses back into wasi:http bodies.

use super::ssrf::{BlockedAddress, GuardedResolver, NameNotResolved};
use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions};

/// How the host reaches the outside world, set once per runtime.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// Pinned addresses, as `curl --resolve HOST:PORT:ADDR` does: a request
    /// to HOST on PORT keeps its URL, Host header and TLS name but connects
    /// to ADDR. An operator's explicit choice, so not subject to the SSRF
    /// guard (used to point an app's real host name at a local stand-in);
    /// HOST on any other port is refused.
    pub resolve: Vec<(String, u16, SocketAddr)>,
    /// A fixed hosts table consulted before DNS; its answers are checked by
    /// the SSRF guard like any DNS answer.
    pub hosts: Vec<(String, IpAddr)>,
    /// Extra PEM root certificates to trust besides the built-in web roots.
    pub extra_root_certs_pem: Vec<Vec<u8>>,
    /// To open a connection: name lookup, TCP connect and TLS handshake.
    pub connect_timeout: Duration,
    /// Until the response headers arrive (a step may ask for less).
    pub first_byte_timeout: Duration,
    /// For a whole request, body included.
    pub total_timeout: Duration,
    /// Largest response body a step may read per request.
    pub max_response_bytes: usize,
    /// Largest request body scanned for secrets (only bodies of runs that
    /// hold secrets are scanned).
    pub max_scanned_request_bytes: usize,
    /// Requests one run may attempt; later ones are refused.
    pub max_requests_per_run: u64,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            resolve: Vec::new(),
            hosts: Vec::new(),
            extra_root_certs_pem: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            max_response_bytes: 16 << 20,
            max_scanned_request_bytes: 8 << 20,
            max_requests_per_run: 1000,
        }
    }
}

/// A failed send: the wasi:http error code for the guest, the message for
/// the record, and whether the SSRF guard refused it (a refusal, not a
/// failure).
pub(crate) struct SendError {
    pub(crate) code: HttpError,
    pub(crate) message: String,
    pub(crate) blocked: bool,
}

/// A cheap-to-clone handle on the shared client and its limits.
#[derive(Clone)]
pub(crate) struct EgressClient {
    client: reqwest::Client,
    pub(crate) config: Arc<EgressConfig>,
}

impl EgressClient {
    pub(crate) fn new(config: &EgressConfig) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .dns_resolver(Arc::new(GuardedResolver::new(&config.hosts)))
            .user_agent(concat!("stephost/", env!("CARGO_PKG_VERSION")));
        for (host, _, addr) in &config.resolve {
            builder = builder.resolve(host, *addr);
        }
        for pem in &config.extra_root_certs_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("invalid CA certificate: {e}"))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { client, config: Arc::new(config.clone()) })
    }

    /// The shared client itself, for the host's own requests that must be
    /// held to the same rules (the OAuth token endpoint): no redirects, the
    /// SSRF guard, the pins and extra roots.
    pub(crate) fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request whose body is `body`, waiting at most the first-byte
    /// timeout for the response headers.
    pub(crate) async fn send(
        &self,
        head: super::swap::Head,
        body: super::RequestBody,
        options: Option<RequestOptions>,
    ) -> Result<reqwest::Response, SendError> {
        let body = match body {
            super::RequestBody::Whole(bytes) => reqwest::Body::from(bytes),
            super::RequestBody::Streaming(stream) => reqwest::Body::wrap_stream(stream),
        };
        let first_byte = options
            .and_then(|o| o.first_byte_timeout)
            .map_or(self.config.first_byte_timeout, |t| t.min(self.config.first_byte_timeout));
        let request = self
            .client
            .request(head.method, head.uri.to_string())
            .headers(head.headers)
            .timeout(self.config.total_timeout)
            .body(body);
        match tokio::time::timeout(first_byte, request.send()).await {
            Err(_) => Err(SendError {
                code: HttpError::ConnectionReadTimeout,
                message: format!("no response within {}", crate::base::units::human_duration(first_byte)),
                blocked: false,
            }),
            Ok(Err(e)) => Err(classify(&e.without_url())),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

fn classify(error: &reqwest::Error) -> SendError {
    let message = error_chain(error);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<BlockedAddress>() {
            return SendError {
                code: HttpError::DestinationIpProhibited,
                message: blocked.to_string(),
                blocked: true,
            };
        }
        if let Some(unresolved) = cause.downcast_ref::<NameNotResolved>() {
            return SendError {
                code: HttpError::DnsError {
                    rcode: Some(format!("{} did not resolve ({})", unresolved.name, unresolved.reason)),
                    info_code: None,
                },
                message: unresolved.to_string(),
                blocked: false,
            };
        }
        source = cause.source();
    }
    let code = if error.is_timeout() {
        HttpError::ConnectionTimeout
    } else if error.is_connect() {
        HttpError::ConnectionRefused
    } else {
        HttpError::InternalError(Some(message.clone()))
    };
    SendError { code, message, blocked: false }
}

/// The response body as a byte stream that fails past the size limit.
pub(crate) fn limited_body(
    response: reqwest::Response,
    limit: usize,
) -> impl Stream<Item = Result<Bytes, HttpError>> + Send + Unpin + 'static {
    let mut seen = 0usize;
    Box::pin(
        response
            .bytes_stream()
            .map_err(|e| {
                if e.is_timeout() { HttpError::ConnectionReadTimeout } else { HttpError::HttpProtocolError }
            })
            .and_then(move |chunk| {
                seen += chunk.len();
                let over = seen > limit;
                async move {
                    if over { Err(HttpError::HttpResponseBodySize(Some(limit as u64))) } else { Ok(chunk) }
                }
            }),
    )
}

/// `error: cause: cause` in one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
