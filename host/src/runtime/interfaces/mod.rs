//! Host side of the `stephost:step` interfaces, one file per interface,
//! each with its own small context (Spin's and wasi-config's shape): the
//! linker hands `event` only the event, `auths` only the sealed accounts.

mod auths;
mod egress;
mod event;
mod flow;
mod steps;

pub(crate) use auths::{AuthsContext, ShownAccount};
pub(crate) use event::EventContext;
pub(crate) use flow::{ExitRequested, FlowContext, Produced};
pub(crate) use steps::StepsContext;

use super::bindings::stephost::step;
use super::state::StepState;
use wasmtime::component::{HasSelf, Linker};

/// Links the five interfaces, each to its own part of the store data.
pub(crate) fn add_to_linker(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    step::event::add_to_linker::<_, HasSelf<EventContext>>(linker, |state| &mut state.event)?;
    step::steps::add_to_linker::<_, HasSelf<StepsContext>>(linker, |state| &mut state.steps)?;
    step::auths::add_to_linker::<_, HasSelf<AuthsContext>>(linker, |state| &mut state.auths)?;
    step::flow::add_to_linker::<_, HasSelf<FlowContext>>(linker, |state| &mut state.flow)?;
    egress::add_to_linker(linker)?;
    Ok(())
}
