//! Dispatch (the shared client: the SSRF guard resolves and checks the
//! name, redirects are handed back, never followed) and refresh-and-retry
//! (after a 401 from an OAuth app's host: refresh the token once, then the
//! swap stage again over the request as the step wrote it, and dispatch).

use super::context::EgressContext;
use super::head::Destination;
use super::swap::{self, Head, Outgoing, RawBody};
use super::{BodyStream, Refusal, RequestBody};
use bytes::Bytes;
use futures::StreamExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions};

/// Bodies up to this size are gathered and sent whole, with a
/// Content-Length: most API calls, and no chunked framing that would make
/// the server wait on a final empty chunk. Only whole bodies can be sent
/// again after a refresh.
pub(crate) const WHOLE_BODY_BYTES: usize = 64 * 1024;

/// Reads up to [`WHOLE_BODY_BYTES`] of the step's body: if it ends there it
/// is whole, else it streams (what was read first, then the rest).
pub(crate) async fn gather(mut body: BodyStream) -> Result<RawBody, Refusal> {
    let mut head: Vec<Bytes> = Vec::new();
    let mut size = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            Refusal::new(HttpError::HttpProtocolError, format!("reading the request body: {e}"))
        })?;
        size += chunk.len();
        head.push(chunk);
        if size > WHOLE_BODY_BYTES {
            let head = futures::stream::iter(head.into_iter().map(Ok));
            return Ok(RawBody::Streaming(Some(Box::pin(head.chain(body)))));
        }
    }
    Ok(RawBody::Whole(match head.len() {
        0 => Bytes::new(),
        1 => head.remove(0),
        _ => Bytes::from(head.concat()),
    }))
}

/// Dispatch: sends the swapped request and waits for the response head.
/// A streaming body refused part-way (it held a secret where none may go)
/// is a refusal, not a failure.
pub(crate) async fn dispatch(
    context: &EgressContext,
    outgoing: &mut Outgoing,
    options: Option<RequestOptions>,
) -> Result<reqwest::Response, Refusal> {
    let head = outgoing.head.clone();
    let body = std::mem::replace(&mut outgoing.body, RequestBody::Whole(Bytes::new()));
    context.client.send(head, body, options).await.map_err(|failure| {
        let refused = outgoing.body_report.lock().unwrap_or_else(|p| p.into_inner()).refused.take();
        match refused {
            Some(reason) => Refusal::new(HttpError::HttpRequestDenied, reason),
            None => Refusal { allowed: !failure.blocked, ..Refusal::new(failure.code, failure.message) },
        }
    })
}

/// Refresh-and-retry: a 401 to a request that carried an OAuth app's token
/// refreshes it (once per app and run) and sends the request again, swapped
/// afresh by the swap stage. A streamed body cannot be sent again: the 401
/// goes to the step.
pub(crate) async fn retry_after_401(
    context: &EgressContext,
    dest: &Destination,
    written: (&Head, &mut RawBody),
    outgoing: &mut Outgoing,
    first: reqwest::Response,
    options: Option<RequestOptions>,
) -> Result<reqwest::Response, Refusal> {
    let (head, body) = written;
    if first.status() != http::StatusCode::UNAUTHORIZED
        || !matches!(body, RawBody::Whole(_))
        || !context.refresh_after_401(&outgoing.secrets).await
    {
        return Ok(first);
    }
    let limit = context.client.config.max_scanned_request_bytes;
    *outgoing = swap::swap(&context.vault, context.swap_needles(), dest, head, body, limit)?;
    dispatch(context, outgoing, options).await
}
