//! `stephost:step/auths`: the step's connected accounts, secret fields as
//! sealed placeholders; reads of a secret are counted, and the run writes
//! one audit record per secret with its count when it ends.

use crate::runtime::bindings::stephost::step::auths::Host;
use std::collections::BTreeMap;

/// One app's account as the step sees it: secret values sealed.
pub(crate) struct ShownAccount {
    pub(crate) app: String,
    /// Key, value shown to the step, and whether it is a sealed secret.
    pub(crate) fields: Vec<(String, String, bool)>,
}

/// The run's accounts as the step may see them, and how many times it read
/// each secret field (by app and key). Counting here, not appending to the
/// audit log per call, keeps a step that reads in a loop from growing the
/// log per call.
pub(crate) struct AuthsContext {
    pub(crate) accounts: Vec<ShownAccount>,
    pub(crate) reads: BTreeMap<(String, String), u64>,
}

impl AuthsContext {
    pub(crate) fn new(accounts: Vec<ShownAccount>) -> Self {
        Self { accounts, reads: BTreeMap::new() }
    }

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
        if secret {
            *self.reads.entry((app, key)).or_default() += 1;
        }
        Some(shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_reads_are_counted_per_field_and_plain_ones_not_at_all() {
        let mut auths = AuthsContext::new(vec![ShownAccount {
            app: "slack".into(),
            fields: vec![("token".into(), "sealed".into(), true), ("uid".into(), "U1".into(), false)],
        }]);
        for _ in 0..1000 {
            assert_eq!(auths.get("slack".into(), "token".into()).as_deref(), Some("sealed"));
        }
        auths.get("slack".into(), "uid".into());
        auths.get("slack".into(), "missing".into());
        assert_eq!(auths.reads.into_iter().collect::<Vec<_>>(), [(("slack".into(), "token".into()), 1000)]);
    }
}
