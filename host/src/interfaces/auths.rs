//! `stephost:step/auths`: the step's connected accounts.

use crate::bindings::stephost::step::auths::Host;
use crate::state::StepState;

impl StepState {
    fn account(&self, app: &str) -> Option<&[(String, String)]> {
        self.input.auths.iter().find(|(name, _)| name == app).map(|(_, fields)| fields.as_slice())
    }
}

impl Host for StepState {
    fn apps(&mut self) -> Vec<String> {
        self.input.auths.iter().map(|(name, _)| name.clone()).collect()
    }

    fn keys(&mut self, app: String) -> Vec<String> {
        self.account(&app).into_iter().flatten().map(|(key, _)| key.clone()).collect()
    }

    fn get(&mut self, app: String, key: String) -> Option<String> {
        let fields = self.account(&app)?;
        fields.iter().find(|(k, _)| *k == key).map(|(_, value)| value.clone())
    }
}
