//! `accounts connect APP --oauth`: connecting an account with the
//! authorization-code flow.

use anyhow::{Context, Result, anyhow};
use stephost::Runtime;
use stephost::store::Backend;

/// The OAuth app the user registered, and the loopback port it redirects to.
pub struct OAuthClient {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub port: u16,
}

/// `accounts connect APP --oauth`: the authorization-code flow with PKCE.
pub async fn connect_oauth(
    store: &dyn Backend,
    runtime: &Runtime,
    app: &str,
    name: &str,
    fields: Vec<(String, String)>,
    client: OAuthClient,
) -> Result<()> {
    use stephost::workflow::oauth;
    let OAuthClient { client_id, client_secret, port } = client;
    let catalog = runtime.catalog();
    let known = catalog.require(app)?;
    let endpoints = known.oauth.clone().ok_or_else(|| anyhow!("app `{app}` does not use OAuth"))?;
    let client_id =
        client_id.ok_or_else(|| anyhow!("--oauth needs --client-id (or STEPHOST_OAUTH_CLIENT_ID)"))?;
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", port)).await.context("the redirect listener")?;
    let redirect_uri = format!("http://127.0.0.1:{}/callback", listener.local_addr()?.port());
    let pkce = oauth::Pkce::new();
    println!("Open this URL to connect {app} (redirect: {redirect_uri}):");
    println!("{}", oauth::authorize_url(&endpoints, &client_id, &redirect_uri, &pkce));
    use std::io::Write;
    std::io::stdout().flush()?;
    let code = oauth::receive_code(listener, &pkce.state).await?;
    let tokens = oauth::exchange_code(
        &runtime.token_client(),
        &endpoints.token_url,
        &client_id,
        client_secret.as_deref(),
        &code,
        &redirect_uri,
        &pkce.verifier,
    )
    .await?;
    let mut values: Vec<(String, String)> = vec![("oauth_access_token".into(), tokens.access_token.clone())];
    if let (Some(uid), Some(_)) = (&tokens.uid, known.field("oauth_uid")) {
        values.push(("oauth_uid".into(), uid.clone()));
    }
    values.extend(fields);
    store.connect_account(catalog, app, name, &values).await?;
    store
        .set_oauth(
            app,
            name,
            &stephost::store::OAuthState {
                token_url: endpoints.token_url.clone(),
                client_id,
                client_secret,
                refresh_token: tokens.refresh_token,
                expires_ms: tokens.expires_ms,
            },
        )
        .await?;
    Ok(())
}
