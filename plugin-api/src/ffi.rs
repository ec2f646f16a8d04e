//! The binary interface itself: the root module every plugin library exports, the
//! trait objects for pollsters and discoveries, and the services the host hands in.
//! Nothing here is for plugin authors; the layout of everything reachable from
//! `PluginLib` is checked by abi_stable when a library is loaded.

use abi_stable::erased_types::DynTrait;
use abi_stable::library::RootModule;
use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, package_version_strings, StableAbi};
use abi_stable::{sabi_types::VersionStrings, RMut, RRef};

use crate::config::{Config, OptionSpec};
use crate::error::CallError;
use crate::sample::{Resource, Sample};

/// The root module of a plugin library: one per `.so`, under abi_stable's fixed symbol.
///
/// Fields may only be appended (prefix type); the last field of the first version is
/// marked and never moves.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginLibRef)))]
#[sabi(missing_field(panic))]
pub struct PluginLib {
    /// Called once after loading: hands over the host's services, returns what the
    /// library provides.
    pub init: extern "C" fn(host: HostApi) -> RResult<LibraryInfo, CallError>,
    /// Construct the named pollster with the host configuration.
    pub new_pollster:
        extern "C" fn(name: RStr<'_>, config: &Config) -> RResult<PollsterBox, CallError>,
    /// Construct the named discovery with the host configuration.
    #[sabi(last_prefix_field)]
    pub new_discovery:
        extern "C" fn(name: RStr<'_>, config: &Config) -> RResult<DiscoveryBox, CallError>,
}

impl RootModule for PluginLibRef {
    declare_root_module_statics! {PluginLibRef}
    const BASE_NAME: &'static str = "longshore_plugin";
    const NAME: &'static str = "longshore plugin";
    // The plugin-api crate's version: a plugin built against an incompatible
    // plugin-api is refused at load time.
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The host's services for a library.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HostApi {
    /// Forward one log record to the host's logger.
    pub log: extern "C" fn(record: &LogRecord<'_>),
    /// Whether the host would keep a record of this level and target.
    pub log_enabled: extern "C" fn(level: u8, target: RStr<'_>) -> bool,
    /// The host's maximum log level (0 = off, 1 = error ... 5 = trace).
    pub max_level: u8,
}

/// A `log::Record` in stable form.
#[repr(C)]
#[derive(StableAbi)]
pub struct LogRecord<'a> {
    pub level: u8,
    pub target: RStr<'a>,
    pub message: RStr<'a>,
    pub module_path: RStr<'a>,
    pub file: RStr<'a>,
    pub line: u32,
}

/// What a library provides.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct LibraryInfo {
    pub crate_name: RString,
    pub crate_version: RString,
    pub plugins: RVec<PluginInfo>,
    pub options: RVec<OptionSpec>,
}

/// A plugin inside a library.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct PluginInfo {
    pub name: RString,
    pub kind: PluginKind,
    pub description: RString,
}

/// The kinds of plugin a library can provide.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PluginKind {
    Pollster,
    Discovery,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Pollster => "pollster",
            PluginKind::Discovery => "discovery",
        }
    }
}

/// Result of one `get_samples` call: the samples collected, and the error that ended
/// the call early if any. Samples produced before an error or panic are kept.
#[repr(C)]
#[derive(StableAbi)]
pub struct PollOutcome {
    pub samples: RVec<Sample>,
    pub error: ROption<CallError>,
}

/// Result of one `discover` call.
#[repr(C)]
#[derive(StableAbi)]
pub struct DiscoverOutcome {
    pub resources: RVec<Resource>,
    pub error: ROption<CallError>,
}

/// A pollster object living in a plugin library.
#[sabi_trait]
pub trait FfiPollster: Send + Sync {
    fn default_discovery(&self) -> ROption<RString>;

    fn per_resource(&self) -> bool;

    #[sabi(last_prefix_field)]
    fn get_samples(&self, ctx: FfiContext<'_>, resources: RSlice<'_, Resource>) -> PollOutcome;
}

/// A discovery object living in a plugin library.
#[sabi_trait]
pub trait FfiDiscovery: Send + Sync {
    fn group_id(&self) -> ROption<RString>;

    #[sabi(last_prefix_field)]
    fn discover(&self, ctx: FfiContext<'_>, param: ROption<RStr<'_>>) -> DiscoverOutcome;
}

pub type PollsterBox = FfiPollster_TO<'static, RBox<()>>;
pub type DiscoveryBox = FfiDiscovery_TO<'static, RBox<()>>;

/// The host's per-call services, implemented by the host.
#[sabi_trait]
pub trait FfiHostContext: Send + Sync {
    /// The host gave up on this call (timeout, shutdown): stop early.
    fn is_cancelled(&self) -> bool;

    /// The per-cycle cache: return the item under `key`, computing it with `init` if
    /// absent. `init` runs at most once per key per cycle while it succeeds.
    #[sabi(last_prefix_field)]
    fn cache_get_or_init(
        &self,
        key: RStr<'_>,
        init: FfiCacheInit_TO<'_, RMut<'_, ()>>,
    ) -> RResult<CacheItem, CallError>;
}

pub type FfiContext<'a> = FfiHostContext_TO<'a, RRef<'a, ()>>;

/// The computation behind a cache miss, implemented by the plugin.
#[sabi_trait]
pub trait FfiCacheInit {
    #[sabi(last_prefix_field)]
    fn init(&mut self) -> RResult<CacheItem, CallError>;
}

/// An opaque cached value: only the library that made it can read it back
/// (abi_stable checks the type and the library on downcast).
pub type CacheItem = DynTrait<'static, RBox<()>, CacheItemInterface>;

#[repr(C)]
#[derive(StableAbi)]
#[sabi(impl_InterfaceType(Send, Sync, Clone))]
pub struct CacheItemInterface;
