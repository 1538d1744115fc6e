//! The swap stage: every placeholder of the run, and every real secret
//! value, is looked for in the URL, the headers and the body. Where the
//! secret's binding permits that destination and place, a placeholder
//! becomes the real value; anywhere else the whole request is refused.
//!
//! The stage reads the request as the step wrote it and leaves it as it
//! was, so a retry after an OAuth refresh runs the same stage again with the
//! new value: there is no second, unchecked swap.

use super::head::Destination;
use super::rewrite::{Action, Needles, RewriteStream, Rewriter, Rule, SharedReport};
use super::{BodyStream, BoxError, Refusal, RequestBody};
use crate::secrets::{Placement, Vault};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, Uri};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime_wasi_http::Error as HttpError;

/// How a refusal of a real secret value (not a placeholder) begins: the
/// step holds the value itself, and the run's egress closes.
pub(crate) const REAL_VALUE_REFUSAL: &str = "the real value of secret";

/// What the swap looks for in a run's requests: for secret `i` of the vault,
/// needle `2i` is its placeholder and `2i + 1` its real value.
pub(crate) fn swap_needles(vault: &Vault) -> Option<Arc<Needles>> {
    let patterns: Vec<Vec<u8>> = vault
        .secrets()
        .iter()
        .flat_map(|s| [s.placeholder.clone().into_bytes(), s.value().into_bytes()])
        .collect();
    Needles::new(&patterns)
}

/// The method, URL and headers of a request.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
}

impl Head {
    /// The head, leaving an empty `GET /` in its place.
    pub(crate) fn take(&mut self) -> Self {
        std::mem::replace(
            self,
            Self { method: Method::GET, uri: Uri::from_static("/"), headers: HeaderMap::new() },
        )
    }

    /// The head as the step wrote it, made ready to send: the Host header
    /// always follows the checked URL and the length is the client's to
    /// work out once secrets are in. In a run holding secrets the response
    /// must come back as sent, to be redacted: no compression, no ranges
    /// that could each hold part of a secret.
    pub(crate) fn prepared(parts: http::request::Parts, holds_secrets: bool) -> Self {
        let mut headers = parts.headers;
        headers.remove(http::header::HOST);
        headers.remove(http::header::CONTENT_LENGTH);
        if holds_secrets {
            headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            headers.remove(http::header::RANGE);
            headers.remove(http::header::IF_RANGE);
        }
        Self { method: parts.method, uri: parts.uri, headers }
    }
}

/// A request body as the step wrote it: whole (kept, so it can be swapped
/// again for a retry), or streaming (swapped as it passes, once).
pub(crate) enum RawBody {
    Whole(Bytes),
    Streaming(Option<BodyStream>),
}

/// A request ready for the client: secrets swapped in.
pub(crate) struct Outgoing {
    pub(crate) head: Head,
    pub(crate) body: RequestBody,
    /// The secrets swapped in so far, as `app.key` / `env.NAME` (a
    /// streaming body adds its own as it passes: see `body_report`).
    pub(crate) secrets: Vec<String>,
    /// Whether the request may carry a secret: one was swapped in, or a
    /// streaming body of a run holding secrets may swap one in.
    pub(crate) carries_secret: bool,
    /// What a streaming body's swap did, read when the request is recorded.
    pub(crate) body_report: SharedReport,
    /// The labels behind a streaming body's needles.
    pub(crate) body_labels: Vec<String>,
    /// Body bytes that went out.
    pub(crate) bytes_out: Arc<AtomicU64>,
}

/// The swap stage, over a request as the step wrote it.
pub(crate) fn swap(
    vault: &Vault,
    needles: Option<Arc<Needles>>,
    dest: &Destination,
    head: &Head,
    body: &mut RawBody,
    scan_limit: usize,
) -> Result<Outgoing, Refusal> {
    let refused = |reason: String| Refusal::new(HttpError::HttpRequestDenied, reason);
    let mut swap = Swap { vault, needles: needles.as_ref(), dest, swapped: Vec::new() };
    let mut out_head = head.clone();
    out_head.uri = swap.uri(&head.uri).map_err(refused)?;
    swap.headers(&mut out_head.headers).map_err(refused)?;
    let bytes_out = Arc::new(AtomicU64::new(0));
    let body_report = SharedReport::default();
    let mut body_labels = Vec::new();
    let mut carries_secret = !swap.swapped.is_empty();
    let body = match body {
        RawBody::Whole(bytes) => {
            let swapped = swap.value(Some(&Placement::Body), bytes).map_err(refused)?;
            bytes_out.store(swapped.len() as u64, Ordering::Relaxed);
            RequestBody::Whole(Bytes::from(swapped))
        }
        RawBody::Streaming(stream) => {
            let stream = stream.take().ok_or_else(|| refused("the request body was already sent".into()))?;
            let counted = bytes_out.clone();
            let stream = stream.map(move |chunk| {
                if let Ok(c) = &chunk {
                    counted.fetch_add(c.len() as u64, Ordering::Relaxed);
                }
                chunk
            });
            RequestBody::Streaming(match &needles {
                None => Box::pin(stream),
                Some(needles) => {
                    carries_secret = true;
                    let actions = Actions::for_place(vault, dest, Some(&Placement::Body));
                    body_labels = actions.labels;
                    let rule = Rule::Swap { needles: needles.clone(), actions: actions.actions.into() };
                    let rewritten =
                        RewriteStream::new(stream, Rewriter::new(rule, scan_limit), body_report.clone());
                    Box::pin(rewritten.map(|r| r.map_err(|e| -> BoxError { e.to_string().into() })))
                }
            })
        }
    };
    carries_secret |= !swap.swapped.is_empty();
    Ok(Outgoing {
        head: out_head,
        body,
        secrets: swap.swapped,
        carries_secret,
        body_report,
        body_labels,
        bytes_out,
    })
}

/// The actions for secrets appearing at `place` of a request to `dest`
/// (`None`: a place no secret may ever appear, such as the path), in
/// [`swap_needles`] order, with the label of the secret behind each.
pub(crate) struct Actions {
    pub(crate) actions: Vec<Action>,
    pub(crate) labels: Vec<String>,
}

impl Actions {
    pub(crate) fn for_place(vault: &Vault, dest: &Destination, place: Option<&Placement>) -> Self {
        let mut out = Actions { actions: Vec::new(), labels: Vec::new() };
        for secret in vault.secrets() {
            let permitted =
                place.is_some_and(|p| secret.binding.permits(&dest.scheme, &dest.host, dest.port, p));
            if permitted {
                let real = Action::Replace(secret.value().into_bytes());
                out.actions.extend([real.clone(), real]);
            } else {
                let whither = format!(
                    "{} may not be sent to {}://{}:{} in {}",
                    secret.label,
                    dest.scheme,
                    dest.host,
                    dest.port,
                    place.map_or("the URL path".to_string(), |p| p.to_string())
                );
                out.actions.extend([
                    Action::Refuse(format!("secret {whither}")),
                    Action::Refuse(format!("{REAL_VALUE_REFUSAL} {whither}")),
                ]);
            }
            out.labels.extend([secret.label.clone(), secret.label.clone()]);
        }
        out
    }

    /// The labels of the placeholders among `hits` (a real value passing
    /// through where it may is not a swap).
    pub(crate) fn swapped(labels: &[String], hits: &[usize], into: &mut Vec<String>) {
        for &hit in hits.iter().filter(|hit| *hit % 2 == 0) {
            if !into.contains(&labels[hit]) {
                into.push(labels[hit].clone());
            }
        }
    }
}

/// Swap state of one request: the run's needles and where to note swaps.
struct Swap<'a> {
    vault: &'a Vault,
    needles: Option<&'a Arc<Needles>>,
    dest: &'a Destination,
    swapped: Vec<String>,
}

impl Swap<'_> {
    /// Applies the swap for `place` to one value.
    fn value(&mut self, place: Option<&Placement>, value: &[u8]) -> Result<Vec<u8>, String> {
        let Some(needles) = self.needles.filter(|n| n.found_in(value)) else { return Ok(value.to_vec()) };
        let actions = Actions::for_place(self.vault, self.dest, place);
        let rule = Rule::Swap { needles: needles.clone(), actions: actions.actions.into() };
        let (out, hits) = Rewriter::new(rule, usize::MAX).rewrite_all(value)?;
        Actions::swapped(&actions.labels, &hits, &mut self.swapped);
        Ok(out)
    }

    /// Swaps secrets in every header value (refusing any not permitted
    /// there), inside HTTP Basic credentials too.
    fn headers(&mut self, headers: &mut HeaderMap) -> Result<(), String> {
        for (name, value) in headers.iter_mut() {
            let place = Placement::Header(name.as_str().to_string());
            if name == http::header::AUTHORIZATION
                && let Some(rewritten) = self.basic(&place, value.as_bytes())?
            {
                *value = HeaderValue::from_bytes(&rewritten)
                    .map_err(|_| "invalid Basic credentials".to_string())?;
                continue;
            }
            let rewritten = self.value(Some(&place), value.as_bytes())?;
            if rewritten != value.as_bytes() {
                *value = HeaderValue::from_bytes(&rewritten)
                    .map_err(|_| format!("header `{name}` is not valid once its secret is swapped in"))?;
            }
        }
        Ok(())
    }

    /// `Basic base64(user:password)` with secrets swapped inside, or `None`
    /// if the value is not Basic credentials holding a secret. The vault
    /// remembers what was sent (whole, and the credentials alone), so an
    /// API echoing it back hands the step what it wrote.
    fn basic(&mut self, place: &Placement, value: &[u8]) -> Result<Option<Vec<u8>>, String> {
        use base64::Engine;
        let Some((scheme, encoded)) =
            value.split_at_checked(6).filter(|(s, _)| s.eq_ignore_ascii_case(b"basic "))
        else {
            return Ok(None);
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii()) else {
            return Ok(None);
        };
        if !self.needles.is_some_and(|n| n.found_in(&decoded)) {
            return Ok(None);
        }
        let swapped = self.value(Some(place), &decoded)?;
        let credentials = base64::engine::general_purpose::STANDARD.encode(swapped);
        let sent = [scheme, credentials.as_bytes()].concat();
        self.vault.remember_sent(&sent, value);
        self.vault.remember_sent(credentials.as_bytes(), encoded.trim_ascii());
        Ok(Some(sent))
    }

    /// Swaps secrets in query parameter values; a secret in the path or in
    /// a parameter name is refused.
    fn uri(&mut self, uri: &Uri) -> Result<Uri, String> {
        let Some(needles) = self.needles else { return Ok(uri.clone()) };
        let whole = uri.path_and_query().map_or("", |pq| pq.as_str());
        if !needles.found_in(whole.as_bytes()) {
            return Ok(uri.clone());
        }
        let path = self.value(None, uri.path().as_bytes())?;
        let mut pairs = Vec::new();
        for pair in uri.query().unwrap_or_default().split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            self.value(None, name.as_bytes())?;
            let value = self.value(Some(&Placement::Query(name.to_string())), value.as_bytes())?;
            let value = String::from_utf8(value).map_err(|_| "a query value is not UTF-8".to_string())?;
            pairs.push(if pair.contains('=') { format!("{name}={value}") } else { name.to_string() });
        }
        let path = String::from_utf8(path).map_err(|_| "the path is not UTF-8".to_string())?;
        let invalid = || "the URL is not valid once swapped".to_string();
        let mut parts = uri.clone().into_parts();
        let rebuilt = match uri.query() {
            Some(_) => format!("{path}?{}", pairs.join("&")),
            None => path,
        };
        parts.path_and_query = Some(rebuilt.parse().map_err(|_| invalid())?);
        Uri::from_parts(parts).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::{HostPattern, HostPolicy};
    use crate::secrets::Binding;

    const REAL: &str = "xoxb-real-0123456789";

    fn vault() -> (Vault, String) {
        let mut vault = Vault::default();
        let hosts = Arc::new(HostPolicy::new(vec![HostPattern::parse("https://slack.com").unwrap()]));
        let binding = Binding { hosts, placements: vec![Placement::Header("authorization".into())] };
        let placeholder = vault.seal("slack.token", REAL, binding);
        (vault, placeholder)
    }

    fn swapped(vault: &Vault, url: &str, authorization: &str, body: &str) -> Result<Outgoing, String> {
        let request =
            http::Request::builder().uri(url).header("authorization", authorization).body(()).unwrap();
        let head = Head::prepared(request.into_parts().0, true);
        let dest = Destination::of(&head.uri).unwrap();
        let mut body = RawBody::Whole(Bytes::from(body.to_string()));
        swap(vault, swap_needles(vault), &dest, &head, &mut body, usize::MAX).map_err(|r| r.reason)
    }

    #[test]
    fn a_placeholder_becomes_the_secret_only_where_its_binding_permits() {
        let (vault, placeholder) = vault();
        let out = swapped(&vault, "https://slack.com/api", &format!("Bearer {placeholder}"), "").unwrap();
        assert_eq!(out.head.headers["authorization"], format!("Bearer {REAL}").as_str());
        assert_eq!(out.secrets, ["slack.token"]);
        assert!(out.carries_secret);
        let other = swapped(&vault, "https://evil.example/", &format!("Bearer {placeholder}"), "");
        assert!(
            other
                .err()
                .unwrap()
                .starts_with("secret slack.token may not be sent to https://evil.example:443")
        );
        let body = swapped(&vault, "https://slack.com/api", "none", &placeholder);
        assert!(body.err().unwrap().ends_with("in body"));
        let path = swapped(&vault, &format!("https://slack.com/{placeholder}"), "none", "");
        assert!(path.err().unwrap().ends_with("in the URL path"));
    }

    #[test]
    fn the_swap_leaves_the_original_as_it_was_for_a_retry() {
        let (vault, placeholder) = vault();
        let request = http::Request::builder()
            .uri("https://slack.com/api")
            .header("authorization", format!("Bearer {placeholder}"))
            .body(())
            .unwrap();
        let head = Head::prepared(request.into_parts().0, true);
        let dest = Destination::of(&head.uri).unwrap();
        let mut body = RawBody::Whole(Bytes::new());
        assert!(swap(&vault, swap_needles(&vault), &dest, &head, &mut body, usize::MAX).is_ok());
        vault.replace_value("slack.token", "xoxb-new-9876543210");
        let Ok(again) = swap(&vault, swap_needles(&vault), &dest, &head, &mut body, usize::MAX) else {
            panic!("the retry's swap is refused")
        };
        assert_eq!(again.head.headers["authorization"], "Bearer xoxb-new-9876543210");
    }

    #[test]
    fn basic_credentials_are_swapped_and_what_was_sent_is_remembered_for_redaction() {
        use base64::Engine;
        let (vault, placeholder) = vault();
        let engine = base64::engine::general_purpose::STANDARD;
        let written = format!("Basic {}", engine.encode(format!("user:{placeholder}")));
        let out = swapped(&vault, "https://slack.com/api", &written, "").unwrap();
        let sent = format!("Basic {}", engine.encode(format!("user:{REAL}")));
        assert_eq!(out.head.headers["authorization"], sent.as_str());
        assert_eq!(vault.redact(&format!("echo: {sent}")), format!("echo: {written}"));
        let credentials = sent.trim_start_matches("Basic ");
        assert_eq!(vault.redact(credentials), written.trim_start_matches("Basic "));
    }

    #[test]
    fn the_prepared_head_asks_for_an_unencoded_whole_response() {
        let request = http::Request::builder()
            .uri("https://x.io/")
            .header("accept-encoding", "gzip")
            .header("range", "bytes=0-3")
            .header("host", "evil.example")
            .body(())
            .unwrap();
        let head = Head::prepared(request.into_parts().0, true);
        assert_eq!(head.headers["accept-encoding"], "identity");
        assert!(head.headers.get("range").is_none() && head.headers.get("host").is_none());
    }
}
