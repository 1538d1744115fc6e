//! The audit chain in the shared database (to be written).
