//! The first three stages, which read only how a request is addressed:
//! admit (the run's caps, a closed run), destination (where it goes, and no
//! real secret value in how it is addressed) and policy (allowed hosts,
//! pinned ports, internal addresses by IP).

use super::context::EgressContext;
use super::policy::normalize_host;
use super::ssrf::forbidden_reason;
use super::swap::REAL_VALUE_REFUSAL;
use super::{EgressRecord, Refusal};
use crate::secrets::Vault;
use std::sync::atomic::Ordering;
use wasmtime_wasi_http::Error as HttpError;

/// The destination of a request, normalized the way the client will read
/// the URL (WHATWG rules: `http://2130706433/` is 127.0.0.1).
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) ip: Option<std::net::IpAddr>,
}

impl Destination {
    pub(crate) fn of(uri: &http::Uri) -> Option<Self> {
        let url = url::Url::parse(&uri.to_string()).ok()?;
        let (host, ip) = match url.host()? {
            url::Host::Domain(name) => (normalize_host(name), None),
            url::Host::Ipv4(v4) => (v4.to_string(), Some(v4.into())),
            url::Host::Ipv6(v6) => (format!("[{v6}]"), Some(v6.into())),
        };
        Some(Self { scheme: url.scheme().to_string(), host, port: url.port_or_known_default()?, ip })
    }
}

/// Admit: a run whose egress closed gets nothing more out, and a run gets
/// at most its cap of requests and [`super::context::MAX_IN_FLIGHT`] at once.
/// Refusals here are not recorded (a run hammering the cap would flood the
/// audit log); the first over the cap is noted in the run's logs.
pub(crate) async fn admit(context: &EgressContext) -> Result<tokio::sync::SemaphorePermit<'_>, Refusal> {
    if context.closed.load(Ordering::Relaxed) {
        return Err(Refusal::unrecorded(HttpError::HttpRequestDenied));
    }
    let cap = context.client.config.max_requests_per_run;
    let previous = context.attempts.fetch_add(1, Ordering::Relaxed);
    if previous >= cap {
        if previous == cap {
            context.logs.note(&format!("[stephost] refused: the run made more than {cap} requests"));
        }
        return Err(Refusal::unrecorded(HttpError::HttpRequestDenied));
    }
    context.in_flight.acquire().await.map_err(|_| Refusal::unrecorded(HttpError::HttpRequestDenied))
}

/// Destination: parses where the request goes (filling in the record), and
/// refuses a real secret value anywhere in how it is addressed (method,
/// authority, path, query names, header names), before any name is resolved.
pub(crate) fn destination(
    vault: &Vault,
    parts: &http::request::Parts,
    record: &mut EgressRecord,
) -> Result<Destination, Refusal> {
    let dest = Destination::of(&parts.uri)
        .ok_or_else(|| Refusal::new(HttpError::HttpRequestUriInvalid, "the URL has no valid host"))?;
    (record.scheme, record.host, record.port) = (dest.scheme.clone(), dest.host.clone(), dest.port);
    if let Some(reason) = real_value_in_head(vault, parts, &dest) {
        return Err(Refusal::new(HttpError::HttpRequestDenied, reason));
    }
    if parts.uri.host().is_some_and(|h| h.ends_with('.')) {
        return Err(Refusal::new(
            HttpError::HttpRequestUriInvalid,
            "host names ending in a dot are not allowed",
        ));
    }
    Ok(dest)
}

/// Why the request's head holds a real secret value where none may ever
/// go, if it does. Compared without regard to ASCII case (host and header
/// names are lowercased on the way) and in percent-decoded form too.
fn real_value_in_head(vault: &Vault, parts: &http::request::Parts, dest: &Destination) -> Option<String> {
    let values = vault.real_values();
    if values.is_empty() {
        return None;
    }
    let decoded = |text: &str| percent_encoding_decode(text);
    let mut places: Vec<(&str, String)> = vec![
        ("the method", parts.method.as_str().to_string()),
        ("the host", dest.host.clone()),
        ("the authority", parts.uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default()),
        ("the URL path", parts.uri.path().to_string()),
        ("the URL path", decoded(parts.uri.path())),
    ];
    for pair in parts.uri.query().unwrap_or_default().split('&') {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        places.push(("a query parameter name", name.to_string()));
        places.push(("a query parameter name", decoded(&name.replace('+', " "))));
    }
    places.extend(parts.headers.keys().map(|name| ("a header name", name.as_str().to_string())));
    for (place, text) in &places {
        let text = text.to_ascii_lowercase();
        if let Some((label, _)) =
            values.iter().find(|(_, value)| !value.is_empty() && text.contains(&value.to_ascii_lowercase()))
        {
            return Some(format!("{REAL_VALUE_REFUSAL} {label} may not be sent in {place}"));
        }
    }
    None
}

/// `%XX` sequences decoded (invalid UTF-8 replaced).
fn percent_encoding_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Policy: the destination is in the step's allowed hosts or its apps'
/// hosts, on the port a pinned name is pinned for, and an internal address
/// written as an IP is reached only if an allowed host names it exactly.
pub(crate) fn policy(context: &EgressContext, dest: &Destination) -> Result<(), Refusal> {
    let config = &context.client.config;
    if let Some((_, port, _)) = config.resolve.iter().find(|(h, _, _)| *h == dest.host)
        && *port != dest.port
    {
        let reason = format!("{} is pinned for port {port} only", dest.host);
        return Err(Refusal::new(HttpError::HttpRequestDenied, reason));
    }
    if !context.policy.allows(&dest.scheme, &dest.host, dest.port) {
        let reason = format!(
            "{}://{}:{} is not in the step's allowed hosts or its apps' hosts",
            dest.scheme, dest.host, dest.port
        );
        return Err(Refusal::new(HttpError::HttpRequestDenied, reason));
    }
    if let Some(ip) = dest.ip
        && let Some(why) = forbidden_reason(ip)
        && !context.policy.names_exactly(&dest.scheme, &dest.host, dest.port)
    {
        let reason = format!("{ip} is {why}; only an allowed host naming it exactly may reach it");
        return Err(Refusal::new(HttpError::DestinationIpProhibited, reason));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Binding;

    fn vault() -> Vault {
        let mut vault = Vault::default();
        vault.seal(
            "slack.token",
            "Xoxb-Real-1234",
            Binding { hosts: Default::default(), placements: vec![] },
        );
        vault
    }

    fn head(method: &str, uri: &str, header: &str) -> http::request::Parts {
        let request = http::Request::builder().method(method).uri(uri).header(header, "1").body(()).unwrap();
        request.into_parts().0
    }

    fn refusal(parts: &http::request::Parts) -> Option<String> {
        let mut record = EgressRecord::default();
        destination(&vault(), parts, &mut record).err().map(|r| r.reason)
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

    #[test]
    fn a_real_value_in_any_part_of_the_head_is_refused() {
        for (method, uri, header) in [
            ("XOXB-REAL-1234", "https://x.io/", "accept"),
            ("GET", "https://xoxb-real-1234.x.io/", "accept"),
            ("GET", "https://user:Xoxb-Real-1234@x.io/", "accept"),
            ("GET", "https://x.io/a/Xoxb-Real-1234", "accept"),
            ("GET", "https://x.io/a/Xoxb%2DReal%2D1234", "accept"),
            ("GET", "https://x.io/?Xoxb-Real-1234=1", "accept"),
            ("GET", "https://x.io/?Xoxb%2dReal-1234", "accept"),
            ("GET", "https://x.io/", "x-xoxb-real-1234"),
        ] {
            let why =
                refusal(&head(method, uri, header)).unwrap_or_else(|| panic!("{method} {uri} {header}"));
            assert!(why.starts_with(REAL_VALUE_REFUSAL), "{why}");
            assert!(
                !why.to_ascii_lowercase().contains("xoxb-real"),
                "the reason names the secret, not its value"
            );
        }
        assert_eq!(
            refusal(&head("GET", "https://x.io/a?q=Xoxb-Real-1234", "accept")),
            None,
            "values are the swap's"
        );
    }
}
