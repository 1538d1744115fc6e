//! A step's return value, kept as the JSON text the step returned.
//!
//! Most return values are only passed on: to later steps (as text), to the
//! store (as text). Parsing each into a `Value` and writing it out again
//! was most of the host's share of a workflow passing data between steps,
//! so the text is checked when it arrives (it parses exactly as a `Value`
//! would) and parsed only when something reads it.

use crate::secrets::Redaction;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;

/// A step's return value: its JSON text, its parsed `Value`, or both (each
/// made from the other on first use). Reads as a `Value` through `Deref`.
#[derive(Clone)]
pub struct ReturnValue {
    /// Checked JSON text of one value, without surrounding whitespace.
    text: OnceLock<Box<str>>,
    value: OnceLock<Value>,
}

impl ReturnValue {
    /// The value of `text`, which must be one JSON value that also parses
    /// as a `Value` (numbers in range): the same text is refused as before
    /// return values were kept as text.
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<Checked>(&text)?;
        // Checked once: not wrapped in a `RawValue` here, which would scan
        // it again (that is done only if it is serialized).
        let trimmed = text.trim_matches(JSON_WHITESPACE);
        let text = if trimmed.len() == text.len() { text.into_boxed_str() } else { trimmed.into() };
        Ok(Self { text: OnceLock::from(text), value: OnceLock::new() })
    }

    /// `null`: what a step that returned nothing (or exited) returned.
    pub fn null() -> Self {
        Value::Null.into()
    }

    /// The value as JSON text (written from the `Value` if it was made
    /// from one).
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| {
            let value = self.value.get().expect("a return value has its text or its value");
            serde_json::to_string(value).expect("a `Value` always serializes").into_boxed_str()
        })
    }

    /// The parsed value.
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            let text = self.text.get().expect("a return value has its text or its value");
            serde_json::from_str(text).expect("the text was checked to parse when it arrived")
        })
    }

    /// The parsed value, owned.
    pub fn into_value(self) -> Value {
        let _ = self.value();
        self.value.into_inner().unwrap_or_default()
    }

    /// Replaces every form of a secret in the value's strings and keys. The
    /// text is scanned as it is, without parsing it, when it holds no
    /// backslash: every string in it then reads exactly as written, so a
    /// form in a string is a form in the text. Otherwise (an escape could
    /// spell a form differently), or when the text holds a form, the value
    /// is parsed and each string redacted.
    pub(crate) fn redact(&mut self, redaction: &Redaction) {
        if redaction.is_empty() {
            return;
        }
        if let Some(text) = self.text.get()
            && !text.contains('\\')
            && !redaction.found_in(text.as_bytes())
        {
            return;
        }
        let mut value = std::mem::take(self).into_value();
        redaction.redact_json(&mut value);
        *self = value.into();
    }
}

impl Default for ReturnValue {
    fn default() -> Self {
        Self::null()
    }
}

impl From<Value> for ReturnValue {
    fn from(value: Value) -> Self {
        Self { text: OnceLock::new(), value: OnceLock::from(value) }
    }
}

impl Deref for ReturnValue {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl PartialEq for ReturnValue {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl PartialEq<Value> for ReturnValue {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl fmt::Debug for ReturnValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// The JSON text, as a `Value` displays.
impl fmt::Display for ReturnValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl Serialize for ReturnValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.text.get() {
            Some(text) => {
                // Written as it is: serde_json's raw value, borrowed.
                let raw: &RawValue = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
                raw.serialize(serializer)
            }
            None => self.value().serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ReturnValue {
    /// Read back as a `Value` (from the store, the API): whatever the
    /// deserializer, where a raw text could only come from serde_json's own.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from)
    }
}

/// What JSON allows around a value.
const JSON_WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];

/// A JSON value read through without building it: every number converted
/// (so one out of range is refused, as a `Value` would refuse it), every
/// string and key read (escapes and UTF-8 checked).
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Checked, A::Error> {
        while items.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Checked, A::Error> {
        while entries.next_key::<IgnoredAny>()?.is_some() {
            entries.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_that_would_not_parse_as_a_value_is_refused() {
        for bad in ["", "{", "[1,]", "1e400", "-1e400", "\"\\ud800\"", "{\"a\" 1}", "1 2", "nul"] {
            let as_value = serde_json::from_str::<Value>(bad).is_err();
            assert!(as_value, "{bad:?} parses as a Value");
            assert!(ReturnValue::from_text(bad.to_string()).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn the_text_passes_through_as_written_and_reads_as_its_value() {
        let text = r#"{"b":1,"a":[true,null,"x\u00e9"],"n":-1.5e-300}"#;
        let value = ReturnValue::from_text(text.to_string()).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), text, "written out as it came");
        assert_eq!(value, json!({ "b": 1, "a": [true, null, "xé"], "n": -1.5e-300 }));
        assert_eq!(value["a"][2], "xé");
        let from_value = ReturnValue::from(json!({ "k": [1, 2] }));
        assert_eq!(from_value.text(), r#"{"k":[1,2]}"#);
        let read_back: ReturnValue = serde_json::from_str(value.text()).unwrap();
        assert_eq!(read_back, value);
        let spaced = ReturnValue::from_text(" \n[1, 2]\t ".to_string()).unwrap();
        assert_eq!(spaced.text(), "[1, 2]", "what JSON allows around the value is not kept");
        assert_eq!(serde_json::to_string(&spaced).unwrap(), "[1, 2]");
    }

    /// A redaction of one secret, and its placeholder.
    fn redaction(secret: &str) -> (std::sync::Arc<Redaction>, String) {
        let mut vault = crate::secrets::Vault::default();
        let binding = crate::secrets::Binding { hosts: Default::default(), placements: vec![] };
        let placeholder = vault.seal("slack.token", secret, binding);
        (vault.redaction(), placeholder)
    }

    #[test]
    fn redaction_reaches_keys_strings_and_escaped_spellings() {
        let (redaction, p) = redaction("xoxb-Real-1234");
        let plain = r#"{"xoxb-Real-1234":"token xoxb-real-1234!","n":1}"#;
        let escaped = r#"{"t":"\u0078oxb-Real-1234","q":"a\"b"}"#;
        let mut a = ReturnValue::from_text(plain.to_string()).unwrap();
        a.redact(&redaction);
        assert_eq!(a, json!({ p.clone(): format!("token {p}!"), "n": 1 }));
        let mut b = ReturnValue::from_text(escaped.to_string()).unwrap();
        b.redact(&redaction);
        assert_eq!(b, json!({ "t": p, "q": "a\"b" }));
        assert!(!a.text().contains("1234") && !b.text().contains("1234"));
    }

    #[test]
    fn a_value_without_a_secret_keeps_its_text() {
        let text = r#"{"a": "nothing here",  "b": [1, 2]}"#;
        let mut value = ReturnValue::from_text(text.to_string()).unwrap();
        value.redact(&redaction("xoxb-Real-1234").0);
        assert_eq!(value.text(), text, "not parsed and written again");
    }
}
