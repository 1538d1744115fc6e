//! The time every layer goes by. [`now_ms`] is the wall clock records, logs,
//! the audit log, token expiry and the store read; [`Clock`] is the
//! injectable one the server's scheduler and pruner wait on, which tests
//! replace with a [`ManualClock`] they move by hand, so timer triggers are
//! tested without waiting for real time to pass.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Milliseconds since the Unix epoch, and a way to wait for a moment.
#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Returns once `now_ms() >= at_ms`, or earlier (callers look again).
    async fn sleep_until(&self, at_ms: i64);
}

/// The real time.
#[derive(Debug, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }

    async fn sleep_until(&self, at_ms: i64) {
        let wait = (at_ms - self.now_ms()).max(0) as u64;
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
}

/// A clock that stands still until [`ManualClock::set`] moves it.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
    moved: tokio::sync::Notify,
}

impl ManualClock {
    /// A clock standing at `now_ms`, milliseconds since the Unix epoch.
    pub fn new(now_ms: i64) -> Self {
        Self { now: AtomicI64::new(now_ms), moved: tokio::sync::Notify::new() }
    }

    /// Moves the clock to `now_ms` and wakes everything waiting on it.
    pub fn set(&self, now_ms: i64) {
        self.now.store(now_ms, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    async fn sleep_until(&self, at_ms: i64) {
        loop {
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            if self.now_ms() >= at_ms {
                return;
            }
            moved.await;
        }
    }
}
