//! The management API's bearer token: `STEPHOST_API_TOKEN`, or one made on
//! first start, printed once and stored only as its SHA-256; compared in
//! constant time.

use super::{ApiError, AppState};
use crate::store::{Backend, Store, StoreError};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The environment variable that sets the token.
pub const TOKEN_ENV: &str = "STEPHOST_API_TOKEN";

/// The token's hash, and the token itself if it was generated now.
pub(super) fn token_hash(store: &Store) -> Result<([u8; 32], Option<String>), StoreError> {
    if let Ok(token) = std::env::var(TOKEN_ENV)
        && !token.is_empty()
    {
        return Ok((Sha256::digest(token.as_bytes()).into(), None));
    }
    if let Some(stored) = store.meta("api_token_sha256")?
        && let Ok(hash) = <[u8; 32]>::try_from(stored.as_slice())
    {
        return Ok((hash, None));
    }
    let token = format!("sht_{}", crate::base::ids::unguessable_hex());
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    store.set_meta("api_token_sha256", &hash)?;
    Ok((hash, Some(token)))
}

/// [`token_hash`] on a store several nodes share: of nodes starting at
/// once on a new database, the first to store a made token wins and the
/// others take its hash (only the winner prints its token).
pub(super) async fn shared_token_hash(store: &dyn Backend) -> Result<([u8; 32], Option<String>), StoreError> {
    if let Ok(token) = std::env::var(TOKEN_ENV)
        && !token.is_empty()
    {
        return Ok((Sha256::digest(token.as_bytes()).into(), None));
    }
    let token = format!("sht_{}", crate::base::ids::unguessable_hex());
    let made: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let stored = store.init_meta("api_token_sha256", &made).await?;
    let hash = <[u8; 32]>::try_from(stored.as_slice())
        .map_err(|_| StoreError::Invalid("the stored API token hash is not 32 bytes".into()))?;
    Ok((hash, (hash == made).then_some(token)))
}

/// Lets a request through only with `Authorization: Bearer <token>`.
pub(super) async fn require(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let hash: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    if bool::from(hash.ct_eq(&state.token_hash)) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError(StatusCode::UNAUTHORIZED, format!("a valid bearer token is required ({TOKEN_ENV})")))
    }
}
