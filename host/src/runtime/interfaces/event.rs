//! `stephost:step/event`: the trigger event.

use crate::runtime::bindings::stephost::step::event::Host;
use crate::runtime::state::StepState;

impl Host for StepState {
    fn get(&mut self) -> String {
        self.input.event.clone()
    }
}
