//! A deliberately broken plugin: it exports a root module under abi_stable's symbol,
//! with the same name and version as longshore-plugin-api's, but a different layout
//! (`new_pollster` takes an extra argument). The host must refuse it with a layout
//! mismatch instead of calling through a wrong function signature.

#![allow(non_local_definitions)]

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, export_root_module, StableAbi};
use longshore_plugin_api::ffi::{DiscoveryBox, HostApi, LibraryInfo, PollsterBox};
use longshore_plugin_api::{CallError, Config, ErrorKind};

/// plugin-api's `PluginLib`, with `new_pollster` changed in the middle.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginLibRef)))]
#[sabi(missing_field(panic))]
pub struct PluginLib {
    pub init: extern "C" fn(host: HostApi) -> RResult<LibraryInfo, CallError>,
    /// The incompatible change: an extra argument.
    pub new_pollster: extern "C" fn(
        name: RStr<'_>,
        config: &Config,
        generation: u64,
    ) -> RResult<PollsterBox, CallError>,
    #[sabi(last_prefix_field)]
    pub new_discovery:
        extern "C" fn(name: RStr<'_>, config: &Config) -> RResult<DiscoveryBox, CallError>,
}

impl RootModule for PluginLibRef {
    declare_root_module_statics! {PluginLibRef}
    const BASE_NAME: &'static str = "longshore_plugin";
    const NAME: &'static str = "longshore plugin";
    // The host's own version: only the layout differs.
    const VERSION_STRINGS: VersionStrings =
        VersionStrings::new(longshore_plugin_api::host::API_VERSION);
}

extern "C" fn init(_host: HostApi) -> RResult<LibraryInfo, CallError> {
    RResult::ROk(LibraryInfo {
        crate_name: RString::from("longshore-plugin-bad-abi"),
        crate_version: RString::from(env!("CARGO_PKG_VERSION")),
        plugins: RVec::new(),
        options: RVec::new(),
    })
}

fn refuse() -> CallError {
    CallError::new(ErrorKind::Failed, "bad-abi must never be called")
}

extern "C" fn new_pollster(_: RStr<'_>, _: &Config, _: u64) -> RResult<PollsterBox, CallError> {
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
