//! What the polling agent loads: for each polling namespace group (`compute`, …) the
//! pollsters of `ceilometer.poll.<group>` and the discoveries of
//! `ceilometer.discover.<group>`, constructed with the configuration, as Ceilometer's
//! `AgentManager` does; plus the kind-by-namespace rule and a per-namespace load
//! report for listings.

use std::path::PathBuf;
use std::sync::Arc;

use longshore_plugin_api::host::{DiscoveryHandle, Library, PollsterHandle};
use longshore_plugin_api::{Config, PluginKind};

use crate::entry_points::Registry;
use crate::error::{LoadCause, LoadFailure, ManagerError};
use crate::extension::PluginHandle;
use crate::manager::{ExtensionManager, Options};
use crate::report::{EntryStatus, LoadReport};
use crate::{libraries, security};

/// The project part of the namespaces the agent loads.
pub const NAMESPACE_PROJECT: &str = "ceilometer";

/// `ceilometer.poll.<group>`.
pub fn pollster_namespace(group: &str) -> String {
    format!("{NAMESPACE_PROJECT}.poll.{group}")
}

/// `ceilometer.discover.<group>`.
pub fn discovery_namespace(group: &str) -> String {
    format!("{NAMESPACE_PROJECT}.discover.{group}")
}

/// The kind of plugin a namespace holds, from its name: a `poll` component means
/// pollsters, a `discover` component discoveries.
pub fn namespace_kind(namespace: &str) -> Option<PluginKind> {
    let mut parts = namespace.split('.');
    if parts.clone().any(|p| p == "poll") {
        Some(PluginKind::Pollster)
    } else if parts.any(|p| p == "discover") {
        Some(PluginKind::Discovery)
    } else {
        None
    }
}

/// How plugins are loaded for the agent and the CLI.
#[derive(Debug, Clone, Default)]
pub struct LoadSettings {
    /// Handed to every constructor.
    pub config: Config,
    /// Any load failure makes loading fail (after everything was tried).
    pub strict: bool,
    pub allow_insecure_plugins: bool,
    /// Log each failure (ERROR). Off when the caller prints the report itself.
    pub log_failures: bool,
}

impl LoadSettings {
    fn options<H: PluginHandle>(&self) -> Options<H> {
        let options = Options::new()
            .invoke_on_load(self.config.clone())
            .allow_insecure_plugins(self.allow_insecure_plugins);
        if self.log_failures {
            options
        } else {
            options.on_load_failure(|_, _, _| Ok(()))
        }
    }
}

/// A loaded, constructed plugin, ready to be called from any thread.
#[derive(Debug)]
pub struct LoadedPlugin<H> {
    /// The entry point's name (the meter name for pollsters).
    pub name: String,
    pub namespace: String,
    pub library: Option<PathBuf>,
    pub handle: Arc<H>,
}

impl<H> Clone for LoadedPlugin<H> {
    fn clone(&self) -> Self {
        LoadedPlugin {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            library: self.library.clone(),
            handle: self.handle.clone(),
        }
    }
}

/// The pollsters and discoveries of some namespace groups, and what happened to
/// every entry point.
#[derive(Debug, Default)]
pub struct PluginSet {
    pub pollsters: Vec<LoadedPlugin<PollsterHandle>>,
    pub discoveries: Vec<LoadedPlugin<DiscoveryHandle>>,
    /// One report per namespace, pollsters first for each group.
    pub reports: Vec<LoadReport>,
}

impl PluginSet {
    /// Load the pollsters and discoveries of each group (duplicates dropped with a
    /// warning). Failures are reported and skipped; with `settings.strict` they make
    /// this fail once everything was tried.
    pub fn load(
        registry: &Registry,
        groups: &[String],
        settings: &LoadSettings,
    ) -> Result<PluginSet, ManagerError> {
        let mut unique: Vec<&String> = Vec::new();
        for g in groups {
            if unique.contains(&g) {
                log::warn!(
                    "Duplicated values: {g} found in polling namespaces and will be removed"
                );
            } else {
                unique.push(g);
            }
        }
        let mut set = PluginSet::default();
        for group in &unique {
            let ns = pollster_namespace(group);
            let m = ExtensionManager::<PollsterHandle>::new(registry, &ns, settings.options())?;
            set.pollsters.extend(loaded(&m));
            set.reports.push(m.report().clone());
            let ns = discovery_namespace(group);
            let m = ExtensionManager::<DiscoveryHandle>::new(registry, &ns, settings.options())?;
            set.discoveries.extend(loaded(&m));
            set.reports.push(m.report().clone());
        }
        if set.pollsters.is_empty() {
            log::warn!(
                "No valid pollsters can be loaded from {:?} namespaces",
                unique
            );
        }
        let failures: Vec<LoadFailure> = set.failures().cloned().collect();
        if settings.strict && !failures.is_empty() {
            return Err(ManagerError::Strict {
                namespace: unique
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                failures,
            });
        }
        Ok(set)
    }

    /// Every entry point that failed to load.
    pub fn failures(&self) -> impl Iterator<Item = &LoadFailure> + '_ {
        self.reports.iter().flat_map(LoadReport::failures)
    }
}

fn loaded<H: PluginHandle>(m: &ExtensionManager<H>) -> impl Iterator<Item = LoadedPlugin<H>> + '_ {
    m.iter().filter_map(|ext| {
        Some(LoadedPlugin {
            name: ext.name().to_string(),
            namespace: m.namespace().to_string(),
            library: ext.library_path().map(Into::into),
            handle: ext.obj()?.clone(),
        })
    })
}

/// Load (and construct) every entry point of `namespace` as the kind its name says,
/// for listings. A namespace of unknown kind reports every entry point as failed.
pub fn load_namespace(registry: &Registry, namespace: &str, settings: &LoadSettings) -> LoadReport {
    let settings = LoadSettings {
        strict: false,
        ..settings.clone()
    };
    let report = match namespace_kind(namespace) {
        Some(PluginKind::Pollster) => {
            ExtensionManager::<PollsterHandle>::new(registry, namespace, settings.options())
                .map(|m| m.report().clone())
        }
        Some(PluginKind::Discovery) => {
            ExtensionManager::<DiscoveryHandle>::new(registry, namespace, settings.options())
                .map(|m| m.report().clone())
        }
        None => {
            let mut report = LoadReport::new(namespace, None);
            for ep in registry.entry_points(namespace) {
                let failure = LoadFailure::new(
                    ep.clone(),
                    None,
                    LoadCause::UnknownNamespaceKind {
                        namespace: namespace.to_string(),
                    },
                );
                report.push(ep, None, None, EntryStatus::Failed(failure));
            }
            Ok(report)
        }
    };
    // Not strict, no re-raising callback, last-wins conflicts: nothing can fail the
    // manager itself; every problem is in the report.
    report.unwrap_or_else(|error| {
        log::error!("loading {namespace}: {error}");
        LoadReport::new(namespace, namespace_kind(namespace))
    })
}

/// The libraries named by some namespaces, opened before any plugin is constructed.
#[derive(Debug, Default)]
pub struct Preloaded {
    /// Each library file once, in first-named order.
    pub libraries: Vec<Arc<Library>>,
    /// How many named library files could not be opened (or were refused).
    pub failed: usize,
}

impl Preloaded {
    /// Every option the libraries declare.
    pub fn option_specs(&self) -> Vec<longshore_plugin_api::OptionSpec> {
        self.libraries
            .iter()
            .flat_map(|l| l.info().options.iter().cloned())
            .collect()
    }
}

/// Open (once per process) every library the entry points of `namespaces` name, so
/// their option specs are known before any plugin is constructed. Failures are only
/// counted here: loading the entry points reports them.
pub fn preload_libraries<'a>(
    registry: &Registry,
    namespaces: impl IntoIterator<Item = &'a str>,
    allow_insecure_plugins: bool,
) -> Preloaded {
    let mut out = Preloaded::default();
    let mut seen: Vec<PathBuf> = Vec::new();
    for ns in namespaces {
        for ep in registry.entry_points(ns) {
            let Ok(path) = registry.resolve(ep) else {
                out.failed += 1;
                continue;
            };
            let key = path.canonicalize().unwrap_or_else(|_| path.clone());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            if !allow_insecure_plugins && security::check_plugin_file(&path).is_err() {
                out.failed += 1;
                continue;
            }
            match libraries::open(&path) {
                Ok(lib) => out.libraries.push(lib),
                Err(_) => out.failed += 1,
            }
        }
    }
    out
}
