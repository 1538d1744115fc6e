//! The host's HTTP client (reqwest), shared by every run, and the
//! conversions between wasi:http's hyper types and reqwest's.

use futures::TryStreamExt;
use http_body_util::{BodyDataStream, BodyExt, StreamBody};
use hyper::body::Frame;
use std::net::SocketAddr;
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// How the host reaches the outside world, set once per runtime.
#[derive(Debug, Clone, Default)]
pub struct EgressConfig {
    /// Fixed addresses for host names, as `curl --resolve` does: the request
    /// keeps its URL, Host header and TLS name but connects here. Used to
    /// point an app's real host name at a local stand-in.
    pub resolve: Vec<(String, SocketAddr)>,
    /// Extra PEM root certificates to trust besides the built-in web roots.
    pub extra_root_certs_pem: Vec<Vec<u8>>,
}

/// Default connect timeout when the step sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A cheap-to-clone handle on the shared client.
#[derive(Clone)]
pub(crate) struct EgressClient {
    client: reqwest::Client,
}

impl EgressClient {
    /// Builds the shared client: no redirects followed (the guest sees the
    /// 3xx and any new request is checked again), no proxies from the
    /// environment, rustls with the web's roots plus configured extras.
    pub(crate) fn new(config: &EgressConfig) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("stephost/", env!("CARGO_PKG_VERSION")));
        for (host, addr) in &config.resolve {
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
        Ok(Self { client })
    }

    /// Sends a guest's request and hands back the response with its body
    /// streaming; on failure, the wasi:http error code and a message for
    /// the record.
    pub(crate) async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, (HttpError, String)> {
        let (mut parts, body) = request.into_parts();
        // The Host header always follows the checked URL.
        parts.headers.remove(http::header::HOST);
        let url = parts.uri.to_string();
        let mut builder = self
            .client
            .request(parts.method, &url)
            .headers(parts.headers)
            .body(reqwest::Body::wrap_stream(BodyDataStream::new(body)));
        if let Some(timeout) = options.and_then(|o| o.first_byte_timeout) {
            builder = builder.timeout(timeout);
        }
        let response = builder.send().await.map_err(|e| {
            let code = if e.is_timeout() {
                HttpError::ConnectionTimeout
            } else if e.is_connect() {
                HttpError::ConnectionRefused
            } else {
                HttpError::InternalError(Some(error_chain(&e)))
            };
            (code, error_chain(&e))
        })?;

        let mut out = http::Response::builder().status(response.status());
        if let Some(headers) = out.headers_mut() {
            *headers = response.headers().clone();
        }
        let stream = response.bytes_stream().map_ok(Frame::data).map_err(|e| {
            if e.is_timeout() { HttpError::ConnectionReadTimeout } else { HttpError::HttpProtocolError }
        });
        let body = StreamBody::new(stream).boxed_unsync();
        out.body(body).map_err(|e| (HttpError::InternalError(Some(e.to_string())), e.to_string()))
    }
}

/// `error: cause: cause` in one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
