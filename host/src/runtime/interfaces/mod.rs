//! Host side of the `stephost:step` interfaces, one file per interface.

mod auths;
mod event;
mod flow;
mod steps;

pub(crate) use flow::ExitRequested;
