//! The lowest rules layer: which destinations a step may reach (host
//! patterns, Spin's syntax), where a secret may appear in a request
//! (placements), and which addresses are never reachable. Pure data and
//! checks; it imports only `base`.

mod addresses;
mod hosts;
mod placement;

pub use addresses::forbidden_reason;
pub use hosts::{HostPattern, HostPolicy, PatternError, default_port, normalize_host};
pub use placement::{Binding, Placement};
