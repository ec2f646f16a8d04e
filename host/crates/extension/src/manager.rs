//! `ExtensionManager`: loads every entry point of a namespace with stevedore's
//! algorithm (each failure reported and skipped, the rest still load), and the methods
//! every manager shares: `names`, `get`, `contains`, iteration, `map`, `map_method`,
//! `list_entry_points`, conflict resolution, `make_test_instance`. The other managers
//! wrap it and add their own selection.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use longshore_plugin_api::Config;

use crate::entry_points::{EntryPoint, Registry};
use crate::error::{LoadCause, LoadFailure, ManagerError, MapError};
use crate::extension::{Extension, Factory, PluginHandle};
use crate::report::{EntryStatus, LoadReport};
use crate::{libraries, security};

/// Called once per entry point that fails to load, with the manager under
/// construction, the entry point and the failure. Return `Err` to abort loading (the
/// manager's constructor then fails with that error); `Ok` to carry on.
pub type LoadFailureCallback<H> =
    Box<dyn FnMut(&ExtensionManager<H>, &EntryPoint, &LoadFailure) -> Result<(), LoadFailure>>;

/// Called by the named managers with the requested names that did not load (missing
/// from the namespace, failed or skipped).
pub type MissingCallback = Box<dyn FnMut(&BTreeSet<String>)>;

/// Chooses among extensions sharing a name: gets the namespace, the name and the
/// candidates in load order; returns the index of the one to use.
pub type ConflictResolver<H> = Arc<ResolveFn<H>>;

/// The function behind a [`ConflictResolver`].
pub type ResolveFn<H> =
    dyn Fn(&str, &str, &[&Extension<H>]) -> Result<usize, ManagerError> + Send + Sync;

type CheckFn<'a, H> = &'a dyn Fn(&Extension<H>) -> bool;
type DefaultResolver<H> = fn(&str, &str, &[&Extension<H>]) -> Result<usize, ManagerError>;

/// The default conflict resolver (all managers but the driver): the last one wins,
/// with one warning.
pub fn ignore_conflicts<H>(
    namespace: &str,
    name: &str,
    extensions: &[&Extension<H>],
) -> Result<usize, ManagerError> {
    log::warn!(
        "multiple implementations found for the '{name}' extension in {namespace} namespace: {}",
        targets(extensions).join(", ")
    );
    Ok(extensions.len().saturating_sub(1))
}

/// The driver's default conflict resolver: refuse to choose.
pub fn error_on_conflict<H>(
    namespace: &str,
    name: &str,
    extensions: &[&Extension<H>],
) -> Result<usize, ManagerError> {
    Err(ManagerError::MultipleMatches {
        namespace: namespace.to_string(),
        name: name.to_string(),
        targets: targets(extensions),
    })
}

fn targets<H>(extensions: &[&Extension<H>]) -> Vec<String> {
    extensions.iter().map(|e| e.entry_point_target()).collect()
}

pub(crate) enum Missing {
    Default,
    Silent,
    Callback(MissingCallback),
}

/// How a manager loads and behaves. Start from [`Options::new`] and chain.
pub struct Options<H> {
    pub(crate) invoke: Option<Config>,
    pub(crate) propagate_map_errors: bool,
    pub(crate) strict: bool,
    pub(crate) allow_insecure_plugins: bool,
    pub(crate) on_load_failure: Option<LoadFailureCallback<H>>,
    pub(crate) on_missing: Missing,
    pub(crate) conflict_resolver: Option<ConflictResolver<H>>,
    pub(crate) name_order: bool,
}

impl<H> Default for Options<H> {
    fn default() -> Self {
        Options {
            invoke: None,
            propagate_map_errors: false,
            strict: false,
            allow_insecure_plugins: false,
            on_load_failure: None,
            on_missing: Missing::Default,
            conflict_resolver: None,
            name_order: false,
        }
    }
}

impl<H: PluginHandle> Options<H> {
    pub fn new() -> Options<H> {
        Options::default()
    }

    /// Construct every plugin on load with `config` (stevedore's `invoke_on_load` with
    /// `invoke_args=(conf,)`). A constructor error is then a load failure; a
    /// constructor asking to be skipped is a quiet skip.
    pub fn invoke_on_load(mut self, config: Config) -> Self {
        self.invoke = Some(config);
        self
    }

    /// `map` stops at the first error and returns it, instead of logging it and
    /// carrying on.
    pub fn propagate_map_errors(mut self, yes: bool) -> Self {
        self.propagate_map_errors = yes;
        self
    }

    /// Any load failure (not a skip) makes the constructor fail, after every entry
    /// point was tried and reported.
    pub fn strict(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }

    /// Load plugin files that fail the ownership/permission check (with a warning).
    pub fn allow_insecure_plugins(mut self, yes: bool) -> Self {
        self.allow_insecure_plugins = yes;
        self
    }

    /// Replace the default failure handling (an ERROR log line per failure).
    pub fn on_load_failure(
        mut self,
        callback: impl FnMut(&ExtensionManager<H>, &EntryPoint, &LoadFailure) -> Result<(), LoadFailure>
            + 'static,
    ) -> Self {
        self.on_load_failure = Some(Box::new(callback));
        self
    }

    /// Named managers: replace the default report of requested names that did not
    /// load (a WARN line; none for hooks).
    pub fn on_missing_entrypoints(
        mut self,
        callback: impl FnMut(&BTreeSet<String>) + 'static,
    ) -> Self {
        self.on_missing = Missing::Callback(Box::new(callback));
        self
    }

    /// Named managers: say nothing about requested names that did not load.
    pub fn ignore_missing_entrypoints(mut self) -> Self {
        self.on_missing = Missing::Silent;
        self
    }

    /// Choose among extensions sharing a name (default: [`ignore_conflicts`], or
    /// [`error_on_conflict`] for drivers).
    pub fn conflict_resolver(
        mut self,
        resolver: impl Fn(&str, &str, &[&Extension<H>]) -> Result<usize, ManagerError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.conflict_resolver = Some(Arc::new(resolver));
        self
    }

    /// Named managers: order the extensions as the requested names are ordered.
    pub fn name_order(mut self, yes: bool) -> Self {
        self.name_order = yes;
        self
    }
}

/// What a specific manager adds to the common load algorithm.
pub(crate) struct Selection<'a, H> {
    /// Only these names are loaded; checked before any library is opened.
    pub names: Option<&'a [String]>,
    /// Kept only if true; runs after load and invoke.
    pub check: Option<CheckFn<'a, H>>,
    pub default_resolver: DefaultResolver<H>,
    /// The default report of missing names logs a warning.
    pub warn_missing: bool,
    /// Without a failure callback, a load failure aborts (drivers).
    pub reraise_failures: bool,
}

impl<H> Selection<'_, H> {
    pub(crate) fn all() -> Self {
        Selection {
            names: None,
            check: None,
            default_resolver: ignore_conflicts,
            warn_missing: true,
            reraise_failures: false,
        }
    }
}

/// Loads and holds the extensions of one namespace.
pub struct ExtensionManager<H> {
    namespace: String,
    entry_points: Vec<Arc<EntryPoint>>,
    extensions: Vec<Extension<H>>,
    by_name: HashMap<String, usize>,
    report: LoadReport,
    propagate_map_errors: bool,
}

impl<H> fmt::Debug for ExtensionManager<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtensionManager")
            .field("namespace", &self.namespace)
            .field("extensions", &self.extensions)
            .finish()
    }
}

impl<H: PluginHandle> ExtensionManager<H> {
    /// Load every entry point of `namespace`.
    pub fn new(
        registry: &Registry,
        namespace: &str,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        Self::load(registry, namespace, options, Selection::all())
    }

    /// A manager around in-memory extensions: nothing is resolved or loaded. The
    /// namespace defaults to `TESTING`.
    pub fn make_test_instance(
        extensions: Vec<Extension<H>>,
        namespace: Option<&str>,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        let namespace = namespace.unwrap_or("TESTING");
        let mut report = LoadReport::new(namespace, Some(H::KIND));
        for ext in &extensions {
            report.push(
                ext.entry_point(),
                ext.library_path().map(Into::into),
                Some(ext.plugin().description().to_string()),
                EntryStatus::Loaded,
            );
        }
        let mut manager = ExtensionManager {
            namespace: namespace.to_string(),
            entry_points: extensions.iter().map(|e| e.entry_point().clone()).collect(),
            extensions,
            by_name: HashMap::new(),
            report,
            propagate_map_errors: options.propagate_map_errors,
        };
        let resolver = options
            .conflict_resolver
            .unwrap_or_else(|| Arc::new(ignore_conflicts));
        manager.resolve_conflicts(&*resolver)?;
        Ok(manager)
    }

    pub(crate) fn load(
        registry: &Registry,
        namespace: &str,
        mut options: Options<H>,
        selection: Selection<'_, H>,
    ) -> Result<Self, ManagerError> {
        let entry_points = registry.entry_points(namespace).to_vec();
        let mut manager = ExtensionManager {
            namespace: namespace.to_string(),
            entry_points: entry_points.clone(),
            extensions: Vec::new(),
            by_name: HashMap::new(),
            report: LoadReport::new(namespace, Some(H::KIND)),
            propagate_map_errors: options.propagate_map_errors,
        };
        let mut failures = Vec::new();
        for ep in &entry_points {
            if let Some(names) = selection.names {
                if !names.iter().any(|n| n == ep.name()) {
                    manager
                        .report
                        .push(ep, None, None, EntryStatus::NotRequested);
                    continue;
                }
            }
            let ext = match load_one(registry, ep, &options) {
                Ok(ext) => ext,
                Err(failure) if failure.is_skip() => {
                    log::debug!(
                        "Skip loading extension for {}: {}",
                        ep.name(),
                        failure.cause()
                    );
                    let reason = match failure.cause() {
                        LoadCause::Skipped(r) => r.clone(),
                        other => other.to_string(),
                    };
                    let library = failure.library().map(Into::into);
                    manager
                        .report
                        .push(ep, library, None, EntryStatus::Skipped(reason));
                    continue;
                }
                Err(failure) => {
                    manager.report.push(
                        ep,
                        failure.library().map(Into::into),
                        None,
                        EntryStatus::Failed(failure.clone()),
                    );
                    match options.on_load_failure.as_mut() {
                        Some(callback) => {
                            callback(&manager, ep, &failure).map_err(ManagerError::LoadFailed)?
                        }
                        None if selection.reraise_failures => {
                            return Err(ManagerError::LoadFailed(failure))
                        }
                        None => log::error!("Could not load {:?}: {failure}", ep.name()),
                    }
                    failures.push(failure);
                    continue;
                }
            };
            let library = ext.library_path().map(Into::into);
            let description = Some(ext.plugin().description().to_string());
            if let Some(check) = selection.check {
                if !check(&ext) {
                    log::debug!("ignoring extension {:?}", ep.name());
                    manager
                        .report
                        .push(ep, library, description, EntryStatus::Rejected);
                    continue;
                }
            }
            manager
                .report
                .push(ep, library, description, EntryStatus::Loaded);
            manager.extensions.push(ext);
        }

        if let Some(names) = selection.names {
            let missing: BTreeSet<String> = names
                .iter()
                .filter(|n| !manager.contains(n))
                .cloned()
                .collect();
            if !missing.is_empty() {
                match &mut options.on_missing {
                    Missing::Callback(callback) => callback(&missing),
                    Missing::Default if selection.warn_missing => log::warn!(
                        "Could not load {}",
                        missing
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Missing::Default | Missing::Silent => {}
                }
            }
            if options.name_order {
                // Stable: extensions sharing a name keep their load order.
                manager
                    .extensions
                    .sort_by_key(|e| names.iter().position(|n| n == e.name()));
            }
        }

        let resolver = options
            .conflict_resolver
            .take()
            .unwrap_or_else(|| Arc::new(selection.default_resolver));
        manager.resolve_conflicts(&*resolver)?;

        if options.strict && !failures.is_empty() {
            return Err(ManagerError::Strict {
                namespace: namespace.to_string(),
                failures,
            });
        }
        Ok(manager)
    }

    fn resolve_conflicts(&mut self, resolver: &ResolveFn<H>) -> Result<(), ManagerError> {
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, ext) in self.extensions.iter().enumerate() {
            match groups.iter_mut().find(|(n, _)| *n == ext.name()) {
                Some((_, members)) => members.push(i),
                None => groups.push((ext.name(), vec![i])),
            }
        }
        let mut by_name = HashMap::with_capacity(groups.len());
        for (name, members) in groups {
            let chosen = if members.len() == 1 {
                members[0]
            } else {
                let candidates: Vec<&Extension<H>> =
                    members.iter().map(|i| &self.extensions[*i]).collect();
                let pick = resolver(&self.namespace, name, &candidates)?;
                members[pick.min(members.len() - 1)]
            };
            by_name.insert(name.to_string(), chosen);
        }
        self.by_name = by_name;
        Ok(())
    }

    /// Keep only the extension `by_name` resolved for each name (drivers).
    pub(crate) fn keep_resolved_only(&mut self) {
        let mut keep: Vec<usize> = self.by_name.values().copied().collect();
        keep.sort_unstable();
        let old = std::mem::take(&mut self.extensions);
        let mut moved = HashMap::new();
        for (old_index, ext) in old.into_iter().enumerate() {
            if keep.binary_search(&old_index).is_ok() {
                moved.insert(old_index, self.extensions.len());
                self.extensions.push(ext);
            }
        }
        for index in self.by_name.values_mut() {
            *index = moved[index];
        }
    }
}

impl<H> ExtensionManager<H> {
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Extension names in invocation order (load order, or the requested order with
    /// `name_order`). Names shared by several extensions appear once per extension.
    pub fn names(&self) -> Vec<&str> {
        self.extensions.iter().map(Extension::name).collect()
    }

    pub fn extensions(&self) -> &[Extension<H>] {
        &self.extensions
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Extension<H>> {
        self.extensions.iter()
    }

    pub fn len(&self) -> usize {
        self.extensions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.extensions.is_empty()
    }

    /// The extension named `name`, after conflict resolution.
    pub fn get(&self, name: &str) -> Option<&Extension<H>> {
        self.by_name.get(name).map(|i| &self.extensions[*i])
    }

    /// Whether any extension is named `name` (ignores conflict resolution).
    pub fn contains(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e.name() == name)
    }

    /// `(name, extension)` for every name, after conflict resolution, in first-load
    /// order.
    pub fn items(&self) -> Vec<(&str, &Extension<H>)> {
        let mut items: Vec<(&str, usize)> =
            self.by_name.iter().map(|(n, i)| (n.as_str(), *i)).collect();
        items.sort_by_key(|(n, _)| self.extensions.iter().position(|e| e.name() == *n));
        items
            .into_iter()
            .map(|(n, i)| (n, &self.extensions[i]))
            .collect()
    }

    /// Every entry point of the namespace, including those that failed or were not
    /// requested. Nothing is loaded by this call.
    pub fn list_entry_points(&self) -> &[Arc<EntryPoint>] {
        &self.entry_points
    }

    /// The names of [`list_entry_points`](Self::list_entry_points).
    pub fn entry_points_names(&self) -> Vec<&str> {
        self.entry_points.iter().map(|e| e.name()).collect()
    }

    /// What happened to each entry point while loading.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Call `f` on every extension in order and collect the results. An error from
    /// `f` is logged and that extension left out, unless map errors propagate. An
    /// empty manager is `NoMatches`.
    pub fn map<R, E, F>(&self, f: F) -> Result<Vec<R>, MapError<E>>
    where
        E: fmt::Display,
        F: FnMut(&Extension<H>) -> Result<R, E>,
    {
        if self.extensions.is_empty() {
            return Err(MapError::NoMatches {
                namespace: self.namespace.clone(),
            });
        }
        self.map_over(self.extensions.iter(), f)
    }

    /// `map` over each extension's object: `f` gets the constructed plugin.
    pub fn map_method<R, E, F>(&self, f: F) -> Result<Vec<R>, MapError<E>>
    where
        E: fmt::Display,
        F: FnMut(&H) -> Result<R, E>,
    {
        if self.extensions.is_empty() {
            return Err(MapError::NoMatches {
                namespace: self.namespace.clone(),
            });
        }
        self.map_method_over(self.extensions.iter(), f)
    }

    pub(crate) fn map_over<'a, R, E, F>(
        &self,
        extensions: impl Iterator<Item = &'a Extension<H>>,
        mut f: F,
    ) -> Result<Vec<R>, MapError<E>>
    where
        H: 'a,
        E: fmt::Display,
        F: FnMut(&Extension<H>) -> Result<R, E>,
    {
        let mut results = Vec::new();
        for ext in extensions {
            match f(ext) {
                Ok(r) => results.push(r),
                Err(error) => self.map_failed(MapError::Call {
                    extension: ext.name().to_string(),
                    error,
                })?,
            }
        }
        Ok(results)
    }

    pub(crate) fn map_method_over<'a, R, E, F>(
        &self,
        extensions: impl Iterator<Item = &'a Extension<H>>,
        mut f: F,
    ) -> Result<Vec<R>, MapError<E>>
    where
        H: 'a,
        E: fmt::Display,
        F: FnMut(&H) -> Result<R, E>,
    {
        let mut results = Vec::new();
        for ext in extensions {
            let outcome = match ext.obj() {
                Some(obj) => f(obj).map_err(|error| MapError::Call {
                    extension: ext.name().to_string(),
                    error,
                }),
                None => Err(MapError::NotInvoked {
                    extension: ext.name().to_string(),
                }),
            };
            match outcome {
                Ok(r) => results.push(r),
                Err(e) => self.map_failed(e)?,
            }
        }
        Ok(results)
    }

    fn map_failed<E: fmt::Display>(&self, error: MapError<E>) -> Result<(), MapError<E>> {
        if self.propagate_map_errors {
            Err(error)
        } else {
            log::error!("{error}");
            Ok(())
        }
    }
}

impl<'a, H> IntoIterator for &'a ExtensionManager<H> {
    type Item = &'a Extension<H>;
    type IntoIter = std::slice::Iter<'a, Extension<H>>;

    fn into_iter(self) -> Self::IntoIter {
        self.extensions.iter()
    }
}

/// Resolve, check, open and (optionally) construct one entry point.
fn load_one<H: PluginHandle>(
    registry: &Registry,
    ep: &Arc<EntryPoint>,
    options: &Options<H>,
) -> Result<Extension<H>, LoadFailure> {
    let fail = |library: Option<&std::path::Path>, cause: LoadCause| {
        LoadFailure::new(ep.clone(), library.map(Into::into), cause)
    };
    let path = registry.resolve(ep).map_err(|e| fail(None, e.into()))?;
    if let Err(insecure) = security::check_plugin_file(&path) {
        if !options.allow_insecure_plugins {
            return Err(fail(Some(&path), insecure.into()));
        }
        log::warn!(
            "loading {} although it is insecure: {}",
            path.display(),
            insecure.reason
        );
    }
    let library = libraries::open(&path).map_err(|e| fail(Some(&path), e.into()))?;
    let Some(info) = library.plugin(ep.plugin()) else {
        let available = library
            .info()
            .plugins
            .iter()
            .map(|p| p.name.clone())
            .collect();
        return Err(fail(
            Some(&path),
            LoadCause::NoSuchPlugin {
                plugin: ep.plugin().to_string(),
                available,
            },
        ));
    };
    if info.kind != H::KIND {
        return Err(fail(
            Some(&path),
            LoadCause::WrongKind {
                plugin: ep.plugin().to_string(),
                expected: H::KIND,
                found: info.kind,
            },
        ));
    }
    let factory = Factory::from_library(library.clone(), info.clone());
    let obj = match &options.invoke {
        Some(config) => Some(
            factory
                .construct(config)
                .map_err(|e| fail(Some(&path), LoadCause::from_constructor(e)))?,
        ),
        None => None,
    };
    Ok(Extension::new(ep.clone(), factory, obj))
}
