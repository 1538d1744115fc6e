//! `stephost:step/event`: the trigger event.

use crate::runtime::bindings::stephost::step::event::Host;
use crate::runtime::outcome::StepInput;
use std::sync::Arc;

/// The run's input, shared with `steps` (no copy of the event per run).
pub(crate) struct EventContext {
    pub(crate) input: Arc<StepInput>,
}

impl Host for EventContext {
    fn get(&mut self) -> String {
        self.input.event.to_string()
    }
}
