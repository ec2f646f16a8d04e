//! longshore's plugin host: entry_points.toml, plugin loading and stevedore's
//! extension managers, over the stable ABI of `longshore-plugin-api`.
//!
//! - [`Registry`] parses entry_points.toml (`[namespace] name = "library:plugin"`)
//!   and resolves libraries in the plugin directories;
//! - [`libraries`] opens each library file once per process, never unloads it;
//! - [`security`] refuses plugin files others could have written;
//! - the managers load entry points with stevedore's semantics: every failure is
//!   reported (entry point, library, cause, what to do) and skipped while the rest
//!   load, unless strict: [`ExtensionManager`], [`NamedExtensionManager`],
//!   [`EnabledExtensionManager`], [`DispatchExtensionManager`],
//!   [`NameDispatchExtensionManager`], [`HookManager`], [`DriverManager`];
//! - [`PluginSet`] is what the polling agent loads for its namespace groups.
//!
//! ```no_run
//! use longshore_extension::{ExtensionManager, Options, Registry};
//! use longshore_plugin_api::{host::PollsterHandle, Config};
//!
//! let registry = Registry::load("entry_points.toml".as_ref())?;
//! let pollsters = ExtensionManager::<PollsterHandle>::new(
//!     &registry,
//!     "ceilometer.poll.compute",
//!     Options::new().invoke_on_load(Config::new()),
//! )?;
//! println!("{:?}", pollsters.names());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dispatch;
mod driver;
mod elf;
mod enabled;
mod entry_points;
mod error;
mod extension;
mod hook;
pub mod libraries;
mod manager;
mod named;
mod plugin_set;
mod report;
pub mod security;

pub use dispatch::{DispatchExtensionManager, NameDispatchExtensionManager};
pub use driver::{Driver, DriverManager};
pub use enabled::EnabledExtensionManager;
pub use entry_points::{EntryPoint, EntryPointsError, LibraryNotFound, Location, Registry};
pub use error::{LoadCause, LoadFailure, ManagerError, MapError};
pub use extension::{Extension, Factory, PluginHandle};
pub use hook::HookManager;
pub use manager::{
    error_on_conflict, ignore_conflicts, ConflictResolver, ExtensionManager, LoadFailureCallback,
    MissingCallback, Options, ResolveFn,
};
pub use named::NamedExtensionManager;
pub use plugin_set::{
    discovery_namespace, load_namespace, namespace_kind, pollster_namespace, preload_libraries,
    LoadSettings, LoadedPlugin, PluginSet, Preloaded, NAMESPACE_PROJECT,
};
pub use report::{EntryReport, EntryStatus, LoadReport};
pub use security::InsecurePlugin;

#[cfg(test)]
mod manager_tests;
