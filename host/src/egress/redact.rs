//! The redact stage: no real secret value reaches the step through a
//! response. In a run holding secrets, every form of every real value (and
//! every value the host derived from one) is replaced in header names, header
//! values and the streamed body; a response the host cannot scan (a content
//! or transfer coding, or a body that starts with a compression format's
//! signature after a request that carried a secret) is refused.
//!
//! Formats without a signature (raw deflate, brotli) cannot be recognised:
//! redaction is defence in depth, the per-app host binding is the guarantee.

use super::Refusal;
use super::context::EgressContext;
use super::rewrite::{RewriteError, RewriteStream, Rewriter, Rule};
use crate::secrets::Redaction;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::pin::Pin;
use wasmtime_wasi_http::Error as HttpError;

/// A response body on its way to the step.
pub(crate) type ResponseStream = Pin<Box<dyn Stream<Item = Result<Bytes, HttpError>> + Send>>;

/// The longest signature looked for.
const SIGNATURE_BYTES: usize = 10;

/// The redact stage: the response's status, redacted headers and body.
pub(crate) async fn redact(
    context: &EgressContext,
    carried_secret: bool,
    response: reqwest::Response,
) -> Result<(http::StatusCode, HeaderMap, ResponseStream), Refusal> {
    let status = response.status();
    let mut headers = response.headers().clone();
    let scanning = !context.vault.is_empty();
    if scanning {
        unscannable_coding(&headers)?;
        // Redaction may change the body's length.
        headers.remove(http::header::CONTENT_LENGTH);
    }
    let redaction = context.vault.redaction();
    let headers = redact_headers(&redaction, headers);
    let mut body: ResponseStream =
        Box::pin(super::client::limited_body(response, context.client.config.max_response_bytes));
    if carried_secret {
        body = refuse_compressed(body).await?;
    }
    if scanning && !redaction.is_empty() {
        let rewritten =
            RewriteStream::new(body, Rewriter::new(Rule::Redact(redaction), usize::MAX), Default::default());
        body = Box::pin(rewritten.map(|r| {
            r.map_err(|e| match e {
                RewriteError::Inner(e) => e,
                RewriteError::Refused(_) => HttpError::HttpProtocolError,
            })
        }));
    }
    Ok((status, headers, body))
}

/// Refuses a response whose content or transfer codings would hide a
/// secret from the scan: anything but `identity` (and `chunked`, which the
/// client decodes), several codings listed, or several headers.
fn unscannable_coding(headers: &HeaderMap) -> Result<(), Refusal> {
    for (name, allowed) in [
        (http::header::CONTENT_ENCODING, &["identity"][..]),
        (http::header::TRANSFER_ENCODING, &["identity", "chunked"][..]),
    ] {
        let listed: Vec<String> = headers
            .get_all(&name)
            .iter()
            .flat_map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|c| !c.is_empty())
            .collect();
        let odd = listed.iter().any(|c| !allowed.iter().any(|a| c.eq_ignore_ascii_case(a)));
        if odd || (name == http::header::CONTENT_ENCODING && listed.len() > 1) {
            let codings = listed.join(", ");
            let reason =
                format!("the response is encoded ({name}: {codings}) and cannot be scanned for secrets");
            return Err(Refusal::new(HttpError::HttpResponseContentCoding(Some(codings)), reason));
        }
    }
    Ok(())
}

/// Every header name and value with every form of a secret replaced (a
/// name that is no longer a valid name once redacted becomes
/// `x-stephost-redacted`).
fn redact_headers(redaction: &Redaction, headers: HeaderMap) -> HeaderMap {
    let holds = |bytes: &[u8]| redaction.found_in(bytes);
    if redaction.is_empty()
        || !headers.iter().any(|(n, v)| holds(n.as_str().as_bytes()) || holds(v.as_bytes()))
    {
        return headers;
    }
    let mut out = HeaderMap::with_capacity(headers.len());
    let mut name = None;
    for (key, value) in headers {
        if let Some(key) = key {
            name = Some(match redaction.found_in(key.as_str().as_bytes()) {
                false => key,
                true => HeaderName::from_bytes(&redaction.redact_bytes(key.as_str().as_bytes()))
                    .unwrap_or(HeaderName::from_static("x-stephost-redacted")),
            });
        }
        let value = match redaction.found_in(value.as_bytes()) {
            false => value,
            true => HeaderValue::from_bytes(&redaction.redact_bytes(value.as_bytes()))
                .unwrap_or(HeaderValue::from_static("[redacted]")),
        };
        if let Some(name) = &name {
            out.append(name.clone(), value);
        }
    }
    out
}

/// Reads the first bytes of the body (only as many as a signature could
/// still need: a stream that starts `data:` is passed on at once) and refuses
/// it if they are a compression format's signature; else the body as it was.
async fn refuse_compressed(mut body: ResponseStream) -> Result<ResponseStream, Refusal> {
    let mut first: Vec<Bytes> = Vec::new();
    let mut start: Vec<u8> = Vec::new();
    let mut failed = None;
    loop {
        match signature(&start) {
            Signature::Found(format) => {
                let reason = format!(
                    "the response body is {format}-compressed without saying so and cannot be scanned for secrets"
                );
                return Err(Refusal::new(HttpError::HttpResponseContentCoding(Some(format.into())), reason));
            }
            Signature::None => break,
            Signature::NeedMore => {}
        }
        match body.next().await {
            Some(Ok(chunk)) => {
                start.extend(chunk.iter().take(SIGNATURE_BYTES));
                first.push(chunk);
            }
            Some(Err(e)) => {
                failed = Some(e);
                break;
            }
            None => break,
        }
    }
    let read = futures::stream::iter(first.into_iter().map(Ok));
    Ok(match failed {
        Some(e) => Box::pin(read.chain(futures::stream::once(async { Err(e) }))),
        None => Box::pin(read.chain(body)),
    })
}

/// One byte of a signature.
#[derive(Clone, Copy)]
enum Expect {
    Byte(u8),
    /// A block size: `1` to `9`.
    Digit,
    /// Not printable ASCII (zlib's `x^` then binary, unlike `x^2`).
    Binary,
}

impl Expect {
    fn accepts(self, byte: u8) -> bool {
        match self {
            Expect::Byte(b) => byte == b,
            Expect::Digit => (b'1'..=b'9').contains(&byte),
            Expect::Binary => !(0x20..0x7f).contains(&byte),
        }
    }
}

/// Compression and archive formats by the bytes they start with.
const SIGNATURES: &[(&str, &[Expect])] = {
    use Expect::{Binary as X, Byte as B, Digit as D};
    &[
        ("gzip", &[B(0x1f), B(0x8b)]),
        ("zstd", &[B(0x28), B(0xb5), B(0x2f), B(0xfd)]),
        ("xz", &[B(0xfd), B(b'7'), B(b'z'), B(b'X'), B(b'Z'), B(0x00)]),
        ("bzip2", &[B(b'B'), B(b'Z'), B(b'h'), D]),
        ("lz4", &[B(0x04), B(0x22), B(0x4d), B(0x18)]),
        ("zip", &[B(b'P'), B(b'K'), B(0x03), B(0x04)]),
        ("7z", &[B(b'7'), B(b'z'), B(0xbc), B(0xaf), B(0x27), B(0x1c)]),
        (
            "snappy",
            &[B(0xff), B(0x06), B(0x00), B(0x00), B(b's'), B(b'N'), B(b'a'), B(b'P'), B(b'p'), B(b'Y')],
        ),
        ("lzma", &[B(0x5d), B(0x00), B(0x00)]),
        ("zlib", &[B(0x78), B(0x01)]),
        ("zlib", &[B(0x78), B(0x9c)]),
        ("zlib", &[B(0x78), B(0xda)]),
        ("zlib", &[B(0x78), B(0x5e), X]),
    ]
};

/// What the first bytes of a body say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Signature {
    Found(&'static str),
    /// They could still be the start of a signature.
    NeedMore,
    None,
}

/// Whether `start` (the first bytes of a whole body, or all there is so
/// far) begins with a compression format's signature.
pub(crate) fn signature(start: &[u8]) -> Signature {
    let mut need_more = false;
    for (format, expected) in SIGNATURES {
        let agrees = expected.iter().zip(start).all(|(e, b)| e.accepts(*b));
        if agrees && start.len() >= expected.len() {
            return Signature::Found(format);
        }
        need_more |= agrees;
    }
    if need_more { Signature::NeedMore } else { Signature::None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{Binding, Vault};

    #[test]
    fn compression_formats_are_recognised_by_their_signatures_and_text_is_not() {
        for (start, format) in [
            (&[0x1f, 0x8b, 0x08, 0x00][..], "gzip"),
            (&[0x78, 0x9c, 0x4b][..], "zlib"),
            (&[0x78, 0x5e, 0x01][..], "zlib"),
            (&[0x28, 0xb5, 0x2f, 0xfd, 0x00][..], "zstd"),
            (b"BZh91AY&SY", "bzip2"),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0x00, 0x00][..], "xz"),
            (b"PK\x03\x04\x14\x00", "zip"),
        ] {
            assert_eq!(signature(start), Signature::Found(format), "{start:?}");
        }
        for text in [&b"x^2 + y^2"[..], b"{\"ok\":true}", b"BZh!", b"hello", b"data: x\n"] {
            assert_eq!(signature(text), Signature::None, "{text:?}");
        }
        for start in [&b""[..], b"x", b"BZh", &[0x1f]] {
            assert_eq!(signature(start), Signature::NeedMore, "{start:?}");
        }
    }

    #[test]
    fn codings_that_hide_the_body_are_refused() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (n, v) in pairs {
                map.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            map
        };
        assert!(unscannable_coding(&headers(&[("content-encoding", "identity")])).is_ok());
        assert!(unscannable_coding(&headers(&[("transfer-encoding", "chunked")])).is_ok());
        for bad in [
            vec![("content-encoding", "gzip")],
            vec![("content-encoding", "identity, gzip")],
            vec![("content-encoding", "identity"), ("content-encoding", "br")],
            vec![("content-encoding", "identity, identity")],
            vec![("transfer-encoding", "gzip, chunked")],
        ] {
            assert!(unscannable_coding(&headers(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_names_and_values_are_redacted() {
        let mut vault = Vault::default();
        let nowhere = Binding { hosts: Default::default(), placements: vec![] };
        let placeholder = vault.seal("x.key", "Real-Secret-Value-42", nowhere);
        let mut headers = HeaderMap::new();
        headers.insert("x-real-secret-value-42", HeaderValue::from_static("1"));
        headers.insert("x-echo", HeaderValue::from_static("token Real-Secret-Value-42"));
        let out = redact_headers(&vault.redaction(), headers);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, [format!("x-{placeholder}").as_str(), "x-echo"]);
        assert_eq!(out["x-echo"], format!("token {placeholder}").as_str());
    }
}
