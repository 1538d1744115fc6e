//! OAuth 2.0 for connected accounts: the authorization-code flow with PKCE
//! on a loopback redirect (`accounts connect APP --oauth`), and refreshing
//! an access token through the app's token endpoint before a run, stored
//! atomically and audited.

use crate::audit::{AuditEvent, AuditSink};
use crate::catalog::{App, OAuthEndpoints};
use crate::egress::{Refresher, TokenRefresher};
use crate::store::{Accounts, OAuthState, StoreError};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A token is refreshed when it expires within this margin.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The longest a token endpoint may take to answer, body included: a
/// refresh holds up the runs waiting for it.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read from a token endpoint.
const MAX_TOKEN_ANSWER: usize = 256 << 10;

/// Why an OAuth step failed; one line, never holding a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error(
        "the {app} account `{account}` could not be refreshed: {reason}; reconnect it with `stephost accounts connect {app} --name {account} --oauth`"
    )]
    /// An account's token could not be refreshed (before a run or after a
    /// 401); the message says how to reconnect it.
    RefreshFailed {
        /// The catalog app, e.g. `slack`.
        app: String,
        /// The account's name.
        account: String,
        /// Why; never a token or secret.
        reason: String,
    },
    /// A token request failed: no refresh token to send, an endpoint URL
    /// that is not allowed, no answer, or an error or unusable answer (a
    /// redirect, not JSON, no `access_token`, too large).
    #[error("the token endpoint {url} refused: {reason}")]
    Token {
        /// The token endpoint.
        url: String,
        /// Why, secrets redacted.
        reason: String,
    },
    /// The browser step of `accounts connect --oauth` failed: the provider
    /// answered an error, the `state` did not match, or no code came.
    #[error("the authorization failed: {0}")]
    Authorization(String),
    /// The account's OAuth state could not be read or stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tokens a token endpoint issued.
pub struct Tokens {
    /// The new access token.
    pub access_token: String,
    /// A new refresh token, if the endpoint issued (or rotated) one.
    pub refresh_token: Option<String>,
    /// When the access token expires, ms since the Unix epoch, from
    /// `expires_in`; `None` if the endpoint did not say.
    pub expires_ms: Option<u64>,
    /// The user the token belongs to, when the endpoint says
    /// (`authed_user.id`, `user_id`, `uid`).
    pub uid: Option<String>,
}

/// A PKCE verifier and its S256 challenge, plus the `state` value.
pub struct Pkce {
    /// 32 random bytes, base64url: sent only with the code exchange.
    pub verifier: String,
    /// Base64url SHA-256 of the verifier, sent in the authorize URL.
    pub challenge: String,
    /// 16 random bytes, base64url: the redirect must carry it back, so a
    /// forged or stale redirect is refused.
    pub state: String,
}

impl Pkce {
    /// A fresh verifier, challenge and state from the OS random generator.
    pub fn new() -> Self {
        let verifier = random_urlsafe(32);
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self { verifier, challenge, state: random_urlsafe(16) }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

fn random_urlsafe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// The URL the user opens to authorize.
pub fn authorize_url(endpoints: &OAuthEndpoints, client_id: &str, redirect_uri: &str, pkce: &Pkce) -> String {
    let mut url = url::Url::parse(&endpoints.authorize_url).expect("catalog URLs are valid");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &endpoints.scopes.join(" "))
        .append_pair("state", &pkce.state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    url.into()
}

/// Waits for the provider's redirect to `http://127.0.0.1:PORT/callback`
/// on `listener` and returns the code, checking `state`.
pub async fn receive_code(listener: tokio::net::TcpListener, state: &str) -> Result<String, OAuthError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, String>>(1);
    let expected = state.to_string();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |query: axum::extract::Query<std::collections::HashMap<String, String>>| {
            let tx = tx.clone();
            let expected = expected.clone();
            async move {
                let result = if let Some(error) = query.get("error") {
                    Err(format!("the provider answered {error}"))
                } else if query.get("state") != Some(&expected) {
                    Err("the state does not match (a stale or forged redirect)".into())
                } else {
                    query.get("code").cloned().ok_or_else(|| "the redirect has no code".to_string())
                };
                let page = match &result {
                    Ok(_) => "Connected. You can close this tab and go back to the terminal.",
                    Err(_) => "Not connected: see the terminal.",
                };
                let _ = tx.send(result).await;
                page
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let result = rx.recv().await.unwrap_or_else(|| Err("the redirect listener stopped".into()));
    server.abort();
    result.map_err(OAuthError::Authorization)
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: Option<&str>,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Tokens, OAuthError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", client_id),
        ("code_verifier", verifier),
    ];
    if let Some(secret) = client_secret {
        form.push(("client_secret", secret));
    }
    token_request(http, token_url, &form).await
}

/// Uses a refresh token.
pub async fn refresh(http: &reqwest::Client, oauth: &OAuthState) -> Result<Tokens, OAuthError> {
    let refresh_token = oauth.refresh_token.as_deref().ok_or_else(|| OAuthError::Token {
        url: oauth.token_url.clone(),
        reason: "the account has no refresh token".into(),
    })?;
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", oauth.client_id.as_str()),
    ];
    if let Some(secret) = oauth.client_secret.as_deref() {
        form.push(("client_secret", secret));
    }
    token_request(http, &oauth.token_url, &form).await
}

/// A token request: sent with the runtime's egress client (no redirects
/// followed, the SSRF guard on every name, `--resolve` pins and extra CA
/// roots honoured) to a URL that is not an internal address written as an IP.
async fn token_request(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Tokens, OAuthError> {
    // A reason may echo what was sent: the form's secrets never reach a
    // message, the audit log or the account's status.
    let secrets: Vec<&str> = form
        .iter()
        .filter(|(key, value)| {
            matches!(*key, "refresh_token" | "client_secret" | "code" | "code_verifier") && !value.is_empty()
        })
        .map(|(_, value)| *value)
        .collect();
    let fail = |reason: String| {
        let reason = secrets.iter().fold(reason, |text, secret| text.replace(secret, "[redacted]"));
        OAuthError::Token { url: url.to_string(), reason }
    };
    let parsed = url::Url::parse(url).map_err(|e| fail(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(fail(format!("the scheme `{}` is not http or https", parsed.scheme())));
    }
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::from(v4)),
        Some(url::Host::Ipv6(v6)) => Some(v6.into()),
        _ => None,
    };
    if let Some(why) = ip.and_then(crate::policy::forbidden_reason) {
        return Err(fail(format!("it is {why}; name it and point the name there with --resolve")));
    }
    let response = http
        .post(url)
        .header("accept", "application/json")
        .form(form)
        .timeout(TOKEN_TIMEOUT)
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    let status = response.status();
    if status.is_redirection() {
        // Following it would send the refresh token and client secret on.
        return Err(fail(format!("it answered a redirect (HTTP {status}), which is not followed")));
    }
    let mut response = response;
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.without_url().to_string()))? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_TOKEN_ANSWER {
            return Err(fail(format!("the answer is over {} KiB", MAX_TOKEN_ANSWER >> 10)));
        }
    }
    let body: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| fail(format!("HTTP {status}, not JSON")))?;
    let text = |key: &str| body.get(key).and_then(|v| v.as_str()).map(String::from);
    // Slack answers 200 with {"ok": false, "error": …}.
    if !status.is_success()
        || body.get("ok") == Some(&serde_json::Value::Bool(false))
        || text("error").is_some()
    {
        let reason =
            text("error_description").or_else(|| text("error")).unwrap_or_else(|| format!("HTTP {status}"));
        return Err(fail(reason));
    }
    let access_token = text("access_token").ok_or_else(|| fail("no access_token in the answer".into()))?;
    let expires_ms = body
        .get("expires_in")
        .and_then(|v| v.as_u64())
        .map(|secs| crate::base::clock::now_ms() as u64 + secs * 1000);
    let uid = body
        .pointer("/authed_user/id")
        .or_else(|| body.get("user_id"))
        .or_else(|| body.get("uid"))
        .and_then(|v| v.as_str().map(String::from).or_else(|| v.as_u64().map(|n| n.to_string())));
    Ok(Tokens { access_token, refresh_token: text("refresh_token"), expires_ms, uid })
}

/// Refreshes OAuth accounts' access tokens, on every path that runs steps
/// (`stephost run`, `workflow run`, the server's triggered and scheduled
/// runs): before a run when a token is due, and during one after a 401. It
/// refreshes one account at a time (a refresh token may be good for one
/// use only).
pub struct AccountRefresher {
    catalog: Arc<crate::catalog::Catalog>,
    http: reqwest::Client,
    audit: Option<Arc<dyn AuditSink>>,
    /// The accounts' store: the server's backend, or the CLI's SQLite.
    accounts: Arc<dyn Accounts>,
    /// Held for a whole refresh, so two never use one refresh token.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl AccountRefresher {
    /// A refresher for the accounts in `accounts`, sending token requests
    /// with the runtime's egress client and auditing to its log.
    pub fn new(accounts: Arc<dyn Accounts>, runtime: &crate::Runtime) -> Arc<Self> {
        Arc::new(Self {
            catalog: runtime.catalog_handle(),
            http: runtime.token_client(),
            audit: runtime.audit_log(),
            accounts,
            one_at_a_time: tokio::sync::Mutex::new(()),
        })
    }

    /// Before a run: refreshes each of `accounts` (app, account name) that
    /// is an OAuth account whose token expires within [`REFRESH_MARGIN`]. A
    /// failed refresh marks the account and is an error naming it.
    pub async fn refresh_due(&self, accounts: &[(String, String)]) -> Result<(), OAuthError> {
        for (app, account) in accounts {
            let Some(known) = self.catalog.get(app) else { continue };
            let _one = self.one_at_a_time.lock().await;
            // A missing account is reported where it is used, with more context.
            let oauth = match self.accounts.oauth(&known.name, account).await {
                Ok(Some(oauth)) => oauth,
                Ok(None) | Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if oauth.expires_ms.is_some_and(|at| {
                at <= crate::base::clock::now_ms() as u64 + REFRESH_MARGIN.as_millis() as u64
            }) {
                self.refresh_with(known, account, &oauth).await?;
            }
        }
        Ok(())
    }

    /// Refreshes an account's token now and stores it; returns the new
    /// token.
    pub async fn refresh_now(&self, app: &str, account: &str) -> Result<String, OAuthError> {
        let known = self.catalog.get(app).ok_or_else(|| OAuthError::RefreshFailed {
            app: app.to_string(),
            account: account.to_string(),
            reason: "the app is not in the catalog".into(),
        })?;
        let _one = self.one_at_a_time.lock().await;
        let oauth =
            self.accounts.oauth(&known.name, account).await?.ok_or_else(|| OAuthError::RefreshFailed {
                app: app.to_string(),
                account: account.to_string(),
                reason: "not an OAuth account".into(),
            })?;
        self.refresh_with(known, account, &oauth).await
    }

    /// The refresher a run's egress calls after a 401, for the run's
    /// `accounts` (app, account name); `None` if it has none.
    pub fn for_run(self: &Arc<Self>, accounts: Vec<(String, String)>) -> Option<Refresher> {
        (!accounts.is_empty())
            .then(|| Refresher(Arc::new(RunRefresher { refresher: self.clone(), accounts })))
    }

    /// Refreshes and stores the tokens; audited, a failure marks the
    /// account.
    async fn refresh_with(&self, app: &App, account: &str, oauth: &OAuthState) -> Result<String, OAuthError> {
        let outcome = refresh(&self.http, oauth).await;
        if let Some(audit) = &self.audit {
            let event = AuditEvent::TokenRefresh {
                app: app.name.clone(),
                account: account.to_string(),
                ok: outcome.is_ok(),
                error: outcome.as_ref().err().map(|e| e.to_string()),
            };
            if let Err(e) = audit.append("-", "-", event) {
                eprintln!("stephost: {e}");
            }
        }
        match outcome {
            Ok(tokens) => {
                self.accounts
                    .update_tokens(
                        &app.name,
                        account,
                        &tokens.access_token,
                        tokens.refresh_token.as_deref(),
                        tokens.expires_ms,
                    )
                    .await?;
                Ok(tokens.access_token)
            }
            Err(error) => {
                let reason = match &error {
                    OAuthError::Token { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                self.accounts.set_status(&app.name, account, &format!("refresh failed: {reason}")).await?;
                Err(OAuthError::RefreshFailed { app: app.name.clone(), account: account.to_string(), reason })
            }
        }
    }
}

/// The [`TokenRefresher`] of one run: its accounts, refreshed through the
/// shared [`AccountRefresher`].
struct RunRefresher {
    refresher: Arc<AccountRefresher>,
    accounts: Vec<(String, String)>,
}

impl TokenRefresher for RunRefresher {
    fn refresh(&self, app: &str) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'static>> {
        let refresher = self.refresher.clone();
        let account = self.accounts.iter().find(|(a, _)| a == app).map(|(_, name)| name.clone());
        let app = app.to_string();
        Box::pin(async move {
            let account = account.ok_or_else(|| "not an account of this run".to_string())?;
            refresher.refresh_now(&app, &account).await.map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        let pkce = Pkce::new();
        let expected =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(pkce.verifier.as_bytes()));
        assert_eq!(pkce.challenge, expected);
        assert!(pkce.verifier.len() >= 43, "RFC 7636 wants at least 43 characters");
        assert_ne!(Pkce::new().state, pkce.state);
    }
}
