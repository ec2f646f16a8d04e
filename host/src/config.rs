//! The layered configuration: documented defaults < the TOML file < environment
//! (`LONGSHORE_<SECTION>__<OPTION>`) < command line (dedicated flags and `--set`).
//! Every value remembers where it came from, so errors name the file and line (or the
//! variable, or the flag). Host options are checked on load; plugin options once the
//! libraries declaring them are open. The result is the `Config` every plugin gets.

use std::fmt;
use std::path::{Path, PathBuf};

use longshore_extension::Location;
use longshore_plugin_api::{Config, Map, OptionKind, OptionSpec, Value, ValueRef};

use crate::options::{host_options, HOST_SECTIONS};

/// Prefix of the environment variables that override options.
pub const ENV_PREFIX: &str = "LONGSHORE_";

/// Where a value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    Default,
    File(Location),
    /// The variable's name.
    Env(String),
    /// The flag, e.g. `--host` or `--set polling.batch_size`.
    Cli(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(loc) => write!(f, "{loc}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Cli(flag) => write!(f, "command line {flag}"),
        }
    }
}

/// A configuration problem. All are errors except `Unverifiable`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: invalid TOML: {message}")]
    Syntax { location: Location, message: String },
    #[error("{location}: {key:?} is not inside a section; put options under a section such as [DEFAULT] or [polling]")]
    NotInSection { location: Location, key: String },
    #[error("{location}: [{section}] {key} is a table; sections hold options, not tables")]
    NestedTable {
        location: Location,
        section: String,
        key: String,
    },
    #[error("{origin}: unknown option [{section}] {option}; {known}")]
    Unknown {
        origin: Origin,
        section: String,
        option: String,
        /// What is known about the section, for the message.
        known: String,
    },
    #[error("{origin}: [{section}] {option} must be {expected}, found {found}")]
    WrongType {
        origin: Origin,
        section: String,
        option: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("--set {arg}: expected SECTION.OPTION=VALUE, e.g. --set polling.batch_size=100")]
    BadSet { arg: String },
    #[error("environment variable {var}: expected {ENV_PREFIX}<SECTION>__<OPTION>, e.g. LONGSHORE_POLLING__BATCH_SIZE")]
    BadEnv { var: String },
    /// An option in a section no loaded library declares while some libraries failed
    /// to load: it may belong to one of them.
    #[error("{origin}: cannot check [{section}] {option}: no loaded plugin declares section [{section}] (some plugin libraries failed to load)")]
    Unverifiable {
        origin: Origin,
        section: String,
        option: String,
    },
}

impl ConfigError {
    pub fn is_warning(&self) -> bool {
        matches!(self, ConfigError::Unverifiable { .. })
    }
}

/// One value given on the command line or in the environment, not yet typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub section: String,
    pub option: String,
    pub text: String,
    pub origin: Origin,
}

fn section_name(s: &str) -> String {
    if s.eq_ignore_ascii_case("default") {
        "DEFAULT".to_string()
    } else {
        s.to_string()
    }
}

impl Override {
    /// A dedicated flag such as `--host`.
    pub fn flag(flag: &str, section: &str, option: &str, text: impl Into<String>) -> Override {
        Override {
            section: section.to_string(),
            option: option.to_string(),
            text: text.into(),
            origin: Origin::Cli(flag.to_string()),
        }
    }

    /// `--set section.option=value`.
    pub fn parse_set(arg: &str) -> Result<Override, ConfigError> {
        let bad = || ConfigError::BadSet {
            // Never echo the value: it may be a secret.
            arg: arg.split('=').next().unwrap_or("").to_string() + "=…",
        };
        let (key, text) = arg.split_once('=').ok_or_else(bad)?;
        let (section, option) = key.split_once('.').ok_or_else(bad)?;
        if section.is_empty() || option.is_empty() {
            return Err(bad());
        }
        Ok(Override {
            section: section_name(section),
            option: option.to_string(),
            text: text.to_string(),
            origin: Origin::Cli(format!("--set {section}.{option}")),
        })
    }

    /// The `LONGSHORE_<SECTION>__<OPTION>` variables among `vars` (others are
    /// ignored; `LONGSHORE_CONFIG` names the file and is not an option).
    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<Override>, ConfigError> {
        let mut out = Vec::new();
        for (var, text) in vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, option)) = rest.split_once("__") else {
                continue;
            };
            if section.is_empty() || option.is_empty() {
                return Err(ConfigError::BadEnv { var });
            }
            out.push(Override {
                section: section_name(&section.to_ascii_lowercase()),
                option: option.to_ascii_lowercase(),
                text,
                origin: Origin::Env(var),
            });
        }
        // Deterministic order whatever the environment's order.
        out.sort_by_key(|o| o.origin.to_string());
        Ok(out)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    section: String,
    option: String,
    value: Value,
    origin: Origin,
    /// The text of an environment or command-line value (typed once the option's
    /// kind is known).
    raw: Option<String>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    file: Option<PathBuf>,
    entries: Vec<Entry>,
    specs: Vec<OptionSpec>,
    cwd: PathBuf,
}

impl Settings {
    /// Layer `file` (if any), `env` and `cli` over the defaults and check the host's
    /// own options. Plugin options are checked later, by
    /// [`validate_plugin_options`](Self::validate_plugin_options).
    pub fn load(
        file: Option<&Path>,
        env: Vec<Override>,
        cli: Vec<Override>,
    ) -> Result<Settings, Vec<ConfigError>> {
        let mut settings = Settings {
            file: file.map(Path::to_path_buf),
            entries: Vec::new(),
            specs: host_options(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        for spec in settings.specs.clone() {
            settings.set_default(&spec);
        }
        let mut errors = Vec::new();
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    for item in parse_file(&text, path, &mut errors) {
                        settings.set(item);
                    }
                }
                Err(source) => errors.push(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }),
            }
        }
        for o in env.into_iter().chain(cli) {
            settings.set(Entry {
                value: parse_text(&o.text),
                raw: Some(o.text),
                section: o.section,
                option: o.option,
                origin: o.origin,
            });
        }
        errors.extend(settings.check(false));
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }

    fn set_default(&mut self, spec: &OptionSpec) {
        if spec.default_value().is_null() || self.find(spec.section(), spec.name()).is_some() {
            return;
        }
        self.entries.push(Entry {
            section: spec.section().to_string(),
            option: spec.name().to_string(),
            value: spec.default_value().clone(),
            origin: Origin::Default,
            raw: None,
        });
    }

    fn set(&mut self, entry: Entry) {
        match self
            .entries
            .iter_mut()
            .find(|e| e.section == entry.section && e.option == entry.option)
        {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
    }

    fn find(&self, section: &str, option: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.section == section && e.option == option)
    }

    fn spec(&self, section: &str, option: &str) -> Option<&OptionSpec> {
        self.specs
            .iter()
            .find(|s| s.section() == section && s.name() == option)
    }

    /// Type every value whose option is declared; with `complete`, also report the
    /// options nobody declares.
    fn check(&mut self, complete: bool) -> Vec<ConfigError> {
        self.check_with(complete, false)
    }

    fn check_with(&mut self, complete: bool, libraries_failed: bool) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let specs = self.specs.clone();
        for entry in &mut self.entries {
            if entry.origin == Origin::Default {
                continue;
            }
            let spec = specs
                .iter()
                .find(|s| s.section() == entry.section && s.name() == entry.option);
            match spec {
                Some(spec) => match typed(spec.kind(), &entry.value, entry.raw.as_deref()) {
                    Some(v) => entry.value = v,
                    None => errors.push(ConfigError::WrongType {
                        origin: entry.origin.clone(),
                        section: entry.section.clone(),
                        option: entry.option.clone(),
                        expected: expected(spec.kind()),
                        found: entry.value.kind_name(),
                    }),
                },
                None if !complete => {}
                None => {
                    let in_section: Vec<&str> = specs
                        .iter()
                        .filter(|s| s.section() == entry.section)
                        .map(|s| s.name())
                        .collect();
                    let host_section = HOST_SECTIONS.contains(&entry.section.as_str());
                    if in_section.is_empty() && !host_section && libraries_failed {
                        errors.push(ConfigError::Unverifiable {
                            origin: entry.origin.clone(),
                            section: entry.section.clone(),
                            option: entry.option.clone(),
                        });
                        continue;
                    }
                    let known = if in_section.is_empty() {
                        format!(
                            "no loaded plugin declares section [{}] (check the section name, and that the plugin declaring it is in entry_points.toml)",
                            entry.section
                        )
                    } else {
                        format!("[{}] accepts: {}", entry.section, in_section.join(", "))
                    };
                    errors.push(ConfigError::Unknown {
                        origin: entry.origin.clone(),
                        section: entry.section.clone(),
                        option: entry.option.clone(),
                        known,
                    });
                }
            }
        }
        errors
    }

    /// Learn the options the loaded plugin libraries declare: fill their defaults,
    /// type their values, and report every option nobody declares. When some
    /// libraries failed to load, options in sections nobody declares are reported as
    /// warnings only (they may belong to a library that did not load).
    pub fn validate_plugin_options(
        &mut self,
        plugin_specs: &[OptionSpec],
        libraries_failed: bool,
    ) -> Vec<ConfigError> {
        for spec in plugin_specs {
            if self.spec(spec.section(), spec.name()).is_none() {
                self.specs.push(spec.clone());
                self.set_default(spec);
            }
        }
        self.check_with(true, libraries_failed)
    }

    /// The configuration handed to every plugin: all sections, all effective values.
    pub fn config(&self) -> Config {
        let mut config = Config::new();
        for e in &self.entries {
            config.set(&e.section, &e.option, e.value.clone());
        }
        config
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Where the effective value of `[section] option` comes from (`None`: unset, no
    /// default).
    pub fn origin(&self, section: &str, option: &str) -> Option<&Origin> {
        self.find(section, option).map(|e| &e.origin)
    }

    /// The effective value of `[section] option`.
    pub fn value(&self, section: &str, option: &str) -> Option<&Value> {
        self.find(section, option)
            .map(|e| &e.value)
            .filter(|v| !v.is_null())
    }

    pub fn str(&self, section: &str, option: &str) -> Option<&str> {
        self.value(section, option).and_then(Value::as_str)
    }

    pub fn bool(&self, section: &str, option: &str) -> Option<bool> {
        self.value(section, option).and_then(Value::as_bool)
    }

    pub fn i64(&self, section: &str, option: &str) -> Option<i64> {
        self.value(section, option).and_then(Value::as_i64)
    }

    pub fn f64(&self, section: &str, option: &str) -> Option<f64> {
        self.value(section, option).and_then(Value::as_f64)
    }

    /// A list of strings (a single string is a one-element list).
    pub fn str_list(&self, section: &str, option: &str) -> Option<Vec<String>> {
        match self.value(section, option)?.get() {
            ValueRef::Str(s) => Some(vec![s.to_string()]),
            ValueRef::List(items) => Some(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The directory relative paths of this option start from: the configuration
    /// file's for values written there, the current directory otherwise.
    fn base_dir(&self, section: &str, option: &str) -> PathBuf {
        match self.find(section, option).map(|e| &e.origin) {
            Some(Origin::File(_)) => self
                .file
                .as_deref()
                .and_then(Path::parent)
                .map(|p| self.cwd.join(p))
                .unwrap_or_else(|| self.cwd.clone()),
            _ => self.cwd.clone(),
        }
    }

    /// A path option, resolved (see [`base_dir`](Self::base_dir)).
    pub fn path(&self, section: &str, option: &str) -> Option<PathBuf> {
        let p = self.str(section, option)?;
        Some(self.base_dir(section, option).join(p))
    }

    /// A list-of-paths option, resolved.
    pub fn paths(&self, section: &str, option: &str) -> Option<Vec<PathBuf>> {
        let base = self.base_dir(section, option);
        Some(
            self.str_list(section, option)?
                .into_iter()
                .map(|p| base.join(p))
                .collect(),
        )
    }

    pub fn entry_points_file(&self) -> PathBuf {
        self.path("entry_points", "file")
            .unwrap_or_else(|| self.cwd.join("entry_points.toml"))
    }

    /// `None`: the default (`plugins/` next to the entry points file).
    pub fn plugin_dirs(&self) -> Option<Vec<PathBuf>> {
        self.paths("entry_points", "plugin_dirs")
    }

    pub fn polling_file(&self) -> PathBuf {
        self.path("polling", "cfg_file")
            .unwrap_or_else(|| self.cwd.join("polling.yaml"))
    }

    pub fn allow_insecure_plugins(&self) -> bool {
        self.bool("entry_points", "allow_insecure_plugins")
            .unwrap_or(false)
    }

    /// `[DEFAULT] polling_namespaces`.
    pub fn polling_namespaces(&self) -> Vec<String> {
        self.str_list("DEFAULT", "polling_namespaces")
            .unwrap_or_default()
    }

    /// Every declared option and every value set, secrets masked, for listings.
    pub fn listing(&self) -> Vec<Listed> {
        let mut out: Vec<Listed> = self
            .specs
            .iter()
            .map(|spec| {
                let entry = self.find(spec.section(), spec.name());
                Listed {
                    section: spec.section().to_string(),
                    option: spec.name().to_string(),
                    kind: Some(spec.kind()),
                    value: entry.map(|e| display_value(Some(spec), &e.option, &e.value)),
                    default: display_value(Some(spec), spec.name(), spec.default_value()),
                    origin: entry.map(|e| e.origin.clone()),
                    help: spec.help().to_string(),
                }
            })
            .collect();
        for e in &self.entries {
            if self.spec(&e.section, &e.option).is_none() {
                out.push(Listed {
                    section: e.section.clone(),
                    option: e.option.clone(),
                    kind: None,
                    // Undeclared: nobody says whether it is secret, so mask it.
                    value: Some(mask_undeclared(&e.option, &e.value)),
                    default: String::new(),
                    origin: Some(e.origin.clone()),
                    help: "(not declared by the host or any loaded plugin)".to_string(),
                });
            }
        }
        out
    }
}

/// One option in a listing.
#[derive(Debug, Clone)]
pub struct Listed {
    pub section: String,
    pub option: String,
    pub kind: Option<OptionKind>,
    /// The effective value, masked when secret; `None` when unset.
    pub value: Option<String>,
    pub default: String,
    pub origin: Option<Origin>,
    pub help: String,
}

fn expected(kind: OptionKind) -> &'static str {
    match kind {
        OptionKind::Str => "a string",
        OptionKind::Bool => "a boolean",
        OptionKind::Int => "an integer",
        OptionKind::Float => "a float",
        OptionKind::StrList => "a list of strings",
    }
}

/// `value` as the option's kind, or `None` if it is of another type. Text from the
/// environment or command line (`raw`) is read as the kind wants: a string option
/// takes the text as is, a list option also accepts comma-separated text.
fn typed(kind: OptionKind, value: &Value, raw: Option<&str>) -> Option<Value> {
    match (kind, raw) {
        (OptionKind::Str, Some(raw)) if value.as_str().is_none() => Some(Value::from(raw)),
        (OptionKind::StrList, Some(raw)) if !kind.accepts(value) || value.as_str().is_some() => {
            Some(Value::list(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Value::from),
            ))
        }
        (OptionKind::StrList, _) => match value.get() {
            ValueRef::Str(s) => Some(Value::list([Value::from(s)])),
            _ if kind.accepts(value) => Some(value.clone()),
            _ => None,
        },
        _ if kind.accepts(value) => Some(value.clone()),
        _ => None,
    }
}

/// A command-line or environment value: a TOML scalar or array if it parses as one,
/// otherwise the text itself.
fn parse_text(text: &str) -> Value {
    match text.trim().parse::<toml_edit::Value>() {
        Ok(v) => from_toml(&v),
        Err(_) => Value::from(text),
    }
}

fn from_toml(v: &toml_edit::Value) -> Value {
    match v {
        toml_edit::Value::String(s) => Value::from(s.value().as_str()),
        toml_edit::Value::Integer(i) => Value::from(*i.value()),
        toml_edit::Value::Float(f) => Value::from(*f.value()),
        toml_edit::Value::Boolean(b) => Value::from(*b.value()),
        toml_edit::Value::Datetime(d) => Value::from(d.value().to_string()),
        toml_edit::Value::Array(a) => Value::list(a.iter().map(from_toml)),
        toml_edit::Value::InlineTable(t) => {
            let mut map = Map::new();
            for (k, v) in t.iter() {
                map.insert(k, from_toml(v));
            }
            Value::from(map)
        }
    }
}

/// The options of the file, with their locations; structural problems into `errors`.
fn parse_file(text: &str, path: &Path, errors: &mut Vec<ConfigError>) -> Vec<Entry> {
    let at = |offset: Option<usize>| Location::at(path, text, offset.unwrap_or(0));
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            errors.push(ConfigError::Syntax {
                location: at(e.span().map(|s| s.start)),
                message: e.message().trim().to_string(),
            });
            return Vec::new();
        }
    };
    let root = doc.as_table();
    let mut entries = Vec::new();
    for (section, item) in root.iter() {
        let section_offset = root
            .key(section)
            .and_then(|k| k.span())
            .or_else(|| item.span())
            .map(|s| s.start);
        let Some(table) = item.as_table_like() else {
            errors.push(ConfigError::NotInSection {
                location: at(section_offset),
                key: section.to_string(),
            });
            continue;
        };
        for (option, value) in table.iter() {
            let offset = table
                .key(option)
                .and_then(|k| k.span())
                .or_else(|| value.span())
                .map(|s| s.start)
                .or(section_offset);
            match value.as_value() {
                Some(v) if !v.is_inline_table() => entries.push(Entry {
                    section: section_name(section),
                    option: option.to_string(),
                    value: from_toml(v),
                    origin: Origin::File(at(offset)),
                    raw: None,
                }),
                _ => errors.push(ConfigError::NestedTable {
                    location: at(offset),
                    section: section.to_string(),
                    key: option.to_string(),
                }),
            }
        }
    }
    entries
}

const MASK: &str = "****";

/// How a value is shown: secrets masked, passwords in URLs masked.
pub fn display_value(spec: Option<&OptionSpec>, option: &str, value: &Value) -> String {
    if value.is_null() {
        return "(unset)".to_string();
    }
    if spec.is_some_and(OptionSpec::is_secret) {
        return MASK.to_string();
    }
    match value.get() {
        ValueRef::Str(s) if option.ends_with("url") => format!("{:?}", mask_url(s)),
        _ => format!("{value:?}"),
    }
}

fn mask_undeclared(option: &str, value: &Value) -> String {
    let secret_like = ["secret", "password", "passwd", "token", "key"]
        .iter()
        .any(|w| option.contains(w));
    if secret_like {
        MASK.to_string()
    } else {
        display_value(None, option, value)
    }
}

/// Mask the password of every `user:password@host` in a URL (oslo.messaging URLs may
/// list several hosts separated by commas).
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let hosts: Vec<String> = authority
        .split(',')
        .map(|netloc| match netloc.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:{MASK}@{host}"),
                None => netloc.to_string(),
            },
            None => netloc.to_string(),
        })
        .collect();
    format!("{scheme}://{}{path}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use longshore_plugin_api::OptionKind;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("longshore.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn load(text: &str, env: &[(&str, &str)], cli: &[&str]) -> Result<Settings, Vec<ConfigError>> {
        let (dir, path) = write(text);
        let env =
            Override::from_env(env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        let cli = cli
            .iter()
            .map(|a| Override::parse_set(a).unwrap())
            .collect();
        let s = Settings::load(Some(&path), env, cli);
        drop(dir);
        s
    }

    #[test]
    fn defaults_are_documented_values() {
        let s = Settings::load(None, vec![], vec![]).unwrap();
        assert_eq!(s.i64("polling", "batch_size"), Some(50));
        assert_eq!(s.str("polling", "cfg_file"), Some("polling.yaml"));
        assert_eq!(s.str("DEFAULT", "sample_source"), Some("openstack"));
        assert_eq!(
            s.str("DEFAULT", "host"),
            Some(crate::options::hostname().as_str())
        );
        assert_eq!(s.polling_namespaces(), ["compute"]);
        assert_eq!(s.plugin_dirs(), None);
        assert!(!s.allow_insecure_plugins());
    }

    #[test]
    fn precedence_is_cli_over_env_over_file_over_defaults() {
        let text = "[DEFAULT]\nhost = \"from-file\"\ncontrol_exchange = \"file-x\"\n[polling]\nbatch_size = 10\n";
        let s = load(
            text,
            &[
                ("LONGSHORE_DEFAULT__HOST", "from-env"),
                ("LONGSHORE_POLLING__BATCH_SIZE", "20"),
            ],
            &["DEFAULT.host=from-cli"],
        )
        .unwrap();
        assert_eq!(s.str("DEFAULT", "host"), Some("from-cli"));
        assert_eq!(s.i64("polling", "batch_size"), Some(20));
        assert_eq!(s.str("DEFAULT", "control_exchange"), Some("file-x"));
        assert_eq!(s.str("DEFAULT", "sample_source"), Some("openstack"));
    }

    #[test]
    fn text_values_take_the_declared_kind() {
        let s = load(
            "",
            &[("LONGSHORE_PUBLISHER__TELEMETRY_SECRET", "123456")],
            &[
                "oslo_messaging_notifications.topics=notifications,alt",
                "polling.pollster_timeout=5",
            ],
        )
        .unwrap();
        // A numeric-looking secret stays a string.
        assert_eq!(s.str("publisher", "telemetry_secret"), Some("123456"));
        assert_eq!(
            s.str_list("oslo_messaging_notifications", "topics")
                .unwrap(),
            ["notifications", "alt"]
        );
        assert_eq!(s.f64("polling", "pollster_timeout"), Some(5.0));
    }

    #[test]
    fn wrong_types_name_file_line_and_expected_type() {
        let errors = load("[polling]\n\nbatch_size = \"fifty\"\n", &[], &[]).unwrap_err();
        assert_eq!(errors.len(), 1);
        let text = errors[0].to_string();
        assert!(
            text.contains(
                "longshore.toml:3:1: [polling] batch_size must be an integer, found string"
            ),
            "{text}"
        );

        let errors = load("", &[], &["polling.batch_size=lots"]).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "command line --set polling.batch_size: [polling] batch_size must be an integer, found string"
        );
        let errors = load(
            "",
            &[("LONGSHORE_ENTRY_POINTS__ALLOW_INSECURE_PLUGINS", "maybe")],
            &[],
        )
        .unwrap_err();
        assert!(errors[0]
            .to_string()
            .starts_with("environment variable LONGSHORE_ENTRY_POINTS__ALLOW_INSECURE_PLUGINS:"));
    }

    #[test]
    fn syntax_and_structure_errors_name_the_place() {
        let errors = load("[polling]\nbatch_size = = 3\n", &[], &[]).unwrap_err();
        assert!(
            errors[0].to_string().contains("longshore.toml:2:"),
            "{}",
            errors[0]
        );
        let errors = load("host = \"x\"\n[compute.sub]\na = 1\n", &[], &[]).unwrap_err();
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            texts[0].contains(":1:1: \"host\" is not inside a section"),
            "{texts:?}"
        );
        assert!(
            texts[1].contains(":2:10: [compute] sub is a table"),
            "{texts:?}"
        );
    }

    #[test]
    fn unknown_options_are_errors_once_plugins_declare_theirs() {
        let mut s = load(
            "[polling]\nbatchsize = 3\n[compute]\nlibvirt_uri = \"test:///default\"\nlibvirt_url = \"x\"\n[nobody]\nx = 1\n",
            &[],
            &[],
        )
        .unwrap();
        let compute = [
            OptionSpec::new("compute", "libvirt_uri", OptionKind::Str, "", "uri"),
            OptionSpec::new(
                "compute",
                "report_stopped_instance_metrics",
                OptionKind::Bool,
                false,
                "rs",
            ),
        ];
        let errors: Vec<String> = s
            .validate_plugin_options(&compute, false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors[0].contains(
                ":2:1: unknown option [polling] batchsize; [polling] accepts: cfg_file, batch_size"
            ),
            "{}",
            errors[0]
        );
        assert!(errors[1].contains(":5:1: unknown option [compute] libvirt_url; [compute] accepts: libvirt_uri, report_stopped_instance_metrics"), "{}", errors[1]);
        assert!(
            errors[2].contains(
                ":7:1: unknown option [nobody] x; no loaded plugin declares section [nobody]"
            ),
            "{}",
            errors[2]
        );
        // Plugin defaults are filled in for the plugins.
        let config = s.config();
        assert_eq!(
            config
                .bool("compute", "report_stopped_instance_metrics")
                .unwrap(),
            Some(false)
        );
        assert_eq!(
            config.str("compute", "libvirt_uri").unwrap(),
            Some("test:///default")
        );
    }

    #[test]
    fn plugin_option_types_are_checked_and_unverifiable_sections_only_warn() {
        let mut s = load(
            "[compute]\nreport_stopped_instance_metrics = \"yes\"\n[other]\ny = 2\n",
            &[],
            &[],
        )
        .unwrap();
        let specs = [OptionSpec::new(
            "compute",
            "report_stopped_instance_metrics",
            OptionKind::Bool,
            false,
            "",
        )];
        let errors = s.validate_plugin_options(&specs, true);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].to_string().contains(
            ":2:1: [compute] report_stopped_instance_metrics must be a boolean, found string"
        ));
        assert!(!errors[0].is_warning());
        assert!(errors[1].is_warning());
    }

    #[test]
    fn secrets_are_masked_in_listings() {
        let s = load(
            "[DEFAULT]\ntransport_url = \"rabbit://guest:hunter2@h1:5672,u:pw2@h2/vhost\"\n[publisher]\ntelemetry_secret = \"s3cr3t\"\n[mystery]\napi_token = \"tok\"\n",
            &[],
            &[],
        )
        .unwrap();
        let listing = s.listing();
        let shown: String = listing
            .iter()
            .map(|l| format!("{:?} {}\n", l.value, l.default))
            .collect();
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw2"),
            "{shown}"
        );
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("tok\""),
            "{shown}"
        );
        assert!(
            shown.contains("rabbit://guest:****@h1:5672,u:****@h2/vhost"),
            "{shown}"
        );
        assert_eq!(mask_url("rabbit://h/"), "rabbit://h/");
    }

    #[test]
    fn relative_paths_start_at_the_config_file_or_the_current_directory() {
        let (dir, path) = write(
            "[entry_points]\nfile = \"ep/entry_points.toml\"\nplugin_dirs = [\"a\", \"/abs\"]\n",
        );
        let s = Settings::load(
            Some(&path),
            vec![],
            vec![Override::flag(
                "--polling-file",
                "polling",
                "cfg_file",
                "p.yaml",
            )],
        )
        .unwrap();
        assert_eq!(
            s.entry_points_file(),
            dir.path().join("ep/entry_points.toml")
        );
        assert_eq!(
            s.plugin_dirs().unwrap(),
            [dir.path().join("a"), PathBuf::from("/abs")]
        );
        assert_eq!(
            s.polling_file(),
            std::env::current_dir().unwrap().join("p.yaml")
        );
    }

    #[test]
    fn malformed_overrides_are_rejected_without_echoing_values() {
        let err = Override::parse_set("publisher_telemetry_secret=hunter2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(Override::parse_set("a.b").is_err());
        assert!(Override::from_env([("LONGSHORE___X".to_string(), "1".to_string())]).is_err());
        assert!(
            Override::from_env([("LONGSHORE_CONFIG".to_string(), "f".to_string())])
                .unwrap()
                .is_empty()
        );
    }
}
