//! entry_points.toml: namespaces of named entry points `name = "library:plugin"`, parsed
//! into a [`Registry`] that remembers where each entry was written, and the resolution
//! of an entry point's library to a file in the plugin directories.
//!
//! ```toml
//! [ceilometer.poll.compute]            # or ["ceilometer.poll.compute"]
//! cpu = "compute:cpu"                  # lib<library>.so in the plugin directories
//! "memory.util" = "memory_util:memory.util"
//! custom = "./extra/libmine.so:cpu"    # a path (contains `/`): relative to this file
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where something was written: file, line and column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` of `text`, read from `file`.
    pub fn at(file: &Path, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let before = &text.as_bytes()[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        Location {
            file: file.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One `name = "library:plugin"` line of a namespace (stevedore's `EntryPoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    namespace: String,
    name: String,
    library: String,
    plugin: String,
    location: Option<Location>,
}

impl EntryPoint {
    /// An entry point from its parts; `target` is `"library:plugin"`.
    pub fn new(namespace: &str, name: &str, target: &str) -> Result<EntryPoint, String> {
        let (library, plugin) = split_target(target)?;
        Ok(EntryPoint {
            namespace: namespace.to_string(),
            name: name.to_string(),
            library: library.to_string(),
            plugin: plugin.to_string(),
            location: None,
        })
    }

    /// An entry point from already separated parts (no validation).
    pub(crate) fn from_parts(
        namespace: &str,
        name: &str,
        library: &str,
        plugin: &str,
    ) -> EntryPoint {
        EntryPoint {
            namespace: namespace.to_string(),
            name: name.to_string(),
            library: library.to_string(),
            plugin: plugin.to_string(),
            location: None,
        }
    }

    /// Record where the entry point was written.
    pub fn with_location(mut self, location: Location) -> EntryPoint {
        self.location = Some(location);
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The extension's name (the key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The library part of the target, as written (stevedore's `module_name`).
    pub fn library(&self) -> &str {
        &self.library
    }

    /// The plugin's name inside the library (stevedore's `attr`).
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The whole target, `library:plugin` (stevedore's `entry_point_target`).
    pub fn target(&self) -> String {
        format!("{}:{}", self.library, self.plugin)
    }

    /// Where the entry point was written, if it came from a file.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }
}

impl fmt::Display for EntryPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:?}", self.name, self.target())?;
        if let Some(loc) = &self.location {
            write!(f, " ({loc})")?;
        }
        Ok(())
    }
}

/// Split `library:plugin` at the last colon, so a library path may contain colons.
fn split_target(target: &str) -> Result<(&str, &str), String> {
    match target.rsplit_once(':') {
        Some((library, plugin))
            if !library.trim().is_empty()
                && !plugin.trim().is_empty()
                && library.trim() == library
                && plugin.trim() == plugin =>
        {
            Ok((library, plugin))
        }
        _ => Err(format!(
            "expected \"library:plugin\" (e.g. \"compute:cpu\"), found {target:?}"
        )),
    }
}

/// Why entry_points.toml could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EntryPointsError {
    #[error("cannot read entry points file {path}: {source}; pass the right file with --entry-points or [entry_points] file")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: invalid TOML: {message}")]
    Syntax { location: Location, message: String },
    #[error("{}", .problems.iter().map(|(l, m)| format!("{l}: {m}")).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<(Location, String)> },
}

impl EntryPointsError {
    /// Every problem as `(location, message)` (one for read errors, without location).
    pub fn problems(&self) -> Vec<(Option<&Location>, String)> {
        match self {
            EntryPointsError::Read { .. } => vec![(None, self.to_string())],
            EntryPointsError::Syntax { location, message } => {
                vec![(Some(location), format!("invalid TOML: {message}"))]
            }
            EntryPointsError::Invalid { problems } => {
                problems.iter().map(|(l, m)| (Some(l), m.clone())).collect()
            }
        }
    }
}

/// The entry points of every namespace, in file order, plus what is needed to find
/// their libraries: the directory relative library paths start from and the plugin
/// directories searched for `lib<library>.so`.
///
/// Parse it once and share it: managers built from the same registry share the same
/// `EntryPoint` objects (stevedore's per-namespace entry-point cache).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    origin: Option<PathBuf>,
    base_dir: PathBuf,
    plugin_dirs: Vec<PathBuf>,
    namespaces: Vec<(String, Vec<Arc<EntryPoint>>)>,
}

impl Registry {
    /// An empty registry (fill it with [`Registry::add`]); relative paths start from
    /// the current directory and there are no plugin directories.
    pub fn new() -> Registry {
        Registry {
            base_dir: PathBuf::from("."),
            ..Registry::default()
        }
    }

    /// Read and parse `path`. The default plugin directory is `plugins/` next to it.
    pub fn load(path: &Path) -> Result<Registry, EntryPointsError> {
        let text = std::fs::read_to_string(path).map_err(|source| EntryPointsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Registry::parse(&text, path)
    }

    /// Parse `text`, read from `path` (used for locations and relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Registry, EntryPointsError> {
        let doc = toml_edit::ImDocument::parse(text).map_err(|e| EntryPointsError::Syntax {
            location: Location::at(path, text, e.span().map_or(0, |s| s.start)),
            message: e.message().trim().to_string(),
        })?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut registry = Registry {
            origin: Some(path.to_path_buf()),
            plugin_dirs: vec![base_dir.join("plugins")],
            base_dir,
            namespaces: Vec::new(),
        };
        let mut walker = Walker {
            at: |offset: usize| Location::at(path, text, offset),
            problems: Vec::new(),
        };
        walker.table(&mut registry, &mut Vec::new(), doc.as_table(), 0);
        if walker.problems.is_empty() {
            Ok(registry)
        } else {
            Err(EntryPointsError::Invalid {
                problems: walker.problems,
            })
        }
    }

    fn namespace_mut(&mut self, namespace: &str) -> &mut Vec<Arc<EntryPoint>> {
        let index = match self.namespaces.iter().position(|(n, _)| n == namespace) {
            Some(i) => i,
            None => {
                self.namespaces.push((namespace.to_string(), Vec::new()));
                self.namespaces.len() - 1
            }
        };
        &mut self.namespaces[index].1
    }

    /// Add an entry point at the end of its namespace.
    pub fn add(&mut self, entry_point: EntryPoint) {
        let namespace = entry_point.namespace.clone();
        self.namespace_mut(&namespace).push(Arc::new(entry_point));
    }

    /// Declare a namespace with no entry points (it lists as empty).
    pub fn add_namespace(&mut self, namespace: &str) {
        self.namespace_mut(namespace);
    }

    /// Replace the plugin directories (searched in order).
    pub fn with_plugin_dirs(mut self, dirs: Vec<PathBuf>) -> Registry {
        self.plugin_dirs = dirs;
        self
    }

    /// Set the directory relative library paths start from.
    pub fn with_base_dir(mut self, dir: PathBuf) -> Registry {
        self.base_dir = dir;
        self
    }

    /// The file this registry was read from.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    pub fn plugin_dirs(&self) -> &[PathBuf] {
        &self.plugin_dirs
    }

    /// Namespace names in file order.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> + '_ {
        self.namespaces.iter().map(|(n, _)| n.as_str())
    }

    /// The entry points of `namespace` in file order (empty if it is not declared).
    /// Nothing is loaded.
    pub fn entry_points(&self, namespace: &str) -> &[Arc<EntryPoint>] {
        self.namespaces
            .iter()
            .find(|(n, _)| n == namespace)
            .map_or(&[], |(_, eps)| eps.as_slice())
    }

    /// Every entry point of every namespace.
    pub fn all_entry_points(&self) -> impl Iterator<Item = &Arc<EntryPoint>> + '_ {
        self.namespaces.iter().flat_map(|(_, eps)| eps.iter())
    }

    /// The file an entry point's library is loaded from.
    ///
    /// - a library containing `/` is a path, relative to the entry points file's
    ///   directory unless absolute;
    /// - a library ending in `.so` is a file name searched in the plugin directories;
    /// - anything else is a library name, searched as `lib<library>.so`.
    pub fn resolve(&self, entry_point: &EntryPoint) -> Result<PathBuf, LibraryNotFound> {
        let library = entry_point.library();
        if library.contains('/') {
            let path = self.base_dir.join(library);
            return if path.exists() {
                Ok(path)
            } else {
                Err(LibraryNotFound {
                    file_name: library.to_string(),
                    searched: vec![path],
                })
            };
        }
        let file_name = if library.ends_with(".so") {
            library.to_string()
        } else {
            format!("lib{library}.so")
        };
        let searched: Vec<PathBuf> = self
            .plugin_dirs
            .iter()
            .map(|dir| dir.join(&file_name))
            .collect();
        match searched.iter().find(|p| p.exists()) {
            Some(found) => Ok(found.clone()),
            None => Err(LibraryNotFound {
                file_name,
                searched,
            }),
        }
    }
}

/// An entry point's library file exists in none of the places searched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("library file {file_name} not found (looked for {}); build the plugin and copy its .so into a plugin directory (--plugin-dir, [entry_points] plugin_dirs), or fix the entry point", display_paths(.searched))]
pub struct LibraryNotFound {
    pub file_name: String,
    pub searched: Vec<PathBuf>,
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no plugin directory is configured".to_string();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Walks the TOML document: tables are namespace levels (their dotted path is the
/// namespace), strings are entry points, anything else is reported with its place.
struct Walker<F> {
    at: F,
    problems: Vec<(Location, String)>,
}

impl<F: Fn(usize) -> Location> Walker<F> {
    fn table(
        &mut self,
        registry: &mut Registry,
        path: &mut Vec<String>,
        table: &dyn toml_edit::TableLike,
        table_offset: usize,
    ) {
        for (key, item) in table.iter() {
            // Keys of implicit tables (`poll` in `[a.poll.b]`) carry no span: fall back
            // to the value's, then to the enclosing table's.
            let value_offset = item.span().map(|s| s.start);
            let key_offset = table
                .key(key)
                .and_then(|k| k.span())
                .map(|s| s.start)
                .or(value_offset)
                .unwrap_or(table_offset);
            let value_offset = value_offset.unwrap_or(key_offset);
            if let Some(inner) = item.as_table_like() {
                if key.is_empty() {
                    self.problem(key_offset, "empty namespace name".to_string());
                    continue;
                }
                path.push(key.to_string());
                // A table holding entries is a namespace; so is an explicit empty one
                // (it lists as empty), but not a level like `poll` in `[a.poll.b]`.
                let explicit = item.as_table().is_none_or(|t| !t.is_implicit());
                let has_entries = inner.iter().any(|(_, v)| !v.is_table_like());
                if has_entries || (explicit && inner.is_empty()) {
                    registry.namespace_mut(&path.join("."));
                }
                self.table(registry, path, inner, key_offset);
                path.pop();
                continue;
            }
            let Some(target) = item.as_str() else {
                let found = match item {
                    toml_edit::Item::ArrayOfTables(_) => "an array of tables",
                    toml_edit::Item::Value(v) => v.type_name(),
                    _ => "nothing",
                };
                let found = match found {
                    "integer" => "an integer",
                    "float" => "a float",
                    "boolean" => "a boolean",
                    "datetime" => "a datetime",
                    "array" => "an array",
                    other => other,
                };
                self.problem(
                    value_offset,
                    format!(
                        "entry point {key:?}: expected a \"library:plugin\" string, found {found}"
                    ),
                );
                continue;
            };
            if path.is_empty() {
                self.problem(
                    key_offset,
                    format!(
                        "entry point {key:?} = {target:?} is outside any namespace; put it under a table such as [ceilometer.poll.compute]"
                    ),
                );
            } else if key.is_empty() {
                self.problem(key_offset, "empty entry point name".to_string());
            } else {
                match EntryPoint::new(&path.join("."), key, target) {
                    Ok(ep) => registry.add(ep.with_location((self.at)(key_offset))),
                    Err(message) => {
                        self.problem(value_offset, format!("entry point {key:?}: {message}"))
                    }
                }
            }
        }
    }

    fn problem(&mut self, offset: usize, message: String) {
        self.problems.push(((self.at)(offset), message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Registry, EntryPointsError> {
        Registry::parse(text, Path::new("/etc/longshore/entry_points.toml"))
    }

    fn names(r: &Registry, ns: &str) -> Vec<String> {
        r.entry_points(ns)
            .iter()
            .map(|e| format!("{}={}", e.name(), e.target()))
            .collect()
    }

    #[test]
    fn nested_and_quoted_namespace_tables_are_the_same_namespace() {
        let r = parse(
            r#"
# comment
[ceilometer.poll.compute]
cpu = "compute:cpu"
"memory.util" = "memory_util:memory.util"

["ceilometer.discover.compute"]
local_instances = "compute:local_instances"

["ceilometer.poll.compute"]
vcpus = "compute:vcpus"
"#,
        )
        .unwrap();
        assert_eq!(
            r.namespaces().collect::<Vec<_>>(),
            ["ceilometer.poll.compute", "ceilometer.discover.compute"]
        );
        assert_eq!(
            names(&r, "ceilometer.poll.compute"),
            [
                "cpu=compute:cpu",
                "memory.util=memory_util:memory.util",
                "vcpus=compute:vcpus"
            ]
        );
        let cpu = &r.entry_points("ceilometer.poll.compute")[0];
        let loc = cpu.location().unwrap();
        assert_eq!((loc.line, loc.column), (4, 1));
        assert_eq!(r.plugin_dirs(), [PathBuf::from("/etc/longshore/plugins")]);
    }

    #[test]
    fn entry_point_parts_follow_stevedore_sd23_sd24_sd25() {
        let ep = EntryPoint::new("ns", "x", "/opt/a:b/libmine.so:memory.util").unwrap();
        assert_eq!(ep.library(), "/opt/a:b/libmine.so");
        assert_eq!(ep.plugin(), "memory.util");
        assert_eq!(ep.target(), "/opt/a:b/libmine.so:memory.util");
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err =
            parse("[ceilometer.poll.compute]\ncpu = \"compute:cpu\"\nvcpus = = 1\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/etc/longshore/entry_points.toml:3:"),
            "{text}"
        );
    }

    #[test]
    fn semantic_errors_name_every_bad_line() {
        let err = parse(
            "stray = \"a:b\"\n[ns.poll.x]\nok = \"lib:p\"\nnocolon = \"compute\"\nnum = 3\nempty = \"lib:\"\nlist = [\"a:b\"]\n",
        )
        .unwrap_err();
        let problems: Vec<String> = err
            .problems()
            .into_iter()
            .map(|(l, m)| format!("{}:{} {m}", l.unwrap().line, l.unwrap().column))
            .collect();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].starts_with("1:1 entry point \"stray\""));
        assert!(
            problems[1].starts_with("4:11 entry point \"nocolon\": expected \"library:plugin\"")
        );
        assert!(problems[2].starts_with("5:7 entry point \"num\": expected"));
        assert!(problems[2].ends_with("found an integer"));
        assert!(problems[3].starts_with("6:9 entry point \"empty\""));
        assert!(problems[4].ends_with("found an array"));
    }

    #[test]
    fn library_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("libcompute.so"), b"").unwrap();
        std::fs::write(a.join("custom.so"), b"").unwrap();
        std::fs::write(dir.path().join("local.so"), b"").unwrap();
        let r = Registry::parse(
            "[n.poll.x]\na = \"compute:cpu\"\nb = \"custom.so:cpu\"\nc = \"./local.so:cpu\"\nd = \"nothere:cpu\"\n",
            &dir.path().join("entry_points.toml"),
        )
        .unwrap()
        .with_plugin_dirs(vec![a.clone(), b.clone()]);
        let eps = r.entry_points("n.poll.x");
        assert_eq!(r.resolve(&eps[0]).unwrap(), b.join("libcompute.so"));
        assert_eq!(r.resolve(&eps[1]).unwrap(), a.join("custom.so"));
        assert_eq!(r.resolve(&eps[2]).unwrap(), dir.path().join("./local.so"));
        let missing = r.resolve(&eps[3]).unwrap_err();
        assert_eq!(missing.file_name, "libnothere.so");
        assert_eq!(
            missing.searched,
            [a.join("libnothere.so"), b.join("libnothere.so")]
        );
        assert!(missing.to_string().contains("--plugin-dir"));
    }
}
