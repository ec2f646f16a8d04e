//! JSON-like values that cross the plugin boundary unchanged: `Value` keeps JSON's
//! int / float / string / null / bool / list / map distinctions, and `Map` keeps insertion
//! order like a Python dict (Ceilometer's messages are built from dicts).

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};

use abi_stable::std_types::{RArc, RBox, ROption, RString, RVec};
use abi_stable::StableAbi;

use crate::text::{Inline, Key};

/// A JSON-like value: null, bool, integer, float, string, list or ordered map.
///
/// Ints stay ints and floats stay floats all the way to the wire (`512.0` is not `512`).
/// Build values with `From` (`Value::from(3)`, `Value::from("x")`, `Value::from(1.5)`)
/// and read them with the `as_*` accessors.
#[repr(C)]
#[derive(StableAbi, Clone, Default)]
pub struct Value(pub(crate) Repr);

#[doc(hidden)]
#[repr(u8)]
#[derive(StableAbi, Clone, Default)]
pub enum Repr {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string of at most [`SHORT`] bytes, inline after the tag (most metadata values:
    /// states, names, flavor and image ids).
    Short(Inline<SHORT>),
    /// A longer string. Boxed, like lists and maps, so that a value takes 24 bytes:
    /// resources keep a few dozen metadata values each, and samples copy some.
    Str(RBox<RString>),
    List(RBox<RVec<Value>>),
    Map(RBox<Map>),
}

/// The longest string a [`Value`] keeps inline.
const SHORT: usize = 22;

impl Value {
    fn string(v: &str) -> Value {
        match Inline::new(v) {
            Some(i) => Value(Repr::Short(i)),
            None => Value(Repr::Str(RBox::new(RString::from(v)))),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.get() == other.get()
    }
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
        Value(Repr::List(RBox::new(items.into_iter().collect())))
    }

    /// Borrow the value as an enum, to match on its kind.
    pub fn get(&self) -> ValueRef<'_> {
        match &self.0 {
            Repr::Null => ValueRef::Null,
            Repr::Bool(b) => ValueRef::Bool(*b),
            Repr::Int(i) => ValueRef::Int(*i),
            Repr::Float(f) => ValueRef::Float(*f),
            Repr::Short(s) => ValueRef::Str(s.as_str()),
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
            Repr::Short(s) => Some(s.as_str()),
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
            Repr::Map(m) => Some(&**m),
            _ => None,
        }
    }
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.0 {
            Repr::Map(m) => Some(&mut **m),
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
            Repr::Short(_) | Repr::Str(_) => "string",
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
        Value::string(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        if v.len() <= SHORT {
            return Value::string(&v);
        }
        Value(Repr::Str(RBox::new(RString::from(v))))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::from(v.as_str())
    }
}
impl From<Map> for Value {
    fn from(v: Map) -> Value {
        Value(Repr::Map(RBox::new(v)))
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value(Repr::List(RBox::new(RVec::from(v))))
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
///
/// A map can be made *shared* ([`Map::into_shared`]): its entries move behind a
/// reference count, clones share them, and changes to a clone go to a small overlay
/// of its own. A resource's metadata is shared, so every sample about the resource
/// starts from it without copying, and a sample's additional metadata costs only its
/// own keys. Iteration order is the dict order either way.
#[repr(C)]
#[derive(StableAbi, Default)]
pub struct Map {
    /// Shared entries (never modified once shared).
    base: ROption<RArc<Shared>>,
    /// This map's own entries: values overriding `base` keys, and new keys after them.
    own: RVec<Entry>,
}

/// The entries of a shared map, and the host's slot for what it derives from them.
#[doc(hidden)]
#[repr(C)]
#[derive(StableAbi)]
pub struct Shared {
    entries: RVec<Entry>,
    slot: HostSlot,
}

#[doc(hidden)]
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq)]
pub struct Entry {
    // Inline (metadata keys are short): no allocation per key, and comparing keys reads
    // the entry only.
    key: Key,
    value: Value,
}

impl Clone for Map {
    fn clone(&self) -> Map {
        Map {
            base: self.base.clone(),
            own: self.own.clone(),
        }
    }
}

impl PartialEq for Map {
    fn eq(&self, other: &Map) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl Map {
    pub fn new() -> Map {
        Map::default()
    }
    pub fn with_capacity(n: usize) -> Map {
        Map {
            base: ROption::RNone,
            own: RVec::with_capacity(n),
        }
    }

    fn base(&self) -> &[Entry] {
        match &self.base {
            ROption::RSome(b) => b.entries.as_slice(),
            ROption::RNone => &[],
        }
    }

    fn own_index(&self, key: &str) -> Option<usize> {
        self.own.iter().position(|e| e.key.as_str() == key)
    }

    fn in_base(&self, key: &str) -> bool {
        self.base().iter().any(|e| e.key.as_str() == key)
    }

    /// Move the entries behind a reference count: clones of the result share them.
    pub fn into_shared(self) -> Map {
        if self.own.is_empty() {
            return self;
        }
        let entries: RVec<Entry> = if self.base.is_none() {
            self.own
        } else {
            self.iter()
                .map(|(k, v)| Entry {
                    key: k.into(),
                    value: v.clone(),
                })
                .collect()
        };
        Map {
            base: ROption::RSome(RArc::new(Shared {
                entries,
                slot: HostSlot::default(),
            })),
            own: RVec::new(),
        }
    }

    /// The identity of the shared entries this map starts from (see
    /// [`SharedEntries::id`]), or None when it has none. Costs no reference count.
    pub fn shared_id(&self) -> Option<usize> {
        match &self.base {
            ROption::RSome(b) => Some(&**b as *const Shared as usize),
            ROption::RNone => None,
        }
    }

    /// A handle on the shared entries this map starts from, if any.
    pub fn shared_entries(&self) -> Option<SharedEntries> {
        self.shared().cloned()
    }

    /// The shared entries this map starts from, if any, borrowed (no reference count).
    pub fn shared(&self) -> Option<&SharedEntries> {
        match &self.base {
            // SAFETY: SharedEntries is a repr(transparent) wrapper of RArc<Shared>.
            ROption::RSome(b) => {
                Some(unsafe { &*(b as *const RArc<Shared>).cast::<SharedEntries>() })
            }
            ROption::RNone => None,
        }
    }

    /// This map's own entries in insertion order: on a map with shared entries, the
    /// values that override shared keys and the keys added after them; otherwise every
    /// entry.
    pub fn own_entries(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> + '_ {
        self.own.iter().map(|e| (e.key.as_str(), &e.value))
    }

    pub fn len(&self) -> usize {
        let new_keys = self.own.iter().filter(|e| !self.in_base(&e.key)).count();
        self.base().len() + new_keys
    }
    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.base().is_empty()
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        if let Some(i) = self.own_index(key) {
            return Some(&self.own[i].value);
        }
        self.base()
            .iter()
            .find(|e| e.key.as_str() == key)
            .map(|e| &e.value)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        if let Some(i) = self.own_index(key) {
            return Some(&mut self.own[i].value);
        }
        // A shared key: copy it into the overlay, which then overrides it.
        let value = self
            .base()
            .iter()
            .find(|e| e.key.as_str() == key)?
            .value
            .clone();
        self.own.push(Entry {
            key: key.into(),
            value,
        });
        self.own.last_mut().map(|e| &mut e.value)
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    /// Python's `d[key] = value`: replaces in place, or appends a new key.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl Into<Value>) {
        let value = value.into();
        if let Some(i) = self.own_index(key.as_ref()) {
            self.own[i].value = value;
        } else {
            self.own.push(Entry {
                key: Key::new(key.as_ref()),
                value,
            });
        }
    }
    /// Builder form of [`Map::insert`].
    pub fn with(mut self, key: impl AsRef<str>, value: impl Into<Value>) -> Map {
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
        if self.in_base(key) {
            // Rare: materialise the map without the key.
            let removed = self.get(key).cloned();
            let own: RVec<Entry> = self
                .iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| Entry {
                    key: k.into(),
                    value: v.clone(),
                })
                .collect();
            *self = Map {
                base: ROption::RNone,
                own,
            };
            return removed;
        }
        let pos = self.own_index(key)?;
        Some(self.own.remove(pos).value)
    }
    /// Entries in insertion order.
    pub fn iter(&self) -> MapIter<'_> {
        MapIter {
            map: self,
            base: self.base().iter(),
            own: self.own.iter(),
            remaining: self.len(),
        }
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(k, _)| k)
    }
}

/// A handle on the entries of a shared map ([`Map::into_shared`]). The entries never
/// change once shared, so what is derived from them (a rendering, a sort order) stays
/// valid for as long as they live: the host keeps it in their [`HostSlot`].
#[derive(Clone)]
#[repr(transparent)]
pub struct SharedEntries(RArc<Shared>);

impl SharedEntries {
    /// An identity for the entries, equal to [`Map::shared_id`] of every map that shares
    /// them. It cannot be reused for other entries while this handle lives.
    pub fn id(&self) -> usize {
        &*self.0 as *const Shared as usize
    }
    /// The host's slot on these entries.
    pub fn slot(&self) -> &HostSlot {
        &self.0.slot
    }
    /// How many maps and handles share the entries (1: only this handle is left).
    pub fn share_count(&self) -> usize {
        RArc::strong_count(&self.0)
    }
    pub fn len(&self) -> usize {
        self.0.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }
    /// The `i`th entry in insertion order.
    pub fn get_index(&self, i: usize) -> Option<(&str, &Value)> {
        self.0.entries.get(i).map(|e| (e.key.as_str(), &e.value))
    }
    /// The entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> + '_ {
        self.0.entries.iter().map(|e| (e.key.as_str(), &e.value))
    }
}

/// A place on a shared map's entries where the host keeps one thing it derives from
/// them (the publisher's rendering of a resource's metadata), so that finding it is a
/// pointer load rather than a lookup, and it is freed with the entries. Set at most once;
/// plugins never use it.
#[repr(C)]
#[derive(StableAbi, Default)]
pub struct HostSlot(AtomicPtr<HostData>);

/// The header of what the host keeps in a [`HostSlot`]: the function that frees it,
/// called once, by whichever thread drops the entries last (host code: the host binary
/// is never unloaded).
#[repr(C)]
#[derive(StableAbi)]
pub struct HostData {
    pub free: unsafe extern "C" fn(*mut ()),
}

impl HostSlot {
    /// What the host keeps here, if set.
    pub fn get(&self) -> Option<NonNull<HostData>> {
        NonNull::new(self.0.load(Ordering::Acquire))
    }

    /// Keep `data` here unless something is already kept: then that is returned and the
    /// caller still owns `data`.
    ///
    /// # Safety
    /// `data` must stay valid until its `free` is called with it, which must release it,
    /// and must be safe to call from any thread.
    pub unsafe fn set(&self, data: NonNull<HostData>) -> Result<(), NonNull<HostData>> {
        match self.0.compare_exchange(
            std::ptr::null_mut(),
            data.as_ptr(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            Err(other) => Err(NonNull::new(other).unwrap_or(data)),
        }
    }
}

impl Drop for HostSlot {
    fn drop(&mut self) {
        if let Some(p) = NonNull::new(*self.0.get_mut()) {
            // SAFETY: set() only accepts data whose `free` releases it, called once here.
            unsafe { ((*p.as_ptr()).free)(p.as_ptr().cast()) }
        }
    }
}

impl fmt::Debug for SharedEntries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over a [`Map`]'s entries in insertion order.
pub struct MapIter<'a> {
    map: &'a Map,
    base: std::slice::Iter<'a, Entry>,
    own: std::slice::Iter<'a, Entry>,
    remaining: usize,
}

impl<'a> Iterator for MapIter<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.base.next() {
            self.remaining -= 1;
            let value = match self.map.own_index(&e.key) {
                Some(i) => &self.map.own[i].value,
                None => &e.value,
            };
            return Some((e.key.as_str(), value));
        }
        for e in self.own.by_ref() {
            if !self.map.in_base(&e.key) {
                self.remaining -= 1;
                return Some((e.key.as_str(), &e.value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for MapIter<'_> {}

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
                Repr::Map(m) => Ok(RBox::into_inner(m)),
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
    fn shared_maps_behave_like_dicts() {
        let base = Map::new()
            .with("a", 1)
            .with("b", 2)
            .with("c", 3)
            .into_shared();
        let mut m = base.clone();
        m.insert("b", 20);
        m.insert("d", 4);
        assert_eq!(
            m.iter()
                .map(|(k, v)| (k, v.as_i64().unwrap()))
                .collect::<Vec<_>>(),
            [("a", 1), ("b", 20), ("c", 3), ("d", 4)]
        );
        assert_eq!(m.len(), 4);
        assert_eq!(m.iter().len(), 4);
        *m.get_mut("a").unwrap() = Value::from(10);
        assert_eq!(m.get("a").and_then(Value::as_i64), Some(10));
        // the shared entries are untouched
        assert_eq!(base.get("a").and_then(Value::as_i64), Some(1));
        assert_eq!(base.get("b").and_then(Value::as_i64), Some(2));
        assert_eq!(base.len(), 3);
        assert_eq!(m.remove("c").and_then(|v| v.as_i64()), Some(3));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "d"]);
        assert_eq!(m, Map::new().with("a", 10).with("b", 20).with("d", 4));
        assert_eq!(base.clone().into_shared(), base);
    }

    #[test]
    fn shared_entries_identify_the_base_and_count_its_sharers() {
        let base = Map::new().with("a", 1).with("b", 2).into_shared();
        assert!(Map::new().with("a", 1).shared_id().is_none());
        let id = base.shared_id().expect("shared");
        let mut m = base.clone();
        m.insert("b", 20);
        m.insert("c", 3);
        assert_eq!(m.shared_id(), Some(id));
        let h = m.shared_entries().expect("shared");
        assert_eq!(h.id(), id);
        assert_eq!(h.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(h.get_index(1).and_then(|(_, v)| v.as_i64()), Some(2));
        assert_eq!(
            m.own_entries()
                .map(|(k, v)| (k, v.as_i64().unwrap()))
                .collect::<Vec<_>>(),
            [("b", 20), ("c", 3)]
        );
        assert_eq!(h.share_count(), 3);
        drop((base, m));
        assert_eq!(h.share_count(), 1);
    }

    #[test]
    fn the_host_slot_is_set_once_and_freed_with_the_entries() {
        use std::sync::atomic::AtomicUsize;
        static FREED: AtomicUsize = AtomicUsize::new(0);
        #[repr(C)]
        struct Data {
            header: HostData,
            tag: u32,
        }
        unsafe extern "C" fn free(p: *mut ()) {
            drop(unsafe { Box::from_raw(p.cast::<Data>()) });
            FREED.fetch_add(1, Ordering::SeqCst);
        }
        let make = |tag| {
            NonNull::from(Box::leak(Box::new(Data {
                header: HostData { free },
                tag,
            })))
            .cast::<HostData>()
        };
        let base = Map::new().with("a", 1).into_shared();
        let sample = base.clone().with("b", 2);
        let slot = base.shared().expect("shared").slot();
        assert!(slot.get().is_none());
        assert!(unsafe { slot.set(make(1)) }.is_ok());
        let second = make(2);
        assert_eq!(unsafe { slot.set(second) }, Err(slot.get().unwrap()));
        unsafe { free(second.as_ptr().cast()) };
        let kept = sample.shared().expect("shared").slot().get().unwrap();
        assert_eq!(unsafe { (*kept.as_ptr().cast::<Data>()).tag }, 1);
        let before = FREED.load(Ordering::SeqCst);
        drop(base);
        assert_eq!(
            FREED.load(Ordering::SeqCst),
            before,
            "a map still shares them"
        );
        drop(sample);
        assert_eq!(FREED.load(Ordering::SeqCst), before + 1);
    }

    #[test]
    fn values_and_entries_are_compact_and_strings_read_back_whole() {
        // A resource keeps a few dozen entries: their size is most of its memory.
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::size_of::<Entry>(), 48);
        for s in [
            "",
            "active",
            "é",
            &"x".repeat(SHORT),
            &"y".repeat(SHORT + 1),
        ] {
            let short = s.len() <= SHORT;
            for v in [Value::from(s), Value::from(s.to_string())] {
                assert_eq!(matches!(v.0, Repr::Short(_)), short, "{s}");
                assert_eq!(v.as_str(), Some(s));
                assert_eq!(v.get(), ValueRef::Str(s));
                assert_eq!(v.kind_name(), "string");
                assert_eq!(v.clone(), v);
            }
        }
        assert_ne!(Value::from("a"), Value::from("b"));
        let mut nested = Value::from(Map::new().with("k", 1));
        nested.as_map_mut().unwrap().insert("l", "m");
        assert_eq!(nested.as_map().unwrap().get("l"), Some(&Value::from("m")));
        let list = Value::list([Value::from(1), Value::from("x")]);
        assert_eq!(list.as_list().map(<[Value]>::len), Some(2));
    }

    #[test]
    fn ints_and_floats_stay_distinct() {
        assert_eq!(Value::from(512).get(), ValueRef::Int(512));
        assert_eq!(Value::from(512.0).get(), ValueRef::Float(512.0));
        assert_ne!(Value::from(512), Value::from(512.0));
    }
}
