//! A small blocking HTTP client over `wasi:http/outgoing-handler`, the only
//! way out of the sandbox. Every request goes through the host's egress
//! policy; a refused request fails with an error giving the host's reason
//! (`refused by stephost: …`), never with a real secret value in it.

use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Bytes written to the request body per call: `blocking-write-and-flush`
/// takes at most 4096.
const WRITE_CHUNK: usize = 4096;

/// Bytes asked for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// `GET url`.
pub fn get(url: &str) -> anyhow::Result<Response> {
    Request::get(url).send()
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, body: &impl Serialize) -> anyhow::Result<Response> {
    Request::post(url).json(body)?.send()
}

/// An outgoing HTTP request, built step by step and sent with
/// [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: http::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with any method (`"GET"`, `"PATCH"`, ...).
    pub fn new(method: &str, url: &str) -> anyhow::Result<Self> {
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| anyhow!("`{method}` is not an HTTP method"))?;
        Ok(Self { method, url: url.to_string(), headers: Vec::new(), body: Vec::new() })
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Self {
        Self { method: http::Method::GET, url: url.to_string(), headers: Vec::new(), body: Vec::new() }
    }

    /// A `POST` request.
    pub fn post(url: &str) -> Self {
        Self { method: http::Method::POST, ..Self::get(url) }
    }

    /// Adds a header (repeated names are kept).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Adds `Authorization: Basic base64(user:password)`; sealed secrets in
    /// either part are swapped in by the host.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", &format!("Basic {encoded}"))
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json(mut self, body: &impl Serialize) -> anyhow::Result<Self> {
        self.body = serde_json::to_vec(body).context("the request body is not serializable")?;
        Ok(self.header("content-type", "application/json; charset=utf-8"))
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> anyhow::Result<Response> {
        let target = format!("{} {}", self.method, self.url);
        self.send_inner().with_context(|| format!("request {target} failed"))
    }

    fn send_inner(self) -> anyhow::Result<Response> {
        let uri: http::Uri = self.url.parse().map_err(|e| anyhow!("invalid URL: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            Some(other) => bail!("unsupported URL scheme `{other}`"),
            None => bail!("the URL needs a scheme (https://...)"),
        };
        let authority = uri.authority().ok_or_else(|| anyhow!("the URL has no host"))?;

        let entries: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone().into_bytes()))
            .collect();
        let headers = Fields::from_list(&entries).map_err(|e| anyhow!("invalid request header: {e:?}"))?;
        let request = OutgoingRequest::new(headers);
        request.set_method(&wasi_method(&self.method)).map_err(|()| anyhow!("invalid method"))?;
        request.set_scheme(Some(&scheme)).map_err(|()| anyhow!("invalid scheme"))?;
        request
            .set_authority(Some(authority.as_str()))
            .map_err(|()| anyhow!("invalid host `{authority}`"))?;
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
        request.set_path_with_query(Some(path)).map_err(|()| anyhow!("invalid path `{path}`"))?;

        let outgoing_body = request.body().map_err(|()| anyhow!("request body already taken"))?;
        let pending = outgoing_handler::handle(request, None).map_err(describe_error)?;
        let written = write_body(outgoing_body, &self.body);
        // A refused or failed request closes the body early: its own error
        // says more than the closed stream does.
        let incoming = loop {
            match pending.get() {
                Some(result) => {
                    break result.map_err(|()| anyhow!("response already taken"))?.map_err(describe_error)?;
                }
                None => pending.subscribe().block(),
            }
        };
        written?;
        let status = incoming.status();
        let headers = incoming
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let body = incoming.consume().map_err(|()| anyhow!("response body already taken"))?;
        let bytes = read_all(&body)?;
        drop(IncomingBody::finish(body));
        Ok(Response { status, headers, body: bytes })
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> anyhow::Result<()> {
    {
        let stream = body.write().map_err(|()| anyhow!("request body already taken"))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream.blocking_write_and_flush(chunk).context("writing the request body")?;
        }
    }
    OutgoingBody::finish(body, None).map_err(describe_error)
}

fn read_all(body: &IncomingBody) -> anyhow::Result<Vec<u8>> {
    let stream = body.stream().map_err(|()| anyhow!("response body already taken"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => {
                // The host's debug text may run on with a backtrace: keep
                // the message.
                let text = e.to_debug_string();
                bail!("reading the response body: {}", text.lines().next().unwrap_or_default())
            }
        }
    }
}

fn wasi_method(method: &http::Method) -> Method {
    match *method {
        http::Method::GET => Method::Get,
        http::Method::HEAD => Method::Head,
        http::Method::POST => Method::Post,
        http::Method::PUT => Method::Put,
        http::Method::DELETE => Method::Delete,
        http::Method::CONNECT => Method::Connect,
        http::Method::OPTIONS => Method::Options,
        http::Method::TRACE => Method::Trace,
        http::Method::PATCH => Method::Patch,
        ref other => Method::Other(other.to_string()),
    }
}

/// The error for a wasi:http error code. A code the host's policy gives
/// (a refusal) carries the host's reason, asked for through
/// `stephost:step/egress`: the code alone cannot say which rule refused.
fn describe_error(code: ErrorCode) -> anyhow::Error {
    // Taken for every failure, so a reason is never left over for a later one.
    let reason = crate::bindings::stephost::step::egress::last_refusal();
    let refused = |fallback: &str| match &reason {
        Some(reason) => anyhow!("refused by stephost: {reason}"),
        None => anyhow!("refused by stephost ({fallback})"),
    };
    match code {
        ErrorCode::HttpRequestDenied => refused("the destination is not allowed for this step"),
        ErrorCode::DestinationIpProhibited => refused("the destination address is internal"),
        ErrorCode::HttpRequestUriInvalid => refused("the URL is not valid"),
        ErrorCode::HttpResponseContentCoding(_) => refused("the response is encoded and cannot be scanned"),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            anyhow!("timed out waiting for the response")
        }
        ErrorCode::ConnectionTimeout => anyhow!("timed out connecting"),
        ErrorCode::ConnectionRefused => anyhow!("connection refused"),
        // The name is the problem, not the server: say so.
        ErrorCode::DnsError(payload) => match payload.rcode {
            Some(rcode) => anyhow!("DNS lookup failed: {rcode}"),
            None => anyhow!("DNS lookup failed"),
        },
        ErrorCode::DnsTimeout => anyhow!("DNS lookup timed out"),
        ErrorCode::HttpResponseBodySize(_) => anyhow!("the response body is over the host's size limit"),
        ErrorCode::InternalError(Some(message)) => anyhow!("{message}"),
        other => anyhow!("{other}"),
    }
}

/// A whole HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header name/value pairs, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("the response (status {}) is not the expected JSON", self.status))
    }

    /// An error naming the status and the start of the body unless the
    /// status is 2xx.
    pub fn error_for_status(self) -> anyhow::Result<Self> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let text = self.text();
        let snippet: String = text.chars().take(200).collect();
        bail!("HTTP {}: {snippet}", self.status)
    }
}
