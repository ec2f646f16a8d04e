//! JSON-like values that cross the plugin boundary unchanged: `Value` keeps JSON's
//! int / float / string / null / bool / list / map distinctions, and `Map` keeps insertion
//! order like a Python dict (Ceilometer's messages are built from dicts).

use std::fmt;

use abi_stable::std_types::{RString, RVec};
use abi_stable::StableAbi;

/// A JSON-like value: null, bool, integer, float, string, list or ordered map.
///
/// Ints stay ints and floats stay floats all the way to the wire (`512.0` is not `512`).
/// Build values with `From` (`Value::from(3)`, `Value::from("x")`, `Value::from(1.5)`)
/// and read them with the `as_*` accessors.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Default)]
pub struct Value(pub(crate) Repr);

#[doc(hidden)]
#[repr(u8)]
#[derive(StableAbi, Clone, PartialEq, Default)]
pub enum Repr {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(RString),
    List(RVec<Value>),
    Map(Map),
}

/// A borrowed view of a [`Value`], for matching on its kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    List(&'a [Value]),
    Map(&'a Map),
}

impl Value {
    /// The JSON `null` (Python `None`).
    pub const NULL: Value = Value(Repr::Null);

    /// A list value.
    pub fn list<I: IntoIterator<Item = Value>>(items: I) -> Value {
        Value(Repr::List(items.into_iter().collect()))
    }

    /// Borrow the value as an enum, to match on its kind.
    pub fn get(&self) -> ValueRef<'_> {
        match &self.0 {
            Repr::Null => ValueRef::Null,
            Repr::Bool(b) => ValueRef::Bool(*b),
            Repr::Int(i) => ValueRef::Int(*i),
            Repr::Float(f) => ValueRef::Float(*f),
            Repr::Str(s) => ValueRef::Str(s.as_str()),
            Repr::List(l) => ValueRef::List(l.as_slice()),
            Repr::Map(m) => ValueRef::Map(m),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.0, Repr::Null)
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self.0 {
            Repr::Bool(b) => Some(b),
            _ => None,
        }
    }
    /// The integer, if this is an int (floats are not truncated).
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            Repr::Int(i) => Some(i),
            _ => None,
        }
    }
    /// The number as a float, if this is an int or a float.
    pub fn as_f64(&self) -> Option<f64> {
        match self.0 {
            Repr::Int(i) => Some(i as f64),
            Repr::Float(f) => Some(f),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match &self.0 {
            Repr::List(l) => Some(l.as_slice()),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&Map> {
        match &self.0 {
            Repr::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.0 {
            Repr::Map(m) => Some(m),
            _ => None,
        }
    }
    /// A short name of the kind, for error messages ("string", "integer", ...).
    pub fn kind_name(&self) -> &'static str {
        match self.0 {
            Repr::Null => "null",
            Repr::Bool(_) => "boolean",
            Repr::Int(_) => "integer",
            Repr::Float(_) => "float",
            Repr::Str(_) => "string",
            Repr::List(_) => "list",
            Repr::Map(_) => "map",
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            ValueRef::Null => f.write_str("null"),
            ValueRef::Bool(b) => write!(f, "{b}"),
            ValueRef::Int(i) => write!(f, "{i}"),
            ValueRef::Float(x) => write!(f, "{x:?}"),
            ValueRef::Str(s) => write!(f, "{s:?}"),
            ValueRef::List(l) => f.debug_list().entries(l).finish(),
            ValueRef::Map(m) => fmt::Debug::fmt(m, f),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value { Value(Repr::Int(v as i64)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, isize);

impl From<u64> for Value {
    /// Saturates at `i64::MAX`: no counter the agent reports gets near it.
    fn from(v: u64) -> Value {
        Value(Repr::Int(i64::try_from(v).unwrap_or(i64::MAX)))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::from(v as u64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value(Repr::Float(v))
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value(Repr::Float(v as f64))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value(Repr::Bool(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value(Repr::Str(RString::from(v)))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value(Repr::Str(RString::from(v)))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::from(v.as_str())
    }
}
impl From<Map> for Value {
    fn from(v: Map) -> Value {
        Value(Repr::Map(v))
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value(Repr::List(RVec::from(v)))
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` becomes null, as Python's `None`.
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::NULL, Into::into)
    }
}

/// An insertion-ordered string-keyed map (a Python dict): `insert` on an existing key
/// replaces the value in place, a new key goes to the end.
///
/// Lookups are linear: metadata maps hold a few dozen keys, where a scan beats hashing.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Default)]
pub struct Map {
    entries: RVec<Entry>,
}

#[doc(hidden)]
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq)]
pub struct Entry {
    key: RString,
    value: Value,
}

impl Map {
    pub fn new() -> Map {
        Map {
            entries: RVec::new(),
        }
    }
    pub fn with_capacity(n: usize) -> Map {
        Map {
            entries: RVec::with_capacity(n),
        }
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|e| e.key.as_str() == key)
            .map(|e| &e.value)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|e| e.key.as_str() == key)
            .map(|e| &mut e.value)
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    /// Python's `d[key] = value`: replaces in place, or appends a new key.
    pub fn insert(&mut self, key: impl AsRef<str> + Into<String>, value: impl Into<Value>) {
        let value = value.into();
        if let Some(slot) = self.get_mut(key.as_ref()) {
            *slot = value;
        } else {
            self.entries.push(Entry {
                key: RString::from(key.into()),
                value,
            });
        }
    }
    /// Builder form of [`Map::insert`].
    pub fn with(mut self, key: impl AsRef<str> + Into<String>, value: impl Into<Value>) -> Map {
        self.insert(key, value);
        self
    }
    /// Python's `d.update(other)`.
    pub fn update(&mut self, other: &Map) {
        for (k, v) in other.iter() {
            self.insert(k, v.clone());
        }
    }
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.entries.iter().position(|e| e.key.as_str() == key)?;
        Some(self.entries.remove(pos).value)
    }
    /// Entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> + '_ {
        self.entries.iter().map(|e| (e.key.as_str(), &e.value))
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|e| e.key.as_str())
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str> + Into<String>, V: Into<Value>> FromIterator<(K, V)> for Map {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Map {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

mod serde_impls {
    use super::*;
    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeMap, SerializeSeq};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    impl Serialize for Value {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.get() {
                ValueRef::Null => s.serialize_unit(),
                ValueRef::Bool(b) => s.serialize_bool(b),
                ValueRef::Int(i) => s.serialize_i64(i),
                ValueRef::Float(f) => s.serialize_f64(f),
                ValueRef::Str(v) => s.serialize_str(v),
                ValueRef::List(l) => {
                    let mut seq = s.serialize_seq(Some(l.len()))?;
                    for v in l {
                        seq.serialize_element(v)?;
                    }
                    seq.end()
                }
                ValueRef::Map(m) => m.serialize(s),
            }
        }
    }

    impl Serialize for Map {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.len()))?;
            for (k, v) in self.iter() {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }

    struct ValueVisitor;

    impl<'de> Visitor<'de> for ValueVisitor {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON-like value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
            i64::try_from(v)
                .map(Value::from)
                .map_err(|_| E::custom(format!("integer {v} is too large")))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::NULL)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::NULL)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            Value::deserialize(d)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<Value>()? {
                out.push(v);
            }
            Ok(out.into())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some((k, v)) = map.next_entry::<String, Value>()? {
                out.insert(k, v);
            }
            Ok(out.into())
        }
    }

    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
            d.deserialize_any(ValueVisitor)
        }
    }

    impl<'de> Deserialize<'de> for Map {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
            match Value::deserialize(d)?.0 {
                Repr::Map(m) => Ok(m),
                other => Err(de::Error::custom(format!(
                    "expected a map, found {}",
                    Value(other).kind_name()
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_python_dict_order_on_update() {
        let mut m = Map::new().with("a", 1).with("b", 2);
        m.insert("a", 3);
        m.insert("c", 4);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(m.get("a").and_then(Value::as_i64), Some(3));
    }

    #[test]
    fn ints_and_floats_stay_distinct() {
        assert_eq!(Value::from(512).get(), ValueRef::Int(512));
        assert_eq!(Value::from(512.0).get(), ValueRef::Float(512.0));
        assert_ne!(Value::from(512), Value::from(512.0));
    }
}
