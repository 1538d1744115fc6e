//! `stephost bench suite`: every comparison with the alternatives in one
//! run.

mod machine;
mod measure;
mod peers;
pub mod report;
pub mod suite;
