//! Secret swap on the way out and redaction on the way back.
//!
//! Out: every placeholder of the run, and every real secret value, is
//! looked for in the URL, the headers and the body. Where the secret's
//! binding permits that destination and place, a placeholder becomes the
//! real value; anywhere else the whole request is refused.
//! Back: every real secret value becomes its placeholder again.

use super::Destination;
use super::rewrite::{Action, Rewriter};
use crate::secrets::{Placement, Vault};
use http::{HeaderMap, HeaderValue, Uri};

/// Rules for one place in a request to `dest`; `labels[i]` names the secret
/// behind rule `i`, and `swaps[i]` says whether rule `i` swaps a placeholder.
pub(crate) struct Rules {
    pub(crate) rules: Vec<(Vec<u8>, Action)>,
    pub(crate) labels: Vec<String>,
    pub(crate) swaps: Vec<bool>,
}

/// The rules for secrets appearing at `place` (`None`: a place no secret
/// may ever appear, such as the path).
pub(crate) fn rules_for(vault: &Vault, dest: &Destination, place: Option<&Placement>) -> Rules {
    let mut out = Rules { rules: Vec::new(), labels: Vec::new(), swaps: Vec::new() };
    for secret in vault.secrets() {
        let permitted = place.is_some_and(|p| secret.binding.permits(&dest.scheme, &dest.host, dest.port, p));
        let where_ = place.map_or("the URL path".to_string(), |p| p.to_string());
        let refusal = || {
            Action::Refuse(format!(
                "secret {} may not be sent to {}://{}:{} in {where_}",
                secret.label, dest.scheme, dest.host, dest.port
            ))
        };
        let real = secret.value().as_bytes().to_vec();
        let (on_placeholder, on_real) = if permitted {
            (Action::Replace(real.clone()), Action::Replace(real.clone()))
        } else {
            (refusal(), refusal())
        };
        out.rules.push((secret.placeholder.as_bytes().to_vec(), on_placeholder));
        out.labels.push(secret.label.clone());
        out.swaps.push(true);
        out.rules.push((real, on_real));
        out.labels.push(secret.label.clone());
        out.swaps.push(false);
    }
    out
}

/// Applies `rules` to one value at once; records swapped labels.
fn rewrite_value(rules: Rules, value: &[u8], swapped: &mut Vec<String>) -> Result<Vec<u8>, String> {
    let Some(rewriter) = Rewriter::new(rules.rules, usize::MAX) else { return Ok(value.to_vec()) };
    let (out, hits) = rewriter.rewrite_all(value)?;
    for hit in hits {
        if rules.swaps[hit] && !swapped.contains(&rules.labels[hit]) {
            swapped.push(rules.labels[hit].clone());
        }
    }
    Ok(out)
}

/// Swaps secrets in every header value (refusing any not permitted there).
pub(crate) fn swap_headers(
    vault: &Vault,
    dest: &Destination,
    headers: &mut HeaderMap,
    swapped: &mut Vec<String>,
) -> Result<(), String> {
    for (name, value) in headers.iter_mut() {
        let place = Placement::Header(name.as_str().to_string());
        let rewritten = rewrite_value(rules_for(vault, dest, Some(&place)), value.as_bytes(), swapped)?;
        if rewritten != value.as_bytes() {
            *value = HeaderValue::from_bytes(&rewritten)
                .map_err(|_| format!("header `{name}` is not valid once its secret is swapped in"))?;
        }
    }
    Ok(())
}

/// Swaps secrets in query parameter values; a secret in the path or in a
/// parameter name is refused.
pub(crate) fn swap_uri(
    vault: &Vault,
    dest: &Destination,
    uri: &Uri,
    swapped: &mut Vec<String>,
) -> Result<Uri, String> {
    let path = rewrite_value(rules_for(vault, dest, None), uri.path().as_bytes(), swapped)?;
    let Some(query) = uri.query() else { return Ok(uri.clone()) };
    let mut pairs = Vec::new();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        rewrite_value(rules_for(vault, dest, None), name.as_bytes(), swapped)?;
        let place = Placement::Query(name.to_string());
        let value = rewrite_value(rules_for(vault, dest, Some(&place)), value.as_bytes(), swapped)?;
        let value = String::from_utf8(value).map_err(|_| "a query value is not UTF-8".to_string())?;
        pairs.push(if pair.contains('=') { format!("{name}={value}") } else { name.to_string() });
    }
    let path = String::from_utf8(path).map_err(|_| "the path is not UTF-8".to_string())?;
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        format!("{path}?{}", pairs.join("&"))
            .parse()
            .map_err(|_| "the URL is not valid once swapped".to_string())?,
    );
    Uri::from_parts(parts).map_err(|_| "the URL is not valid once swapped".to_string())
}

/// Rules that turn every real secret value back into its placeholder.
pub(crate) fn redaction_rules(vault: &Vault) -> Vec<(Vec<u8>, Action)> {
    vault
        .secrets()
        .iter()
        .map(|s| (s.value().as_bytes().to_vec(), Action::Replace(s.placeholder.as_bytes().to_vec())))
        .collect()
}

/// Redacts every header value of a response.
pub(crate) fn redact_headers(vault: &Vault, headers: &mut HeaderMap) {
    for value in headers.values_mut() {
        let Some(rewriter) = Rewriter::new(redaction_rules(vault), usize::MAX) else { return };
        match rewriter.rewrite_all(value.as_bytes()) {
            Ok((_, hits)) if hits.is_empty() => {}
            Ok((out, _)) => {
                *value = HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static("[redacted]"))
            }
            Err(_) => *value = HeaderValue::from_static("[redacted]"),
        }
    }
}
