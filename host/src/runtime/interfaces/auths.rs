//! `stephost:step/auths`: the step's connected accounts, secret fields as
//! sealed placeholders; each secret read goes to the audit log.

use crate::audit::{AuditEvent, AuditSink};
use crate::runtime::bindings::stephost::step::auths::Host;
use std::sync::Arc;

/// One app's account as the step sees it: secret values sealed.
pub(crate) struct ShownAccount {
    pub(crate) app: String,
    /// Key, value shown to the step, and whether it is a sealed secret.
    pub(crate) fields: Vec<(String, String, bool)>,
}

/// The run's accounts as the step may see them, and where reads of a
/// secret are recorded.
pub(crate) struct AuthsContext {
    pub(crate) run_id: String,
    pub(crate) step_name: String,
    pub(crate) accounts: Vec<ShownAccount>,
    pub(crate) audit: Option<Arc<dyn AuditSink>>,
}

impl AuthsContext {
    fn account(&self, app: &str) -> Option<&ShownAccount> {
        self.accounts.iter().find(|account| account.app == app)
    }
}

impl Host for AuthsContext {
    fn apps(&mut self) -> Vec<String> {
        self.accounts.iter().map(|account| account.app.clone()).collect()
    }

    fn keys(&mut self, app: String) -> Vec<String> {
        self.account(&app).into_iter().flat_map(|a| &a.fields).map(|(key, _, _)| key.clone()).collect()
    }

    fn get(&mut self, app: String, key: String) -> Option<String> {
        let (_, shown, secret) = self.account(&app)?.fields.iter().find(|(k, _, _)| *k == key)?.clone();
        if secret && let Some(audit) = &self.audit {
            let read = AuditEvent::SecretRead { app, key };
            if let Err(e) = audit.append(&self.run_id, &self.step_name, read) {
                eprintln!("stephost: {e}");
            }
        }
        Some(shown)
    }
}
