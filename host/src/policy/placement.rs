//! Where a secret may go: hosts × places in a request.

use super::HostPolicy;
use std::fmt;
use std::sync::Arc;

/// Where in a request a secret may appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// In the named header (lowercase), e.g. `authorization`.
    Header(String),
    /// As the value of the named query parameter.
    Query(String),
    /// Anywhere in the request body.
    Body,
    /// Anywhere: header, query or body (custom secrets).
    Anywhere,
}

impl Placement {
    /// Parses `header:NAME`, `query:NAME`, `body` or `anywhere`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("header", name)) if !name.is_empty() => Ok(Self::Header(name.to_ascii_lowercase())),
            Some(("query", name)) if !name.is_empty() => Ok(Self::Query(name.to_string())),
            None if text == "body" => Ok(Self::Body),
            None if text == "anywhere" => Ok(Self::Anywhere),
            _ => Err(format!("placement `{text}` is not header:NAME, query:NAME, body or anywhere")),
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Header(name) => write!(f, "header:{name}"),
            Placement::Query(name) => write!(f, "query:{name}"),
            Placement::Body => f.write_str("body"),
            Placement::Anywhere => f.write_str("anywhere"),
        }
    }
}

/// Where a secret may go: the hosts it is bound to and the places in a
/// request it may appear.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The hosts the secret may be sent to.
    pub hosts: Arc<HostPolicy>,
    /// The places in a request it may appear; empty means nowhere, so the
    /// secret can be held but never sent.
    pub placements: Vec<Placement>,
}

impl Binding {
    /// Whether the secret may appear at `place` in a request to the
    /// destination.
    pub fn permits(&self, scheme: &str, host: &str, port: u16, place: &Placement) -> bool {
        self.hosts.allows(scheme, host, port)
            && self.placements.iter().any(|allowed| match (allowed, place) {
                (Placement::Anywhere, _) => true,
                (a, b) => a == b,
            })
    }
}
