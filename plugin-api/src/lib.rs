//! longshore's plugin API: the only crate a plugin author depends on, and the only
//! crate that knows the plugin ABI (abi_stable stays behind it).
//!
//! A plugin author implements [`Pollster`] (and/or [`Discovery`]) in plain Rust,
//! registers them by name in a function, and calls [`export_plugin_library!`] once:
//!
//! ```ignore
//! use longshore_plugin_api::*;
//!
//! struct Answer;
//!
//! impl Pollster for Answer {
//!     fn get_samples(&self, _ctx: &PollContext<'_>, resources: &[Resource], out: &mut Vec<Sample>)
//!         -> Result<(), PollError> {
//!         for r in resources {
//!             out.push(Sample::from_resource(r, "answer", SampleType::Gauge, "", 42));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! fn register(plugins: &mut PluginRegistry) {
//!     plugins.pollster("answer", "Always 42", |_config| Ok(Answer));
//! }
//!
//! export_plugin_library!(register);
//! ```
//!
//! The host side ([`host`]) opens libraries, constructs plugins and calls them.
//!
//! Invariants this crate upholds (each has a test in the workspace):
//! - no panic crosses the boundary: every call into a plugin runs under
//!   `catch_unwind` inside the plugin and a panic comes back as an error value;
//! - a plugin's `log` records reach the host's logger, with the plugin's target;
//! - a library built against an incompatible plugin-api (version or type layout) is
//!   refused at load time with a `LoadError`, never called;
//! - libraries are never unloaded.

pub mod config;
pub mod error;
mod export;
#[doc(hidden)]
#[allow(non_local_definitions, improper_ctypes_definitions)]
pub mod ffi;
pub mod host;
mod plugin;
pub mod sample;
#[doc(hidden)]
pub mod text;
pub mod value;

pub use config::{Config, OptionKind, OptionSpec};
pub use error::{CallError, ErrorKind, PluginError, PollError};
pub use ffi::PluginKind;
pub use plugin::{Discovery, PluginRegistry, PollContext, Pollster};
pub use sample::{Resource, ResourceBuilder, Sample, SampleType};
pub use value::{HostData, HostSlot, Map, SharedEntries, Value, ValueRef};

/// Re-exports for the code `export_plugin_library!` generates. Not API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{root_module, ROOT_MODULE_SYMBOL};
    pub use crate::ffi::PluginLibRef;
    pub use abi_stable::library::{
        __call_root_module_loader as call_root_module_loader, CheckTypeLayout, LibHeader,
        RootModuleResult,
    };
}
