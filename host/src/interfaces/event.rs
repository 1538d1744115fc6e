//! `stephost:step/event`: the trigger event.

use crate::bindings::stephost::step::event::Host;
use crate::state::StepState;

impl Host for StepState {
    fn get(&mut self) -> String {
        self.input.event.clone()
    }
}
