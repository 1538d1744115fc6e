//! Secret swap on the way out and redaction on the way back.
//!
//! Out: every placeholder of the run, and every real secret value, is
//! looked for in the URL, the headers and the body. Where the secret's
//! binding permits that destination and place, a placeholder becomes the
//! real value; anywhere else the whole request is refused.
//! Back: every real secret value becomes its placeholder again.

use super::Destination;
use super::rewrite::{Action, Needles, Rewriter};
use crate::secrets::{Placement, Vault};
use http::{HeaderMap, HeaderValue, Uri};
use std::sync::Arc;

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

/// What redaction looks for: every form of every real value
/// ([`Vault::redaction_pairs`]), in that order.
pub(crate) fn redaction_needles(vault: &Vault) -> Option<Arc<Needles>> {
    let patterns: Vec<Vec<u8>> = vault.redaction_pairs().into_iter().map(|(form, _)| form).collect();
    Needles::new(&patterns)
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
            let whither = format!(
                "{} may not be sent to {}://{}:{} in {}",
                secret.label,
                dest.scheme,
                dest.host,
                dest.port,
                place.map_or("the URL path".to_string(), |p| p.to_string())
            );
            if permitted {
                let real = Action::Replace(secret.value().into_bytes());
                out.actions.extend([real.clone(), real]);
            } else {
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
    pub(crate) fn swapped(&self, hits: &[usize], into: &mut Vec<String>) {
        for &hit in hits.iter().filter(|hit| *hit % 2 == 0) {
            if !into.contains(&self.labels[hit]) {
                into.push(self.labels[hit].clone());
            }
        }
    }
}

/// Swap state of one request: the run's needles and where to note swaps.
pub(crate) struct Swap<'a> {
    pub(crate) vault: &'a Vault,
    pub(crate) needles: Option<&'a Arc<Needles>>,
    pub(crate) dest: &'a Destination,
    pub(crate) swapped: Vec<String>,
}

impl Swap<'_> {
    /// Applies the swap for `place` to one value.
    fn value(&mut self, place: Option<&Placement>, value: &[u8]) -> Result<Vec<u8>, String> {
        let Some(needles) = self.needles.filter(|n| n.found_in(value)) else { return Ok(value.to_vec()) };
        let actions = Actions::for_place(self.vault, self.dest, place);
        let (out, hits) =
            Rewriter::new(needles.clone(), actions.actions.clone(), usize::MAX).rewrite_all(value)?;
        actions.swapped(&hits, &mut self.swapped);
        Ok(out)
    }

    /// Swaps secrets in every header value (refusing any not permitted
    /// there), inside HTTP Basic credentials too.
    pub(crate) fn headers(&mut self, headers: &mut HeaderMap) -> Result<(), String> {
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
    /// if the value is not Basic credentials holding a secret.
    fn basic(&mut self, place: &Placement, value: &[u8]) -> Result<Option<Vec<u8>>, String> {
        use base64::Engine;
        let Some(encoded) = value.strip_prefix(b"Basic ").or_else(|| value.strip_prefix(b"basic ")) else {
            return Ok(None);
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii()) else {
            return Ok(None);
        };
        if !self.needles.is_some_and(|n| n.found_in(&decoded)) {
            return Ok(None);
        }
        let swapped = self.value(Some(place), &decoded)?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(swapped);
        Ok(Some(format!("Basic {encoded}").into_bytes()))
    }

    /// Swaps secrets in query parameter values; a secret in the path or in
    /// a parameter name is refused.
    pub(crate) fn uri(&mut self, uri: &Uri) -> Result<Uri, String> {
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

/// Actions that turn every real secret value back into its placeholder, in
/// [`redaction_needles`] order.
pub(crate) fn redaction_actions(vault: &Vault) -> Vec<Action> {
    vault.redaction_pairs().into_iter().map(|(_, p)| Action::Replace(p.as_bytes().to_vec())).collect()
}

/// Redacts every header value of a response.
pub(crate) fn redact_headers(vault: &Vault, needles: Option<&Arc<Needles>>, headers: &mut HeaderMap) {
    let Some(needles) = needles else { return };
    for value in headers.values_mut().filter(|v| needles.found_in(v.as_bytes())) {
        let rewriter = Rewriter::new(needles.clone(), redaction_actions(vault), usize::MAX);
        *value = match rewriter.rewrite_all(value.as_bytes()) {
            Ok((out, _)) => HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static("[redacted]")),
            Err(_) => HeaderValue::from_static("[redacted]"),
        };
    }
}
