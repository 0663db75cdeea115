//! A JSON value whose objects keep every key in file order, duplicates included, so that the header
//! validator can reject a key that appears twice (`serde_json::Value` silently keeps the last one).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A parsed JSON value: objects as ordered entry lists, everything else as `serde_json::Value`.
#[derive(Debug)]
pub(crate) enum Json {
    Object(JsonObject),
    Plain(serde_json::Value),
}

/// A JSON object's entries in file order, duplicates kept.
#[derive(Debug)]
pub(crate) struct JsonObject {
    pub entries: Vec<(String, Json)>,
}

impl Json {
    /// The JSON type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Object(_) => "an object",
            Json::Plain(v) => json_type(v),
        }
    }

    /// Converts to a `serde_json::Value` (a duplicated key inside a nested object keeps its last value).
    pub fn into_plain(self) -> serde_json::Value {
        match self {
            Json::Plain(v) => v,
            Json::Object(o) => {
                serde_json::Value::Object(o.entries.into_iter().map(|(k, v)| (k, v.into_plain())).collect())
            }
        }
    }
}

/// The JSON type name of a value, for messages.
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Plain(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Plain(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Plain(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Plain(v.into()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Plain(v.into()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::Plain(v.into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Plain(serde_json::Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Json, A::Error> {
        serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Json::Plain)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value::<Json>()?;
            entries.push((k, v));
        }
        Ok(Json::Object(JsonObject { entries }))
    }
}
