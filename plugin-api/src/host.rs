//! The host side of the boundary: opening a plugin library (every load check, each
//! failure a typed `LoadError`), constructing its plugins, and calling them with the
//! per-cycle cache and cancellation. The host crates use this and never abi_stable.
//!
//! Libraries are never unloaded: abi_stable leaks them by design, and unloading Rust
//! code with thread-local destructors is unsound.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use abi_stable::erased_types::TD_Opaque;
use abi_stable::library::{lib_header_from_path, LibraryError, RootModuleError};
use abi_stable::std_types::{ROption, RResult, RStr, RVec};

use crate::config::{Config, OptionSpec};
use crate::error::{CallError, ErrorKind};
use crate::ffi::{
    CacheItem, DiscoveryBox, FfiCacheInit_TO, FfiHostContext, FfiHostContext_TO, HostApi,
    LogRecord, PluginKind, PluginLibRef, PollsterBox,
};
use crate::plugin::{Discovery, Pollster};
use crate::sample::{Resource, Sample};

/// Why a library could not be loaded. Every variant names the file and says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("cannot open {path}: {reason}; check that the file exists and is a shared library built for this platform (`file`, `ldd`)")]
    Open { path: PathBuf, reason: String },
    #[error("{path} is a shared library but not a longshore plugin (it exports no longshore root module); build plugins with longshore_plugin_api::export_plugin_library!")]
    NotAPlugin { path: PathBuf },
    #[error("{path} was built with an incompatible abi_stable ({reason}); rebuild it against this host's longshore-plugin-api")]
    AbiMismatch { path: PathBuf, reason: String },
    #[error("{path} was built against longshore-plugin-api {found}, incompatible with this host's {expected}; rebuild the plugin against longshore-plugin-api {expected}")]
    IncompatibleVersion {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: plugin ABI layout differs from this host's longshore-plugin-api {expected} (the plugin was built against a different interface); rebuild the plugin. Detail: {detail}")]
    LayoutMismatch {
        path: PathBuf,
        expected: String,
        detail: String,
    },
    #[error("{path}: the library's initialisation failed: {error}")]
    InitFailed { path: PathBuf, error: CallError },
}

impl LoadError {
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Open { path, .. }
            | LoadError::NotAPlugin { path }
            | LoadError::AbiMismatch { path, .. }
            | LoadError::IncompatibleVersion { path, .. }
            | LoadError::LayoutMismatch { path, .. }
            | LoadError::InitFailed { path, .. } => path,
        }
    }

    /// A short machine-friendly name of the failure class.
    pub fn class(&self) -> &'static str {
        match self {
            LoadError::Open { .. } => "open",
            LoadError::NotAPlugin { .. } => "not-a-plugin",
            LoadError::AbiMismatch { .. } => "abi-mismatch",
            LoadError::IncompatibleVersion { .. } => "incompatible-version",
            LoadError::LayoutMismatch { .. } => "layout-mismatch",
            LoadError::InitFailed { .. } => "init-failed",
        }
    }
}

/// The version of longshore-plugin-api this host was built with.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a library provides, as read at load time.
#[derive(Debug, Clone)]
pub struct LibraryInfo {
    pub crate_name: String,
    pub crate_version: String,
    pub plugins: Vec<PluginInfo>,
    pub options: Vec<OptionSpec>,
}

/// One plugin a library provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub kind: PluginKind,
    pub description: String,
}

/// A loaded plugin library. Loading the same file twice yields the same module (the
/// caller should still cache by path: each `open` re-runs the layout check).
#[derive(Clone)]
pub struct Library {
    path: PathBuf,
    module: PluginLibRef,
    info: LibraryInfo,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

impl Library {
    /// Open `path`, check it is a longshore plugin built against a compatible
    /// plugin-api with the same ABI layout, run its initialisation and read what it
    /// provides.
    pub fn open(path: &Path) -> Result<Library, LoadError> {
        // RTLD_NOW: an unresolved symbol fails here, not at the first poll. The handle
        // is leaked on purpose: libraries are never unloaded.
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
        // SAFETY: loading a library runs its initialisers; loading plugins is this
        // function's purpose, and the caller has checked the file's ownership.
        let raw =
            unsafe { libloading::os::unix::Library::open(Some(path), flags) }.map_err(|e| {
                LoadError::Open {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
        std::mem::forget(raw);

        let header = lib_header_from_path(path).map_err(|e| classify(path, e))?;
        let module = header
            .init_root_module::<PluginLibRef>()
            .map_err(|e| classify(path, e))?;
        let info = match (module.init())(host_api()) {
            RResult::ROk(info) => info,
            RResult::RErr(error) => {
                return Err(LoadError::InitFailed {
                    path: path.to_path_buf(),
                    error,
                })
            }
        };
        Ok(Library {
            path: path.to_path_buf(),
            module,
            info: LibraryInfo {
                crate_name: info.crate_name.into(),
                crate_version: info.crate_version.into(),
                plugins: info
                    .plugins
                    .into_iter()
                    .map(|p| PluginInfo {
                        name: p.name.into(),
                        kind: p.kind,
                        description: p.description.into(),
                    })
                    .collect(),
                options: info.options.into_vec(),
            },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &LibraryInfo {
        &self.info
    }

    /// The plugin named `name`, if the library provides one.
    pub fn plugin(&self, name: &str) -> Option<&PluginInfo> {
        self.info.plugins.iter().find(|p| p.name == name)
    }

    /// Construct the pollster `name` with `config` (stevedore's invoke-on-load).
    pub fn new_pollster(&self, name: &str, config: &Config) -> Result<PollsterHandle, CallError> {
        match (self.module.new_pollster())(name.into(), config) {
            RResult::ROk(obj) => Ok(PollsterHandle {
                obj,
                scope: self.path.to_string_lossy().into(),
            }),
            RResult::RErr(e) => Err(e),
        }
    }

    /// Construct the discovery `name` with `config`.
    pub fn new_discovery(&self, name: &str, config: &Config) -> Result<DiscoveryHandle, CallError> {
        match (self.module.new_discovery())(name.into(), config) {
            RResult::ROk(obj) => Ok(DiscoveryHandle {
                obj,
                scope: self.path.to_string_lossy().into(),
            }),
            RResult::RErr(e) => Err(e),
        }
    }
}

fn classify(path: &Path, e: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match e {
        LibraryError::OpenError { err, .. } => LoadError::Open {
            path,
            reason: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin { path },
        LibraryError::InvalidAbiHeader(h) => LoadError::AbiMismatch {
            path,
            reason: format!("abi_stable header {h:?}"),
        },
        LibraryError::InvalidCAbi { expected, found } => LoadError::AbiMismatch {
            path,
            reason: format!("C ABI self-test expected {expected}, found {found}"),
        },
        LibraryError::ParseVersionError(err) => LoadError::IncompatibleVersion {
            path,
            expected: API_VERSION.to_string(),
            found: format!("an unreadable version ({err})"),
        },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::IncompatibleVersion {
            path,
            expected: expected_version.to_string(),
            found: actual_version.to_string(),
        },
        LibraryError::AbiInstability(detail) => {
            let mut detail = summarize_layout_error(&detail.to_string());
            if detail.len() > 400 {
                let cut = (0..=400)
                    .rev()
                    .find(|i| detail.is_char_boundary(*i))
                    .unwrap_or(0);
                detail.truncate(cut);
                detail.push_str(" …");
            }
            LoadError::LayoutMismatch {
                path,
                expected: API_VERSION.to_string(),
                detail,
            }
        }
        LibraryError::RootModule { err, .. } => LoadError::InitFailed {
            path,
            error: match err {
                RootModuleError::Unwound => CallError::new(
                    ErrorKind::Panicked,
                    "the library's root module constructor panicked",
                ),
                RootModuleError::Returned(e) => CallError::new(ErrorKind::Failed, e.to_string()),
            },
        },
        LibraryError::Many(mut errors) => match errors.pop() {
            Some(e) => classify(&path, e),
            None => LoadError::NotAPlugin { path },
        },
    }
}

/// abi_stable's layout report is a long tree of both layouts; what an operator needs
/// is where the difference is and what it is: "in PluginLib.new_pollster: unexpected
/// field (expected __returns: RResult, found param_2: u64)".
fn summarize_layout_error(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // The path: the field names listed under the last non-empty "N error(s)inside:".
    let mut path = Vec::new();
    if let Some(start) = lines
        .iter()
        .rposition(|l| l.ends_with("error(s)inside:") && !l.starts_with("0 "))
    {
        for l in &lines[start + 1..] {
            if l.starts_with("Layout of") || l.starts_with("Error:") {
                break;
            }
            if let Some(name) = l.strip_prefix("field_name:") {
                if name != "0" {
                    path.push(name.to_string());
                }
            } else if let Some(ty) = l.strip_prefix("type:") {
                if path.is_empty() {
                    path.push(ty.to_string());
                }
            }
        }
    }
    // Each error, with the field name and type on both sides.
    let mut errors = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(what) = lines[i].strip_prefix("Error:") {
            let side = |label: &str, from: usize| -> String {
                let Some(at) = lines[from..].iter().position(|l| *l == label) else {
                    return "?".to_string();
                };
                let block = &lines[from + at + 1..];
                let get = |prefix: &str| {
                    block
                        .iter()
                        .take(4)
                        .find_map(|l| l.strip_prefix(prefix))
                        .unwrap_or("?")
                };
                format!(
                    "{}: {}",
                    get("field_name:").trim_end_matches(','),
                    get("type:")
                )
            };
            errors.push(format!(
                "{what} (expected {}, found {})",
                side("Expected:", i),
                side("Found:", i)
            ));
        }
        i += 1;
    }
    if errors.is_empty() {
        return report.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    let mut out = String::new();
    if !path.is_empty() {
        out.push_str("in ");
        out.push_str(&path.join("."));
        out.push_str(": ");
    }
    out.push_str(&errors.join("; "));
    out
}

fn host_api() -> HostApi {
    HostApi {
        log: host_log,
        log_enabled: host_log_enabled,
        max_level: log::max_level() as usize as u8,
    }
}

fn level_from_u8(level: u8) -> log::Level {
    match level {
        0 | 1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        _ => log::Level::Trace,
    }
}

extern "C" fn host_log(record: &LogRecord<'_>) {
    let module_path = Some(record.module_path.as_str()).filter(|s| !s.is_empty());
    let file = Some(record.file.as_str()).filter(|s| !s.is_empty());
    log::logger().log(
        &log::Record::builder()
            .level(level_from_u8(record.level))
            .target(record.target.as_str())
            .module_path(module_path)
            .file(file)
            .line(Some(record.line).filter(|l| *l != 0))
            .args(format_args!("{}", record.message.as_str()))
            .build(),
    );
}

extern "C" fn host_log_enabled(level: u8, target: RStr<'_>) -> bool {
    log::logger().enabled(
        &log::Metadata::builder()
            .level(level_from_u8(level))
            .target(target.as_str())
            .build(),
    )
}

/// What one `get_samples` call produced: samples collected before any error are kept.
#[derive(Debug)]
pub struct PollResult {
    pub samples: Samples,
    pub error: Option<CallError>,
}

/// The samples of one call, left in the buffer the plugin filled: a `Vec` made in the
/// host could not adopt a buffer allocated by the library, and would copy every sample.
/// Reads as a slice; iterating by value moves the samples out.
#[derive(Debug, Default)]
pub struct Samples(RVec<Sample>);

impl std::ops::Deref for Samples {
    type Target = [Sample];
    fn deref(&self) -> &[Sample] {
        &self.0
    }
}

impl IntoIterator for Samples {
    type Item = Sample;
    type IntoIter = SamplesIntoIter;
    fn into_iter(self) -> SamplesIntoIter {
        SamplesIntoIter(self.0.into_iter())
    }
}

impl<'a> IntoIterator for &'a Samples {
    type Item = &'a Sample;
    type IntoIter = std::slice::Iter<'a, Sample>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Samples> for Vec<Sample> {
    fn from(s: Samples) -> Vec<Sample> {
        s.0.into_vec()
    }
}

impl From<Vec<Sample>> for Samples {
    fn from(v: Vec<Sample>) -> Samples {
        Samples(v.into())
    }
}

/// The by-value iterator of [`Samples`].
pub struct SamplesIntoIter(abi_stable::std_types::vec::IntoIter<Sample>);

impl Iterator for SamplesIntoIter {
    type Item = Sample;
    fn next(&mut self) -> Option<Sample> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for SamplesIntoIter {}

/// A constructed pollster, callable from any thread.
pub struct PollsterHandle {
    obj: PollsterBox,
    scope: Arc<str>,
}

impl fmt::Debug for PollsterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PollsterHandle({})", self.scope)
    }
}

impl PollsterHandle {
    /// Wrap an in-process pollster, through the same boundary code as a loaded one
    /// (for tests and `make_test_instance`-style managers).
    pub fn from_local<P: Pollster>(pollster: P) -> PollsterHandle {
        PollsterHandle {
            obj: crate::export::pollster_box(pollster),
            scope: Arc::from("<in-process>"),
        }
    }

    pub fn default_discovery(&self) -> Option<String> {
        self.obj.default_discovery().into_option().map(Into::into)
    }

    /// [`crate::Pollster::per_resource`]: the host may call it on slices of the list.
    pub fn per_resource(&self) -> bool {
        self.obj.per_resource()
    }

    pub fn get_samples(&self, ctx: &CallContext, resources: &[Resource]) -> PollResult {
        let scoped = Scoped {
            ctx,
            scope: &self.scope,
        };
        let outcome = self.obj.get_samples(
            FfiHostContext_TO::from_ptr(&scoped, TD_Opaque),
            resources.into(),
        );
        PollResult {
            samples: Samples(outcome.samples),
            error: outcome.error.into_option(),
        }
    }
}

/// What one `discover` call produced.
#[derive(Debug)]
pub struct DiscoverResult {
    pub resources: Vec<Resource>,
    pub error: Option<CallError>,
}

/// A constructed discovery, callable from any thread.
pub struct DiscoveryHandle {
    obj: DiscoveryBox,
    scope: Arc<str>,
}

impl fmt::Debug for DiscoveryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DiscoveryHandle({})", self.scope)
    }
}

impl DiscoveryHandle {
    /// Wrap an in-process discovery, through the same boundary code as a loaded one.
    pub fn from_local<D: Discovery>(discovery: D) -> DiscoveryHandle {
        DiscoveryHandle {
            obj: crate::export::discovery_box(discovery),
            scope: Arc::from("<in-process>"),
        }
    }

    pub fn group_id(&self) -> Option<String> {
        self.obj.group_id().into_option().map(Into::into)
    }

    pub fn discover(&self, ctx: &CallContext, param: Option<&str>) -> DiscoverResult {
        let scoped = Scoped {
            ctx,
            scope: &self.scope,
        };
        let param: ROption<RStr<'_>> = param.map(RStr::from).into();
        let outcome = self
            .obj
            .discover(FfiHostContext_TO::from_ptr(&scoped, TD_Opaque), param);
        DiscoverResult {
            resources: outcome.resources.into_vec(),
            error: outcome.error.into_option(),
        }
    }
}

type Slot = Arc<Mutex<Option<CacheItem>>>;

/// The per-cycle pollster cache (Ceilometer's `cache` dict), shared by every call of
/// one cycle and dropped with it. Keys are scoped per library, so libraries never see
/// each other's entries. A key's computation runs once even when pollsters run in
/// parallel: concurrent callers wait for it.
#[derive(Default)]
pub struct CycleCache {
    /// Scope (the calling library) → key → slot: two levels, so that a lookup of a
    /// computed key borrows both strings and allocates nothing.
    slots: Mutex<HashMap<String, HashMap<String, Slot>>>,
}

impl CycleCache {
    pub fn new() -> CycleCache {
        CycleCache::default()
    }

    /// Number of keys computed so far (for tests and debug logs).
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flat_map(HashMap::values)
            .filter(|s| s.lock().map(|v| v.is_some()).unwrap_or(false))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_or_init(
        &self,
        scope: &str,
        key: &str,
        init: FfiCacheInit_TO<'_, abi_stable::RMut<'_, ()>>,
    ) -> RResult<CacheItem, CallError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let keys = match slots.get_mut(scope) {
                Some(keys) => keys,
                None => slots.entry(scope.to_owned()).or_default(),
            };
            match keys.get(key) {
                Some(slot) => slot.clone(),
                None => keys.entry(key.to_owned()).or_default().clone(),
            }
        };
        // Holding the slot lock while computing makes parallel callers of the same
        // key wait for one computation instead of repeating it.
        let mut value = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(item) = value.as_ref() {
            return RResult::ROk(item.clone());
        }
        let mut init = init;
        match init.init() {
            RResult::ROk(item) => {
                *value = Some(item.clone());
                RResult::ROk(item)
            }
            RResult::RErr(e) => RResult::RErr(e),
        }
    }
}

/// The host's side of one plugin call: the cycle's cache and a cancellation flag the
/// host sets when it gives up on the call.
#[derive(Clone, Default)]
pub struct CallContext {
    cache: Arc<CycleCache>,
    cancelled: Arc<AtomicBool>,
}

impl CallContext {
    pub fn new(cache: Arc<CycleCache>, cancelled: Arc<AtomicBool>) -> CallContext {
        CallContext { cache, cancelled }
    }
    pub fn cache(&self) -> &Arc<CycleCache> {
        &self.cache
    }
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

struct Scoped<'a> {
    ctx: &'a CallContext,
    scope: &'a str,
}

impl FfiHostContext for Scoped<'_> {
    fn is_cancelled(&self) -> bool {
        self.ctx.is_cancelled()
    }

    fn cache_get_or_init(
        &self,
        key: RStr<'_>,
        init: FfiCacheInit_TO<'_, abi_stable::RMut<'_, ()>>,
    ) -> RResult<CacheItem, CallError> {
        self.ctx.cache.get_or_init(self.scope, key.as_str(), init)
    }
}

/// Ask the CPU to start loading the cache lines of `len` bytes at `p`, for data about to
/// be read (a hint: it never faults, whatever the address; a no-op off x86-64).
pub fn prefetch(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..len).step_by(64) {
        // SAFETY: a prefetch is only a hint and never faults, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                p.wrapping_add(off).cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}
