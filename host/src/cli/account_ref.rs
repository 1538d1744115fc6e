//! How the command line names a connected account: `APP` (the app's only
//! account) or `APP/NAME`, with `--name NAME` as the same as `/NAME`.

use anyhow::{Result, bail};
use stephost::base::names::is_valid_name;
use stephost::store::Accounts;

/// An account as the user named it, before it is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRef {
    pub app: String,
    pub name: Option<String>,
}

impl AccountRef {
    /// Parses `APP` or `APP/NAME`. `APP=NAME`, the form `--account` took
    /// before, still means `APP/NAME` so that scripts keep working; it is
    /// no longer documented.
    pub fn parse_flag(text: &str) -> Result<Self, String> {
        let (app, name) = match text.split_once(['/', '=']) {
            Some((app, name)) => (app, Some(name)),
            None => (text, None),
        };
        if !is_valid_name(app) {
            return Err(format!("`{app}` is not an app name: write APP or APP/NAME, e.g. slack/work"));
        }
        if let Some(name) = name.filter(|n| !is_valid_name(n)) {
            return Err(format!("account name `{name}` must be letters, digits and underscores"));
        }
        Ok(Self { app: app.to_string(), name: name.map(String::from) })
    }

    /// The reference with `--name` applied; naming it twice is an error.
    pub fn named(self, flag: Option<String>) -> Result<Self> {
        match (&self.name, flag) {
            (_, None) => Ok(self),
            (None, Some(name)) if is_valid_name(&name) => Ok(Self { name: Some(name), ..self }),
            (None, Some(name)) => bail!("--name {name}: account names are letters, digits and underscores"),
            (Some(_), Some(_)) => bail!("give the account's name once: {self} or --name, not both"),
        }
    }

    /// The `(app, name)` of an existing account: a bare APP is the app's
    /// only account.
    pub async fn resolve(&self, store: &dyn Accounts) -> Result<(String, String)> {
        if let Some(name) = &self.name {
            return Ok((self.app.clone(), name.clone()));
        }
        let app = &self.app;
        let names: Vec<String> =
            store.list_accounts().await?.into_iter().filter(|a| a.app == *app).map(|a| a.name).collect();
        match names.as_slice() {
            [one] => Ok((app.clone(), one.clone())),
            [] => bail!("no {app} account: connect one with `stephost accounts connect {app}`"),
            many => {
                bail!("{app} has several accounts ({}): say which, e.g. {app}/{}", many.join(", "), many[0])
            }
        }
    }
}

impl std::fmt::Display for AccountRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{name}", self.app),
            None => f.write_str(&self.app),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AccountRef;

    #[test]
    fn an_account_is_app_or_app_slash_name_and_the_old_equals_form_still_parses() {
        let named = AccountRef { app: "slack".into(), name: Some("work".into()) };
        assert_eq!(AccountRef::parse_flag("slack/work").unwrap(), named);
        assert_eq!(AccountRef::parse_flag("slack=work").unwrap(), named);
        assert_eq!(AccountRef::parse_flag("slack").unwrap().named(Some("work".into())).unwrap(), named);
        assert!(AccountRef::parse_flag("slack/work").unwrap().named(Some("x".into())).is_err());
        assert!(AccountRef::parse_flag("slack/").is_err());
        assert!(AccountRef::parse_flag("sl ack").is_err());
    }
}
