//! `stephost new`: a ready step project, plain or performing an app's test
//! request with the connected account (the seed's "Run Node.js code with
//! [app]"), building with `cargo build` or `cargo component build` and
//! running with `stephost run` or in a workflow without edits.
//!
//! The SDK is not on crates.io yet: its sources are compiled into this
//! binary and written once to `<data>/sdk/`, which projects point at.

use crate::catalog::App;
use std::path::{Path, PathBuf};

const SDK_FILES: &[(&str, &str)] = &[
    ("stephost-sdk/Cargo.toml", include_str!("../../../guest-sdk/Cargo.toml")),
    ("stephost-sdk/src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs")),
    ("stephost-sdk/src/http.rs", include_str!("../../../guest-sdk/src/http.rs")),
    ("wit/step.wit", include_str!("../../../wit/step.wit")),
];

/// Why a project could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TemplateError {
    /// The project directory, or the file that could not be written.
    pub path: PathBuf,
    /// What is wrong: it exists already, a bad step name, or the I/O error.
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
    check_new(dir, name)?;
    let files = [
        ("Cargo.toml", cargo_toml(name, sdk)),
        (".cargo/config.toml", CARGO_CONFIG.to_string()),
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

/// The languages `stephost build` turns into components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptLanguage {
    /// A `.mjs` module whose default export is the step.
    JavaScript,
    /// A `.py` file with a Pipedream-style `def handler(pd):`.
    Python,
}

/// Writes a JavaScript or Python step project into `dir`: the step (plain
/// or the app's test request) and a workflow file; `stephost build` makes
/// the component.
pub fn new_script_project(
    dir: &Path,
    name: &str,
    app: Option<&App>,
    language: ScriptLanguage,
) -> Result<Vec<PathBuf>, TemplateError> {
    check_new(dir, name)?;
    let (file, code) = match (language, app.filter(|a| a.test_request.is_some())) {
        (ScriptLanguage::JavaScript, Some(app)) => (format!("{name}.mjs"), js_app_step(name, app)),
        (ScriptLanguage::JavaScript, None) => (format!("{name}.mjs"), js_plain_step(name)),
        (ScriptLanguage::Python, Some(app)) => (format!("{name}.py"), python_app_step(name, app)),
        (ScriptLanguage::Python, None) => (format!("{name}.py"), python_plain_step(name)),
    };
    let workflow = workflow_toml(name, app)
        .replace("(after cargo build --release)", &format!("(after stephost build {file})"))
        .replace(&format!("target/wasm32-wasip2/release/{name}.wasm"), &format!("{name}.wasm"));
    let mut written = Vec::new();
    for (file, text) in [(file, code), ("workflow.toml".to_string(), workflow)] {
        let path = dir.join(file);
        write(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

fn js_plain_step(name: &str) -> String {
    format!(
        "// `{name}`: a stephost step in Pipedream's Node.js form. `console.log` is the log.\n\
         //   stephost build {name}.mjs && stephost run {name}.wasm --event event.json\n\
         export default async (event, steps, auths) => {{\n  \
         console.log(`{name} got an event with ${{Object.keys(event).length}} field(s)`);\n  \
         return {{ received: event }};\n\
         }};\n"
    )
}

fn js_app_step(name: &str, app: &App) -> String {
    let test = app.test_request.as_ref().expect("checked by the caller");
    let mut headers: Vec<String> = test
        .headers
        .iter()
        .map(|(header, value)| format!("      {header:?}: {},", js_string(value, app)))
        .collect();
    if let Some(basic) = &test.basic_auth {
        headers.push(format!(
            "      authorization: `Basic ${{btoa(`${{auths.{0}.{1}}}:${{auths.{0}.{2}}}`)}}`,",
            app.name, basic.user, basic.password
        ));
    }
    let body = test.body.as_ref().map_or(String::new(), |b| format!("    body: {},\n", js_string(b, app)));
    format!(
        "// `{name}`: {title}'s test request with the connected account. Secret fields\n\
         // arrive sealed; the host swaps the real value in on the way to {title}'s hosts only.\n\
         //   stephost build {name}.mjs && stephost run {name}.wasm --account {app}\n\
         export default async (event, steps, auths) => {{\n  \
         const response = await fetch({url}, {{\n    \
         method: {method:?},\n    \
         headers: {{\n{headers}\n    }},\n{body}  }});\n  \
         const text = await response.text();\n  \
         console.log(`{title} answered ${{response.status}}`);\n  \
         if (!response.ok) {{\n    \
         throw new Error(`{title} answered ${{response.status}}: ${{text}}`);\n  \
         }}\n  \
         try {{\n    return JSON.parse(text);\n  }} catch {{\n    return text;\n  }}\n\
         }};\n",
        title = app.title,
        app = app.name,
        url = js_string(&test.url, app),
        method = test.method,
        headers = headers.join("\n"),
    )
}

fn python_plain_step(name: &str) -> String {
    format!(
        "# `{name}`: a stephost step in Pipedream's Python form. `print` is the log.\n\
         #   stephost build {name}.py && stephost run {name}.wasm --event event.json\n\n\n\
         def handler(pd):\n    \
         event = pd.steps[\"trigger\"][\"event\"]\n    \
         print(f\"{name} got an event with {{len(event)}} field(s)\")\n    \
         return {{\"received\": event}}\n"
    )
}

fn python_app_step(name: &str, app: &App) -> String {
    let test = app.test_request.as_ref().expect("checked by the caller");
    let mut headers: Vec<String> = test
        .headers
        .iter()
        .map(|(header, value)| format!("        {header:?}: {},", python_string(value, app)))
        .collect();
    let mut imports = String::new();
    if let Some(basic) = &test.basic_auth {
        imports.push_str("import base64\n\n");
        headers.push(format!(
            "        \"authorization\": \"Basic \" + base64.b64encode(f\"{{auth['{}']}}:{{auth['{}']}}\".encode()).decode(),",
            basic.user, basic.password
        ));
    }
    let body =
        test.body.as_ref().map_or(String::new(), |b| format!("        body={},\n", python_string(b, app)));
    format!(
        "# `{name}`: {title}'s test request with the connected account. Secret fields\n\
         # arrive sealed; the host swaps the real value in on the way to {title}'s hosts only.\n\
         #   stephost build {name}.py && stephost run {name}.wasm --account {app}\n\
         # (HTTP goes through stephost_http: urllib and requests cannot open sockets here.)\n\
         {imports}from stephost_http import request\n\n\n\
         def handler(pd):\n    \
         auth = pd.inputs[{app:?}][\"$auth\"]\n    \
         response = request(\n        \
         {method:?},\n        \
         {url},\n        \
         headers={{\n{headers}\n        }},\n{body}    )\n    \
         print(f\"{title} answered {{response.status}}\")\n    \
         if not 200 <= response.status < 300:\n        \
         raise RuntimeError(f\"{title} answered {{response.status}}: {{response.text()}}\")\n    \
         try:\n        return response.json()\n    except ValueError:\n        return response.text()\n",
        title = app.title,
        app = app.name,
        url = python_string(&test.url, app),
        method = test.method,
        headers = headers.join("\n"),
    )
}

/// A new project needs a directory that does not exist yet and a valid
/// step name.
fn check_new(dir: &Path, name: &str) -> Result<(), TemplateError> {
    if dir.exists() {
        return Err(TemplateError { path: dir.to_path_buf(), message: "already exists".into() });
    }
    if !crate::base::names::is_valid_name(name) {
        return Err(TemplateError {
            path: dir.to_path_buf(),
            message: format!("`{name}` is not a valid step name (letters, digits, underscores)"),
        });
    }
    if name == crate::base::names::TRIGGER_STEP {
        return Err(TemplateError {
            path: dir.to_path_buf(),
            message: format!("`{name}` is reserved for the trigger's data in `steps`; pick another name"),
        });
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), TemplateError> {
    let fail = |e: std::io::Error| TemplateError { path: path.to_path_buf(), message: e.to_string() };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)
}

/// A new project's `.cargo/config.toml`: plain `cargo build` makes a
/// component, and every run starts with a heap instead of growing its
/// memory (an `mprotect` in the host per growth, and one more to reset it).
const CARGO_CONFIG: &str = r#"[build]
target = "wasm32-wasip2"

# Start each run with a 1 MiB heap (Rust's default is none): every memory
# growth during a run costs the host a system call, and another to undo it.
# (wasm32-wasip2 for cargo build, wasm32-wasip1 for cargo component build.)
[target.'cfg(target_arch = "wasm32")']
rustflags = ["-C", "link-arg=--initial-heap=1048576"]
"#;

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

# The step's code and serde_json's optimized as one: ~12% faster runs for a
# step that parses and writes JSON.
[profile.release]
codegen-units = 1
lto = true

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

/// A piece of a test-request template: literal text, or one of the
/// account's fields (`{oauth_access_token}`).
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(String),
    Field(&'a str),
}

/// Splits a template at the `{field}`s that name one of the app's fields;
/// other braces stay text.
fn pieces<'a>(template: &'a str, app: &App) -> Vec<Piece<'a>> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        text.push_str(&rest[..start]);
        match rest[start + 1..].split('}').next().filter(|f| app.field(f).is_some()) {
            Some(field) => {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Field(field));
                rest = &rest[start + field.len() + 2..];
            }
            None => {
                text.push('{');
                rest = &rest[start + 1..];
            }
        }
    }
    text.push_str(rest);
    pieces.push(Piece::Text(text));
    pieces.retain(|p| *p != Piece::Text(String::new()));
    pieces
}

/// A Rust `&str` expression for a template string: a literal, or
/// `&format!(…)` where `{field}` becomes the account's field.
fn rust_string(template: &str, app: &App) -> String {
    let mut format = String::new();
    let mut args = Vec::new();
    for piece in pieces(template, app) {
        match piece {
            Piece::Text(text) => format.push_str(&text.replace('{', "{{").replace('}', "}}")),
            Piece::Field(field) => {
                format.push_str("{}");
                args.push(format!("account.get({field:?})?"));
            }
        }
    }
    if args.is_empty() {
        format!("{:?}", format.replace("{{", "{").replace("}}", "}"))
    } else {
        format!("&format!({format:?}, {})", args.join(", "))
    }
}

/// A JavaScript template literal reading fields from `auths.APP`.
fn js_string(template: &str, app: &App) -> String {
    let mut literal = String::from("`");
    for piece in pieces(template, app) {
        match piece {
            Piece::Text(text) => {
                literal.push_str(&text.replace('\\', "\\\\").replace('`', "\\`").replace("${", "\\${"))
            }
            Piece::Field(field) => literal.push_str(&format!("${{auths.{}.{field}}}", app.name)),
        }
    }
    literal.push('`');
    literal
}

/// A Python f-string reading fields from `auth` (the app's `$auth`).
fn python_string(template: &str, app: &App) -> String {
    let mut literal = String::from("f\"");
    for piece in pieces(template, app) {
        match piece {
            Piece::Text(text) => literal.push_str(
                &text.replace('\\', "\\\\").replace('"', "\\\"").replace('{', "{{").replace('}', "}}"),
            ),
            Piece::Field(field) => literal.push_str(&format!("{{auth['{field}']}}")),
        }
    }
    literal.push('"');
    literal
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
    use crate::catalog::Catalog;

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

    #[test]
    fn template_strings_become_js_and_python_literals_reading_the_account() {
        let catalog = Catalog::builtin();
        let slack = catalog.get("slack").unwrap();
        assert_eq!(
            js_string("Bearer {oauth_access_token}", slack),
            "`Bearer ${auths.slack.oauth_access_token}`"
        );
        assert_eq!(js_string("a`b ${c} {x}", slack), r"`a\`b \${c} {x}`");
        assert_eq!(
            python_string("Bearer {oauth_access_token}", slack),
            r#"f"Bearer {auth['oauth_access_token']}""#
        );
        assert_eq!(python_string(r#"{"q": "{x}"}"#, slack), r#"f"{{\"q\": \"{{x}}\"}}""#);
    }
}
