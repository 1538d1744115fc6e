//! The app catalog: data, not code. Each app (`host/apps/*.toml`, compiled
//! in; more or overriding ones from `<data>/apps/*.toml`) declares its
//! account fields, which are secret, the hosts its secrets may reach, where
//! each secret may be placed in a request, and its test request.

use crate::egress::{HostPolicy, PatternError};
use crate::secrets::{Binding, Placement};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The apps compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("slack.toml", include_str!("../apps/slack.toml")),
    ("github.toml", include_str!("../apps/github.toml")),
    ("openai.toml", include_str!("../apps/openai.toml")),
    ("postmark.toml", include_str!("../apps/postmark.toml")),
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
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

/// One app of the catalog.
#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub title: String,
    /// The auth shape: `oauth`, `api_key`, `basic`, …
    pub auth: String,
    /// The hosts the app's secrets may reach (and its steps may call).
    pub hosts: Arc<HostPolicy>,
    pub fields: Vec<Field>,
    pub test_request: Option<TestRequest>,
}

/// One field of an app's account.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub secret: bool,
    pub description: String,
    /// Where the secret may appear in a request (secret fields only).
    pub placements: Vec<Placement>,
}

impl App {
    /// The field of that name, if declared.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Where one of this app's secrets may go.
    pub fn binding(&self, field: &Field) -> Binding {
        Binding { hosts: self.hosts.clone(), placements: field.placements.clone() }
    }
}

/// Why an app file was rejected; names the file.
#[derive(Debug, thiserror::Error)]
#[error("app catalog {file}: {message}")]
pub struct CatalogError {
    pub file: String,
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

    pub fn get(&self, name: &str) -> Option<&App> {
        self.apps.get(name)
    }

    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    /// The names, for "known apps: …" messages.
    pub fn names(&self) -> Vec<&str> {
        self.apps.keys().map(String::as_str).collect()
    }
}

fn parse_app(file: &str, text: &str) -> Result<App, CatalogError> {
    let fail = |message: String| CatalogError { file: file.to_string(), message };
    let parsed: AppFile = toml::from_str(text).map_err(|e| fail(e.message().to_string()))?;
    if !crate::workflow::is_valid_name(&parsed.name) {
        return Err(fail(format!("app name `{}` must be letters, digits and underscores", parsed.name)));
    }
    let hosts = HostPolicy::parse(&parsed.hosts).map_err(|e: PatternError| fail(e.to_string()))?;
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
        fields,
        test_request: parsed.test_request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_apps_declare_secret_fields_hosts_and_placements() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.names(), ["github", "openai", "postmark", "slack"]);
        let slack = catalog.get("slack").unwrap();
        let token = slack.field("oauth_access_token").unwrap();
        assert!(token.secret);
        assert!(!slack.field("oauth_uid").unwrap().secret);
        let binding = slack.binding(token);
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
        assert_eq!(catalog.names(), ["acme", "github", "openai", "postmark", "slack"]);
        assert_eq!(catalog.get("slack").unwrap().title, "Slack".replace("Slack", "Acme"));
        std::fs::write(dir.path().join("broken.toml"), "name = 1").unwrap();
        assert!(Catalog::with_dir(dir.path()).unwrap_err().to_string().contains("broken.toml"));
    }

    #[test]
    fn bad_app_files_name_the_file_and_problem() {
        let err = parse_app("x.toml", "name = \"x\"\ntitle = \"X\"\nauth = \"api_key\"\nhosts = [\"https://x.io\"]\n[[fields]]\nname = \"key\"\nsecret = true\n").unwrap_err();
        assert_eq!(err.to_string(), "app catalog x.toml: secret field `key` needs a placement");
    }
}
