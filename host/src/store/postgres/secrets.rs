//! Accounts and environment variables on PostgreSQL, secret values sealed
//! under the master key every node shares, bound to where they belong as on
//! SQLite (a ciphertext moved to another account, field or variable does
//! not open).

use super::Postgres;
use crate::catalog::Catalog;
use crate::store::{
    AccountSummary, Accounts, EnvSummary, EnvVars, OAuthState, StoreError, StoredEnv, StoredField,
    check_account, field_context, oauth_context, stored_env,
};
use async_trait::async_trait;

/// What a secret value reads as where it is listed.
const MASKED: &str = "••••••••";

fn no_account(app: &str, name: &str) -> StoreError {
    StoreError::NotFound(format!("no `{app}` account named `{name}` (see `stephost accounts list`)"))
}

impl Postgres {
    /// An account's row id; [`StoreError::NotFound`] if there is none.
    async fn account_id(&self, app: &str, name: &str) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT id FROM accounts WHERE app = $1 AND name = $2", &[&app, &name])
            .await
            .map_err(self.db())?;
        row.map(|r| r.get(0)).ok_or_else(|| no_account(app, name))
    }

    /// Opens a sealed value as text.
    fn open_text(&self, blob: &[u8], context: &str, what: &str) -> Result<String, StoreError> {
        crate::store::open_text(&self.key, blob, context, what)
    }
}

#[async_trait]
impl Accounts for Postgres {
    async fn connect_account(
        &self,
        catalog: &Catalog,
        app: &str,
        name: &str,
        fields: &[(String, String)],
    ) -> Result<(), StoreError> {
        let known = check_account(catalog, app, name, fields)?;
        let sealed: Vec<(bool, Option<&str>, Option<Vec<u8>>)> = fields
            .iter()
            .map(|(key, value)| {
                if known.field(key).is_some_and(|f| f.secret) {
                    (true, None, Some(self.key.seal(value.as_bytes(), &field_context(app, name, key))))
                } else {
                    (false, Some(value.as_str()), None)
                }
            })
            .collect();
        let mut client = self.client().await?;
        let db = self.db();
        let tx = client.transaction().await.map_err(&db)?;
        // Replacing drops the old fields and OAuth state with the old row.
        tx.execute("DELETE FROM accounts WHERE app = $1 AND name = $2", &[&app, &name]).await.map_err(&db)?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO accounts (app, name, created_ms) VALUES ($1, $2, $3) RETURNING id",
                &[&app, &name, &self.clock.now_ms()],
            )
            .await
            .map_err(&db)?
            .get(0);
        for (position, ((key, _), (secret, plain, sealed))) in fields.iter().zip(&sealed).enumerate() {
            tx.execute(
                "INSERT INTO account_fields (account_id, position, key, secret, plain, sealed) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &(position as i32), key, secret, plain, sealed],
            )
            .await
            .map_err(&db)?;
        }
        tx.commit().await.map_err(&db)
    }

    async fn account_fields(&self, app: &str, name: &str) -> Result<Vec<StoredField>, StoreError> {
        let id = self.account_id(app, name).await?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key, secret, plain, sealed FROM account_fields WHERE account_id = $1 ORDER BY position",
                &[&id],
            )
            .await
            .map_err(self.db())?;
        let mut fields = Vec::with_capacity(rows.len());
        for row in rows {
            let (key, secret): (String, bool) = (row.get(0), row.get(1));
            let value = match (secret, row.get::<_, Option<String>>(2), row.get::<_, Option<Vec<u8>>>(3)) {
                (true, _, Some(blob)) => {
                    self.open_text(&blob, &field_context(app, name, &key), &format!("{app}/{name} {key}"))?
                }
                (false, Some(plain), _) => plain,
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "{app}/{name} {key}: the stored field is damaged"
                    )));
                }
            };
            fields.push(StoredField { key, secret, value });
        }
        client
            .execute("UPDATE accounts SET last_used_ms = $1 WHERE id = $2", &[&self.clock.now_ms(), &id])
            .await
            .map_err(self.db())?;
        Ok(fields)
    }

    async fn list_accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        let client = self.client().await?;
        let accounts = client
            .query(
                "SELECT id, app, name, created_ms, last_used_ms, expires_ms, status FROM accounts ORDER BY app, name",
                &[],
            )
            .await
            .map_err(self.db())?;
        let fields = client
            .query(
                "SELECT account_id, key, secret, plain FROM account_fields ORDER BY account_id, position",
                &[],
            )
            .await
            .map_err(self.db())?;
        Ok(accounts
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                AccountSummary {
                    app: r.get(1),
                    name: r.get(2),
                    fields: fields
                        .iter()
                        .filter(|f| f.get::<_, i64>(0) == id)
                        .map(|f| {
                            let shown = if f.get::<_, bool>(2) {
                                MASKED.to_string()
                            } else {
                                f.get::<_, Option<String>>(3).unwrap_or_default()
                            };
                            (f.get(1), shown)
                        })
                        .collect(),
                    created_ms: r.get::<_, i64>(3) as u64,
                    last_used_ms: r.get::<_, Option<i64>>(4).map(|v| v as u64),
                    expires_ms: r.get::<_, Option<i64>>(5).map(|v| v as u64),
                    status: r.get(6),
                }
            })
            .collect())
    }

    async fn remove_account(&self, app: &str, name: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute("DELETE FROM accounts WHERE app = $1 AND name = $2", &[&app, &name])
            .await
            .map_err(self.db())?;
        if removed == 0 {
            return Err(StoreError::NotFound(format!("no `{app}` account named `{name}`")));
        }
        Ok(())
    }

    async fn set_oauth(&self, app: &str, name: &str, oauth: &OAuthState) -> Result<(), StoreError> {
        let id = self.account_id(app, name).await?;
        let seal = |value: &Option<String>, what: &str| {
            value.as_ref().map(|v| self.key.seal(v.as_bytes(), &oauth_context(app, name, what)))
        };
        let (secret, refresh) =
            (seal(&oauth.client_secret, "client_secret"), seal(&oauth.refresh_token, "refresh_token"));
        let mut client = self.client().await?;
        let db = self.db();
        let tx = client.transaction().await.map_err(&db)?;
        tx.execute(
            "INSERT INTO account_oauth (account_id, token_url, client_id, client_secret, refresh_token) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id) DO UPDATE SET token_url = EXCLUDED.token_url, client_id = EXCLUDED.client_id,
                 client_secret = EXCLUDED.client_secret, refresh_token = EXCLUDED.refresh_token",
            &[&id, &oauth.token_url, &oauth.client_id, &secret, &refresh],
        )
        .await
        .map_err(&db)?;
        tx.execute(
            "UPDATE accounts SET expires_ms = $1 WHERE id = $2",
            &[&oauth.expires_ms.map(|v| v as i64), &id],
        )
        .await
        .map_err(&db)?;
        tx.commit().await.map_err(&db)
    }

    async fn oauth(&self, app: &str, name: &str) -> Result<Option<OAuthState>, StoreError> {
        let id = self.account_id(app, name).await?;
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT o.token_url, o.client_id, o.client_secret, o.refresh_token, a.expires_ms
                 FROM account_oauth o JOIN accounts a ON a.id = o.account_id WHERE o.account_id = $1",
                &[&id],
            )
            .await
            .map_err(self.db())?;
        let Some(row) = row else { return Ok(None) };
        let open = |blob: Option<Vec<u8>>, what: &str| -> Result<Option<String>, StoreError> {
            blob.map(|b| {
                self.open_text(&b, &oauth_context(app, name, what), &format!("{app}/{name}: {what}"))
            })
            .transpose()
        };
        Ok(Some(OAuthState {
            token_url: row.get(0),
            client_id: row.get(1),
            client_secret: open(row.get(2), "client_secret")?,
            refresh_token: open(row.get(3), "refresh_token")?,
            expires_ms: row.get::<_, Option<i64>>(4).map(|v| v as u64),
        }))
    }

    async fn update_tokens(
        &self,
        app: &str,
        name: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        expires_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let id = self.account_id(app, name).await?;
        let access = self.key.seal(access_token.as_bytes(), &field_context(app, name, "oauth_access_token"));
        let refresh =
            refresh_token.map(|t| self.key.seal(t.as_bytes(), &oauth_context(app, name, "refresh_token")));
        let mut client = self.client().await?;
        let db = self.db();
        let tx = client.transaction().await.map_err(&db)?;
        tx.execute(
            "UPDATE account_fields SET sealed = $1 WHERE account_id = $2 AND key = 'oauth_access_token'",
            &[&access, &id],
        )
        .await
        .map_err(&db)?;
        if let Some(refresh) = refresh {
            tx.execute("UPDATE account_oauth SET refresh_token = $1 WHERE account_id = $2", &[&refresh, &id])
                .await
                .map_err(&db)?;
        }
        tx.execute(
            "UPDATE accounts SET expires_ms = $1, status = 'ok' WHERE id = $2",
            &[&expires_ms.map(|v| v as i64), &id],
        )
        .await
        .map_err(&db)?;
        tx.commit().await.map_err(&db)
    }

    async fn set_status(&self, app: &str, name: &str, status: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute("UPDATE accounts SET status = $1 WHERE app = $2 AND name = $3", &[&status, &app, &name])
            .await
            .map_err(self.db())?;
        if changed == 0 {
            return Err(no_account(app, name));
        }
        Ok(())
    }
}

#[async_trait]
impl EnvVars for Postgres {
    async fn set_env(
        &self,
        name: &str,
        value: &str,
        secret: bool,
        workflow: Option<&str>,
    ) -> Result<(), StoreError> {
        let (scope, plain, sealed) = stored_env(&self.key, name, value, secret, workflow)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO env (workflow, name, secret, plain, sealed, updated_ms) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (workflow, name) DO UPDATE SET secret = EXCLUDED.secret, plain = EXCLUDED.plain,
                     sealed = EXCLUDED.sealed, updated_ms = EXCLUDED.updated_ms",
                &[&scope, &name, &secret, &plain, &sealed, &self.clock.now_ms()],
            )
            .await
            .map_err(self.db())?;
        Ok(())
    }

    async fn unset_env(&self, name: &str, workflow: Option<&str>) -> Result<(), StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute("DELETE FROM env WHERE workflow = $1 AND name = $2", &[&workflow.unwrap_or(""), &name])
            .await
            .map_err(self.db())?;
        if removed == 0 {
            return Err(StoreError::NotFound(format!("no environment variable {name}")));
        }
        Ok(())
    }

    async fn list_env(&self) -> Result<Vec<EnvSummary>, StoreError> {
        let client = self.client().await?;
        // COLLATE "C": byte order, as SQLite sorts.
        let rows = client
            .query(
                "SELECT workflow, name, secret, plain FROM env ORDER BY workflow COLLATE \"C\", name COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(self.db())?;
        Ok(rows
            .iter()
            .map(|r| {
                let workflow: String = r.get(0);
                let secret: bool = r.get(2);
                EnvSummary {
                    name: r.get(1),
                    workflow: (!workflow.is_empty()).then_some(workflow),
                    secret,
                    shown: if secret {
                        MASKED.into()
                    } else {
                        r.get::<_, Option<String>>(3).unwrap_or_default()
                    },
                }
            })
            .collect())
    }

    async fn env_for(&self, workflow: Option<&str>) -> Result<StoredEnv, StoreError> {
        let client = self.client().await?;
        let select = self
            .prepared(
                &client,
                "SELECT workflow, name, secret, plain, sealed FROM env WHERE workflow = '' OR workflow = $1
                 ORDER BY workflow = '' DESC, name COLLATE \"C\"",
            )
            .await?;
        let rows = client.query(&select, &[&workflow.unwrap_or("")]).await.map_err(self.db())?;
        let rows = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)));
        crate::store::merge_env(&self.key, rows)
    }
}
