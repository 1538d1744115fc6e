//! The app catalog: data, not code. Each app (`host/apps/*.toml`, compiled
//! in; more or overriding ones from `<data>/apps/*.toml`) declares its
//! account fields, which are secret, the hosts its secrets may reach, where
//! each secret may be placed in a request, and its test request.

use crate::policy::{Binding, HostPattern, HostPolicy, PatternError, Placement};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The apps compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("airtable.toml", include_str!("../apps/airtable.toml")),
    ("anthropic.toml", include_str!("../apps/anthropic.toml")),
    ("discord.toml", include_str!("../apps/discord.toml")),
    ("github.toml", include_str!("../apps/github.toml")),
    ("gitlab.toml", include_str!("../apps/gitlab.toml")),
    ("google_sheets.toml", include_str!("../apps/google_sheets.toml")),
    ("hubspot.toml", include_str!("../apps/hubspot.toml")),
    ("notion.toml", include_str!("../apps/notion.toml")),
    ("openai.toml", include_str!("../apps/openai.toml")),
    ("openweathermap.toml", include_str!("../apps/openweathermap.toml")),
    ("postmark.toml", include_str!("../apps/postmark.toml")),
    ("sendgrid.toml", include_str!("../apps/sendgrid.toml")),
    ("slack.toml", include_str!("../apps/slack.toml")),
    ("twilio.toml", include_str!("../apps/twilio.toml")),
    ("zendesk.toml", include_str!("../apps/zendesk.toml")),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppFile {
    name: String,
    title: String,
    auth: String,
    hosts: Vec<String>,
    fields: Vec<FieldFile>,
    test_request: Option<TestRequest>,
    oauth: Option<OAuthEndpoints>,
}

/// Where an OAuth app authorizes users and issues tokens.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthEndpoints {
    /// Where the user is sent to grant access.
    pub authorize_url: String,
    /// Where the host exchanges a code, or a refresh token, for an access token.
    pub token_url: String,
    /// Scopes asked for when authorizing, sent space-separated.
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    name: String,
    secret: bool,
    #[serde(default)]
    description: String,
    #[serde(default)]
    placement: Vec<String>,
}

/// The request that checks an account works; `{field}` is replaced by the
/// field's value (sealed for secrets).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// The HTTP method, e.g. `GET`.
    pub method: String,
    /// The URL; may hold `{field}` markers.
    pub url: String,
    /// Header name to value; values may hold `{field}` markers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body, with `{field}` markers; `None` sends an empty body.
    pub body: Option<String>,
    /// HTTP Basic auth from two fields: `Authorization: Basic
    /// base64(user:password)` (the host swaps secrets inside it).
    pub basic_auth: Option<BasicAuth>,
}

/// The fields that make up HTTP Basic credentials.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The name of the field that is the user name.
    pub user: String,
    /// The name of the field that is the password.
    pub password: String,
}

/// One app of the catalog.
#[derive(Debug, Clone)]
pub struct App {
    /// Identifier used in workflows and commands: letters, digits, underscores.
    pub name: String,
    /// Display name, for people.
    pub title: String,
    /// The auth shape: `oauth`, `api_key`, `basic`, …
    pub auth: String,
    /// The hosts the app's secrets may reach (and its steps may call).
    pub hosts: Arc<HostPolicy>,
    /// Hosts that depend on an account's non-secret field, e.g.
    /// `https://{subdomain}.zendesk.com` or `{base_api_url}`.
    pub host_templates: Vec<String>,
    /// The fields an account of this app holds, in declaration order.
    pub fields: Vec<Field>,
    /// How to check that an account works; `None` if the app declares none.
    pub test_request: Option<TestRequest>,
    /// For OAuth apps: the authorization and token endpoints.
    pub oauth: Option<OAuthEndpoints>,
}

/// One field of an app's account.
#[derive(Debug, Clone)]
pub struct Field {
    /// The key, as steps see it and `{field}` markers name it.
    pub name: String,
    /// A secret is sealed: steps see only a placeholder, swapped for the
    /// value on the way out, and only to the app's hosts.
    pub secret: bool,
    /// What to enter, shown when an account is added; may be empty.
    pub description: String,
    /// Where the secret may appear in a request (secret fields only).
    pub placements: Vec<Placement>,
}

impl App {
    /// The field of that name, if declared.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field of that name, or an error naming the app's fields: the one
    /// check of a field name, wherever one is given.
    pub fn require_field(&self, name: &str) -> Result<&Field, UnknownField> {
        self.field(name).ok_or_else(|| UnknownField {
            app: self.name.clone(),
            field: name.to_string(),
            known: self.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Where one of this app's secrets may go, given the account's hosts
    /// ([`App::hosts_for`]).
    pub fn binding(&self, field: &Field, hosts: Arc<HostPolicy>) -> Binding {
        Binding { hosts, placements: field.placements.clone() }
    }

    /// The hosts of one account: the fixed ones plus the templates filled
    /// from its non-secret fields. A value standing for a host label must be
    /// a plain label (`acme`); one standing for a whole URL (`{base_api_url}`)
    /// gives its scheme, host and port.
    pub fn hosts_for(&self, fields: &[(String, String)]) -> Result<Arc<HostPolicy>, String> {
        if self.host_templates.is_empty() {
            return Ok(self.hosts.clone());
        }
        let mut patterns = Vec::new();
        for template in &self.host_templates {
            let mut host = template.clone();
            for field in self.fields.iter().filter(|f| !f.secret) {
                let marker = format!("{{{}}}", field.name);
                if !host.contains(&marker) {
                    continue;
                }
                let value = fields
                    .iter()
                    .find(|(k, _)| *k == field.name)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_default();
                let filled = if template.trim() == marker {
                    let url = url::Url::parse(value).map_err(|_| {
                        format!("{}.{} must be a URL like https://host/path", self.name, field.name)
                    })?;
                    url.origin().ascii_serialization()
                } else if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    value.to_ascii_lowercase()
                } else {
                    return Err(format!(
                        "{}.{} must be a host label (letters, digits, hyphens), not `{value}`",
                        self.name, field.name
                    ));
                };
                host = host.replace(&marker, &filled);
            }
            patterns.push(HostPattern::parse(&host).map_err(|e| format!("{}: {e}", self.name))?);
        }
        Ok(Arc::new(self.hosts.union([&HostPolicy::new(patterns)])))
    }
}

/// Why an app file was rejected; names the file.
#[derive(Debug, thiserror::Error)]
#[error("app catalog {file}: {message}")]
pub struct CatalogError {
    /// The app file, as its path or built-in name.
    pub file: String,
    /// What is wrong with it.
    pub message: String,
}

/// All known apps, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    apps: BTreeMap<String, App>,
}

impl Catalog {
    /// The compiled-in apps.
    pub fn builtin() -> Self {
        let mut catalog = Self::default();
        for (file, text) in BUILTIN {
            let app = parse_app(file, text).expect("built-in app files are valid");
            catalog.apps.insert(app.name.clone(), app);
        }
        catalog
    }

    /// The compiled-in apps plus every `*.toml` in `dir` (same name
    /// replaces); a missing directory adds nothing.
    pub fn with_dir(dir: &Path) -> Result<Self, CatalogError> {
        let mut catalog = Self::builtin();
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(catalog) };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| CatalogError { file: file.clone(), message: e.to_string() })?;
            let app = parse_app(&file, &text)?;
            catalog.apps.insert(app.name.clone(), app);
        }
        Ok(catalog)
    }

    /// The app of that name; `None` if unknown (see [`Catalog::require`]
    /// for an error that lists the known ones).
    pub fn get(&self, name: &str) -> Option<&App> {
        self.apps.get(name)
    }

    /// Every app, sorted by name.
    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    /// The names, for "known apps: …" messages.
    pub fn names(&self) -> Vec<&str> {
        self.apps.keys().map(String::as_str).collect()
    }

    /// The app of that name, or an error naming the known ones: the one
    /// lookup of an app a user named.
    pub fn require(&self, name: &str) -> Result<&App, UnknownApp> {
        self.get(name).ok_or_else(|| UnknownApp { app: name.to_string(), known: self.names().join(", ") })
    }
}

/// An app the catalog does not have.
#[derive(Debug, Clone, thiserror::Error)]
#[error("app `{app}` is not in the app catalog (known: {known})")]
pub struct UnknownApp {
    /// The name asked for.
    pub app: String,
    /// The catalog's app names, comma-separated.
    pub known: String,
}

/// A field an app does not have.
#[derive(Debug, Clone, thiserror::Error)]
#[error("app `{app}` has no field `{field}` (fields: {known})")]
pub struct UnknownField {
    /// The app asked about.
    pub app: String,
    /// The field name asked for.
    pub field: String,
    /// The app's field names, comma-separated.
    pub known: String,
}

fn parse_app(file: &str, text: &str) -> Result<App, CatalogError> {
    let fail = |message: String| CatalogError { file: file.to_string(), message };
    let parsed: AppFile = toml::from_str(text).map_err(|e| fail(e.message().to_string()))?;
    if !crate::base::names::is_valid_name(&parsed.name) {
        return Err(fail(format!("app name `{}` must be letters, digits and underscores", parsed.name)));
    }
    let (templates, fixed): (Vec<String>, Vec<String>) =
        parsed.hosts.into_iter().partition(|h| h.contains('{'));
    let hosts = HostPolicy::parse(&fixed).map_err(|e: PatternError| fail(e.to_string()))?;
    let mut fields = Vec::new();
    for field in parsed.fields {
        let placements = field
            .placement
            .iter()
            .map(|p| Placement::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("field `{}`: {e}", field.name)))?;
        if field.secret && placements.is_empty() {
            return Err(fail(format!("secret field `{}` needs a placement", field.name)));
        }
        fields.push(Field {
            name: field.name,
            secret: field.secret,
            description: field.description,
            placements,
        });
    }
    Ok(App {
        name: parsed.name,
        title: parsed.title,
        auth: parsed.auth,
        hosts: Arc::new(hosts),
        host_templates: templates,
        fields,
        test_request: parsed.test_request,
        oauth: parsed.oauth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_apps_declare_secret_fields_hosts_and_placements() {
        let catalog = Catalog::builtin();
        assert!(catalog.names().len() >= 15, "{:?}", catalog.names());
        let shapes: std::collections::BTreeSet<&str> = catalog.apps().map(|a| a.auth.as_str()).collect();
        for shape in ["oauth", "api_key", "basic", "api_key_query", "bot_token"] {
            assert!(shapes.contains(shape), "no app of shape {shape}");
        }
        let slack = catalog.get("slack").unwrap();
        let token = slack.field("oauth_access_token").unwrap();
        assert!(token.secret);
        assert!(!slack.field("oauth_uid").unwrap().secret);
        let binding = slack.binding(token, slack.hosts_for(&[]).unwrap());
        let auth = Placement::Header("authorization".into());
        assert!(binding.permits("https", "slack.com", 443, &auth));
        assert!(binding.permits("https", "files.slack.com", 443, &auth));
        assert!(!binding.permits("https", "api.github.com", 443, &auth));
    }

    #[test]
    fn apps_in_the_data_directory_add_to_and_override_the_builtin_ones() {
        let dir = tempfile::tempdir().unwrap();
        let custom = "name = \"acme\"\ntitle = \"Acme\"\nauth = \"api_key\"\nhosts = [\"https://api.acme.io\"]\n[[fields]]\nname = \"key\"\nsecret = true\nplacement = [\"query:key\"]\n";
        std::fs::write(dir.path().join("acme.toml"), custom).unwrap();
        std::fs::write(dir.path().join("slack.toml"), custom.replace("acme", "slack")).unwrap();
        let catalog = Catalog::with_dir(dir.path()).unwrap();
        assert!(catalog.names().contains(&"acme"));
        assert_eq!(catalog.get("slack").unwrap().title, "Slack".replace("Slack", "Acme"));
        std::fs::write(dir.path().join("broken.toml"), "name = 1").unwrap();
        assert!(Catalog::with_dir(dir.path()).unwrap_err().to_string().contains("broken.toml"));
    }

    #[test]
    fn hosts_from_account_fields_are_labels_or_url_origins() {
        let catalog = Catalog::builtin();
        let zendesk = catalog.get("zendesk").unwrap();
        let acme = zendesk.hosts_for(&[("subdomain".into(), "Acme".into())]).unwrap();
        assert!(acme.allows("https", "acme.zendesk.com", 443));
        assert!(!acme.allows("https", "other.zendesk.com", 443));
        for bad in ["evil.com#", "a.b", "", "x/y"] {
            let err = zendesk.hosts_for(&[("subdomain".into(), bad.into())]).unwrap_err();
            assert!(err.contains("must be a host label"), "{bad}: {err}");
        }
        let gitlab = catalog.get("gitlab").unwrap();
        let own =
            gitlab.hosts_for(&[("base_api_url".into(), "https://git.acme.io:8443/api/v4".into())]).unwrap();
        assert!(own.allows("https", "git.acme.io", 8443));
        assert!(!own.allows("https", "gitlab.com", 443));
        assert!(gitlab.hosts_for(&[("base_api_url".into(), "not a url".into())]).is_err());
    }

    #[test]
    fn bad_app_files_name_the_file_and_problem() {
        let err = parse_app("x.toml", "name = \"x\"\ntitle = \"X\"\nauth = \"api_key\"\nhosts = [\"https://x.io\"]\n[[fields]]\nname = \"key\"\nsecret = true\n").unwrap_err();
        assert_eq!(err.to_string(), "app catalog x.toml: secret field `key` needs a placement");
    }
}
