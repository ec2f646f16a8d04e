//! The errors of loading and using extensions, in stevedore's taxonomy: a per-entry
//! point `LoadFailure` (reported and skipped unless strict), `NoMatches` /
//! `MultipleMatches` for managers, and `MapError` for `map` calls.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use longshore_plugin_api::host::LoadError;
use longshore_plugin_api::{CallError, ErrorKind, PluginKind};

use crate::entry_points::{EntryPoint, LibraryNotFound};
use crate::security::InsecurePlugin;

/// Why one entry point did not load. Every variant says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadCause {
    #[error(transparent)]
    LibraryNotFound(#[from] LibraryNotFound),
    #[error(transparent)]
    Insecure(#[from] InsecurePlugin),
    /// The library could not be opened or is not a compatible longshore plugin.
    #[error(transparent)]
    Library(#[from] LoadError),
    #[error("the library provides no plugin named {plugin:?} (it provides: {}); fix the entry point's \"library:plugin\" target", if .available.is_empty() { "nothing".to_string() } else { .available.join(", ") })]
    NoSuchPlugin {
        plugin: String,
        available: Vec<String>,
    },
    #[error("plugin {plugin:?} is a {}, but this namespace holds {}s; move the entry point to a matching namespace (*.poll.* for pollsters, *.discover.* for discoveries)", .found.as_str(), .expected.as_str())]
    WrongKind {
        plugin: String,
        expected: PluginKind,
        found: PluginKind,
    },
    #[error("namespace {namespace:?} holds neither pollsters nor discoveries; name it <project>.poll.<group> or <project>.discover.<group>")]
    UnknownNamespaceKind { namespace: String },
    #[error("its constructor panicked: {}; this is a bug in the plugin, report it to its authors", .0.message())]
    ConstructorPanicked(CallError),
    #[error("its constructor failed: {}; check the plugin's options in the configuration and its log lines above", .0.message())]
    ConstructorFailed(CallError),
    /// The plugin asked to be skipped (Ceilometer's `ExtensionLoadError`): not a failure.
    #[error("skipped: {0}")]
    Skipped(String),
}

impl LoadCause {
    /// A constructor error, classified: skip, panic or failure.
    pub fn from_constructor(error: CallError) -> LoadCause {
        match error.kind() {
            ErrorKind::Skip => LoadCause::Skipped(error.message().to_string()),
            ErrorKind::Panicked => LoadCause::ConstructorPanicked(error),
            _ => LoadCause::ConstructorFailed(error),
        }
    }

    /// A short stable name of the failure class (for `--json` and tests).
    pub fn class(&self) -> &'static str {
        match self {
            LoadCause::LibraryNotFound(_) => "library-not-found",
            LoadCause::Insecure(_) => "insecure",
            LoadCause::Library(e) => e.class(),
            LoadCause::NoSuchPlugin { .. } => "no-such-plugin",
            LoadCause::WrongKind { .. } => "wrong-kind",
            LoadCause::UnknownNamespaceKind { .. } => "unknown-namespace-kind",
            LoadCause::ConstructorPanicked(_) => "constructor-panicked",
            LoadCause::ConstructorFailed(_) => "constructor-failed",
            LoadCause::Skipped(_) => "skipped",
        }
    }
}

/// One entry point that did not load: which one, from which library file, and why.
/// (Boxed inside: it travels through `Result`s on every load path.)
#[derive(Debug, Clone)]
pub struct LoadFailure {
    inner: Box<FailureInner>,
}

#[derive(Debug, Clone)]
struct FailureInner {
    entry_point: Arc<EntryPoint>,
    library: Option<PathBuf>,
    cause: LoadCause,
}

impl LoadFailure {
    pub fn new(entry_point: Arc<EntryPoint>, library: Option<PathBuf>, cause: LoadCause) -> Self {
        LoadFailure {
            inner: Box::new(FailureInner {
                entry_point,
                library,
                cause,
            }),
        }
    }

    pub fn entry_point(&self) -> &Arc<EntryPoint> {
        &self.inner.entry_point
    }

    /// The library file, when it was resolved.
    pub fn library(&self) -> Option<&Path> {
        self.inner.library.as_deref()
    }

    pub fn cause(&self) -> &LoadCause {
        &self.inner.cause
    }

    /// The plugin asked to be skipped; this is not an error.
    pub fn is_skip(&self) -> bool {
        matches!(self.inner.cause, LoadCause::Skipped(_))
    }
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ep = self.entry_point();
        write!(
            f,
            "entry point {:?} = {:?} of namespace {}",
            ep.name(),
            ep.target(),
            ep.namespace()
        )?;
        if let Some(loc) = ep.location() {
            write!(f, " ({loc})")?;
        }
        if let Some(lib) = self.library() {
            write!(f, ", library {}", lib.display())?;
        }
        write!(f, ": {}", self.cause())
    }
}

impl std::error::Error for LoadFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.cause())
    }
}

/// Why a manager could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ManagerError {
    /// Nothing matched: no driver of that name, or `map` on an empty manager.
    #[error("{}", match .name {
        Some(name) => format!("No '{namespace}' driver found, looking for '{name}'"),
        None => format!("No {namespace} extensions found"),
    })]
    NoMatches {
        namespace: String,
        name: Option<String>,
    },
    /// Several entry points share a name and the conflict resolver refuses to choose.
    #[error("multiple implementations found for the '{name}' command in {namespace} namespace: {}", .targets.join(", "))]
    MultipleMatches {
        namespace: String,
        name: String,
        targets: Vec<String>,
    },
    /// A load failure the manager does not tolerate (a driver, or a failure callback
    /// that re-raised it).
    #[error("{0}")]
    LoadFailed(LoadFailure),
    /// Strict mode: every entry point that failed to load.
    #[error("{} plugin(s) failed to load in {namespace} (strict mode):\n  {}", .failures.len(), .failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Strict {
        namespace: String,
        failures: Vec<LoadFailure>,
    },
}

/// Why `map` (or `map_method`) stopped.
#[derive(Debug, thiserror::Error)]
pub enum MapError<E> {
    #[error("No {namespace} extensions found")]
    NoMatches { namespace: String },
    /// The function failed for one extension (only when map errors propagate).
    #[error("error calling '{extension}': {error}")]
    Call { extension: String, error: E },
    /// `map_method` on an extension that was not constructed (`invoke_on_load` off).
    #[error("extension {extension:?} has no object: the manager was built without invoke_on_load")]
    NotInvoked { extension: String },
}
