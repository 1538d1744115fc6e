//! The egress state of one run, shared by its requests: the policy, the
//! vault, the compiled swap needles, the caps, the refresher, and where
//! records go.

use super::client::EgressClient;
use super::head::Tripwire;
use super::rewrite::Needles;
use super::{EgressRecord, swap};
use crate::audit::{AuditEvent, AuditSink};
use crate::logs::LogSink;
use crate::policy::HostPolicy;
use crate::secrets::Vault;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};

/// Requests one run may have under way at once.
pub(crate) const MAX_IN_FLIGHT: usize = 32;

/// Everything the hook needs for one run, shared by its requests.
pub(crate) struct EgressContext {
    pub(crate) run_id: String,
    pub(crate) step: String,
    /// The step's allowed hosts plus its connected apps' hosts.
    pub(crate) policy: Arc<HostPolicy>,
    pub(crate) vault: Arc<Vault>,
    /// The vault's swap needles, compiled once for the run and again when a
    /// secret gets a new value.
    swap_needles: RwLock<Option<Arc<Needles>>>,
    /// The vault's real values, to refuse in a request's head; likewise.
    tripwire: RwLock<Arc<Tripwire>>,
    /// Refreshes an OAuth token after a 401; each app at most once a run.
    pub(crate) refresher: Option<crate::egress::Refresher>,
    refreshed_apps: Mutex<Vec<String>>,
    pub(crate) client: EgressClient,
    pub(crate) audit: Option<Arc<dyn AuditSink>>,
    pub(crate) records: Mutex<Vec<EgressRecord>>,
    /// The run's logs, where refusals are noted for the step's author.
    pub(crate) logs: LogSink,
    /// Requests attempted so far, against the per-run cap.
    pub(crate) attempts: AtomicU64,
    /// Requests under way at once, at most [`MAX_IN_FLIGHT`].
    pub(crate) in_flight: tokio::sync::Semaphore,
    /// Set once the step tried to send a real secret where it may not go.
    pub(crate) closed: AtomicBool,
    /// The host's reason for the request last refused (redacted), for
    /// language shims whose HTTP client drops the wasi:http error code.
    pub(crate) last_refusal: Mutex<Option<String>>,
}

impl EgressContext {
    /// The egress state of one run.
    pub(crate) fn new(
        run_id: String,
        step: String,
        policy: Arc<HostPolicy>,
        vault: Arc<Vault>,
        client: EgressClient,
        audit: Option<Arc<dyn AuditSink>>,
        logs: LogSink,
    ) -> Self {
        Self {
            run_id,
            step,
            policy,
            swap_needles: RwLock::new(swap::swap_needles(&vault)),
            tripwire: RwLock::new(Arc::new(Tripwire::new(&vault))),
            refresher: None,
            refreshed_apps: Mutex::default(),
            vault,
            client,
            audit,
            records: Mutex::default(),
            logs,
            attempts: AtomicU64::new(0),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            closed: AtomicBool::new(false),
            last_refusal: Mutex::default(),
        }
    }

    /// Adds the refresher used after a 401 from an OAuth app's host.
    pub(crate) fn with_refresher(mut self, refresher: Option<crate::egress::Refresher>) -> Self {
        self.refresher = refresher;
        self
    }

    /// The tripwire for the vault's current and retired values.
    pub(crate) fn tripwire(&self) -> Arc<Tripwire> {
        self.tripwire.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The swap needles for the vault's current values.
    pub(crate) fn swap_needles(&self) -> Option<Arc<Needles>> {
        self.swap_needles.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// After a 401 from a request that carried an app's OAuth token
    /// (`swapped` names what it carried): refreshes the token, once per app
    /// and run, and gives the vault the new value. `true` if the request
    /// should be sent again.
    pub(crate) async fn refresh_after_401(&self, swapped: &[String]) -> bool {
        let Some(refresher) = &self.refresher else { return false };
        let Some(label) = swapped.iter().find(|l| l.ends_with(".oauth_access_token")) else { return false };
        let app = label.trim_end_matches(".oauth_access_token").to_string();
        {
            let mut tried = self.refreshed_apps.lock().unwrap_or_else(|p| p.into_inner());
            if tried.contains(&app) {
                return false;
            }
            tried.push(app.clone());
        }
        match refresher.0.refresh(&app).await {
            Ok(new) => {
                self.vault.replace_value(label, &new);
                *self.swap_needles.write().unwrap_or_else(|p| p.into_inner()) =
                    swap::swap_needles(&self.vault);
                self.logs.note(&format!("[stephost] {app} answered 401: token refreshed, request retried"));
                true
            }
            Err(reason) => {
                let reason = self.vault.redact(&reason);
                self.logs.note(&format!(
                    "[stephost] {app} answered 401 and the token could not be refreshed: {reason}"
                ));
                false
            }
        }
    }

    /// The record stage: every field redacted, then kept in the run's
    /// outcome and the audit log, and a refusal noted in the run's logs.
    pub(crate) fn keep(&self, mut record: EgressRecord) {
        if !self.vault.is_empty() {
            let redaction = self.vault.redaction();
            for field in [&mut record.method, &mut record.scheme, &mut record.host, &mut record.path] {
                *field = redaction.redact(field);
            }
            record.error = record.error.map(|e| redaction.redact(&e));
        }
        if let Some(audit) = &self.audit {
            // An audit failure must not pass silently: it goes to the host's
            // stderr (records hold no secret values).
            if let Err(e) = audit.append(&self.run_id, &self.step, AuditEvent::Request(record.clone())) {
                eprintln!("stephost: {e}");
            }
        }
        if !record.allowed {
            let r = &record;
            let why = r.error.as_deref().unwrap_or("refused");
            self.logs.note(&format!(
                "[stephost] refused {} {}://{}:{}{}: {why}",
                r.method, r.scheme, r.host, r.port, r.path
            ));
        }
        self.records.lock().unwrap_or_else(|p| p.into_inner()).push(record);
    }
}

/// An egress context for unit tests: `allowed` hosts, the vault, settings.
#[cfg(test)]
pub(crate) fn test_context(allowed: &[&str], vault: Vault, config: &super::EgressConfig) -> EgressContext {
    EgressContext::new(
        "run".into(),
        "step".into(),
        Arc::new(HostPolicy::parse(allowed).expect("test host patterns")),
        Arc::new(vault),
        EgressClient::new(config).expect("test client"),
        None,
        LogSink::new(1 << 16),
    )
}

/// A refresher for unit tests that counts its calls and hands out
/// `xoxb-refreshed-9876543210`.
#[cfg(test)]
pub(crate) struct CountingRefresher(pub(crate) Arc<std::sync::atomic::AtomicUsize>);

#[cfg(test)]
impl crate::egress::TokenRefresher for CountingRefresher {
    fn refresh(
        &self,
        _app: &str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'static>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok("xoxb-refreshed-9876543210".to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::Refresher;
    use crate::secrets::Binding;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const REAL: &str = "xoxb-real-value-0123456789";

    fn vault() -> (Vault, String) {
        let mut vault = Vault::default();
        let placeholder = vault.seal(
            "slack.oauth_access_token",
            REAL,
            Binding { hosts: Default::default(), placements: vec![] },
        );
        (vault, placeholder)
    }

    #[test]
    fn records_are_redacted_in_every_field_before_they_are_kept() {
        let (vault, placeholder) = vault();
        let context = test_context(&[], vault, &Default::default());
        context.keep(EgressRecord {
            method: REAL.to_uppercase(),
            host: format!("{REAL}.evil.example"),
            path: format!("/x/{}", hex::encode(REAL)),
            error: Some(format!("the real value {REAL} was refused")),
            ..Default::default()
        });
        let records = context.records.lock().unwrap();
        let kept = serde_json::to_string(&records[0]).unwrap();
        assert!(!kept.to_lowercase().contains(REAL) && !kept.contains(&hex::encode(REAL)), "{kept}");
        assert_eq!(records[0].host, format!("{placeholder}.evil.example"));
        let (logs, _) = context.logs.finish();
        assert!(logs[0].text.starts_with("[stephost] refused") && !logs[0].text.contains(REAL), "{logs:?}");
    }

    #[tokio::test]
    async fn a_token_is_refreshed_at_most_once_per_app_and_run_and_the_old_one_stays_redacted() {
        let (vault, placeholder) = vault();
        let calls = Arc::new(AtomicUsize::new(0));
        let context = test_context(&[], vault, &Default::default())
            .with_refresher(Some(Refresher(Arc::new(CountingRefresher(calls.clone())))));
        let carried = ["slack.oauth_access_token".to_string()];
        assert!(context.refresh_after_401(&carried).await, "the first 401 refreshes");
        assert!(!context.refresh_after_401(&carried).await, "a second 401 does not");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(
            !context.refresh_after_401(&["env.KEY".to_string()]).await,
            "only OAuth tokens are refreshed"
        );
        assert_eq!(context.vault.redact(REAL), placeholder, "the retired token is still redacted");
        assert_eq!(context.vault.redact("xoxb-refreshed-9876543210"), placeholder);
        assert!(context.tripwire().found_in(REAL).is_some(), "and still refused in a request's head");
    }
}
