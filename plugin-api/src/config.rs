//! The configuration every plugin receives when constructed (stevedore's invoke args):
//! the host's whole configuration as sections of options, plus the option specs a
//! library declares so the host can validate and document the plugin's own options.

use abi_stable::std_types::RString;
use abi_stable::StableAbi;

use crate::error::PluginError;
use crate::value::{Map, Value, ValueRef};

/// The host configuration: `[section] option = value`, with Ceilometer's section and
/// option names (`[DEFAULT] host`, `[compute] libvirt_uri`, ...).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct Config {
    sections: Map,
}

impl Config {
    pub fn new() -> Config {
        Config::default()
    }

    /// Set `[section] option = value`.
    pub fn set(&mut self, section: &str, option: &str, value: impl Into<Value>) {
        if !self.sections.contains_key(section) {
            self.sections.insert(section, Map::new());
        }
        if let Some(map) = self.sections.get_mut(section).and_then(Value::as_map_mut) {
            map.insert(option, value);
        }
    }

    /// Builder form of [`Config::set`].
    pub fn with(mut self, section: &str, option: &str, value: impl Into<Value>) -> Config {
        self.set(section, option, value);
        self
    }

    /// The raw value of `[section] option`, if set.
    pub fn get(&self, section: &str, option: &str) -> Option<&Value> {
        self.sections.get(section)?.as_map()?.get(option)
    }

    /// All sections, in the order they were first set.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Map)> + '_ {
        self.sections
            .iter()
            .filter_map(|(name, v)| v.as_map().map(|m| (name, m)))
    }

    /// A string option; `Ok(None)` when unset, an error naming the option when the
    /// value has another type.
    pub fn str(&self, section: &str, option: &str) -> Result<Option<&str>, PluginError> {
        match self.get(section, option).map(Value::get) {
            None | Some(ValueRef::Null) => Ok(None),
            Some(ValueRef::Str(s)) => Ok(Some(s)),
            Some(_) => Err(type_error(section, option, "a string", self)),
        }
    }

    pub fn bool(&self, section: &str, option: &str) -> Result<Option<bool>, PluginError> {
        match self.get(section, option).map(Value::get) {
            None | Some(ValueRef::Null) => Ok(None),
            Some(ValueRef::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(type_error(section, option, "a boolean", self)),
        }
    }

    pub fn i64(&self, section: &str, option: &str) -> Result<Option<i64>, PluginError> {
        match self.get(section, option).map(Value::get) {
            None | Some(ValueRef::Null) => Ok(None),
            Some(ValueRef::Int(i)) => Ok(Some(i)),
            Some(_) => Err(type_error(section, option, "an integer", self)),
        }
    }

    pub fn f64(&self, section: &str, option: &str) -> Result<Option<f64>, PluginError> {
        match self.get(section, option).map(Value::get) {
            None | Some(ValueRef::Null) => Ok(None),
            Some(ValueRef::Int(i)) => Ok(Some(i as f64)),
            Some(ValueRef::Float(f)) => Ok(Some(f)),
            Some(_) => Err(type_error(section, option, "a number", self)),
        }
    }

    /// A list of strings (a single string counts as a one-element list).
    pub fn str_list(
        &self,
        section: &str,
        option: &str,
    ) -> Result<Option<Vec<String>>, PluginError> {
        match self.get(section, option).map(Value::get) {
            None | Some(ValueRef::Null) => Ok(None),
            Some(ValueRef::Str(s)) => Ok(Some(vec![s.to_string()])),
            Some(ValueRef::List(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| type_error(section, option, "a list of strings", self))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(type_error(section, option, "a list of strings", self)),
        }
    }
}

fn type_error(section: &str, option: &str, expected: &str, cfg: &Config) -> PluginError {
    let found = cfg
        .get(section, option)
        .map(Value::kind_name)
        .unwrap_or("nothing");
    PluginError::failed(format!(
        "option [{section}] {option}: expected {expected}, found {found}"
    ))
}

/// The type of a declared option.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    Str,
    Bool,
    Int,
    Float,
    StrList,
}

impl OptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OptionKind::Str => "string",
            OptionKind::Bool => "boolean",
            OptionKind::Int => "integer",
            OptionKind::Float => "float",
            OptionKind::StrList => "list of strings",
        }
    }

    /// Whether `value` is acceptable for this kind (ints are acceptable floats).
    pub fn accepts(self, value: &Value) -> bool {
        match (self, value.get()) {
            (_, ValueRef::Null) => true,
            (OptionKind::Str, ValueRef::Str(_)) => true,
            (OptionKind::Bool, ValueRef::Bool(_)) => true,
            (OptionKind::Int, ValueRef::Int(_)) => true,
            (OptionKind::Float, ValueRef::Int(_) | ValueRef::Float(_)) => true,
            (OptionKind::StrList, ValueRef::Str(_)) => true,
            (OptionKind::StrList, ValueRef::List(items)) => {
                items.iter().all(|v| v.as_str().is_some())
            }
            _ => false,
        }
    }
}

/// An option a plugin library reads, declared so the host can reject unknown options
/// and wrong types, and list them for operators.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct OptionSpec {
    section: RString,
    name: RString,
    kind: OptionKind,
    default: Value,
    help: RString,
    secret: bool,
}

impl OptionSpec {
    pub fn new(
        section: &str,
        name: &str,
        kind: OptionKind,
        default: impl Into<Value>,
        help: &str,
    ) -> OptionSpec {
        OptionSpec {
            section: section.into(),
            name: name.into(),
            kind,
            default: default.into(),
            help: help.into(),
            secret: false,
        }
    }
    /// Mark the option as secret: its value is never printed.
    pub fn secret(mut self) -> OptionSpec {
        self.secret = true;
        self
    }
    pub fn section(&self) -> &str {
        &self.section
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> OptionKind {
        self.kind
    }
    pub fn default_value(&self) -> &Value {
        &self.default
    }
    pub fn help(&self) -> &str {
        &self.help
    }
    pub fn is_secret(&self) -> bool {
        self.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_name_the_option_on_mismatch() {
        let cfg = Config::new()
            .with("compute", "libvirt_uri", "test:///default")
            .with("polling", "batch_size", "fifty");
        assert_eq!(
            cfg.str("compute", "libvirt_uri").unwrap(),
            Some("test:///default")
        );
        assert_eq!(cfg.str("compute", "missing").unwrap(), None);
        let err = cfg.i64("polling", "batch_size").unwrap_err();
        assert_eq!(
            err.to_string(),
            "option [polling] batch_size: expected an integer, found string"
        );
    }
}
