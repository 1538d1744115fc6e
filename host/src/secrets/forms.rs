//! The one redaction engine: every form a sensitive value can take in what
//! an API sends back or a step prints, compiled once into one matcher.
//!
//! A real secret is looked for as text with any of its characters escaped
//! the way JSON (`\u0061`, `\"`, `\/`, surrogate pairs) or a URL (`%61`, `%2f`,
//! `+` for a space) would, as hex, and as base64 (standard or URL-safe,
//! padded or not) at each of the three offsets it can have inside a longer
//! base64 string. A value the host derived from a secret (the `Basic …`
//! header it sent) is looked for as text with the same escapes. Matching is
//! ASCII case-insensitive: hex and percent digits come in either case, and a
//! response header *name* holding a secret arrives lowercased.
//!
//! Compiling costs far more than matching and depends only on the values, not
//! on the run's placeholders, so compiled matchers are kept per set of values
//! and shared by every run holding the same secrets.

use base64::Engine;
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// Base64 forms shorter than this many characters are not looked for: they
/// would match unrelated base64 (a value under 9 bytes has no core this long).
const MIN_BASE64_CORE: usize = 12;

/// Values longer than this are looked for only as they are.
const MAX_ESCAPED_VALUE: usize = 1024;

/// Compiled matchers kept for reuse, most recent first.
const CACHED_MATCHERS: usize = 64;

/// A value to redact: its bytes, what it becomes, and whether its encodings
/// (hex, base64) are looked for too.
pub(crate) struct Sensitive<'a> {
    pub(crate) value: &'a [u8],
    pub(crate) replacement: &'a [u8],
    pub(crate) encoded: bool,
}

/// The patterns of a set of values, compiled.
struct Compiled {
    regex: Regex,
    /// For each pattern, the index of the value it belongs to.
    owner: Vec<usize>,
    /// The longest text any pattern can match.
    longest: usize,
}

/// Replaces every form of a set of values by the value's replacement.
/// Cheap to share: runs holding the same secrets share its matcher.
#[derive(Default)]
pub struct Redaction {
    compiled: Option<Arc<Compiled>>,
    replacements: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redaction").field("values", &self.replacements.len()).finish()
    }
}

impl Redaction {
    /// The redaction of `values` (empty values are skipped).
    pub(crate) fn new(values: &[Sensitive<'_>]) -> Self {
        let values: Vec<&Sensitive<'_>> = values.iter().filter(|v| !v.value.is_empty()).collect();
        if values.is_empty() {
            return Self::default();
        }
        let compiled = compiled(&values);
        Self {
            compiled: Some(compiled),
            replacements: values.iter().map(|v| v.replacement.to_vec()).collect(),
        }
    }

    /// Whether there is anything to look for.
    pub fn is_empty(&self) -> bool {
        self.compiled.is_none()
    }

    /// How many bytes a streaming rewrite must hold back: one less than the
    /// longest form.
    pub(crate) fn hold(&self) -> usize {
        self.compiled.as_ref().map_or(0, |c| c.longest.saturating_sub(1))
    }

    /// Whether any form occurs in `data`.
    pub(crate) fn found_in(&self, data: &[u8]) -> bool {
        self.compiled.as_ref().is_some_and(|c| c.regex.is_match(data))
    }

    /// Calls `found(start, end, replacement)` for each form in `data`, left
    /// to right, until it returns `false`.
    pub(crate) fn each_match(&self, data: &[u8], mut found: impl FnMut(usize, usize, &[u8]) -> bool) {
        let Some(compiled) = &self.compiled else { return };
        for m in compiled.regex.find_iter(data) {
            let replacement = &self.replacements[compiled.owner[m.pattern().as_usize()]];
            if !found(m.start(), m.end(), replacement) {
                return;
            }
        }
    }

    /// `data` with every form replaced.
    pub fn redact_bytes(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut copied = 0;
        self.each_match(data, |start, end, replacement| {
            out.extend_from_slice(&data[copied..start]);
            out.extend_from_slice(replacement);
            copied = end;
            true
        });
        out.extend_from_slice(&data[copied..]);
        out
    }

    /// [`Redaction::redact_bytes`] over text.
    pub fn redact(&self, text: &str) -> String {
        if !self.found_in(text.as_bytes()) {
            return text.to_string();
        }
        String::from_utf8(self.redact_bytes(text.as_bytes())).unwrap_or_else(|_| "[redacted]".into())
    }

    /// Every string (keys too) of a JSON value.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => *s = self.redact(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.redact_json(&mut v);
                    map.insert(self.redact(&key), v);
                }
            }
            _ => {}
        }
    }
}

/// The compiled patterns of `values`, from the cache when the same values
/// were compiled before.
fn compiled(values: &[&Sensitive<'_>]) -> Arc<Compiled> {
    static CACHE: Mutex<Vec<([u8; 32], Arc<Compiled>)>> = Mutex::new(Vec::new());
    let mut key = Sha256::new();
    for v in values {
        key.update((v.value.len() as u64).to_le_bytes());
        key.update(v.value);
        key.update([u8::from(v.encoded)]);
    }
    let key: [u8; 32] = key.finalize().into();
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(at) = cache.iter().position(|(k, _)| *k == key) {
        let entry = cache.remove(at);
        let compiled = entry.1.clone();
        cache.insert(0, entry);
        return compiled;
    }
    drop(cache);
    let compiled = Arc::new(compile(values));
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache.insert(0, (key, compiled.clone()));
    cache.truncate(CACHED_MATCHERS);
    compiled
}

fn compile(values: &[&Sensitive<'_>]) -> Compiled {
    let mut patterns = Vec::new();
    let mut owner = Vec::new();
    let mut longest = 1;
    for (index, sensitive) in values.iter().enumerate() {
        for (pattern, max) in forms(sensitive) {
            patterns.push(pattern);
            owner.push(index);
            longest = longest.max(max);
        }
    }
    let build = |patterns: &[String]| {
        Regex::builder()
            .syntax(syntax::Config::new().case_insensitive(true).unicode(false).utf8(false))
            .configure(Regex::config().utf8_empty(false).nfa_size_limit(Some(NFA_LIMIT)))
            .build_many(patterns)
            .ok()
    };
    match build(&patterns) {
        Some(regex) => Compiled { regex, owner, longest },
        None => {
            // Too large with every escape (a secret of many kilobytes): each
            // value as it is, which always fits.
            let plain: Vec<String> = values.iter().map(|v| literal(v.value)).collect();
            let longest = values.iter().map(|v| v.value.len()).max().unwrap_or(1);
            let regex = build(&plain).expect("a literal of each value fits the NFA limit");
            Compiled { regex, owner: (0..values.len()).collect(), longest }
        }
    }
}

/// How large the compiled patterns may grow before only literal values are
/// looked for.
const NFA_LIMIT: usize = 64 << 20;

/// A pattern matching exactly `value`'s bytes.
fn literal(value: &[u8]) -> String {
    value.iter().map(|b| format!("\\x{b:02X}")).collect()
}

/// The patterns (and the longest text each can match) of one value: the
/// text form first, so a match of it wins over an encoded form at the same
/// place.
fn forms(sensitive: &Sensitive<'_>) -> Vec<(String, usize)> {
    if sensitive.value.len() > MAX_ESCAPED_VALUE {
        // A key file, not a token: looked for as it is (its escapes would
        // take seconds to compile).
        return vec![(literal(sensitive.value), sensitive.value.len())];
    }
    let text = String::from_utf8_lossy(sensitive.value);
    let mut forms = vec![escaped_text(text.chars().map(|c| vec![c]))];
    if sensitive.encoded {
        forms.push(escaped_text(hex::encode(sensitive.value).chars().map(|c| vec![c])));
        for offset in 0..3 {
            let core = base64_core(sensitive.value, offset);
            if core.len() >= MIN_BASE64_CORE {
                forms.push(escaped_text(core.chars().map(base64_equivalents)));
            }
        }
    }
    forms
}

/// The base64 characters that depend only on `value` when it starts
/// `offset` bytes into a base64-encoded stream (`offset` in 0..3): the form
/// it has inside any longer base64 string, whatever comes before or after.
pub(crate) fn base64_core(value: &[u8], offset: usize) -> String {
    let mut stream = vec![0u8; offset];
    stream.extend_from_slice(value);
    stream.extend_from_slice(&[0, 0]);
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&stream);
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + value.len())) / 6;
    encoded.get(first..end).unwrap_or_default().to_string()
}

/// A standard base64 character and its URL-safe twin.
fn base64_equivalents(c: char) -> Vec<char> {
    match c {
        '+' | '-' => vec!['+', '-'],
        '/' | '_' => vec!['/', '_'],
        c => vec![c],
    }
}

/// A pattern matching a sequence of characters (each any of the given
/// ones), where each may appear as is or escaped as JSON or a URL would.
fn escaped_text(chars: impl Iterator<Item = Vec<char>>) -> (String, usize) {
    let mut pattern = String::new();
    let mut longest = 0;
    for choices in chars {
        let mut alternatives = Vec::new();
        let mut max = 0;
        for c in choices {
            for (alternative, len) in char_forms(c) {
                max = max.max(len);
                alternatives.push(alternative);
            }
        }
        longest += max;
        pattern.push_str("(?:");
        pattern.push_str(&alternatives.join("|"));
        pattern.push(')');
    }
    (pattern, longest)
}

/// Every way one character may be written: as is, percent-encoded, as a
/// JSON `\u` escape (a surrogate pair beyond the BMP), a JSON short escape,
/// `+` for a space. Each with its length in bytes.
fn char_forms(c: char) -> Vec<(String, usize)> {
    let mut utf8 = [0u8; 4];
    let bytes = c.encode_utf8(&mut utf8).as_bytes();
    let literal: String = bytes
        .iter()
        .map(|b| if b.is_ascii_alphanumeric() { (*b as char).to_string() } else { format!("\\x{b:02X}") })
        .collect();
    let percent: String = bytes.iter().map(|b| format!("\\x25{b:02X}")).collect();
    let mut units = [0u16; 2];
    let json: String = c.encode_utf16(&mut units).iter().map(|u| format!("\\x5Cu{u:04X}")).collect();
    let json_len = 6 * c.len_utf16();
    let mut forms = vec![(literal, bytes.len()), (percent, 3 * bytes.len()), (json, json_len)];
    let short = match c {
        '"' => Some("\\x5C\\x22"),
        '\\' => Some("\\x5C\\x5C"),
        '/' => Some("\\x5C\\x2F"),
        '\n' => Some("\\x5Cn"),
        '\r' => Some("\\x5Cr"),
        '\t' => Some("\\x5Ct"),
        '\u{8}' => Some("\\x5Cb"),
        '\u{c}' => Some("\\x5Cf"),
        ' ' => Some("\\x2B"),
        _ => None,
    };
    if let Some(short) = short {
        forms.push((short.to_string(), 2));
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    const SECRET: &str = "xoxb-real/secret+value?é 42";

    fn redaction() -> Redaction {
        Redaction::new(&[Sensitive { value: SECRET.as_bytes(), replacement: b"[P]", encoded: true }])
    }

    fn redacts(form: &str) {
        let redacted = redaction().redact(&format!("<<{form}>>"));
        assert!(redacted.contains("[P]"), "not redacted: {form} -> {redacted}");
    }

    #[test]
    fn the_text_form_is_redacted_with_any_characters_escaped() {
        redacts(SECRET);
        redacts(&SECRET.to_ascii_uppercase());
        let json = serde_json::to_string(SECRET).unwrap();
        redacts(&json[1..json.len() - 1]);
        redacts(&json[1..json.len() - 1].replace('/', "\\/"));
        let every: String = SECRET.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
        redacts(&every);
        redacts(&every.to_uppercase().replace("\\U", "\\u"));
        let some: String = SECRET
            .chars()
            .enumerate()
            .map(|(i, c)| if i % 2 == 0 { format!("\\u{:04x}", c as u32) } else { c.to_string() })
            .collect();
        redacts(&some);
    }

    #[test]
    fn percent_encodings_in_either_case_and_plus_for_space_are_redacted() {
        let form: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
        redacts(&form);
        redacts(&form.to_lowercase());
        let every: String = SECRET.bytes().map(|b| format!("%{b:02x}")).collect();
        redacts(&every);
        redacts(&SECRET.replace(' ', "%20"));
    }

    #[test]
    fn hex_in_either_case_is_redacted() {
        redacts(&hex::encode(SECRET));
        redacts(&hex::encode_upper(SECRET));
    }

    #[test]
    fn base64_is_redacted_at_any_offset_in_either_alphabet_padded_or_not() {
        for prefix in ["", "a", "ab", "abc", "user:"] {
            for suffix in ["", "x", "yz"] {
                let stream = format!("{prefix}{SECRET}{suffix}");
                let standard = STANDARD.encode(&stream);
                let url_safe = URL_SAFE_NO_PAD.encode(&stream);
                for encoded in [standard, url_safe] {
                    let redacted = redaction().redact(&encoded);
                    assert!(redacted.contains("[P]"), "{prefix}|{suffix}: {encoded}");
                    // What is left decodes to at most a few bits of the secret.
                    let left = redacted.replace("[P]", "");
                    assert!(
                        left.len() <= 4 + 4 * (prefix.len() + suffix.len()).div_ceil(3) + 4,
                        "{redacted}"
                    );
                }
            }
        }
    }

    #[test]
    fn unrelated_text_and_short_values_are_left_alone() {
        let text = "nothing to see here: eG94Yi1yZWFs 78786f78";
        assert_eq!(redaction().redact(text), text);
        let short = Redaction::new(&[Sensitive { value: b"abc", replacement: b"[P]", encoded: true }]);
        assert_eq!(
            short.redact("YWJj and abc"),
            "YWJj and [P]",
            "a 3-byte value has no base64 form to look for"
        );
        assert!(Redaction::new(&[]).is_empty());
    }

    #[test]
    fn a_value_too_long_for_its_escapes_is_still_redacted_as_it_is() {
        let huge = "k".repeat(MAX_ESCAPED_VALUE + 1);
        let redaction =
            Redaction::new(&[Sensitive { value: huge.as_bytes(), replacement: b"[P]", encoded: true }]);
        assert_eq!(redaction.redact(&format!("<{huge}>")), "<[P]>");
    }

    #[test]
    fn same_values_share_one_compiled_matcher() {
        let a = redaction();
        let b = Redaction::new(&[Sensitive { value: SECRET.as_bytes(), replacement: b"[Q]", encoded: true }]);
        assert!(Arc::ptr_eq(a.compiled.as_ref().unwrap(), b.compiled.as_ref().unwrap()));
        assert_eq!(b.redact(SECRET), "[Q]");
    }
}
