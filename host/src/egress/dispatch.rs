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

/// Reads up to `whole` bytes of the step's body ([`WHOLE_BODY_BYTES`], or
/// in a run holding secrets the whole scanning limit: nothing of a body
/// leaves before all of it is checked, so where a refused value stands
/// cannot be learnt from how much went out): if it ends there it is whole,
/// else it streams (what was read first, then the rest).
pub(crate) async fn gather(mut body: BodyStream, whole: usize) -> Result<RawBody, Refusal> {
    let mut head: Vec<Bytes> = Vec::new();
    let mut size = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            Refusal::new(HttpError::HttpProtocolError, format!("reading the request body: {e}"))
        })?;
        size += chunk.len();
        head.push(chunk);
        if size > whole {
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
    // Sent once: a retry swaps the request as the step wrote it afresh.
    let head = outgoing.head.take();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(count: usize) -> BodyStream {
        Box::pin(futures::stream::iter((0..count).map(|_| Ok(Bytes::from(vec![b'x'; 1024])))))
    }

    #[tokio::test]
    async fn small_bodies_are_gathered_whole_and_large_ones_stream_in_full() {
        let Ok(RawBody::Whole(whole)) = gather(chunks(3), WHOLE_BODY_BYTES).await else {
            panic!("3 KiB is sent whole")
        };
        assert_eq!(whole.len(), 3 << 10);
        let Ok(RawBody::Whole(_)) = gather(chunks(100), 1 << 20).await else {
            panic!("under the limit: whole")
        };
        let Ok(RawBody::Streaming(Some(stream))) = gather(chunks(100), WHOLE_BODY_BYTES).await else {
            panic!("100 KiB streams")
        };
        let sent: Vec<_> = stream.collect().await;
        assert_eq!(sent.iter().map(|c| c.as_ref().unwrap().len()).sum::<usize>(), 100 << 10);
    }

    #[tokio::test]
    async fn only_a_401_to_a_whole_request_that_carried_an_oauth_token_refreshes_and_is_sent_again() {
        use crate::egress::context::{CountingRefresher, test_context};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        // slack.com is pinned to a closed port: a resend fails to connect.
        let config = crate::egress::EgressConfig {
            resolve: vec![("slack.com".into(), 443, "127.0.0.1:9".parse().unwrap())],
            ..Default::default()
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let refresher = crate::egress::Refresher(Arc::new(CountingRefresher(calls.clone())));
        let dest = Destination::of(&"https://slack.com/".parse().unwrap()).unwrap();
        let request = http::Request::builder().uri("https://slack.com/").body(()).unwrap();
        let head = Head::prepared(request.into_parts().0, false);
        for (status, streamed, carried, resent) in [
            (200, false, "slack.oauth_access_token", false),
            (401, true, "slack.oauth_access_token", false),
            (401, false, "env.API_KEY", false),
            (401, false, "slack.oauth_access_token", true),
        ] {
            let context =
                test_context(&[], Default::default(), &config).with_refresher(Some(refresher.clone()));
            let mut whole = RawBody::Whole(Bytes::new());
            let mut outgoing =
                swap::swap(&context.vault, None, &dest, &head, &mut whole, usize::MAX).ok().unwrap();
            outgoing.secrets = vec![carried.into()];
            let mut written = if streamed { RawBody::Streaming(None) } else { whole };
            let before = calls.load(Ordering::SeqCst);
            let first = reqwest::Response::from(http::Response::builder().status(status).body("no").unwrap());
            let answer =
                retry_after_401(&context, &dest, (&head, &mut written), &mut outgoing, first, None).await;
            assert_eq!(
                calls.load(Ordering::SeqCst) - before,
                usize::from(resent),
                "{status} {streamed} {carried}"
            );
            match answer {
                Ok(first) => assert!(!resent && first.status().as_u16() == status),
                Err(refusal) => assert!(resent && refusal.allowed, "the resend went out: {}", refusal.reason),
            }
        }
    }
}
