//! Upstream data as the executor holds it: objects are short vectors of `(key, value)` in the
//! upstream's order (a GraphQL object has few keys: a scan beats hashing every key), and
//! strings and keys are slices of the upstream's body wherever they need no unescaping, so
//! reading an answer allocates one vector per object or list and nothing per string.

use std::fmt;

use apollo_compiler::response::JsonValue;
use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON value from an upstream.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Data {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string.
    String(Text),
    /// A list.
    Array(Vec<Data>),
    /// An object.
    Object(Object),
}

/// A JSON object, keys in the order they came.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Object(Vec<(Text, Data)>);

/// UTF-8 text: short text (most keys, codes and names) held inline, longer text as a slice of
/// an upstream's body; neither allocates, and inline text costs no reference counting.
#[derive(Clone)]
pub(crate) struct Text(Repr);

/// Longest text held inline.
const INLINE: usize = 30;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Bytes),
}

impl Text {
    /// The text's bytes (UTF-8).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..*len as usize],
            Repr::Shared(b) => b,
        }
    }

    /// The text as a `str`.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("text is only ever made from `str`")
    }

    /// The text as a `String`.
    pub(crate) fn to_string_lossless(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    /// `bytes` inline when short, else `shared()`.
    fn new(bytes: &[u8], shared: impl FnOnce() -> Bytes) -> Self {
        if bytes.len() <= INLINE {
            let mut inline = [0; INLINE];
            inline[..bytes.len()].copy_from_slice(bytes);
            Text(Repr::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            })
        } else {
            Text(Repr::Shared(shared()))
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Text {}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for Text {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::new(s.as_bytes(), || Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::new(s.as_bytes(), || Bytes::from(s.clone().into_bytes()))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(self.as_bytes()), f)
    }
}

impl Data {
    /// The object, if this is one.
    pub(crate) fn as_object(&self) -> Option<&Object> {
        match self {
            Data::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub(crate) fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Data::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The text, if this is a string.
    pub(crate) fn as_text(&self) -> Option<&Text> {
        match self {
            Data::String(t) => Some(t),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Data::Null)
    }

    /// A `serde_json` copy (the unit tests compare with it).
    #[cfg(test)]
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Data::Null => Value::Null,
            Data::Bool(b) => Value::Bool(*b),
            Data::Number(n) => Value::Number(n.clone()),
            Data::String(t) => Value::String(t.to_string_lossless()),
            Data::Array(items) => Value::Array(items.iter().map(Data::to_value).collect()),
            Data::Object(o) => Value::Object(
                o.0.iter()
                    .map(|(k, v)| (k.to_string_lossless(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl Data {
    /// A copy as GraphQL variables hold it (join keys sent upstream).
    pub(crate) fn to_json(&self) -> JsonValue {
        match self {
            Data::Null => JsonValue::Null,
            Data::Bool(b) => JsonValue::Bool(*b),
            Data::Number(n) => JsonValue::Number(n.clone()),
            Data::String(t) => JsonValue::String(t.as_str().into()),
            Data::Array(items) => JsonValue::Array(items.iter().map(Data::to_json).collect()),
            Data::Object(o) => JsonValue::Object(
                o.0.iter()
                    .map(|(k, v)| (k.as_str().into(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl From<Value> for Data {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Data::Null,
            Value::Bool(b) => Data::Bool(b),
            Value::Number(n) => Data::Number(n),
            Value::String(s) => Data::String(Text::from(s)),
            Value::Array(items) => Data::Array(items.into_iter().map(Data::from).collect()),
            Value::Object(map) => Data::Object(Object::from(map)),
        }
    }
}

impl From<serde_json::Map<String, Value>> for Object {
    fn from(map: serde_json::Map<String, Value>) -> Self {
        Object(
            map.into_iter()
                .map(|(k, v)| (Text::from(k), Data::from(v)))
                .collect(),
        )
    }
}

impl Object {
    /// The value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Data> {
        self.0
            .iter()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// The value under `key`.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Data> {
        self.get_mut_bytes(key.as_bytes())
    }

    /// Sets `key` to `value`, in place if the key is there, else at the end.
    pub(crate) fn insert(&mut self, key: &str, value: Data) {
        match self.get_mut(key) {
            Some(v) => *v = value,
            None => self.0.push((Text::from(key), value)),
        }
    }

    /// [`Object::insert`] with a key made once for many objects (shared, not copied).
    pub(crate) fn insert_text(&mut self, key: &Text, value: Data) {
        match self.get_mut_bytes(key.as_bytes()) {
            Some(v) => *v = value,
            None => self.0.push((key.clone(), value)),
        }
    }

    fn get_mut_bytes(&mut self, key: &[u8]) -> Option<&mut Data> {
        self.0
            .iter_mut()
            .find(|(k, _)| k.as_bytes() == key)
            .map(|(_, v)| v)
    }

    /// Takes the value under `key` out; the last entry takes its place.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Data> {
        let i = self
            .0
            .iter()
            .position(|(k, _)| k.as_bytes() == key.as_bytes())?;
        Some(self.0.swap_remove(i).1)
    }

    /// Number of keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The entries, in order.
    pub(crate) fn into_entries(self) -> Vec<(Text, Data)> {
        self.0
    }
}

/// Reads one JSON value (such as a cached item) as [`Data`], strings sliced from `body`.
pub(crate) fn parse(body: &Bytes) -> Result<Data, serde_json::Error> {
    let text = std::str::from_utf8(body)
        .map_err(|e| <serde_json::Error as de::Error>::custom(format!("not UTF-8: {e}")))?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = DataSeed { body }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Deserializes [`Data`], slicing strings out of the body being read.
pub(crate) struct DataSeed<'b> {
    body: &'b Bytes,
}

impl DataSeed<'_> {
    fn text(&self, s: &str) -> Text {
        let base = self.body.as_ptr() as usize;
        let at = s.as_ptr() as usize;
        if at >= base && at + s.len() <= base + self.body.len() {
            Text::new(s.as_bytes(), || {
                self.body.slice(at - base..at - base + s.len())
            })
        } else {
            Text::from(s)
        }
    }
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Data;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Data, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }

    fn visit_none<E>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Data, E> {
        Ok(Data::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Data, E> {
        Ok(Data::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Data, E> {
        Ok(Data::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Data, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Data::Null, Data::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Data, E> {
        Ok(Data::String(self.text(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Data, E> {
        Ok(Data::String(Text::from(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(DataSeed { body: self.body })? {
            items.push(item);
        }
        Ok(Data::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key_seed(KeySeed { body: self.body })? {
            let value = map.next_value_seed(DataSeed { body: self.body })?;
            entries.push((key, value));
        }
        Ok(Data::Object(Object(entries)))
    }
}

/// Deserializes an object key as [`Text`].
struct KeySeed<'b> {
    body: &'b Bytes,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Text;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text, E> {
        Ok(DataSeed { body: self.body }.text(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Text, E> {
        Ok(Text::from(v))
    }
}

/// A GraphQL response body read with `data` as [`Data`]: `(data, errors)`.
pub(crate) struct ResponseSeed<'b> {
    pub(crate) body: &'b Bytes,
}

/// What [`ResponseSeed`] reads.
pub(crate) type Parsed = (Option<Object>, Vec<Value>);

impl<'de> DeserializeSeed<'de> for ResponseSeed<'_> {
    type Value = Parsed;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Parsed, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ResponseSeed<'_> {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GraphQL response object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let mut data = None;
        let mut errors = Vec::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "data" => {
                    data = match map.next_value_seed(DataSeed { body: self.body })? {
                        Data::Object(o) => Some(o),
                        Data::Null => None,
                        _ => return Err(de::Error::custom("`data` is not an object")),
                    }
                }
                "errors" => errors = map.next_value_seed(ErrorsSeed)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((data, errors))
    }
}

/// Most upstream errors passed on from one answer; the rest are counted in one more error.
pub(crate) const MAX_UPSTREAM_ERRORS: usize = 100;

/// Reads `errors`, keeping the first [`MAX_UPSTREAM_ERRORS`] and skipping the rest unparsed.
struct ErrorsSeed;

impl<'de> DeserializeSeed<'de> for ErrorsSeed {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Value>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ErrorsSeed {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of errors")
    }

    fn visit_unit<E>(self) -> Result<Vec<Value>, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut errors = Vec::new();
        while errors.len() < MAX_UPSTREAM_ERRORS {
            match seq.next_element::<Value>()? {
                Some(e) => errors.push(e),
                None => return Ok(errors),
            }
        }
        let mut more = 0usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            more += 1;
        }
        if more > 0 {
            errors.push(serde_json::json!({
                "message": format!("{more} more error(s) from this upstream were left out"),
            }));
        }
        Ok(errors)
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Data::Null => serializer.serialize_unit(),
            Data::Bool(b) => serializer.serialize_bool(*b),
            Data::Number(n) => n.serialize(serializer),
            Data::String(t) => t.serialize(serializer),
            Data::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Data::Object(o) => o.serialize(serializer),
        }
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Parsed {
        let body = Bytes::copy_from_slice(text.as_bytes());
        let mut de = serde_json::Deserializer::from_slice(&body);
        ResponseSeed { body: &body }.deserialize(&mut de).unwrap()
    }

    #[test]
    fn answers_read_into_data_and_back() {
        let text = r#"{"errors":[{"message":"x"}],"data":{"a":[1,-2,2.5,true,null],"b\"":"q\"\u00e9","c":{"d":"e"}},"extensions":{}}"#;
        let (data, errors) = parse(text);
        let data = data.unwrap();
        assert_eq!(errors, vec![serde_json::json!({"message": "x"})]);
        assert_eq!(
            data.get("c")
                .unwrap()
                .as_object()
                .unwrap()
                .get("d")
                .unwrap()
                .as_text()
                .unwrap()
                .as_bytes(),
            b"e"
        );
        assert_eq!(
            Data::Object(data.clone()).to_value(),
            serde_json::json!({"a": [1, -2, 2.5, true, null], "b\"": "q\"é", "c": {"d": "e"}})
        );
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"a":[1,-2,2.5,true,null],"b\"":"q\"é","c":{"d":"e"}}"#
        );
        assert_eq!(parse(r#"{"data":null}"#).0, None);
        let many = format!(
            r#"{{"errors":[{}{{"message":"last"}}]}}"#,
            r#"{"message":"e"},"#.repeat(250)
        );
        let (_, errors) = parse(&many);
        assert_eq!(errors.len(), MAX_UPSTREAM_ERRORS + 1);
        assert_eq!(
            errors[MAX_UPSTREAM_ERRORS]["message"],
            "151 more error(s) from this upstream were left out"
        );
        let body = Bytes::from_static(br#"{"data":[1]}"#);
        let mut de = serde_json::Deserializer::from_slice(&body);
        assert!(ResponseSeed { body: &body }.deserialize(&mut de).is_err());
    }

    #[test]
    fn objects_insert_in_place_and_remove() {
        let mut o = Object::default();
        o.insert("a", Data::Bool(true));
        o.insert("b", Data::Null);
        o.insert("a", Data::Bool(false));
        assert_eq!(o.len(), 2);
        assert_eq!(o.get("a"), Some(&Data::Bool(false)));
        assert_eq!(o.remove("a"), Some(Data::Bool(false)));
        assert_eq!(o.get("a"), None);
    }
}
