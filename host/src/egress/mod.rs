//! The one way out of the sandbox. Every `wasi:http` request a step makes
//! reaches [`EgressHook::send_request`] (wasmtime-wasi-http is built without
//! its default sender, so there is no other path) and runs one straight line:
//!
//! guest → hook → policy → secret swap → client (SSRF guard) → redaction → guest
//!
//! and every attempt, allowed or refused, becomes one record in the run's
//! outcome and in the audit log.

mod client;
mod policy;
mod rewrite;
mod ssrf;
mod swap;

pub(crate) use client::EgressClient;
pub use client::EgressConfig;
pub use policy::{HostPattern, HostPolicy, PatternError, default_port, normalize_host};
pub use ssrf::forbidden_reason;

use crate::audit::{AuditEvent, AuditLog};
use crate::logs::LogSink;
use crate::secrets::{Placement, Vault};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyDataStream, BodyExt, StreamBody};
use hyper::body::Frame;
use rewrite::{RewriteStream, Rewriter};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One outbound request attempt, allowed or refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EgressRecord {
    pub method: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// Path and query, query values masked.
    pub path: String,
    /// Secrets swapped in, as `app.key` / `env.NAME`.
    pub secrets: Vec<String>,
    pub allowed: bool,
    /// Why it was refused, or why it failed after being allowed.
    pub error: Option<String>,
    pub status: Option<u16>,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub duration_ms: u64,
}

/// Everything the hook needs for one run, shared by its requests.
pub(crate) struct EgressContext {
    pub(crate) run_id: String,
    pub(crate) step: String,
    /// The step's allowed hosts plus its connected apps' hosts.
    pub(crate) policy: Arc<HostPolicy>,
    pub(crate) vault: Arc<Vault>,
    /// The vault's needles (swap, redaction), compiled once for the run
    /// and again if a secret gets a new value.
    needles: std::sync::RwLock<RunNeedles>,
    /// Refreshes an OAuth token after a 401; each app at most once a run.
    refresher: Option<crate::oauth::Refresher>,
    refreshed_apps: Mutex<Vec<String>>,
    pub(crate) client: EgressClient,
    pub(crate) audit: Option<Arc<AuditLog>>,
    pub(crate) records: Mutex<Vec<EgressRecord>>,
    /// The run's logs, where refusals are noted for the step's author.
    logs: LogSink,
    /// Requests attempted so far, against the per-run cap.
    attempts: AtomicU64,
    /// Requests under way at once, at most [`MAX_IN_FLIGHT`].
    in_flight: tokio::sync::Semaphore,
    /// Set once the step tried to send a real secret where it may not go.
    closed: std::sync::atomic::AtomicBool,
}

/// Requests one run may have under way at once.
const MAX_IN_FLIGHT: usize = 32;

impl EgressContext {
    /// The egress state of one run.
    pub(crate) fn new(
        run_id: String,
        step: String,
        policy: Arc<HostPolicy>,
        vault: Arc<Vault>,
        client: EgressClient,
        audit: Option<Arc<AuditLog>>,
        logs: LogSink,
    ) -> Self {
        Self {
            run_id,
            step,
            policy,
            needles: std::sync::RwLock::new((swap::swap_needles(&vault), swap::redaction_needles(&vault))),
            refresher: None,
            refreshed_apps: Mutex::default(),
            vault,
            client,
            audit,
            records: Mutex::default(),
            logs,
            attempts: AtomicU64::new(0),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            closed: Default::default(),
        }
    }

    /// Adds the refresher used after a 401 from an OAuth app's host.
    pub(crate) fn with_refresher(mut self, refresher: Option<crate::oauth::Refresher>) -> Self {
        self.refresher = refresher;
        self
    }

    fn swap_needles(&self) -> Option<Arc<rewrite::Needles>> {
        self.needles.read().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    fn redact_needles(&self) -> Option<Arc<rewrite::Needles>> {
        self.needles.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    /// After a 401 from a request that carried `app`'s OAuth token: refresh
    /// it (once per app and run) and return the old and new values.
    async fn refresh_after_401(&self, swapped: &[String]) -> Option<(String, String)> {
        let refresher = self.refresher.as_ref()?;
        let label = swapped.iter().find(|l| l.ends_with(".oauth_access_token"))?;
        let app = label.strip_suffix(".oauth_access_token")?.to_string();
        {
            let mut tried = self.refreshed_apps.lock().unwrap_or_else(|p| p.into_inner());
            if tried.contains(&app) {
                return None;
            }
            tried.push(app.clone());
        }
        let old = self.vault.secrets().iter().find(|s| s.label == *label)?.value();
        match refresher.0.refresh(&app).await {
            Ok(new) => {
                self.vault.replace_value(label, &new);
                *self.needles.write().unwrap_or_else(|p| p.into_inner()) =
                    (swap::swap_needles(&self.vault), swap::redaction_needles(&self.vault));
                self.logs.note(&format!("[stephost] {app} answered 401: token refreshed, request retried"));
                Some((old, new))
            }
            Err(reason) => {
                self.logs.note(&format!(
                    "[stephost] {app} answered 401 and the token could not be refreshed: {reason}"
                ));
                None
            }
        }
    }

    /// Keeps a record in the run's outcome and the audit log.
    fn keep(&self, record: EgressRecord) {
        if let Some(audit) = &self.audit {
            // An audit failure must not pass silently: it goes to the host's
            // stderr (records hold no secret values).
            if let Err(e) = audit.append(&self.run_id, &self.step, AuditEvent::Request(record.clone())) {
                eprintln!("stephost: {e}");
            }
        }
        if !record.allowed {
            let r = &record;
            let why = r.error.as_deref().unwrap_or("refused");
            self.logs.note(&format!(
                "[stephost] refused {} {}://{}:{}{}: {why}",
                r.method, r.scheme, r.host, r.port, r.path
            ));
        }
        self.records.lock().unwrap_or_else(|p| p.into_inner()).push(record);
    }
}

/// The per-run hook wasi:http calls for every outgoing request.
pub(crate) struct EgressHook {
    context: Arc<EgressContext>,
}

impl EgressHook {
    pub(crate) fn new(context: Arc<EgressContext>) -> Self {
        Self { context }
    }
}

/// The destination of a request, normalized the way the client will read
/// the URL (WHATWG rules: `http://2130706433/` is 127.0.0.1).
pub(crate) struct Destination {
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) ip: Option<std::net::IpAddr>,
}

impl Destination {
    fn of(uri: &http::Uri) -> Option<Self> {
        let url = url::Url::parse(&uri.to_string()).ok()?;
        let (host, ip) = match url.host()? {
            url::Host::Domain(name) => (normalize_host(name), None),
            url::Host::Ipv4(v4) => (v4.to_string(), Some(v4.into())),
            url::Host::Ipv6(v6) => (format!("[{v6}]"), Some(v6.into())),
        };
        Some(Self { scheme: url.scheme().to_string(), host, port: url.port_or_known_default()?, ip })
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                HttpError,
            >,
        > + Send,
>;

/// A request body not yet on its way. Refused before it is read, it is
/// drained in the background rather than dropped: a guest still writing it
/// then gets the refusal from the response, not a broken stream mid-write
/// (which StarlingMonkey treats as fatal). Nothing drained goes anywhere.
struct Unsent(Option<WasiBody>);

/// The most a refused request's body is read (and discarded) for.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(30);

impl Drop for Unsent {
    fn drop(&mut self) {
        if let Some(mut body) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let drain = async { while let Some(Ok(_)) = body.frame().await {} };
                let _ = tokio::time::timeout(DRAIN_FOR, drain).await;
            });
        }
    }
}

impl WasiHttpHooks for EgressHook {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let context = self.context.clone();
        Box::new(async move {
            let response = send(context, request, options).await?;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// The straight line, for one request.
pub(crate) async fn send(
    context: Arc<EgressContext>,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, HttpError> {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let mut body = Unsent(Some(body));
    let mut record = EgressRecord {
        method: parts.method.to_string(),
        scheme: String::new(),
        host: String::new(),
        port: 0,
        path: mask_query(&parts.uri),
        secrets: Vec::new(),
        allowed: false,
        error: None,
        status: None,
        bytes_out: 0,
        bytes_in: 0,
        duration_ms: 0,
    };
    let refuse = |mut record: EgressRecord, reason: String, code: HttpError| {
        record.error = Some(context.vault.redact(&reason));
        record.duration_ms = started.elapsed().as_millis() as u64;
        if reason.starts_with(swap::REAL_VALUE_REFUSAL) {
            // The step holds a real secret and tried to send it where it may
            // not go: close this run's egress so refusals cannot be used to
            // test guesses one by one.
            context.closed.store(true, Ordering::Relaxed);
        }
        context.keep(record);
        Err(match code {
            HttpError::InternalError(Some(text)) => {
                HttpError::InternalError(Some(context.vault.redact(&text)))
            }
            other => other,
        })
    };
    if context.closed.load(Ordering::Relaxed) {
        return Err(HttpError::HttpRequestDenied);
    }
    let cap = context.client.config.max_requests_per_run;
    let previous = context.attempts.fetch_add(1, Ordering::Relaxed);
    if previous >= cap {
        if previous == cap {
            context.logs.note(&format!("[stephost] refused: the run made more than {cap} requests"));
        }
        return Err(HttpError::HttpRequestDenied);
    }
    let _in_flight = context.in_flight.acquire().await.map_err(|_| HttpError::HttpRequestDenied)?;

    // Where to.
    let Some(dest) = Destination::of(&parts.uri) else {
        return refuse(record, "the URL has no valid host".into(), HttpError::HttpRequestUriInvalid);
    };
    (record.scheme, record.host, record.port) = (dest.scheme.clone(), dest.host.clone(), dest.port);
    if parts.uri.host().is_some_and(|h| h.ends_with('.')) {
        return refuse(
            record,
            "host names ending in a dot are not allowed".into(),
            HttpError::HttpRequestUriInvalid,
        );
    }
    if let Some((_, port, _)) = context.client.config.resolve.iter().find(|(h, _, _)| *h == dest.host)
        && *port != dest.port
    {
        let reason = format!("{} is pinned for port {port} only", dest.host);
        return refuse(record, reason, HttpError::HttpRequestDenied);
    }

    // Policy: allowed hosts, and no internal address by IP unless named.
    if !context.policy.allows(&dest.scheme, &dest.host, dest.port) {
        let reason = format!(
            "{}://{}:{} is not in the step's allowed hosts or its apps' hosts",
            dest.scheme, dest.host, dest.port
        );
        return refuse(record, reason, HttpError::HttpRequestDenied);
    }
    if let Some(ip) = dest.ip
        && let Some(why) = forbidden_reason(ip)
        && !context.policy.names_exactly(&dest.scheme, &dest.host, dest.port)
    {
        let reason = format!("{ip} is {why}; only an allowed host naming it exactly may reach it");
        return refuse(record, reason, HttpError::DestinationIpProhibited);
    }

    // Secret swap: URL and headers now, the body as it streams.
    // The Host header always follows the checked URL; the length is the
    // client's to work out once secrets are swapped in.
    parts.headers.remove(http::header::HOST);
    parts.headers.remove(http::header::CONTENT_LENGTH);
    if context.redact_needles().is_some() {
        // Redaction must see the response as sent: no compression, no
        // slices that could each hold part of a secret.
        parts.headers.insert(http::header::ACCEPT_ENCODING, http::HeaderValue::from_static("identity"));
        parts.headers.remove(http::header::RANGE);
        parts.headers.remove(http::header::IF_RANGE);
    }
    let swap_needles = context.swap_needles();
    let mut swap = swap::Swap {
        vault: &context.vault,
        needles: swap_needles.as_ref(),
        dest: &dest,
        swapped: Vec::new(),
    };
    match swap.uri(&parts.uri).and_then(|uri| swap.headers(&mut parts.headers).map(|()| uri)) {
        Ok(uri) => parts.uri = uri,
        Err(reason) => return refuse(record, reason, HttpError::HttpRequestDenied),
    }
    record.secrets = swap.swapped;
    let body_report: rewrite::SharedReport = Arc::default();
    let bytes_out = Arc::new(AtomicU64::new(0));
    let counted_out = bytes_out.clone();
    let outgoing = BodyDataStream::new(body.0.take().expect("the body is taken once")).map(move |chunk| {
        chunk.inspect(|c| {
            counted_out.fetch_add(c.len() as u64, Ordering::Relaxed);
        })
    });
    let body_actions = swap::Actions::for_place(&context.vault, &dest, Some(&Placement::Body));
    let body: Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>> = match &swap_needles {
        None => Box::pin(outgoing.map(|r| r.map_err(|e| Box::new(e) as BoxError))),
        Some(needles) => {
            let limit = context.client.config.max_scanned_request_bytes;
            let rewriter = Rewriter::new(needles.clone(), body_actions.actions.clone(), limit);
            Box::pin(
                RewriteStream::new(outgoing, rewriter, body_report.clone())
                    .map(|r| r.map_err(|e| Box::new(e) as BoxError)),
            )
        }
    };

    let body = match RequestBody::gather(body).await {
        Ok(body) => body,
        Err(error) => {
            record.bytes_out = bytes_out.load(Ordering::Relaxed);
            let refused = body_report.lock().unwrap_or_else(|p| p.into_inner()).refused.take();
            return match refused {
                Some(reason) => refuse(record, reason, HttpError::HttpRequestDenied),
                None => {
                    refuse(record, format!("reading the request body: {error}"), HttpError::HttpProtocolError)
                }
            };
        }
    };

    // Kept to send again with a refreshed token if an OAuth app says 401.
    let retry = match &body {
        RequestBody::Whole(bytes) if context.refresher.is_some() => {
            Some((parts.method.clone(), parts.uri.clone(), parts.headers.clone(), bytes.clone()))
        }
        _ => None,
    };

    // Client: the SSRF guard resolves and checks the name; redirects are
    // handed back, never followed.
    record.allowed = true;
    let mut response = context.client.send(parts, body, options).await;
    if let (Ok(first), Some((method, uri, headers, bytes))) = (&response, retry)
        && first.status() == http::StatusCode::UNAUTHORIZED
        && let Some((old, new)) = context.refresh_after_401(&record.secrets).await
    {
        let swap_token = |text: &str| text.replace(&old, &new);
        let swap_bytes = |bytes: &[u8]| {
            aho_corasick::AhoCorasick::new([old.as_bytes()])
                .map(|m| m.replace_all_bytes(bytes, &[new.as_bytes()]))
                .unwrap_or_else(|_| bytes.to_vec())
        };
        let mut again = http::Request::builder().method(method).uri(swap_token(&uri.to_string()));
        for (name, value) in &headers {
            let value = value.to_str().map(swap_token).unwrap_or_default();
            again = again.header(name, value);
        }
        let bytes = Bytes::from(swap_bytes(&bytes));
        if let Ok(request) = again.body(()) {
            let (parts, ()) = request.into_parts();
            response = context.client.send(parts, RequestBody::Whole(bytes), options).await;
        }
    }
    let response = match response {
        Ok(response) => response,
        Err(failure) => {
            record.bytes_out = bytes_out.load(Ordering::Relaxed);
            let refused = body_report.lock().unwrap_or_else(|p| p.into_inner()).refused.take();
            if let Some(reason) = refused {
                record.allowed = false;
                return refuse(record, reason, HttpError::HttpRequestDenied);
            }
            record.allowed = !failure.blocked;
            return refuse(record, failure.message, failure.code);
        }
    };
    record.status = Some(response.status().as_u16());

    // Redaction: no real secret value reaches the guest.
    let mut out = http::Response::builder().status(response.status());
    let mut headers = response.headers().clone();
    let redact_needles = context.redact_needles();
    if redact_needles.is_some() {
        let encoding =
            headers.get(http::header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?").to_string());
        if let Some(encoding) = encoding.filter(|e| !e.eq_ignore_ascii_case("identity")) {
            record.allowed = false;
            let reason = format!("the response is encoded ({encoding}) and cannot be scanned for secrets");
            return refuse(record, reason, HttpError::HttpResponseContentCoding(Some(encoding)));
        }
        headers.remove(http::header::CONTENT_LENGTH);
    }
    swap::redact_headers(&context.vault, redact_needles.as_ref(), &mut headers);
    if let Some(h) = out.headers_mut() {
        *h = headers;
    }
    let incoming = client::limited_body(response, context.client.config.max_response_bytes);
    let incoming: Pin<Box<dyn Stream<Item = Result<Bytes, HttpError>> + Send>> = match &redact_needles {
        None => Box::pin(incoming),
        Some(needles) => {
            let rewriter =
                Rewriter::new(needles.clone(), swap::redaction_actions(&context.vault), usize::MAX);
            Box::pin(RewriteStream::new(incoming, rewriter, Arc::default()).map(|r| {
                r.map_err(|e| match e {
                    rewrite::RewriteError::Inner(e) => e,
                    rewrite::RewriteError::Refused(_) => HttpError::HttpProtocolError,
                })
            }))
        }
    };
    let finisher = Finisher {
        context: context.clone(),
        record: Some(record),
        started,
        bytes_out,
        body_actions,
        body_report,
        bytes_in: 0,
    };
    let body = StreamBody::new(Recorded { inner: incoming, finisher }.map(|r| r.map(Frame::data)));
    out.body(body.boxed_unsync()).map_err(|e| HttpError::InternalError(Some(e.to_string())))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A run's compiled needles: (swap, redaction).
type RunNeedles = (Option<Arc<rewrite::Needles>>, Option<Arc<rewrite::Needles>>);

/// Bodies up to this size are gathered and sent whole, with a
/// Content-Length: most API calls, and no chunked framing that would make
/// the server wait on a final empty chunk.
const WHOLE_BODY_BYTES: usize = 64 * 1024;

/// A request body, whole or streaming.
pub(crate) enum RequestBody {
    Whole(Bytes),
    Streaming(Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>),
}

impl RequestBody {
    /// Reads up to [`WHOLE_BODY_BYTES`]: if the body ends there it is sent
    /// whole, else streamed (what was read first, then the rest).
    async fn gather(
        mut body: Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>,
    ) -> Result<Self, BoxError> {
        let mut head: Vec<Bytes> = Vec::new();
        let mut size = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size += chunk.len();
            head.push(chunk);
            if size > WHOLE_BODY_BYTES {
                let head = futures::stream::iter(head.into_iter().map(Ok));
                return Ok(Self::Streaming(Box::pin(head.chain(body))));
            }
        }
        Ok(Self::Whole(match head.len() {
            0 => Bytes::new(),
            1 => head.remove(0),
            _ => Bytes::from(head.concat()),
        }))
    }
}

/// Writes a request's record once its response body is done or dropped,
/// with the bytes that went each way and the body's swapped secrets.
struct Finisher {
    context: Arc<EgressContext>,
    record: Option<EgressRecord>,
    started: Instant,
    bytes_out: Arc<AtomicU64>,
    body_actions: swap::Actions,
    body_report: rewrite::SharedReport,
    bytes_in: u64,
}

impl Drop for Finisher {
    fn drop(&mut self) {
        let Some(mut record) = self.record.take() else { return };
        record.bytes_out = self.bytes_out.load(Ordering::Relaxed);
        record.bytes_in = self.bytes_in;
        record.duration_ms = self.started.elapsed().as_millis() as u64;
        let report = self.body_report.lock().unwrap_or_else(|p| p.into_inner());
        self.body_actions.swapped(&report.hits, &mut record.secrets);
        if let Some(reason) = &report.refused {
            record.allowed = false;
            record.error = Some(reason.clone());
        }
        drop(report);
        self.context.keep(record);
    }
}

/// The response body on its way to the guest, counted.
struct Recorded<S> {
    inner: S,
    finisher: Finisher,
}

impl<S> Stream for Recorded<S>
where
    S: Stream<Item = Result<Bytes, HttpError>> + Unpin,
{
    type Item = Result<Bytes, HttpError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => self.finisher.bytes_in += chunk.len() as u64,
            Poll::Ready(Some(Err(e))) => {
                if let Some(record) = self.finisher.record.as_mut() {
                    record.error = Some(format!("reading the response: {e}"));
                }
            }
            _ => {}
        }
        polled
    }
}

/// The path with every query value masked: `/api?channel=***&token=***`.
fn mask_query(uri: &http::Uri) -> String {
    match uri.query() {
        None => uri.path().to_string(),
        Some(query) => {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) => format!("{name}=***"),
                    None => pair.to_string(),
                })
                .collect();
            format!("{}?{}", uri.path(), masked.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_masked_in_records() {
        let uri: http::Uri = "https://x.io/api/send?channel=C1&token=abc&flag".parse().unwrap();
        assert_eq!(mask_query(&uri), "/api/send?channel=***&token=***&flag");
    }

    #[test]
    fn destinations_are_read_like_the_client_reads_urls() {
        for (url, host) in [
            ("http://2130706433/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://[::ffff:169.254.169.254]/", "[::ffff:169.254.169.254]"),
            ("https://API.Slack.COM./x", "api.slack.com"),
        ] {
            let dest = Destination::of(&url.parse().unwrap()).unwrap();
            assert_eq!(dest.host, host, "{url}");
        }
    }
}
