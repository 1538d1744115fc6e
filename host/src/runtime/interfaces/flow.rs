//! `stephost:step/flow`: exports, early exit (at once, or after the step)
//! and the HTTP response.

use crate::base::names::is_valid_name;
use crate::runtime::bindings::stephost::step::flow::Host;
use crate::runtime::outcome::HttpResponse;
use serde_json::Value;

/// The trap payload that stops a step which called `flow.exit`; the runner
/// recognizes it and reports an exit, not a failure.
#[derive(Debug, thiserror::Error)]
#[error("the step called flow.exit")]
pub(crate) struct ExitRequested;

/// The trap payload that stops a step whose exports went over its output
/// limit (the runner reports it from `Produced::exports_over_limit`).
#[derive(Debug, thiserror::Error)]
#[error("the step's exports exceeded its output limit")]
struct ExportsTooLarge;

/// What the step produced through `flow` before it ended.
#[derive(Default)]
pub(crate) struct Produced {
    pub(crate) exports: Vec<(String, Value)>,
    pub(crate) export_bytes: usize,
    pub(crate) exit: Option<String>,
    pub(crate) response: Option<HttpResponse>,
    /// Set when an export pushed the exports over the output limit.
    pub(crate) exports_over_limit: Option<usize>,
}

/// What the step produced so far, and the cap on exports and a response.
pub(crate) struct FlowContext {
    pub(crate) produced: Produced,
    pub(crate) output_limit: usize,
}

impl Host for FlowContext {
    fn export(&mut self, name: String, value: String) -> wasmtime::Result<Result<(), String>> {
        if name == "$return_value" {
            return Ok(Err("`$return_value` is reserved for the return value".into()));
        }
        if !is_valid_name(&name) {
            return Ok(Err(format!(
                "export name `{name}` must be letters, digits and underscores, not starting with a digit"
            )));
        }
        let produced = &mut self.produced;
        let previous = produced.exports.iter().position(|(n, _)| *n == name);
        let replaced_bytes = previous.map_or(0, |i| produced.exports[i].1.to_string().len());
        let total = produced.export_bytes - replaced_bytes + value.len();
        if total > self.output_limit {
            produced.exports_over_limit = Some(total);
            return Err(wasmtime::Error::new(ExportsTooLarge));
        }
        let parsed = match serde_json::from_str(&value) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(Err(format!("export `{name}` is not valid JSON: {e}"))),
        };
        produced.export_bytes = total;
        match previous {
            Some(i) => produced.exports[i].1 = parsed,
            None => produced.exports.push((name, parsed)),
        }
        Ok(Ok(()))
    }

    fn exit(&mut self, reason: String) -> wasmtime::Result<()> {
        self.produced.exit = Some(reason);
        Err(wasmtime::Error::new(ExitRequested))
    }

    fn end(&mut self, reason: String) {
        self.produced.exit = Some(reason);
    }

    fn respond(&mut self, status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Result<(), String> {
        if self.produced.response.is_some() {
            return Err("a response was already set for this run".into());
        }
        if !(100..=599).contains(&status) {
            return Err(format!("status {status} is not between 100 and 599"));
        }
        for (name, value) in &headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("`{name}` is not a valid header name"));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(format!("the value of header `{name}` is not valid"));
            }
        }
        if body.len() > self.output_limit {
            return Err(format!("the body is {} bytes, over the output limit", body.len()));
        }
        self.produced.response = Some(HttpResponse { status, headers, body });
        Ok(())
    }
}
