//! The egress state of one run, shared by its requests: the policy, the
//! vault, the compiled swap needles, the caps, the refresher, and where
//! records go.

use super::client::EgressClient;
use super::policy::HostPolicy;
use super::rewrite::Needles;
use super::{EgressRecord, swap};
use crate::audit::{AuditEvent, AuditLog};
use crate::logs::LogSink;
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
    /// Refreshes an OAuth token after a 401; each app at most once a run.
    pub(crate) refresher: Option<crate::oauth::Refresher>,
    refreshed_apps: Mutex<Vec<String>>,
    pub(crate) client: EgressClient,
    pub(crate) audit: Option<Arc<AuditLog>>,
    pub(crate) records: Mutex<Vec<EgressRecord>>,
    /// The run's logs, where refusals are noted for the step's author.
    pub(crate) logs: LogSink,
    /// Requests attempted so far, against the per-run cap.
    pub(crate) attempts: AtomicU64,
    /// Requests under way at once, at most [`MAX_IN_FLIGHT`].
    pub(crate) in_flight: tokio::sync::Semaphore,
    /// Set once the step tried to send a real secret where it may not go.
    pub(crate) closed: AtomicBool,
}

impl EgressContext {
    /// The egress state of one run.
    pub(crate) fn new(
        run_id: String,
        step: String,
        policy: Arc<HostPolicy>,
        vault: Arc<Vault>,
        client: EgressClient,
        audit: Option<Arc<AuditLog>>,
        logs: LogSink,
    ) -> Self {
        Self {
            run_id,
            step,
            policy,
            swap_needles: RwLock::new(swap::swap_needles(&vault)),
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
        }
    }

    /// Adds the refresher used after a 401 from an OAuth app's host.
    pub(crate) fn with_refresher(mut self, refresher: Option<crate::oauth::Refresher>) -> Self {
        self.refresher = refresher;
        self
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
