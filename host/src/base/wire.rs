//! Serde helpers for the JSON the host prints and stores: one shape for a
//! duration and for named values everywhere, readable back from what runs
//! stored before issue 12.

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::marker::PhantomData;
use std::time::Duration;

/// Ordered `(name, value)` pairs as a JSON object (order kept: serde_json
/// has `preserve_order`), so scripts read `exports.name`, not `exports[0][1]`;
/// reads the object back, or the `[[name, value], …]` arrays stored before.
pub mod pairs_as_object {
    use super::*;

    /// Writes the pairs as one object, in order.
    pub fn serialize<S: Serializer, V: Serialize>(pairs: &[(String, V)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
    }

    /// Reads an object, or an array of two-element arrays (old rows).
    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        d: D,
    ) -> Result<Vec<(String, V)>, D::Error> {
        struct Pairs<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Pairs<V> {
            type Value = Vec<(String, V)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(entry) = seq.next_element()? {
                    out.push(entry);
                }
                Ok(out)
            }
        }
        d.deserialize_any(Pairs(PhantomData))
    }
}

/// A `Duration` as fractional milliseconds, for keys ending in `_ms`.
pub mod duration_ms {
    use super::*;

    /// Writes `1.5` for 1.5 ms.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    /// Reads fractional milliseconds; a negative or non-finite number is an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Duration::try_from_secs_f64(f64::deserialize(d)? / 1000.0).map_err(serde::de::Error::custom)
    }
}
