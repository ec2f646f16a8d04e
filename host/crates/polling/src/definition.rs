//! polling.yaml: locating, parsing and validating the polling definition with
//! Ceilometer's grammar (spec §1), every error naming the file, line, source and rule.
//!
//! Where Ceilometer crashes (empty file, `sources: null`, `interval: null`, `""` or
//! non-string meters) or silently misbehaves (duplicate source names are merged, a plain
//! string `meters: cpu` is read character by character, unknown keys are ignored), this
//! module rejects the file with a clear error instead. Two keys Ceilometer reads but
//! longshore does not implement are accepted with a warning: a source's
//! `group_id_coordination_expression` (workload partitioning) and the legacy
//! pipeline-format `sinks`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_yaml::Value;

use crate::meters::MeterFilter;

/// The keys a source may have.
const SOURCE_KEYS: &[&str] = &[
    "name",
    "interval",
    "meters",
    "resources",
    "discovery",
    "group_id_coordination_expression",
    "sinks",
];
const TOP_KEYS: &[&str] = &["sources", "sinks"];

/// Intervals above this (about 136 years) are certainly a typo.
const MAX_INTERVAL: u64 = u32::MAX as u64;

/// A validated polling.yaml.
#[derive(Debug, Clone)]
pub struct PollingDefinition {
    path: PathBuf,
    sources: Vec<PollingSource>,
    warnings: Vec<String>,
}

/// One entry of `sources:` (Ceilometer's `PollingSource`).
#[derive(Debug, Clone)]
pub struct PollingSource {
    name: String,
    interval: u64,
    meters: MeterFilter,
    resources: Vec<String>,
    discovery: Vec<String>,
}

impl PollingSource {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Seconds between polls, > 0.
    pub fn interval(&self) -> u64 {
        self.interval
    }
    pub fn meters(&self) -> &MeterFilter {
        &self.meters
    }
    /// Static resources (URLs), polled before discovered ones.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }
    /// Discovery names or `name://param` URLs.
    pub fn discovery(&self) -> &[String] {
        &self.discovery
    }
    /// Whether this source polls the pollster named `meter` (Ceilometer's
    /// `support_meter`).
    pub fn support_meter(&self, meter: &str) -> bool {
        self.meters.is_supported(meter)
    }
}

impl PollingDefinition {
    /// Read and validate `path`. A missing file is [`DefinitionError::NotFound`].
    pub fn load(path: &Path) -> Result<PollingDefinition, DefinitionError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DefinitionError::NotFound {
                    path: path.to_path_buf(),
                    searched: Vec::new(),
                }
            } else {
                DefinitionError::Io {
                    path: path.to_path_buf(),
                    error: e,
                }
            }
        })?;
        PollingDefinition::parse(&text, path)
    }

    /// Validate polling.yaml text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<PollingDefinition, DefinitionError> {
        let mut doc: Value = serde_yaml::from_str(text).map_err(|e| DefinitionError::Syntax {
            path: path.to_path_buf(),
            location: e.location().map(Location::from),
            message: strip_position(&e.to_string()),
        })?;
        doc.apply_merge().map_err(|e| DefinitionError::Syntax {
            path: path.to_path_buf(),
            location: None,
            message: e.to_string(),
        })?;
        let mut checker = Checker {
            text,
            path,
            warnings: Vec::new(),
        };
        let sources = checker.document(&doc)?;
        Ok(PollingDefinition {
            path: path.to_path_buf(),
            sources,
            warnings: checker.warnings,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Sources in file order.
    pub fn sources(&self) -> &[PollingSource] {
        &self.sources
    }
    /// Things that are valid but probably not what the operator meant (ignored keys, an
    /// empty `sources` list), each a full sentence naming the file and line.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Where to look for polling.yaml when `[polling] cfg_file` is not an existing path, in
/// order (after each directory of `config_dirs`, e.g. `--config-dir` and the directory of
/// the configuration file): `~/.longshore`, `~`, `/etc/longshore`, `/etc/ceilometer`,
/// `/etc` (Ceilometer's search, spec §1.1, with longshore's own directories first).
pub fn find_definition_file(
    cfg_file: &str,
    config_dirs: &[PathBuf],
) -> Result<PathBuf, DefinitionError> {
    let given = PathBuf::from(cfg_file);
    if given.exists() {
        return Ok(given);
    }
    let mut searched = vec![given.clone()];
    if given.is_absolute() {
        return Err(DefinitionError::NotFound {
            path: given,
            searched,
        });
    }
    let mut dirs: Vec<PathBuf> = config_dirs.to_vec();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        dirs.push(home.join(".longshore"));
        dirs.push(home);
    }
    for d in ["/etc/longshore", "/etc/ceilometer", "/etc"] {
        dirs.push(PathBuf::from(d));
    }
    for dir in dirs {
        let candidate = dir.join(&given);
        if candidate.exists() {
            return Ok(candidate);
        }
        searched.push(candidate);
    }
    Err(DefinitionError::NotFound {
        path: given,
        searched,
    })
}

/// A 1-based line and column in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl From<serde_yaml::Location> for Location {
    fn from(l: serde_yaml::Location) -> Location {
        Location {
            line: l.line(),
            column: l.column(),
        }
    }
}

/// Why polling.yaml was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// The file does not exist (Ceilometer crash-loops on this: spec §13.1).
    NotFound {
        path: PathBuf,
        /// Every place looked at, when a search was made.
        searched: Vec<PathBuf>,
    },
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// Not YAML (or more than one document).
    Syntax {
        path: PathBuf,
        location: Option<Location>,
        message: String,
    },
    /// Valid YAML breaking a polling.yaml rule.
    Invalid {
        path: PathBuf,
        location: Option<Location>,
        /// The source's `name`, when the error is inside a named source.
        source_name: Option<String>,
        /// Boxed: keeps `Result<_, DefinitionError>` small.
        rule: Box<Rule>,
    },
}

impl DefinitionError {
    /// The rule broken, for `Invalid`.
    pub fn rule(&self) -> Option<&Rule> {
        match self {
            DefinitionError::Invalid { rule, .. } => Some(rule),
            _ => None,
        }
    }
    pub fn location(&self) -> Option<Location> {
        match self {
            DefinitionError::Syntax { location, .. }
            | DefinitionError::Invalid { location, .. } => *location,
            _ => None,
        }
    }
}

fn fmt_place(f: &mut fmt::Formatter<'_>, path: &Path, loc: &Option<Location>) -> fmt::Result {
    write!(f, "{}", path.display())?;
    if let Some(l) = loc {
        write!(f, ":{}:{}", l.line, l.column)?;
    }
    Ok(())
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DefinitionError::NotFound { path, searched } => {
                write!(f, "polling definition file {} not found", path.display())?;
                if searched.len() > 1 {
                    let list: Vec<String> =
                        searched.iter().map(|p| p.display().to_string()).collect();
                    write!(f, " (looked in: {})", list.join(", "))?;
                }
                write!(
                    f,
                    "; set [polling] cfg_file to the path of your polling.yaml \
                     (Ceilometer's is usually /etc/ceilometer/polling.yaml)"
                )
            }
            DefinitionError::Io { path, error } => {
                write!(
                    f,
                    "cannot read polling definition {}: {error}",
                    path.display()
                )
            }
            DefinitionError::Syntax {
                path,
                location,
                message,
            } => {
                fmt_place(f, path, location)?;
                write!(f, ": not valid YAML: {message}")
            }
            DefinitionError::Invalid {
                path,
                location,
                source_name,
                rule,
            } => {
                fmt_place(f, path, location)?;
                match source_name {
                    Some(name) => write!(f, ": source {name:?}: {rule}"),
                    None => write!(f, ": {rule}"),
                }
            }
        }
    }
}

/// The polling.yaml rule an `Invalid` error breaks. Where Ceilometer has a message for
/// the rule, the text starts with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Empty,
    TopNotMapping {
        found: String,
    },
    UnknownTopKey {
        key: String,
        suggestion: Option<String>,
    },
    SourcesMissing,
    SourcesNotList {
        found: String,
    },
    SourceNotMapping {
        index: usize,
        found: String,
    },
    UnknownKey {
        key: String,
        suggestion: Option<String>,
    },
    NameMissing,
    NameNotString {
        found: String,
    },
    NameEmpty,
    DuplicateName {
        first: Option<Location>,
    },
    MetersMissing,
    IntervalInvalid {
        value: String,
    },
    IntervalMissing,
    IntervalWrongType {
        found: String,
    },
    IntervalNotPositive {
        value: i64,
    },
    IntervalTooLarge {
        value: String,
    },
    ResourcesNotList {
        found: String,
    },
    ResourceInvalid {
        index: usize,
        found: String,
    },
    DiscoveryNotList {
        found: String,
    },
    DiscoveryInvalid {
        index: usize,
        found: String,
    },
    MetersEmpty,
    MetersNotList {
        found: String,
    },
    MeterNotString {
        index: usize,
        found: String,
    },
    MeterEmpty {
        index: usize,
    },
    IncludeAndExclude {
        include: String,
        exclude: String,
    },
    WildcardWithIncludes {
        include: String,
    },
}

fn did_you_mean(s: &Option<String>) -> String {
    match s {
        Some(k) => format!(" (did you mean `{k}`?)"),
        None => String::new(),
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Empty => write!(
                f,
                "the file is empty; it must hold a `sources:` list (see the polling.yaml \
                 shipped with longshore)"
            ),
            Rule::TopNotMapping { found } => write!(
                f,
                "the top level must be a mapping holding a `sources:` list, found {found}"
            ),
            Rule::UnknownTopKey { key, suggestion } => write!(
                f,
                "unknown top-level key `{key}`{}; polling.yaml has only `sources`",
                did_you_mean(suggestion)
            ),
            Rule::SourcesMissing => write!(f, "sources required: add a `sources:` list"),
            Rule::SourcesNotList { found } => {
                write!(f, "`sources` must be a list of sources, found {found}")
            }
            Rule::SourceNotMapping { index, found } => write!(
                f,
                "source #{} must be a mapping with name, interval and meters, found {found}",
                index + 1
            ),
            Rule::UnknownKey { key, suggestion } => write!(
                f,
                "unknown key `{key}`{}; a source has name, interval, meters, resources and \
                 discovery (Ceilometer ignores unknown keys silently, which hides typos)",
                did_you_mean(suggestion)
            ),
            Rule::NameMissing => write!(f, "Required field name not specified: add `name:`"),
            Rule::NameNotString { found } => {
                write!(f, "`name` must be a string, found {found}")
            }
            Rule::NameEmpty => write!(f, "`name` must not be empty"),
            Rule::DuplicateName { first } => {
                write!(f, "duplicate source name")?;
                if let Some(l) = first {
                    write!(f, " (first used at line {})", l.line)?;
                }
                write!(
                    f,
                    "; source names must be unique (Ceilometer silently merges sources \
                     with the same name)"
                )
            }
            Rule::MetersMissing => write!(
                f,
                "Missing meters value: add `meters:` listing the meters to poll \
                 (e.g. `- \"*\"` for all)"
            ),
            Rule::IntervalInvalid { value } => write!(
                f,
                "Invalid interval value {value}: the interval is a whole number of seconds"
            ),
            Rule::IntervalMissing => {
                write!(f, "Missing interval value: add `interval:` in seconds")
            }
            Rule::IntervalWrongType { found } => write!(
                f,
                "Invalid interval value: expected a whole number of seconds, found {found}"
            ),
            Rule::IntervalNotPositive { value } => {
                write!(f, "Interval value should > 0, found {value}")
            }
            Rule::IntervalTooLarge { value } => write!(
                f,
                "Invalid interval value {value}: larger than {MAX_INTERVAL} seconds"
            ),
            Rule::ResourcesNotList { found } => write!(
                f,
                "Resources should be a list (of resource URLs), found {found}"
            ),
            Rule::ResourceInvalid { index, found } => write!(
                f,
                "resources entry #{} must be a string (a resource URL), found {found}",
                index + 1
            ),
            Rule::DiscoveryNotList { found } => write!(
                f,
                "Discovery should be a list (of discovery names), found {found}"
            ),
            Rule::DiscoveryInvalid { index, found } => write!(
                f,
                "discovery entry #{} must be a non-empty string (`name` or `name://param`), \
                 found {found}",
                index + 1
            ),
            Rule::MetersEmpty => write!(f, "No meters specified: `meters` is empty"),
            Rule::MetersNotList { found } => write!(
                f,
                "`meters` must be a list of meter names, found {found} (Ceilometer would \
                 read a plain string character by character)"
            ),
            Rule::MeterNotString { index, found } => {
                write!(
                    f,
                    "meters entry #{} must be a string, found {found}",
                    index + 1
                )?;
                if found.starts_with("the YAML tag") {
                    write!(f, "; quote exclusions: `- \"!cpu\"`")?;
                }
                Ok(())
            }
            Rule::MeterEmpty { index } => {
                write!(f, "meters entry #{} is an empty string", index + 1)
            }
            Rule::IncludeAndExclude { include, exclude } => write!(
                f,
                "Both included and excluded meters specified ({include:?} and {exclude:?}): \
                 list either the meters to poll or `!meter` exclusions (with \"*\" to \
                 start from every meter)"
            ),
            Rule::WildcardWithIncludes { include } => write!(
                f,
                "Included meters specified with wildcard: \"*\" already selects every \
                 meter; remove {include:?} or the \"*\""
            ),
        }
    }
}

/// serde_yaml appends " at line L column C" to its messages; we print the place first.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(t) => format!("the YAML tag `{}`", t.tag),
    }
}

/// Python truthiness of a YAML value (`if cfg.get('resources')`).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(_) => true,
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        other => describe(other),
    }
}

fn suggest(key: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (levenshtein(&key.to_lowercase(), k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Python's `int(str)`: surrounding whitespace, an optional sign, digits with single
/// underscores between them.
fn python_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    if digits.contains("__") {
        return None;
    }
    let mut n: i128 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(10)?;
        n = n.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    Some(if neg { -n } else { n })
}

/// A path to a node of the document, to find its line.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// The value of this key.
    Value(&'a str),
    /// The key itself.
    Key(&'a str),
    Index(usize),
}

struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
    warnings: Vec<String>,
}

impl Checker<'_> {
    fn locate(&self, steps: &[Step<'_>]) -> Option<Location> {
        locate(self.text, steps)
    }

    fn err(&self, steps: &[Step<'_>], source_name: Option<&str>, rule: Rule) -> DefinitionError {
        DefinitionError::Invalid {
            path: self.path.to_path_buf(),
            location: self.locate(steps),
            source_name: source_name.map(str::to_string),
            rule: Box::new(rule),
        }
    }

    fn place(&self, steps: &[Step<'_>]) -> String {
        match self.locate(steps) {
            Some(l) => format!("{}:{}:{}", self.path.display(), l.line, l.column),
            None => self.path.display().to_string(),
        }
    }

    fn document(&mut self, doc: &Value) -> Result<Vec<PollingSource>, DefinitionError> {
        let top = match doc {
            Value::Null => return Err(self.err(&[], None, Rule::Empty)),
            Value::Mapping(m) => m,
            other => {
                return Err(self.err(
                    &[],
                    None,
                    Rule::TopNotMapping {
                        found: describe(other),
                    },
                ))
            }
        };
        for (k, _) in top {
            let key = key_text(k);
            if key == "sinks" {
                let place = self.place(&[Step::Key("sinks")]);
                self.warnings.push(format!(
                    "{place}: `sinks` is a pipeline.yaml key; the polling agent ignores it"
                ));
            } else if !TOP_KEYS.contains(&key.as_str()) {
                return Err(self.err(
                    &[Step::Key(&key)],
                    None,
                    Rule::UnknownTopKey {
                        suggestion: suggest(&key, TOP_KEYS),
                        key: key.clone(),
                    },
                ));
            }
        }
        let Some(sources) = top.get("sources") else {
            return Err(self.err(&[], None, Rule::SourcesMissing));
        };
        let Value::Sequence(list) = sources else {
            return Err(self.err(
                &[Step::Value("sources")],
                None,
                Rule::SourcesNotList {
                    found: describe(sources),
                },
            ));
        };
        if list.is_empty() {
            let place = self.place(&[Step::Value("sources")]);
            self.warnings.push(format!(
                "{place}: `sources` is empty: nothing will be polled"
            ));
        }
        let mut out: Vec<PollingSource> = Vec::with_capacity(list.len());
        for (i, src) in list.iter().enumerate() {
            let source = self.source(i, src)?;
            if let Some(first) = out.iter().position(|s| s.name == source.name) {
                let first = self.locate(&[
                    Step::Value("sources"),
                    Step::Index(first),
                    Step::Value("name"),
                ]);
                return Err(self.err(
                    &[Step::Value("sources"), Step::Index(i), Step::Value("name")],
                    Some(&source.name),
                    Rule::DuplicateName { first },
                ));
            }
            out.push(source);
        }
        Ok(out)
    }

    fn source(&mut self, i: usize, src: &Value) -> Result<PollingSource, DefinitionError> {
        let at = |key: &'static str| [Step::Value("sources"), Step::Index(i), Step::Value(key)];
        let here = [Step::Value("sources"), Step::Index(i)];
        let Value::Mapping(cfg) = src else {
            return Err(self.err(
                &here,
                None,
                Rule::SourceNotMapping {
                    index: i,
                    found: describe(src),
                },
            ));
        };
        // The name first, so that every later error can say which source it is about.
        let name = match cfg.get("name") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::String(_)) => return Err(self.err(&at("name"), None, Rule::NameEmpty)),
            Some(other) => {
                return Err(self.err(
                    &at("name"),
                    None,
                    Rule::NameNotString {
                        found: describe(other),
                    },
                ))
            }
        };
        let sname = name.as_deref();
        for (k, _) in cfg {
            let key = key_text(k);
            if !SOURCE_KEYS.contains(&key.as_str()) {
                let steps = [Step::Value("sources"), Step::Index(i), Step::Key(&key)];
                return Err(self.err(
                    &steps,
                    sname,
                    Rule::UnknownKey {
                        suggestion: suggest(&key, SOURCE_KEYS),
                        key: key.clone(),
                    },
                ));
            }
        }
        let Some(name) = name else {
            return Err(self.err(&here, None, Rule::NameMissing));
        };
        let sname = Some(name.as_str());
        // Ceilometer's order (spec §1.3): meters present, interval, resources, discovery,
        // then the meters' contents.
        let Some(meters) = cfg.get("meters") else {
            return Err(self.err(&here, sname, Rule::MetersMissing));
        };
        let interval = match cfg.get("interval") {
            None => return Err(self.err(&here, sname, Rule::IntervalMissing)),
            Some(v) => self.interval(v, &at("interval"), sname)?,
        };
        let resources = self.url_list(
            cfg.get("resources"),
            "resources",
            &at("resources"),
            i,
            sname,
        )?;
        let discovery = self.url_list(
            cfg.get("discovery"),
            "discovery",
            &at("discovery"),
            i,
            sname,
        )?;
        let meters = self.meters(meters, i, sname)?;
        for key in ["group_id_coordination_expression", "sinks"] {
            if cfg.contains_key(key) {
                let place = self.place(&[Step::Value("sources"), Step::Index(i), Step::Key(key)]);
                let why = if key == "sinks" {
                    "a pipeline.yaml key the polling agent does not use"
                } else {
                    "longshore does not implement workload partitioning: every resource is \
                     polled by this agent"
                };
                self.warnings.push(format!(
                    "{place}: source {name:?}: `{key}` is ignored: {why}"
                ));
            }
        }
        Ok(PollingSource {
            name,
            interval,
            meters: MeterFilter::new(&meters),
            resources,
            discovery,
        })
    }

    fn interval(
        &self,
        v: &Value,
        at: &[Step<'_>],
        sname: Option<&str>,
    ) -> Result<u64, DefinitionError> {
        let invalid = |value: String| self.err(at, sname, Rule::IntervalInvalid { value });
        let n: i128 = match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    i128::from(i)
                } else if let Some(u) = n.as_u64() {
                    i128::from(u)
                } else {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    // Python's int() truncates 1.9 to 1; a fractional interval is
                    // almost certainly a mistake, so only whole floats are accepted.
                    if !f.is_finite() || f.fract() != 0.0 || f.abs() > 1e30 {
                        return Err(invalid(n.to_string()));
                    }
                    f as i128
                }
            }
            Value::String(s) => python_int(s).ok_or_else(|| invalid(format!("{s:?}")))?,
            other => {
                return Err(self.err(
                    at,
                    sname,
                    Rule::IntervalWrongType {
                        found: describe(other),
                    },
                ))
            }
        };
        if n <= 0 {
            let value = i64::try_from(n).unwrap_or(i64::MIN);
            return Err(self.err(at, sname, Rule::IntervalNotPositive { value }));
        }
        if n > i128::from(MAX_INTERVAL) {
            return Err(self.err(
                at,
                sname,
                Rule::IntervalTooLarge {
                    value: n.to_string(),
                },
            ));
        }
        Ok(n as u64)
    }

    fn url_list(
        &self,
        v: Option<&Value>,
        what: &'static str,
        at: &[Step<'_>],
        i: usize,
        sname: Option<&str>,
    ) -> Result<Vec<String>, DefinitionError> {
        let Some(v) = v.filter(|v| truthy(v)) else {
            return Ok(Vec::new());
        };
        let Value::Sequence(items) = v else {
            let found = describe(v);
            let rule = if what == "resources" {
                Rule::ResourcesNotList { found }
            } else {
                Rule::DiscoveryNotList { found }
            };
            return Err(self.err(at, sname, rule));
        };
        let mut out = Vec::with_capacity(items.len());
        for (j, item) in items.iter().enumerate() {
            let text = match item {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) if what == "resources" => Some(n.to_string()),
                _ => None,
            };
            match text {
                Some(t) => out.push(t),
                None => {
                    let steps = [
                        Step::Value("sources"),
                        Step::Index(i),
                        Step::Value(what),
                        Step::Index(j),
                    ];
                    let found = describe(item);
                    let rule = if what == "resources" {
                        Rule::ResourceInvalid { index: j, found }
                    } else {
                        Rule::DiscoveryInvalid { index: j, found }
                    };
                    return Err(self.err(&steps, sname, rule));
                }
            }
        }
        Ok(out)
    }

    fn meters(
        &self,
        v: &Value,
        i: usize,
        sname: Option<&str>,
    ) -> Result<Vec<String>, DefinitionError> {
        let at = [
            Step::Value("sources"),
            Step::Index(i),
            Step::Value("meters"),
        ];
        if !truthy(v) {
            return Err(self.err(&at, sname, Rule::MetersEmpty));
        }
        let Value::Sequence(items) = v else {
            return Err(self.err(&at, sname, Rule::MetersNotList { found: describe(v) }));
        };
        let mut meters = Vec::with_capacity(items.len());
        for (j, item) in items.iter().enumerate() {
            let entry = [
                Step::Value("sources"),
                Step::Index(i),
                Step::Value("meters"),
                Step::Index(j),
            ];
            match item {
                Value::String(s) if s.is_empty() => {
                    return Err(self.err(&entry, sname, Rule::MeterEmpty { index: j }))
                }
                Value::String(s) => meters.push(s.clone()),
                other => {
                    return Err(self.err(
                        &entry,
                        sname,
                        Rule::MeterNotString {
                            index: j,
                            found: describe(other),
                        },
                    ))
                }
            }
        }
        // "Included" = first character neither '!' nor '*' (spec §1.3).
        let included = meters
            .iter()
            .position(|m| !m.starts_with('!') && !m.starts_with('*'));
        let excluded = meters.iter().position(|m| m.starts_with('!'));
        if let (Some(inc), Some(exc)) = (included, excluded) {
            let at_entry = [
                Step::Value("sources"),
                Step::Index(i),
                Step::Value("meters"),
                Step::Index(inc.max(exc)),
            ];
            return Err(self.err(
                &at_entry,
                sname,
                Rule::IncludeAndExclude {
                    include: meters[inc].clone(),
                    exclude: meters[exc].clone(),
                },
            ));
        }
        if let (Some(star), Some(inc)) = (meters.iter().position(|m| m == "*"), included) {
            let at_entry = [
                Step::Value("sources"),
                Step::Index(i),
                Step::Value("meters"),
                Step::Index(star.max(inc)),
            ];
            return Err(self.err(
                &at_entry,
                sname,
                Rule::WildcardWithIncludes {
                    include: meters[inc].clone(),
                },
            ));
        }
        Ok(meters)
    }
}

// ---------------------------------------------------------------------------------------
// Locating a node: serde_yaml attaches the position of the node being deserialised to an
// error raised while visiting it. Errors are only built on the failure path, so walking
// the text a second time to find one node costs nothing in normal operation.

const HERE: &str = "\u{0}longshore-locate";

fn locate(text: &str, steps: &[Step<'_>]) -> Option<Location> {
    let de = serde_yaml::Deserializer::from_str(text);
    match (Locate { steps }).deserialize(de) {
        // The message is prefixed with the node's path ("sources[0]: ...").
        Err(e) if e.to_string().contains(HERE) => e.location().map(Location::from),
        _ => None,
    }
}

struct Locate<'s, 'a> {
    steps: &'s [Step<'a>],
}

impl<'de> DeserializeSeed<'de> for Locate<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

fn here<E: de::Error>() -> Result<(), E> {
    Err(E::custom(HERE))
}

macro_rules! scalar_here {
    ($($name:ident: $t:ty),*) => {$(
        fn $name<E: de::Error>(self, _v: $t) -> Result<(), E> { here() }
    )*};
}

impl<'de> Visitor<'de> for Locate<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    scalar_here!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        here()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        here()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<(), A::Error> {
        // A tagged node (`!cpu`): it is the node we are looking for or in the way.
        here()
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (target, key_itself) = match self.steps.first() {
            Some(Step::Value(k)) => (*k, false),
            Some(Step::Key(k)) => (*k, true),
            _ => return here(),
        };
        while let Some(hit) = map.next_key_seed(KeySeed {
            target,
            fail_on_hit: key_itself,
        })? {
            if hit {
                map.next_value_seed(Locate {
                    steps: &self.steps[1..],
                })?;
                return here();
            }
            map.next_value::<IgnoredAny>()?;
        }
        here()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(Step::Index(target)) = self.steps.first() else {
            return here();
        };
        let mut j = 0;
        loop {
            if j == *target {
                seq.next_element_seed(Locate {
                    steps: &self.steps[1..],
                })?;
                return here();
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return here();
            }
            j += 1;
        }
    }
}

/// Deserialises a mapping key: true when it is `target`; with `fail_on_hit`, the hit is
/// reported as an error at the key's own position.
struct KeySeed<'a> {
    target: &'a str,
    fail_on_hit: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl KeySeed<'_> {
    fn hit<E: de::Error>(&self, text: &str) -> Result<bool, E> {
        if text == self.target {
            if self.fail_on_hit {
                return Err(E::custom(HERE));
            }
            return Ok(true);
        }
        Ok(false)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.hit(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.hit(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.hit(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.hit(&v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.hit(&v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.hit("null")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<bool, A::Error> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PollingDefinition, DefinitionError> {
        PollingDefinition::parse(text, Path::new("polling.yaml"))
    }

    #[test]
    fn python_int_like_cpython() {
        assert_eq!(python_int("300"), Some(300));
        assert_eq!(python_int(" 300\n"), Some(300));
        assert_eq!(python_int("+5"), Some(5));
        assert_eq!(python_int("-5"), Some(-5));
        assert_eq!(python_int("1_000"), Some(1000));
        assert_eq!(python_int("1__0"), None);
        assert_eq!(python_int("_1"), None);
        assert_eq!(python_int("1.5"), None);
        assert_eq!(python_int("abc"), None);
        assert_eq!(python_int(""), None);
    }

    #[test]
    fn locates_nodes() {
        let text =
            "sources:\n  - name: a\n    interval: 10\n    meters:\n      - cpu\n      - '!x'\n";
        let l = |steps: &[Step<'_>]| locate(text, steps).map(|l| (l.line, l.column));
        assert_eq!(l(&[Step::Value("sources"), Step::Index(0)]), Some((2, 5)));
        assert_eq!(
            l(&[
                Step::Value("sources"),
                Step::Index(0),
                Step::Value("interval")
            ]),
            Some((3, 15))
        );
        assert_eq!(
            l(&[
                Step::Value("sources"),
                Step::Index(0),
                Step::Key("interval")
            ]),
            Some((3, 5))
        );
        assert_eq!(
            l(&[
                Step::Value("sources"),
                Step::Index(0),
                Step::Value("meters"),
                Step::Index(1)
            ]),
            Some((6, 9))
        );
        // a missing node gives its closest ancestor
        assert_eq!(
            l(&[Step::Value("sources"), Step::Index(0), Step::Value("nope")]),
            Some((2, 5))
        );
    }

    #[test]
    fn valid_file() {
        let d = parse(
            "---\nsources:\n  - name: s\n    interval: '60'\n    meters: ['*', '!cpu']\n    \
             resources: [snmp://h, 5]\n    discovery: [local_instances]\n",
        )
        .unwrap();
        let s = &d.sources()[0];
        assert_eq!(s.name(), "s");
        assert_eq!(s.interval(), 60);
        assert_eq!(s.resources(), ["snmp://h", "5"]);
        assert_eq!(s.discovery(), ["local_instances"]);
        assert!(s.support_meter("memory.usage"));
        assert!(!s.support_meter("cpu"));
        assert!(d.warnings().is_empty());
    }

    #[test]
    fn unquoted_exclusion_is_a_tag_with_a_hint() {
        let e = parse("sources:\n  - name: s\n    interval: 5\n    meters:\n      - !cpu\n")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("polling.yaml:5:"), "{msg}");
        assert!(msg.contains("quote exclusions"), "{msg}");
    }

    #[test]
    fn merge_keys_are_applied() {
        let d = parse(
            "defaults: &d\n  interval: 5\n  meters: ['*']\nsources:\n  - <<: *d\n    name: s\n",
        );
        // `defaults` is not a polling.yaml key
        assert!(matches!(
            d.unwrap_err().rule(),
            Some(Rule::UnknownTopKey { .. })
        ));
    }
}
