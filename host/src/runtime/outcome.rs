//! What goes into one run of a step, and what comes out of it.

use crate::egress::EgressRecord;
use crate::logs::LogLine;
use crate::runtime::error::StepError;
use crate::runtime::return_value::ReturnValue;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// One connected app's account: property name and value, in order.
pub type AccountFields = Vec<(String, String)>;

/// Everything a step reads, prepared before the run and shared read-only
/// with the guest's imports.
#[derive(Debug, Clone, Default)]
pub struct StepInput {
    /// The run this step belongs to (all steps of a workflow run share it);
    /// empty: the runtime makes one up.
    pub run_id: String,
    /// The step's name, used in every error and record.
    pub step_name: String,
    /// The trigger event, as a JSON document (shared: every step of a run
    /// gets the same text, not a copy).
    pub event: Arc<str>,
    /// Earlier steps' results in run order: name and JSON object
    /// (`$return_value` plus exports), shared with the later steps.
    pub steps: Vec<(String, Arc<str>)>,
    /// Connected apps in order, each with its properties in order.
    pub auths: Vec<(String, AccountFields)>,
    /// Environment variables, in clear.
    pub env: Vec<(String, String)>,
    /// Secret environment variables: the step sees a sealed placeholder,
    /// swapped for the value only on requests to the step's own allowed
    /// hosts.
    pub secret_env: Vec<(String, String)>,
}

/// The HTTP response a step set with `flow.respond`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpResponse {
    /// The HTTP status, 100 to 599.
    pub status: u16,
    /// Header names and values in order, each checked valid when set.
    pub headers: Vec<(String, String)>,
    /// Raw bytes; shown as (lossy) text in JSON output.
    #[serde(with = "body_as_text")]
    pub body: Vec<u8>,
}

mod body_as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(body))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

/// The result of one run of a step: its return value or error, and
/// everything it produced on the way (kept on failure too). Read back from
/// the store as well, so a run is typed from end to end.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StepOutcome {
    /// The run the step belonged to.
    pub run_id: String,
    /// The step's name.
    pub step: String,
    /// `Ok(return value)` (`null` for none), or the error that ended it;
    /// JSON `{"return_value": …}` or `{"error": {"message": …, "detail": {"kind": …}}}`.
    #[serde(with = "step_result")]
    pub result: Result<ReturnValue, StepError>,
    /// Named exports in the order first made; JSON `{"name": value, …}`.
    #[serde(with = "crate::base::wire::pairs_as_object")]
    pub exports: Vec<(String, Value)>,
    /// Set when the step called `flow.exit`: the workflow ends after it.
    pub exit: Option<String>,
    /// The response the step set with `flow.respond` (at most one per step);
    /// `None` if it set none.
    pub response: Option<HttpResponse>,
    /// Its stdout and stderr line by line, with the host's notes, up to the
    /// step's log limit.
    pub logs: Vec<LogLine>,
    /// Whether output past the log limit was dropped.
    pub logs_truncated: bool,
    /// Every outbound request it attempted, allowed or refused, in order.
    pub egress: Vec<EgressRecord>,
    /// JSON `duration_ms`; `duration` is read from runs stored before issue 12.
    #[serde(rename = "duration_ms", alias = "duration", with = "crate::base::wire::duration_ms")]
    pub duration: Duration,
    /// Set when this step did not run: a replay from a later step reused
    /// its stored outcome from this run (left out of JSON otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
}

impl StepOutcome {
    /// The step's result as later steps see it: `$return_value` plus each
    /// export under its own key.
    pub fn as_step_result(&self) -> Value {
        let mut object = serde_json::Map::new();
        let return_value = self.result.as_ref().map_or(Value::Null, |value| value.value().clone());
        object.insert("$return_value".into(), return_value);
        for (name, value) in &self.exports {
            object.insert(name.clone(), value.clone());
        }
        Value::Object(object)
    }

    /// [`Self::as_step_result`] as the JSON text a later step reads,
    /// written straight from the return value's own text (the result of a
    /// step passing data on is often the largest value of the run: it is
    /// neither parsed nor copied into a `Value` on the way).
    pub fn step_result_json(&self) -> String {
        let text = self.result.as_ref().map_or("null", ReturnValue::text);
        let mut out = String::with_capacity(text.len() + 32);
        out.push_str("{\"$return_value\":");
        out.push_str(text);
        for (name, value) in &self.exports {
            // A string and a `Value` always serialize.
            out.push(',');
            out.push_str(&serde_json::to_string(name).unwrap_or_default());
            out.push(':');
            out.push_str(&serde_json::to_string(value).unwrap_or_default());
        }
        out.push('}');
        out
    }
}

/// The wire form of a step's result: the message is written for people
/// and scripts, and only the typed detail is read back.
mod step_result {
    use crate::runtime::error::StepError;
    use crate::runtime::return_value::ReturnValue;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Out<'a> {
        ReturnValue(&'a ReturnValue),
        Error { message: String, detail: &'a StepError },
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum In {
        ReturnValue(ReturnValue),
        Error { detail: StepError },
    }

    pub fn serialize<S: Serializer>(r: &Result<ReturnValue, StepError>, s: S) -> Result<S::Ok, S::Error> {
        match r {
            Ok(v) => Out::ReturnValue(v),
            Err(e) => Out::Error { message: e.to_string(), detail: e },
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Result<ReturnValue, StepError>, D::Error> {
        Ok(match In::deserialize(d)? {
            In::ReturnValue(v) => Ok(v),
            In::Error { detail } => Err(detail),
        })
    }
}
