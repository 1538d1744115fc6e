//! Sealed secrets. A step never holds a real secret: each secret it reads
//! comes back as a placeholder, unique to the run and the secret and
//! unguessable, which the egress hook swaps for the real value only on a
//! request to a host the secret is bound to, in a place it may appear.
//! The same vault redacts real values wherever they could surface.

mod forms;

pub use forms::Redaction;

pub use crate::policy::{Binding, Placement};
use forms::Sensitive;
use std::fmt;
use std::sync::{Arc, RwLock};

/// Every placeholder starts with this; 32 hex digits (128 random bits) follow.
pub const PLACEHOLDER_PREFIX: &str = "stephost_sealed_";

/// Length of every placeholder.
pub const PLACEHOLDER_LEN: usize = PLACEHOLDER_PREFIX.len() + 32;

/// One sealed secret of a run.
pub struct Sealed {
    /// What it is, for records and messages: `slack.oauth_access_token` or
    /// `env.OPENAI_KEY`.
    pub label: String,
    /// What the step holds instead of the value: [`PLACEHOLDER_PREFIX`] and
    /// 32 random hex digits, [`PLACEHOLDER_LEN`] bytes in all.
    pub placeholder: String,
    value: RwLock<String>,
    /// Earlier values (a refreshed token's old one): still redacted.
    retired: RwLock<Vec<String>>,
    /// Where the real value may be swapped in; anywhere else the request is refused.
    pub binding: Binding,
}

impl Sealed {
    /// The real value; only the egress hook's swap reads it.
    pub(crate) fn value(&self) -> String {
        self.value.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current value and every retired one.
    pub(crate) fn all_values(&self) -> Vec<String> {
        let mut values = vec![self.value()];
        values.extend(self.retired.read().unwrap_or_else(|p| p.into_inner()).iter().cloned());
        values
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed").field("label", &self.label).field("placeholder", &self.placeholder).finish()
    }
}

/// The secrets of one run.
#[derive(Debug, Default)]
pub struct Vault {
    secrets: Vec<Sealed>,
    /// Values the host sent in place of what the step wrote, with what the
    /// step wrote ([`Vault::remember_sent`]).
    derived: RwLock<Vec<(Vec<u8>, Vec<u8>)>>,
    /// [`Vault::redaction`], until a value changes.
    redaction: RwLock<Option<Arc<Redaction>>>,
    /// Counts changes of the values, so a redaction compiled while one
    /// happened is not kept (nor used) as if it were current.
    generation: std::sync::atomic::AtomicU64,
}

/// Values the host derived from secrets that a run remembers at most, and
/// the longest one: each is compiled into the run's redaction.
const MAX_DERIVED: usize = 16;
const MAX_DERIVED_BYTES: usize = 4096;

impl Vault {
    /// Seals a secret and returns its placeholder. The same label sealed
    /// twice in a run keeps one placeholder.
    pub fn seal(&mut self, label: &str, value: &str, binding: Binding) -> String {
        if let Some(existing) = self.secrets.iter().find(|s| s.label == label) {
            return existing.placeholder.clone();
        }
        let placeholder = new_placeholder();
        self.secrets.push(Sealed {
            label: label.to_string(),
            placeholder: placeholder.clone(),
            value: RwLock::new(value.to_string()),
            retired: RwLock::default(),
            binding,
        });
        *self.redaction.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        placeholder
    }

    /// Gives a sealed secret a new real value for the rest of the run (a
    /// refreshed OAuth token); the old one stays redacted. `false` if there
    /// is no secret of that label.
    pub fn replace_value(&self, label: &str, new_value: &str) -> bool {
        let Some(secret) = self.secrets.iter().find(|s| s.label == label) else { return false };
        let mut value = secret.value.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut *value, new_value.to_string());
        secret.retired.write().unwrap_or_else(|p| p.into_inner()).push(old);
        drop(value);
        self.values_changed();
        true
    }

    /// Every sealed secret of the run.
    pub fn secrets(&self) -> &[Sealed] {
        &self.secrets
    }

    /// Whether the run holds no secrets, so nothing needs swapping,
    /// scanning or redacting.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Replaces every form of every real secret value in `text` (and every
    /// value the host derived from one) by what the step had in its place.
    pub fn redact(&self, text: &str) -> String {
        self.redaction().redact(text)
    }

    /// [`Vault::redact`] over raw bytes (a response body that may not be
    /// text).
    pub fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        self.redaction().redact_bytes(bytes)
    }

    /// [`Vault::redact`] over every string (keys too) of a JSON value.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        self.redaction().redact_json(value)
    }

    /// The redaction of this vault's values as they are now: every form of
    /// each secret's current and retired values becomes its placeholder, and
    /// each value the host sent in place of what the step wrote becomes what
    /// the step wrote. Built once per change of the values.
    pub fn redaction(&self) -> Arc<Redaction> {
        use std::sync::atomic::Ordering;
        loop {
            if let Some(redaction) = &*self.redaction.read().unwrap_or_else(|p| p.into_inner()) {
                return redaction.clone();
            }
            let generation = self.generation.load(Ordering::SeqCst);
            let redaction = self.compile_redaction();
            let mut slot = self.redaction.write().unwrap_or_else(|p| p.into_inner());
            if self.generation.load(Ordering::SeqCst) == generation {
                *slot = Some(redaction.clone());
                return redaction;
            }
            // A value changed while this compiled: compile again.
        }
    }

    /// Marks the compiled redaction out of date.
    fn values_changed(&self) {
        let mut slot = self.redaction.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *slot = None;
    }

    fn compile_redaction(&self) -> Arc<Redaction> {
        let values: Vec<(String, &str)> = self
            .secrets
            .iter()
            .flat_map(|s| s.all_values().into_iter().map(move |v| (v, s.placeholder.as_str())))
            .collect();
        let derived = self.derived.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut sensitive: Vec<Sensitive<'_>> = derived
            .iter()
            .map(|(sent, original)| Sensitive { value: sent, replacement: original, encoded: false })
            .collect();
        sensitive.extend(values.iter().map(|(value, placeholder)| Sensitive {
            value: value.as_bytes(),
            replacement: placeholder.as_bytes(),
            encoded: true,
        }));
        Arc::new(Redaction::new(&sensitive))
    }

    /// Notes a value the host sent in place of `original` (what the step
    /// wrote) after swapping a secret into it and encoding the result again
    /// (HTTP Basic credentials): an API echoing it hands back `original`.
    pub fn remember_sent(&self, sent: &[u8], original: &[u8]) {
        let mut derived = self.derived.write().unwrap_or_else(|p| p.into_inner());
        // Past the caps the secret inside is still redacted in every form;
        // only the exact echo of what the step wrote is lost.
        if sent == original
            || sent.len() > MAX_DERIVED_BYTES
            || derived.len() >= MAX_DERIVED
            || derived.iter().any(|(s, _)| s == sent)
        {
            return;
        }
        derived.push((sent.to_vec(), original.to_vec()));
        drop(derived);
        self.values_changed();
    }

    /// Every real value of the run, current and retired, with the label of
    /// its secret.
    pub fn real_values(&self) -> Vec<(&str, String)> {
        self.secrets.iter().flat_map(|s| s.all_values().into_iter().map(|v| (s.label.as_str(), v))).collect()
    }
}

/// A fresh placeholder: the prefix and 128 bits from the OS's CSPRNG.
fn new_placeholder() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    format!("{PLACEHOLDER_PREFIX}{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{HostPattern, HostPolicy};

    fn binding(host: &str, placements: &[&str]) -> Binding {
        Binding {
            hosts: Arc::new(HostPolicy::new(vec![HostPattern::parse(host).unwrap()])),
            placements: placements.iter().map(|p| Placement::parse(p).unwrap()).collect(),
        }
    }

    #[test]
    fn placeholders_are_unique_unguessable_and_fixed_length() {
        let mut vault = Vault::default();
        let a = vault.seal("slack.token", "xoxb-1", binding("https://slack.com", &["header:authorization"]));
        let b = vault.seal("github.token", "ghp-1", binding("https://api.github.com", &["body"]));
        assert_ne!(a, b);
        assert_eq!(a, vault.seal("slack.token", "xoxb-1", binding("https://slack.com", &["body"])));
        assert!(a.starts_with(PLACEHOLDER_PREFIX) && a.len() == PLACEHOLDER_LEN);
        let mut other_run = Vault::default();
        assert_ne!(a, other_run.seal("slack.token", "xoxb-1", binding("https://slack.com", &["body"])));
    }

    #[test]
    fn binding_needs_both_host_and_placement() {
        let b = binding("https://*.slack.com", &["header:authorization"]);
        let auth = Placement::Header("authorization".into());
        assert!(b.permits("https", "api.slack.com", 443, &auth));
        assert!(!b.permits("https", "evil.com", 443, &auth));
        assert!(!b.permits("https", "api.slack.com", 443, &Placement::Body));
        assert!(binding("https://x.io", &["anywhere"]).permits(
            "https",
            "x.io",
            443,
            &Placement::Query("k".into())
        ));
    }

    #[test]
    fn redaction_replaces_real_values_everywhere_in_json() {
        let mut vault = Vault::default();
        let p = vault.seal("slack.token", "xoxb-secret", binding("https://slack.com", &["body"]));
        let mut value = serde_json::json!({ "a": ["token xoxb-secret!"], "xoxb-secret": 1 });
        vault.redact_json(&mut value);
        assert_eq!(value, serde_json::json!({ "a": [format!("token {p}!")], p.clone(): 1 }));
        assert!(!format!("{vault:?}").contains("xoxb-secret"), "Debug never shows values");
    }

    #[test]
    fn escaped_and_encoded_forms_are_redacted_too() {
        let mut vault = Vault::default();
        let p = vault.seal("x.key", "a/b\"c d", binding("https://x.io", &["body"]));
        for form in ["a/b\"c d", "a/b\\\"c d", "a\\/b\\\"c d", "a%2Fb%22c+d"] {
            assert_eq!(vault.redact(&format!("<{form}>")), format!("<{p}>"), "{form}");
        }
    }

    #[test]
    fn placements_parse_and_reject_garbage() {
        assert_eq!(
            Placement::parse("header:Authorization").unwrap(),
            Placement::Header("authorization".into())
        );
        assert_eq!(Placement::parse("query:key").unwrap(), Placement::Query("key".into()));
        assert!(Placement::parse("cookie").unwrap_err().contains("`cookie`"));
    }
}
