//! `stephost:step/steps`: earlier steps' results.

use crate::runtime::bindings::stephost::step::steps::Host;
use crate::runtime::outcome::StepInput;
use std::sync::Arc;

/// The run's input, shared with `event`.
pub(crate) struct StepsContext {
    pub(crate) input: Arc<StepInput>,
}

impl Host for StepsContext {
    fn names(&mut self) -> Vec<String> {
        self.input.steps.iter().map(|(name, _)| name.clone()).collect()
    }

    fn get(&mut self, name: String) -> Option<String> {
        self.input.steps.iter().find(|(n, _)| *n == name).map(|(_, result)| result.to_string())
    }
}
