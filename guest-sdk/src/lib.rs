//! Write a stephost workflow step as a plain Rust function.
//!
//! ```ignore
//! use stephost_sdk::{Context, export_step};
//!
//! fn run(ctx: &Context) -> anyhow::Result<serde_json::Value> {
//!     let token = ctx.auths().app("slack")?.get("oauth_access_token")?;
//!     println!("posting as {}", ctx.auths().app("slack")?.get("oauth_uid")?);
//!     let response = stephost_sdk::http::Request::post("https://slack.com/api/chat.postMessage")
//!         .bearer(&token)
//!         .json(&serde_json::json!({"channel": "#general", "text": "Hello, world!"}))?
//!         .send()?;
//!     Ok(response.json()?)
//! }
//!
//! export_step!(run);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2` or `cargo component build`.
//! Logs are plain `println!` / `eprintln!`; environment variables are
//! `std::env::var`.

pub mod http;

use anyhow::{Context as _, anyhow};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use std::cell::OnceCell;
use std::rc::Rc;

/// Generated bindings for the `stephost:step` world. Steps never need them
/// directly; they are public only for [`export_step!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "step",
        pub_export_macro: true,
        export_macro_name: "__export_step_world",
        default_bindings_module: "stephost_sdk::bindings",
    });
}

use bindings::stephost::step as wit;

/// Turns a function `fn(&Context) -> anyhow::Result<T>` (where `T` is
/// serializable) into the step's exported `run`.
#[macro_export]
macro_rules! export_step {
    ($run:path) => {
        struct __StephostStep;

        impl $crate::bindings::Guest for __StephostStep {
            fn run() -> ::core::result::Result<::std::string::String, ::std::string::String> {
                $crate::__run_step($run)
            }
        }

        $crate::bindings::__export_step_world!(__StephostStep with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub fn __run_step<T: Serialize>(run: fn(&Context) -> anyhow::Result<T>) -> Result<String, String> {
    // A host that calls `run` twice on one instance gets fresh results.
    STEP_RESULTS.with(|results| results.borrow_mut().clear());
    let value = run(&Context { _private: () }).map_err(|e| format!("{e:#}"))?;
    let json = serde_json::to_string(&value).map_err(|e| format!("the return value is not JSON: {e}"));
    // stephost discards the instance when `run` returns, memory and all:
    // freeing a large return value piece by piece first is wasted time.
    std::mem::forget(value);
    json
}

thread_local! {
    /// The step results read during this run, by name: a result the step
    /// reads again is neither copied from the host nor parsed again, and
    /// none is freed when the run ends (see [`__run_step`]).
    static STEP_RESULTS: std::cell::RefCell<std::collections::HashMap<String, Rc<StepText>>> =
        Default::default();
}

/// Everything a step can read and do, handed to its `run` function.
pub struct Context {
    _private: (),
}

impl Context {
    /// The trigger event, deserialized into `T` (use `serde_json::Value` to
    /// take it as it is).
    pub fn event<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_str(&wit::event::get()).context("the event does not have the expected shape")
    }

    /// The trigger event as JSON text, checked but not parsed into a
    /// [`Value`]: return it (or put it in what you return) to pass it on at
    /// the cost of a copy.
    pub fn raw_event(&self) -> anyhow::Result<Box<RawValue>> {
        RawValue::from_string(wit::event::get()).context("the event is not JSON")
    }

    /// The results of the steps that ran before this one.
    pub fn steps(&self) -> Steps {
        Steps { _private: () }
    }

    /// The connected accounts of the apps this step uses.
    pub fn auths(&self) -> Auths {
        Auths { _private: () }
    }

    /// Records a named export that later steps read as
    /// `steps.<this step>.<name>`.
    pub fn export(&self, name: &str, value: impl Serialize) -> anyhow::Result<()> {
        let json = serde_json::to_string(&value).context("the export is not serializable")?;
        wit::flow::export(name, &json).map_err(|e| anyhow!("export `{name}` refused: {e}"))
    }

    /// Ends the workflow after this step with a reason shown to the user.
    /// The step stops here: exports made before are kept.
    pub fn exit(&self, reason: &str) -> ! {
        wit::flow::exit(reason);
        unreachable!("the host stops the step on flow.exit")
    }

    /// Sets the HTTP response of an HTTP-triggered run.
    pub fn respond(&self, response: HttpResponse) -> anyhow::Result<()> {
        wit::flow::respond(response.status, &response.headers, &response.body)
            .map_err(|e| anyhow!("respond refused: {e}"))
    }
}

/// The HTTP response an HTTP-triggered workflow sends back to its caller.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code, 100-599.
    pub status: u16,
    /// Header name/value pairs, in order.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a status and no headers or body.
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    /// A response with a JSON body and `content-type: application/json`.
    pub fn json(status: u16, value: &impl Serialize) -> anyhow::Result<Self> {
        Ok(Self::new(status).header("content-type", "application/json").body(serde_json::to_vec(value)?))
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// The steps that ran before this one (`steps` in a Node.js step).
pub struct Steps {
    _private: (),
}

impl Steps {
    /// Their names, in the order they ran.
    pub fn names(&self) -> Vec<String> {
        wit::steps::names()
    }

    /// One earlier step's result, or `None` if no step of that name ran.
    /// Reading the same step again is free: its result is kept for the run.
    pub fn get(&self, name: &str) -> Option<StepResult> {
        let known = STEP_RESULTS.with(|results| results.borrow().get(name).cloned());
        let text = match known {
            Some(text) => text,
            None => {
                let text = Rc::new(StepText {
                    name: name.to_string(),
                    json: wit::steps::get(name)?,
                    value: OnceCell::new(),
                });
                STEP_RESULTS.with(|results| results.borrow_mut().insert(name.to_string(), text.clone()));
                text
            }
        };
        Some(StepResult { text })
    }

    /// Like [`Steps::get`], but an error naming the step when it did not run.
    pub fn require(&self, name: &str) -> anyhow::Result<StepResult> {
        self.get(name)
            .ok_or_else(|| anyhow!("no step named `{name}` ran before this one (ran: {:?})", self.names()))
    }
}

/// One earlier step's result: `$return_value` plus its named exports.
///
/// Kept as the JSON text the host handed over and parsed only when a value
/// is first read, so a step that passes data on untouched
/// ([`StepResult::raw_return_value`]) never builds it.
#[derive(Debug, Clone)]
pub struct StepResult {
    text: Rc<StepText>,
}

/// What [`StepResult`] shares with the run's cache.
#[derive(Debug)]
struct StepText {
    name: String,
    json: String,
    value: OnceCell<Value>,
}

impl StepResult {
    /// The step's return value (`steps.NAME.$return_value`), `null` if none.
    pub fn return_value(&self) -> &Value {
        self.as_json().get("$return_value").unwrap_or(&Value::Null)
    }

    /// The step's return value as JSON text, checked but not parsed into a
    /// [`Value`]: return it (or put it in what you return) to pass it on
    /// at the cost of a copy. `null` if the step returned nothing.
    pub fn raw_return_value(&self) -> anyhow::Result<Box<RawValue>> {
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(rename = "$return_value", borrow)]
            return_value: Option<&'a RawValue>,
        }
        let result: Envelope<'_> = serde_json::from_str(&self.text.json)
            .with_context(|| format!("step `{}`'s result is not a JSON object", self.text.name))?;
        Ok(match result.return_value {
            Some(raw) => raw.to_owned(),
            None => RawValue::NULL.to_owned(),
        })
    }

    /// One named export (`steps.NAME.EXPORT`).
    pub fn export(&self, name: &str) -> Option<&Value> {
        self.as_json().get(name)
    }

    /// One named export deserialized into `T`, with an error naming it when
    /// it is missing or of another shape.
    pub fn export_as<T: DeserializeOwned>(&self, name: &str) -> anyhow::Result<T> {
        let value =
            self.export(name).ok_or_else(|| anyhow!("step `{}` has no export `{name}`", self.text.name))?;
        serde_json::from_value(value.clone())
            .with_context(|| format!("export `{name}` of step `{}` has another shape", self.text.name))
    }

    /// The whole result object, as later steps see it.
    pub fn as_json(&self) -> &Value {
        self.text.value.get_or_init(|| serde_json::from_str(&self.text.json).unwrap_or(Value::Null))
    }
}

/// The connected accounts of this step (`auths` in a Node.js step).
pub struct Auths {
    _private: (),
}

impl Auths {
    /// The names of the connected apps.
    pub fn apps(&self) -> Vec<String> {
        wit::auths::apps()
    }

    /// One app's account, or an error naming the app if it is not connected
    /// to this step.
    pub fn app(&self, app: &str) -> anyhow::Result<App> {
        let apps = self.apps();
        if !apps.iter().any(|a| a == app) {
            return Err(anyhow!("app `{app}` is not connected to this step (connected: {apps:?})"));
        }
        Ok(App { name: app.to_string() })
    }
}

/// One connected app's account (`auths.slack`).
pub struct App {
    name: String,
}

impl App {
    /// The account's property names (`Object.keys(auths.slack)`).
    pub fn keys(&self) -> Vec<String> {
        wit::auths::keys(&self.name)
    }

    /// One property's value (a sealed placeholder for secrets), or an error
    /// naming the app and the property if there is none.
    pub fn get(&self, key: &str) -> anyhow::Result<String> {
        self.try_get(key)
            .ok_or_else(|| anyhow!("app `{}` has no property `{key}` (it has: {:?})", self.name, self.keys()))
    }

    /// One property's value, `None` if there is no such property.
    pub fn try_get(&self, key: &str) -> Option<String> {
        wit::auths::get(&self.name, key)
    }
}
