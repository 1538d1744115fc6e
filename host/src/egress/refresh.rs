//! The seam through which the refresh-and-retry stage gets a new OAuth
//! token. Egress only declares it; the workflow layer, which owns accounts
//! and the store, implements it and hands it down in each run's config.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Refreshes an app's access token during a run, when one of its hosts
/// answered 401: the egress hook calls it once per app and run, then retries
/// the request with the new token.
pub trait TokenRefresher: Send + Sync {
    /// The new access token of the run's account of `app`, or why not.
    fn refresh(&self, app: &str) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'static>>;
}

/// A [`TokenRefresher`] a step config can carry.
#[derive(Clone)]
pub struct Refresher(pub Arc<dyn TokenRefresher>);

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Refresher")
    }
}
