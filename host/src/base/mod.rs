//! The lowest layer: small things every other layer uses (the clock,
//! identifiers, names, units, private directories). It imports nothing of
//! stephost's.

pub mod clock;
pub mod files;
pub mod ids;
pub mod memory;
pub mod names;
pub mod units;
pub mod wire;
