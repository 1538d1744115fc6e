//! The one way out of the sandbox. Every `wasi:http` request a step makes
//! reaches [`EgressHook::send_request`] (wasmtime-wasi-http is built without
//! its default sender, so there is no other path) and runs one straight
//! line of stages, each a small function that returns `Result<_, Refusal>`
//! (the wasi:http error code the step gets, and the reason kept):
//!
//! ```text
//! admit ─► destination ─► policy ─► swap ─► dispatch ─► refresh-and-retry ─► redact ─► record
//! caps,    where to; no    allowed   place-   client:    after a 401: the      every    one record
//! closed   real value in   hosts,    holders  SSRF guard token refreshed       form of  per request,
//! run      method, host,   pins,     → real   resolves,  once, then swap       every    every field
//!          path, names     internal  where    no         again over what the   secret   redacted,
//!          (before DNS)    IPs       bound    redirects  step wrote            replaced to the audit
//! ```
//!
//! (`head.rs`: admit, destination, policy; `swap.rs`; `dispatch.rs`:
//! dispatch, refresh-and-retry; `redact.rs`; `context.rs`: the record.)

mod client;
mod context;
mod dispatch;
mod head;
mod redact;
mod refresh;
mod rewrite;
mod ssrf;
mod swap;

pub use crate::audit::EgressRecord;
pub use crate::policy::{HostPattern, HostPolicy, PatternError, default_port, normalize_host};
pub(crate) use client::EgressClient;
pub use client::EgressConfig;
pub(crate) use context::EgressContext;
pub use refresh::{Refresher, TokenRefresher};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyDataStream, BodyExt, StreamBody};
use hyper::body::Frame;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;
use swap::Head;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The per-run hook wasi:http calls for every outgoing request.
pub(crate) struct EgressHook {
    context: Arc<EgressContext>,
}

impl EgressHook {
    pub(crate) fn new(context: Arc<EgressContext>) -> Self {
        Self { context }
    }

    /// Takes the host's reason for the request last refused (redacted, as
    /// the text a wasi:http error code carries is): what the step's author
    /// sees in the run's record, for a client that drops error codes.
    pub(crate) fn take_last_refusal(&self) -> Option<String> {
        self.context.last_refusal.lock().unwrap_or_else(|p| p.into_inner()).take()
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

/// Why a stage stopped a request.
pub(crate) struct Refusal {
    /// What the step gets.
    pub(crate) code: HttpError,
    /// What the record says (redacted when kept).
    pub(crate) reason: String,
    /// The host let the request out and it failed on the way (a refused
    /// connection), rather than refusing it.
    pub(crate) allowed: bool,
    /// Whether a record is kept (the caps' refusals are not).
    pub(crate) recorded: bool,
}

impl Refusal {
    pub(crate) fn new(code: HttpError, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into(), allowed: false, recorded: true }
    }

    /// A refusal the step is told of (with `reason`) but no record is kept of.
    fn unrecorded(code: HttpError, reason: impl Into<String>) -> Self {
        Self { recorded: false, ..Self::new(code, reason) }
    }
}

/// A request body on its way out.
pub(crate) type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body, whole or streaming, as the client sends it.
pub(crate) enum RequestBody {
    Whole(Bytes),
    Streaming(BodyStream),
}

/// The straight line, for one request: the stages in order, then the
/// record (kept at once for a refusal, when the response body is done
/// otherwise).
pub(crate) async fn send(
    context: Arc<EgressContext>,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, HttpError> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let mut unsent = Unsent(Some(body));
    let mut record =
        EgressRecord { method: parts.method.to_string(), path: mask_query(&parts.uri), ..Default::default() };
    let context_ref = &context;
    let stages = async {
        let _slot = head::admit(context_ref).await?;
        let dest = head::destination(&context.tripwire(), &parts, &mut record)?;
        head::policy(context_ref, &dest)?;
        let head = Head::prepared(parts, !context.vault.is_empty());
        let stream = BodyDataStream::new(unsent.0.take().expect("the body is taken once"));
        let limit = context.client.config.max_scanned_request_bytes;
        let whole = if context.vault.is_empty() { dispatch::WHOLE_BODY_BYTES } else { limit };
        let stream = Box::pin(stream.map(|r| r.map_err(|e| Box::new(e) as BoxError)));
        let mut body = dispatch::gather(stream, whole).await?;
        let mut outgoing =
            swap::swap(&context.vault, context.swap_needles(), &dest, &head, &mut body, limit)?;
        record.secrets.clone_from(&outgoing.secrets);
        let response = dispatch::dispatch(context_ref, &mut outgoing, options).await?;
        let response = dispatch::retry_after_401(
            context_ref,
            &dest,
            (&head, &mut body),
            &mut outgoing,
            response,
            options,
        )
        .await?;
        record.status = Some(response.status().as_u16());
        let redacted = redact::redact(context_ref, outgoing.carries_secret, response).await?;
        Ok::<_, Refusal>((redacted, outgoing))
    };
    match stages.await {
        Ok(((status, headers, body), outgoing)) => {
            record.allowed = true;
            let finisher =
                Finisher { context: context.clone(), record: Some(record), started, outgoing, bytes_in: 0 };
            let body = StreamBody::new(Recorded { inner: body, finisher }.map(|r| r.map(Frame::data)));
            let mut response = http::Response::builder().status(status);
            if let Some(h) = response.headers_mut() {
                *h = headers;
            }
            response.body(body.boxed_unsync()).map_err(|e| HttpError::InternalError(Some(e.to_string())))
        }
        Err(refusal) => Err(refuse(&context, record, refusal, started)),
    }
}

/// Keeps the record of a refused or failed request; a real value where none
/// may go closes the run's egress, so refusals cannot be used to test
/// guesses one by one.
fn refuse(context: &EgressContext, record: EgressRecord, refusal: Refusal, started: Instant) -> HttpError {
    let reason = context.vault.redact(&refusal.reason);
    let code = refuse_and_record(context, record, refusal, started);
    *context.last_refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(step_text(&reason, &code));
    code
}

/// What the step is told of a refusal: the redacted reason and the error
/// code's name, e.g. `… is not in the step's allowed hosts or its apps'
/// hosts (HttpRequestDenied)`.
fn step_text(reason: &str, code: &HttpError) -> String {
    let debug = format!("{code:?}");
    // `Name(…)` or `Name { … }`: the variant's name alone.
    let name = debug.split(['(', ' ', '{']).next().unwrap_or_default();
    if reason.is_empty() { name.to_string() } else { format!("{reason} ({name})") }
}

/// [`refuse`] before the step's copy of the error text is kept.
fn refuse_and_record(
    context: &EgressContext,
    mut record: EgressRecord,
    refusal: Refusal,
    started: Instant,
) -> HttpError {
    if !refusal.recorded {
        return refusal.code;
    }
    if refusal.reason.starts_with(swap::REAL_VALUE_REFUSAL) {
        context.closed.store(true, Ordering::Relaxed);
    }
    record.allowed = refusal.allowed;
    record.error = Some(refusal.reason);
    record.duration_ms = started.elapsed().as_millis() as u64;
    context.keep(record);
    // Any text the step gets back is redacted: an API's own header values
    // can hold a secret (`Content-Encoding: x-<token>`).
    match refusal.code {
        HttpError::InternalError(Some(text)) => HttpError::InternalError(Some(context.vault.redact(&text))),
        HttpError::HttpResponseContentCoding(Some(text)) => {
            HttpError::HttpResponseContentCoding(Some(context.vault.redact(&text)))
        }
        other => other,
    }
}

/// The record stage for a request that went out: writes its record once
/// its response body is done or dropped, with the bytes that went each way
/// and the secrets a streaming body swapped in.
struct Finisher {
    context: Arc<EgressContext>,
    record: Option<EgressRecord>,
    started: Instant,
    outgoing: swap::Outgoing,
    bytes_in: u64,
}

impl Drop for Finisher {
    fn drop(&mut self) {
        let Some(mut record) = self.record.take() else { return };
        record.bytes_out = self.outgoing.bytes_out.load(Ordering::Relaxed);
        record.bytes_in = self.bytes_in;
        record.duration_ms = self.started.elapsed().as_millis() as u64;
        let report = self.outgoing.body_report.lock().unwrap_or_else(|p| p.into_inner());
        swap::Actions::swapped(&self.outgoing.body_labels, &report.hits, &mut record.secrets);
        if let Some(reason) = &report.refused {
            record.allowed = false;
            record.error = Some(reason.clone());
            if reason.starts_with(swap::REAL_VALUE_REFUSAL) {
                self.context.closed.store(true, Ordering::Relaxed);
            }
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
    fn the_step_is_told_the_reason_and_the_error_codes_name() {
        let denied = step_text("https://x.io:443 is not allowed", &HttpError::HttpRequestDenied);
        assert_eq!(denied, "https://x.io:443 is not allowed (HttpRequestDenied)");
        let coding = HttpError::HttpResponseContentCoding(Some("x-y".into()));
        assert_eq!(step_text("encoded", &coding), "encoded (HttpResponseContentCoding)");
        assert_eq!(step_text("", &HttpError::HttpRequestDenied), "HttpRequestDenied");
    }

    #[test]
    fn query_values_are_masked_in_records() {
        let uri: http::Uri = "https://x.io/api/send?channel=C1&token=abc&flag".parse().unwrap();
        assert_eq!(mask_query(&uri), "/api/send?channel=***&token=***&flag");
    }
}
