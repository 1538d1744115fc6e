//! `stephost:step/auths`: the step's connected accounts, secret fields as
//! sealed placeholders; each secret read goes to the audit log.

use crate::audit::AuditEvent;
use crate::runtime::bindings::stephost::step::auths::Host;
use crate::runtime::state::{ShownAccount, StepState};

impl StepState {
    fn account(&self, app: &str) -> Option<&ShownAccount> {
        self.accounts.iter().find(|account| account.app == app)
    }
}

impl Host for StepState {
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
            if let Err(e) = audit.append(&self.run_id, &self.input.step_name, read) {
                eprintln!("stephost: {e}");
            }
        }
        Some(shown)
    }
}
