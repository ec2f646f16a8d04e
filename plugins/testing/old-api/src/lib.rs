//! A deliberately broken plugin: the root module of longshore-plugin-api, declared
//! with version 0.0.1, as a plugin built against an old plugin-api would carry.
//! abi_stable's 0.x rule refuses a library whose minor version is lower than the
//! host's (host 0.3 > library 0.0), so the host must report an incompatible version.

#![allow(non_local_definitions)]

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, export_root_module, StableAbi};
use longshore_plugin_api::ffi::{DiscoveryBox, HostApi, LibraryInfo, PollsterBox};
use longshore_plugin_api::{CallError, Config, ErrorKind};

/// The version this library claims to be built against.
pub const CLAIMED_API_VERSION: &str = "0.0.1";

/// plugin-api's `PluginLib`, unchanged.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginLibRef)))]
#[sabi(missing_field(panic))]
pub struct PluginLib {
    pub init: extern "C" fn(host: HostApi) -> RResult<LibraryInfo, CallError>,
    pub new_pollster:
        extern "C" fn(name: RStr<'_>, config: &Config) -> RResult<PollsterBox, CallError>,
    #[sabi(last_prefix_field)]
    pub new_discovery:
        extern "C" fn(name: RStr<'_>, config: &Config) -> RResult<DiscoveryBox, CallError>,
}

impl RootModule for PluginLibRef {
    declare_root_module_statics! {PluginLibRef}
    const BASE_NAME: &'static str = "longshore_plugin";
    const NAME: &'static str = "longshore plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(CLAIMED_API_VERSION);
}

extern "C" fn init(_host: HostApi) -> RResult<LibraryInfo, CallError> {
    RResult::ROk(LibraryInfo {
        crate_name: RString::from("longshore-plugin-old-api"),
        crate_version: RString::from(env!("CARGO_PKG_VERSION")),
        plugins: RVec::new(),
        options: RVec::new(),
    })
}

fn refuse() -> CallError {
    CallError::new(ErrorKind::Failed, "old-api must never be called")
}

extern "C" fn new_pollster(_: RStr<'_>, _: &Config) -> RResult<PollsterBox, CallError> {
    RResult::RErr(refuse())
}

extern "C" fn new_discovery(_: RStr<'_>, _: &Config) -> RResult<DiscoveryBox, CallError> {
    RResult::RErr(refuse())
}

#[export_root_module]
pub fn root_module() -> PluginLibRef {
    PluginLib {
        init,
        new_pollster,
        new_discovery,
    }
    .leak_into_prefix()
}
