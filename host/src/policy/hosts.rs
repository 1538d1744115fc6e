//! Which destinations a step may reach: deny by default, then a list of
//! patterns in Spin's `scheme://host:port` syntax with `*` wildcards.

use std::fmt;

/// One allowed-destination pattern, e.g. `https://api.github.com`,
/// `https://*.slack.com`, `http://127.0.0.1:8080`, `*://example.com:*`.
///
/// - scheme: `http`, `https` or `*`;
/// - host: an exact name or IP (IPv6 in brackets), `*.domain` for any
///   subdomain (not the domain itself), or `*` for any host;
/// - port: a number, `*` for any, or omitted for the scheme's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<String>,
    host: HostMatch,
    port: Option<u16>,
    any_port: bool,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    SubdomainOf(String),
    Exact(String),
}

/// Why a pattern was rejected; names the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "allowed host `{pattern}` is invalid: {reason} (expected scheme://host[:port], e.g. https://api.github.com or https://*.slack.com)"
)]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl HostPattern {
    /// Parses one pattern.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let fail = |reason: &str| PatternError { pattern: pattern.to_string(), reason: reason.into() };
        let (scheme, rest) = pattern.split_once("://").ok_or_else(|| fail("no `://`"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "*" => None,
            s @ ("http" | "https") => Some(s.to_string()),
            _ => return Err(fail("the scheme must be http, https or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(fail("only scheme, host and port are allowed, no path or user"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| fail("the port is not a number or *"))?;
        let host = normalize_host(host);
        if host.is_empty() {
            return Err(fail("the host is empty"));
        }
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return Err(fail("`*` may only stand alone or as the first label (*.example.com)"));
            }
            HostMatch::SubdomainOf(domain.to_string())
        } else if host.contains('*') {
            return Err(fail("`*` may only stand alone or as the first label (*.example.com)"));
        } else {
            HostMatch::Exact(host)
        };
        let (port, any_port) = match port {
            PortSpec::Any => (None, true),
            PortSpec::Number(n) => (Some(n), false),
            PortSpec::Default => (None, false),
        };
        Ok(Self { scheme, host, port, any_port, source: pattern.to_string() })
    }

    /// Whether a destination (scheme lowercased, host normalized, port
    /// explicit) matches this pattern.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme.as_deref().is_some_and(|s| s != scheme) {
            return false;
        }
        let port_ok = self.any_port
            || match self.port {
                Some(p) => p == port,
                None => Some(port) == default_port(scheme),
            };
        let host_ok = match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => h == host,
            HostMatch::SubdomainOf(domain) => {
                host.len() > domain.len() + 1
                    && host.ends_with(domain.as_str())
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
            }
        };
        port_ok && host_ok
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

enum PortSpec {
    Default,
    Any,
    Number(u16),
}

fn split_host_port(authority: &str) -> Option<(&str, PortSpec)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        (host, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => PortSpec::Default,
        Some("*") => PortSpec::Any,
        Some(p) => PortSpec::Number(p.parse().ok()?),
    };
    Some((host, port))
}

/// Lowercases a host and drops a trailing dot, so `API.GitHub.com.` and
/// `api.github.com` are one destination.
pub fn normalize_host(host: &str) -> String {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

/// The port a scheme implies when none is given.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A step's outbound policy: deny by default, allow what any pattern
/// matches.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    allowed: Vec<HostPattern>,
}

impl HostPolicy {
    /// A policy allowing exactly these patterns (none: deny everything).
    pub fn new(allowed: Vec<HostPattern>) -> Self {
        Self { allowed }
    }

    /// Parses every pattern; the first invalid one is the error.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let allowed = patterns.iter().map(|p| HostPattern::parse(p.as_ref())).collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Whether the destination is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|p| p.matches(scheme, host, port))
    }

    /// This policy plus every pattern of `others`.
    pub fn union<'a>(&self, others: impl IntoIterator<Item = &'a HostPolicy>) -> Self {
        let mut allowed = self.allowed.clone();
        for other in others {
            allowed.extend(other.allowed.iter().cloned());
        }
        Self { allowed }
    }

    /// Whether some pattern names exactly this host (not by wildcard) and
    /// matches the scheme and port: the only way a step may reach an
    /// internal IP address.
    pub fn names_exactly(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.allowed
            .iter()
            .any(|p| matches!(&p.host, HostMatch::Exact(h) if h == host) && p.matches(scheme, host, port))
    }

    /// The patterns, for messages.
    pub fn patterns(&self) -> &[HostPattern] {
        &self.allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(pattern: &str, scheme: &str, host: &str, port: u16) -> bool {
        HostPattern::parse(pattern).unwrap().matches(scheme, host, port)
    }

    #[test]
    fn exact_host_with_default_port() {
        assert!(allows("https://api.github.com", "https", "api.github.com", 443));
        assert!(!allows("https://api.github.com", "https", "api.github.com", 8443));
        assert!(!allows("https://api.github.com", "http", "api.github.com", 80));
        assert!(!allows("https://api.github.com", "https", "evil-api.github.com", 443));
    }

    #[test]
    fn subdomain_wildcard_does_not_match_lookalikes_or_apex() {
        assert!(allows("https://*.slack.com", "https", "hooks.slack.com", 443));
        assert!(allows("https://*.slack.com", "https", "a.b.slack.com", 443));
        assert!(!allows("https://*.slack.com", "https", "slack.com", 443));
        assert!(!allows("https://*.slack.com", "https", "evilslack.com", 443));
        assert!(!allows("https://*.slack.com", "https", "slack.com.evil.io", 443));
    }

    #[test]
    fn wildcard_scheme_and_port() {
        assert!(allows("*://example.com:*", "http", "example.com", 8080));
        assert!(allows("*://example.com", "http", "example.com", 80));
        assert!(!allows("*://example.com", "http", "example.com", 443));
        assert!(allows("http://127.0.0.1:8080", "http", "127.0.0.1", 8080));
        assert!(allows("http://[::1]:8080", "http", "[::1]", 8080));
        assert!(allows("https://*", "https", "anything.io", 443));
    }

    #[test]
    fn invalid_patterns_name_the_problem() {
        for (pattern, reason) in [
            ("api.github.com", "no `://`"),
            ("ftp://x.com", "scheme"),
            ("https://x.com/path", "no path"),
            ("https://x.com:http", "port"),
            ("https://a*.com", "first label"),
            ("https://", "empty"),
        ] {
            let err = HostPattern::parse(pattern).unwrap_err().to_string();
            assert!(err.contains(pattern) && err.contains(reason), "{pattern}: {err}");
        }
    }

    #[test]
    fn host_case_and_trailing_dot_are_normalized() {
        let pattern = HostPattern::parse("https://API.GitHub.com.").unwrap();
        assert!(pattern.matches("https", &normalize_host("api.github.COM."), 443));
    }

    #[test]
    fn empty_policy_denies_everything() {
        assert!(!HostPolicy::default().allows("https", "example.com", 443));
    }
}
