//! The load report: what happened to every entry point of a namespace (loaded,
//! skipped, failed and why, not requested), for `longshore list` and for callers
//! that decide what to do about failures.

use std::path::PathBuf;
use std::sync::Arc;

use longshore_plugin_api::PluginKind;

use crate::entry_points::EntryPoint;
use crate::error::LoadFailure;

/// What happened to one entry point.
#[derive(Debug, Clone)]
pub enum EntryStatus {
    Loaded,
    /// The plugin asked to be skipped (not an error).
    Skipped(String),
    Failed(LoadFailure),
    /// A named manager was not asked for this name: its library was never opened.
    NotRequested,
    /// Loaded, then refused by the manager's `check_func`.
    Rejected,
}

impl EntryStatus {
    /// `loaded`, `skipped`, `failed`, `not-requested` or `rejected`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryStatus::Loaded => "loaded",
            EntryStatus::Skipped(_) => "skipped",
            EntryStatus::Failed(_) => "failed",
            EntryStatus::NotRequested => "not-requested",
            EntryStatus::Rejected => "rejected",
        }
    }
}

/// One entry point's outcome.
#[derive(Debug, Clone)]
pub struct EntryReport {
    pub entry_point: Arc<EntryPoint>,
    /// The library file, when it was resolved.
    pub library: Option<PathBuf>,
    /// The plugin's description, when its library loaded.
    pub description: Option<String>,
    pub status: EntryStatus,
}

/// The outcome of loading one namespace.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub namespace: String,
    /// The kind of plugin the namespace was loaded as (`None` if unknown).
    pub kind: Option<PluginKind>,
    pub entries: Vec<EntryReport>,
}

impl LoadReport {
    pub fn new(namespace: &str, kind: Option<PluginKind>) -> LoadReport {
        LoadReport {
            namespace: namespace.to_string(),
            kind,
            entries: Vec::new(),
        }
    }

    /// The entry points that failed to load (skips are not failures).
    pub fn failures(&self) -> impl Iterator<Item = &LoadFailure> + '_ {
        self.entries.iter().filter_map(|e| match &e.status {
            EntryStatus::Failed(f) => Some(f),
            _ => None,
        })
    }

    pub fn has_failures(&self) -> bool {
        self.failures().next().is_some()
    }

    pub(crate) fn push(
        &mut self,
        entry_point: &Arc<EntryPoint>,
        library: Option<PathBuf>,
        description: Option<String>,
        status: EntryStatus,
    ) {
        self.entries.push(EntryReport {
            entry_point: entry_point.clone(),
            library,
            description,
            status,
        });
    }
}
