//! The wall clock every layer reads (records, logs, the audit log, token
//! expiry, the store): one function, so a test or a later injectable clock
//! has one place to change. The server's schedulers wait through
//! [`crate::server::clock::Clock`], which tests move by hand.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
