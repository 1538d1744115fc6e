//! `stephost new`: a ready step project, plain or performing an app's test
//! request with the connected account (the seed's "Run Node.js code with
//! [app]"), building with `cargo build` or `cargo component build` and
//! running with `stephost run` or in a workflow without edits.
//!
//! The SDK is not on crates.io yet: its sources are compiled into this
//! binary and written once to `<data>/sdk/`, which projects point at.

use crate::apps::App;
use std::path::{Path, PathBuf};

const SDK_FILES: &[(&str, &str)] = &[
    ("stephost-sdk/Cargo.toml", include_str!("../../guest-sdk/Cargo.toml")),
    ("stephost-sdk/src/lib.rs", include_str!("../../guest-sdk/src/lib.rs")),
    ("stephost-sdk/src/http.rs", include_str!("../../guest-sdk/src/http.rs")),
    ("wit/step.wit", include_str!("../../wit/step.wit")),
];

/// Why a project could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TemplateError {
    pub path: PathBuf,
    pub message: String,
}

/// Writes the SDK into `<data>/sdk/` (again if this binary's differs) and
/// returns the crate's directory.
pub fn install_sdk(data_dir: &Path) -> Result<PathBuf, TemplateError> {
    let root = data_dir.join("sdk");
    for (file, text) in SDK_FILES {
        let path = root.join(file);
        if std::fs::read_to_string(&path).is_ok_and(|current| current == *text) {
            continue;
        }
        write(&path, text)?;
    }
    Ok(root.join("stephost-sdk"))
}

/// Writes a step project named `name` into `dir` (which must not exist).
pub fn new_project(
    dir: &Path,
    name: &str,
    app: Option<&App>,
    sdk: &Path,
) -> Result<Vec<PathBuf>, TemplateError> {
    if dir.exists() {
        return Err(TemplateError { path: dir.to_path_buf(), message: "already exists".into() });
    }
    if !crate::workflow::is_valid_name(name) {
        return Err(TemplateError {
            path: dir.to_path_buf(),
            message: format!("`{name}` is not a valid step name (letters, digits, underscores)"),
        });
    }
    let files = [
        ("Cargo.toml", cargo_toml(name, sdk)),
        (".cargo/config.toml", "[build]\ntarget = \"wasm32-wasip2\"\n".to_string()),
        (
            "src/lib.rs",
            match app {
                Some(app) => app_step(name, app),
                None => plain_step(name),
            },
        ),
        ("workflow.toml", workflow_toml(name, app)),
        (".gitignore", "/target\n".to_string()),
    ];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        write(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

fn write(path: &Path, text: &str) -> Result<(), TemplateError> {
    let fail = |e: std::io::Error| TemplateError { path: path.to_path_buf(), message: e.to_string() };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A step is a WebAssembly component:
#   cargo build --release                 (target wasm32-wasip2, set in .cargo/config.toml)
#   cargo component build --release
[lib]
crate-type = ["cdylib"]

[dependencies]
stephost-sdk = {{ path = {sdk:?} }}
serde_json = "1"
anyhow = "1"

[workspace]
"#,
        sdk = sdk.display().to_string()
    )
}

fn plain_step(name: &str) -> String {
    format!(
        r#"//! `{name}`: a stephost step. `ctx` holds the trigger event, the earlier
//! steps' results and the connected accounts; `println!` is the log.
use serde_json::{{Value, json}};
use stephost_sdk::{{Context, export_step}};

fn run(ctx: &Context) -> anyhow::Result<Value> {{
    let event: Value = ctx.event()?;
    println!("{name} got an event with {{}} field(s)", event.as_object().map_or(0, |o| o.len()));
    Ok(json!({{ "received": event }}))
}}

export_step!(run);
"#
    )
}

fn app_step(name: &str, app: &App) -> String {
    let Some(test) = &app.test_request else { return plain_step(name) };
    let mut code = format!(
        "//! `{name}`: {title}'s test request with the connected account. Secret\n\
         //! fields arrive sealed; the host swaps the real value in on the way to\n\
         //! {title}'s hosts only.\n\
         use serde_json::Value;\n\
         use stephost_sdk::http::Request;\n\
         use stephost_sdk::{{Context, export_step}};\n\n\
         fn run(ctx: &Context) -> anyhow::Result<Value> {{\n    \
         let account = ctx.auths().app({app:?})?;\n    \
         let response = Request::new({method:?}, {url})?\n",
        title = app.title,
        app = app.name,
        method = test.method,
        url = rust_string(&test.url, app),
    );
    for (header, value) in &test.headers {
        code.push_str(&format!("        .header({header:?}, {})\n", rust_string(value, app)));
    }
    if let Some(basic) = &test.basic_auth {
        code.push_str(&format!(
            "        .basic_auth(&account.get({:?})?, &account.get({:?})?)\n",
            basic.user, basic.password
        ));
    }
    if let Some(body) = &test.body {
        code.push_str(&format!("        .body({})\n", rust_string(body, app).trim_start_matches('&')));
    }
    code.push_str(&format!(
        "        .send()?;\n    \
         println!(\"{title} answered {{}}\", response.status);\n    \
         let body = serde_json::from_slice(&response.body).unwrap_or_else(|_| Value::String(response.text()));\n    \
         if !(200..300).contains(&response.status) {{\n        \
         anyhow::bail!(\"{title} answered {{}}: {{body}}\", response.status);\n    \
         }}\n    \
         Ok(body)\n\
         }}\n\n\
         export_step!(run);\n",
        title = app.title
    ));
    code
}

/// A Rust `&str` expression for a template string: a literal, or
/// `&format!(…)` where `{field}` becomes the account's field.
fn rust_string(template: &str, app: &App) -> String {
    let mut format = String::new();
    let mut args = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let field = rest[start + 1..].split('}').next().filter(|f| app.field(f).is_some());
        format.push_str(&rest[..start].replace('}', "}}"));
        match field {
            Some(field) => {
                format.push_str("{}");
                args.push(format!("account.get({field:?})?"));
                rest = &rest[start + field.len() + 2..];
            }
            None => {
                format.push_str("{{");
                rest = &rest[start + 1..];
            }
        }
    }
    format.push_str(&rest.replace('}', "}}"));
    if args.is_empty() {
        format!("{:?}", format.replace("{{", "{").replace("}}", "}"))
    } else {
        format!("&format!({format:?}, {})", args.join(", "))
    }
}

fn workflow_toml(name: &str, app: Option<&App>) -> String {
    let auths = app.map_or(String::new(), |app| {
        format!(
            "# Connect an account first: stephost accounts connect {0}\nauths = {{ {0} = \"default\" }}\n",
            app.name
        )
    });
    format!(
        "# stephost workflow run workflow.toml  (after cargo build --release)\n\
         name = \"{name}\"\n\n\
         [[steps]]\n\
         name = \"{name}\"\n\
         component = \"target/wasm32-wasip2/release/{name}.wasm\"\n\
         {auths}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::Catalog;

    #[test]
    fn template_strings_become_rust_expressions_reading_the_account() {
        let catalog = Catalog::builtin();
        let slack = catalog.get("slack").unwrap();
        assert_eq!(
            rust_string("Bearer {oauth_access_token}", slack),
            r#"&format!("Bearer {}", account.get("oauth_access_token")?)"#
        );
        assert_eq!(
            rust_string("https://slack.com/api/auth.test", slack),
            r#""https://slack.com/api/auth.test""#
        );
        assert_eq!(rust_string("{not_a_field} }", slack), r#""{not_a_field} }""#);
    }
}
