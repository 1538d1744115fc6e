//! `stephost:step/steps`: earlier steps' results.

use crate::runtime::bindings::stephost::step::steps::Host;
use crate::runtime::state::StepState;

impl Host for StepState {
    fn names(&mut self) -> Vec<String> {
        self.input.steps.iter().map(|(name, _)| name.clone()).collect()
    }

    fn get(&mut self, name: String) -> Option<String> {
        self.input.steps.iter().find(|(n, _)| *n == name).map(|(_, result)| result.clone())
    }
}
