//! The first three stages, which read only how a request is addressed:
//! admit (the run's caps, a closed run), destination (where it goes, and no
//! real secret value in how it is addressed) and policy (allowed hosts,
//! pinned ports, internal addresses by IP).

use super::context::EgressContext;
use super::swap::REAL_VALUE_REFUSAL;
use super::{EgressRecord, Refusal};
use crate::policy::forbidden_reason;
use crate::policy::normalize_host;
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
        Self::plain(uri).or_else(|| Self::parsed(uri))
    }

    /// The common case without a full URL parse (a fifth of the egress
    /// path's own cost): http or https, no userinfo, and a host that is four
    /// plain decimal octets, or ASCII letters, digits, hyphens and dots whose
    /// last label is letters only (never an IPv4 number in another spelling)
    /// with no punycode label: hosts the URL standard leaves as they are but
    /// for case. Anything else is parsed.
    fn plain(uri: &http::Uri) -> Option<Self> {
        let scheme = uri.scheme_str()?;
        let default = crate::policy::default_port(scheme)?;
        let authority = uri.authority()?;
        let host = authority.host();
        let name = host.strip_suffix('.').unwrap_or(host);
        let labels_plain = name.split('.').all(|label| {
            !label.is_empty()
                && !label.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        let last_is_letters =
            name.rsplit('.').next().is_some_and(|l| l.bytes().all(|b| b.is_ascii_alphabetic()));
        let port = match authority.port_u16() {
            Some(port) => port,
            None if !authority.as_str().contains(':') => default,
            None => return None,
        };
        if authority.as_str().contains('@') {
            return None;
        }
        // Four decimal octets without leading zeros read the same either way.
        if let Ok(v4) = name.parse::<std::net::Ipv4Addr>()
            && v4.to_string() == name
        {
            return Some(Self {
                scheme: scheme.to_string(),
                host: v4.to_string(),
                port,
                ip: Some(v4.into()),
            });
        }
        (labels_plain && last_is_letters).then(|| Self {
            scheme: scheme.to_string(),
            host: name.to_ascii_lowercase(),
            port,
            ip: None,
        })
    }

    /// The destination as the URL standard reads it (the client's reading).
    fn parsed(uri: &http::Uri) -> Option<Self> {
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
        let reason = "the run's egress is closed: it tried to send a real secret value where it may not go";
        return Err(Refusal::unrecorded(HttpError::HttpRequestDenied, reason));
    }
    let cap = context.client.config.max_requests_per_run;
    let previous = context.attempts.fetch_add(1, Ordering::Relaxed);
    if previous >= cap {
        if previous == cap {
            context.logs.note(&format!("[stephost] refused: the run made more than {cap} requests"));
        }
        let reason = format!("the run made more than {cap} requests");
        return Err(Refusal::unrecorded(HttpError::HttpRequestDenied, reason));
    }
    context
        .in_flight
        .acquire()
        .await
        .map_err(|_| Refusal::unrecorded(HttpError::HttpRequestDenied, "the run is ending"))
}

/// Destination: parses where the request goes (filling in the record), and
/// refuses a real secret value anywhere in how it is addressed (method,
/// authority, path, query names, header names), before any name is resolved.
pub(crate) fn destination(
    tripwire: &Tripwire,
    parts: &http::request::Parts,
    record: &mut EgressRecord,
) -> Result<Destination, Refusal> {
    let dest = Destination::of(&parts.uri)
        .ok_or_else(|| Refusal::new(HttpError::HttpRequestUriInvalid, "the URL has no valid host"))?;
    (record.scheme, record.host, record.port) = (dest.scheme.clone(), dest.host.clone(), dest.port);
    if let Some(reason) = real_value_in_head(tripwire, parts, &dest) {
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

/// Real values shorter than this are not looked for in a request's head: a
/// one-digit secret would refuse every path with that digit in it.
pub(crate) const MIN_TRIPWIRE_VALUE: usize = 8;

/// The run's real values (current and retired), compiled once to be found
/// without regard to ASCII case: host and header names arrive lowercased.
pub(crate) struct Tripwire {
    matcher: Option<aho_corasick::AhoCorasick>,
    labels: Vec<String>,
}

impl Tripwire {
    pub(crate) fn new(vault: &Vault) -> Self {
        let (labels, values): (Vec<String>, Vec<String>) = vault
            .real_values()
            .into_iter()
            .filter(|(_, value)| value.len() >= MIN_TRIPWIRE_VALUE)
            .map(|(label, value)| (label.to_string(), value))
            .unzip();
        let matcher = (!values.is_empty()).then(|| {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&values)
                .expect("secret values are plain bytes")
        });
        Self { matcher, labels }
    }

    /// The label of the secret whose real value `text` holds, if any.
    pub(crate) fn found_in(&self, text: &str) -> Option<&str> {
        let found = self.matcher.as_ref()?.find(text)?;
        Some(&self.labels[found.pattern().as_usize()])
    }
}

/// Why the request's head holds a real secret value where none may ever
/// go, if it does; in percent-decoded form too.
fn real_value_in_head(
    tripwire: &Tripwire,
    parts: &http::request::Parts,
    dest: &Destination,
) -> Option<String> {
    tripwire.matcher.as_ref()?;
    let refuse =
        |label: &str, place: &str| Some(format!("{REAL_VALUE_REFUSAL} {label} may not be sent in {place}"));
    let check = |place: &str, text: &str| -> Option<String> {
        if let Some(label) = tripwire.found_in(text) {
            return refuse(label, place);
        }
        if text.contains('%') {
            let decoded = percent_encoding_decode(text);
            if let Some(label) = tripwire.found_in(&decoded) {
                return refuse(label, place);
            }
        }
        None
    };
    let authority = parts.uri.authority().map_or("", |a| a.as_str());
    check("the method", parts.method.as_str())
        .or_else(|| check("the host", &dest.host))
        .or_else(|| check("the authority", authority))
        .or_else(|| check("the URL path", parts.uri.path()))
        .or_else(|| {
            parts.uri.query().unwrap_or_default().split('&').find_map(|pair| {
                let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                check("a query parameter name", &name.replace('+', " "))
            })
        })
        .or_else(|| parts.headers.keys().find_map(|name| check("a header name", name.as_str())))
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
        destination(&Tripwire::new(&vault()), parts, &mut record).err().map(|r| r.reason)
    }

    #[tokio::test]
    async fn admit_refuses_a_closed_run_and_requests_over_the_cap_without_a_record() {
        let config = crate::egress::EgressConfig { max_requests_per_run: 2, ..Default::default() };
        let context = crate::egress::context::test_context(&[], Vault::default(), &config);
        for _ in 0..2 {
            assert!(admit(&context).await.is_ok());
        }
        for _ in 0..2 {
            let over = admit(&context).await.expect_err("over the cap");
            assert!(!over.recorded);
        }
        let (logs, _) = context.logs.finish();
        assert_eq!(logs.len(), 1, "the first over the cap is noted, once: {logs:?}");
        let fresh = crate::egress::context::test_context(&[], Vault::default(), &Default::default());
        fresh.closed.store(true, Ordering::Relaxed);
        assert!(admit(&fresh).await.is_err(), "a closed run gets nothing out");
    }

    #[test]
    fn policy_refuses_other_hosts_other_ports_of_pinned_names_and_unnamed_internal_ips() {
        let config = crate::egress::EgressConfig {
            resolve: vec![("slack.com".into(), 443, "127.0.0.1:9".parse().unwrap())],
            ..Default::default()
        };
        let allowed = ["https://slack.com", "https://*.slack.com:*", "http://127.0.0.1:8080", "http://*:*"];
        let context = crate::egress::context::test_context(&allowed, Vault::default(), &config);
        let verdict = |url: &str| {
            policy(&context, &Destination::of(&url.parse().unwrap()).unwrap()).err().map(|r| r.reason)
        };
        assert_eq!(verdict("https://slack.com/api"), None);
        assert_eq!(verdict("http://127.0.0.1:8080/"), None, "named exactly");
        assert!(verdict("https://evil.example/").unwrap().contains("not in the step's allowed hosts"));
        assert!(verdict("https://slack.com:8443/").unwrap().contains("pinned for port 443 only"));
        assert!(verdict("http://10.0.0.1/").unwrap().contains("a private address"));
        assert!(verdict("http://[::1]/").unwrap().contains("a loopback address"));
    }

    #[test]
    fn the_plain_reading_agrees_with_the_url_standard_and_leaves_the_rest_to_it() {
        for url in [
            "https://slack.com/api",
            "https://API.Slack.COM./x?y=1",
            "http://my-host.internal.example:8080/",
            "https://a1.b2.example:443",
            "http://localhost/",
            "http://127.0.0.1:8080/x",
            "http://10.1.2.3/",
        ] {
            let uri: http::Uri = url.parse().unwrap();
            let (plain, parsed) = (Destination::plain(&uri).unwrap(), Destination::parsed(&uri).unwrap());
            assert_eq!(
                (plain.scheme, plain.host, plain.port),
                (parsed.scheme, parsed.host, parsed.port),
                "{url}"
            );
        }
        for url in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://127.000.0.1/",
            "http://example.0x7f/",
            "http://[::1]/",
            "http://user:pw@example.com/",
            "http://xn--nxasmq6b.example/",
            "http://ex%41mple.com/",
            "http://a..b.com/",
            "http://example.com:/",
            "ftp://example.com/",
        ] {
            let Ok(uri) = url.parse::<http::Uri>() else { continue };
            assert!(Destination::plain(&uri).is_none(), "{url} is left to the URL standard");
        }
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
