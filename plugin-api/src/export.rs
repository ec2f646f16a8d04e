//! The plugin side of the boundary: what `export_plugin_library!` expands to. Every
//! call into a plugin runs inside `guard`, so no panic ever reaches abi_stable's
//! abort-on-unwind shims (which would exit the host); the plugin's `log` records are
//! forwarded to the host's logger.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Once, OnceLock};

use abi_stable::erased_types::TD_Opaque;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};

use crate::config::Config;
use crate::error::{CallError, ErrorKind};
use crate::ffi::{
    DiscoverOutcome, DiscoveryBox, FfiContext, FfiDiscovery, FfiDiscovery_TO, FfiPollster,
    FfiPollster_TO, HostApi, LibraryInfo, LogRecord, PluginInfo, PluginLib, PluginLibRef,
    PollOutcome, PollsterBox,
};
use crate::plugin::{Ctor, Discovery, PluginRegistry, PollContext, Pollster};
use crate::sample::Resource;

/// abi_stable's fixed symbol for a library's root module (abi_stable 0.11). The
/// export macro cannot use abi_stable's own attribute without plugin crates depending
/// on abi_stable, so the name is spelled here and checked by a test.
#[doc(hidden)]
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

thread_local! {
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Run `f`, turning a panic into a `Panicked` error carrying the message and location.
pub(crate) fn guard<R>(f: impl FnOnce() -> R) -> Result<R, CallError> {
    GUARD_DEPTH.with(|d| d.set(d.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARD_DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|payload| {
        let message = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| panic_payload_message(payload.as_ref()));
        CallError::new(ErrorKind::Panicked, message)
    })
}

fn panic_payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Inside a loaded library, panics inside `guard` are recorded for the error value
/// instead of printed; panics elsewhere (threads the plugin spawned) go to the log.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = panic_payload_message(info.payload());
        let message = match info.location() {
            Some(loc) => format!("{message} (at {}:{})", loc.file(), loc.line()),
            None => message,
        };
        if GUARD_DEPTH.with(Cell::get) > 0 {
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
        } else {
            log::error!(target: "longshore::plugin", "panic outside a plugin call: {message}");
        }
    }));
}

struct HostLogger(HostApi);

fn level_to_u8(level: log::Level) -> u8 {
    level as usize as u8
}

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        (self.0.log_enabled)(level_to_u8(metadata.level()), metadata.target().into())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        (self.0.log)(&LogRecord {
            level: level_to_u8(record.level()),
            target: record.target().into(),
            message: message.as_str().into(),
            module_path: record.module_path().unwrap_or("").into(),
            file: record.file().unwrap_or("").into(),
            line: record.line().unwrap_or(0),
        });
    }

    fn flush(&self) {}
}

fn max_level_from_u8(level: u8) -> log::LevelFilter {
    match level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

struct Identity {
    register: fn(&mut PluginRegistry),
    crate_name: &'static str,
    crate_version: &'static str,
}

static IDENTITY: OnceLock<Identity> = OnceLock::new();
static REGISTRY: OnceLock<Result<PluginRegistry, CallError>> = OnceLock::new();

fn registry() -> Result<&'static PluginRegistry, CallError> {
    let identity = IDENTITY.get().ok_or_else(|| {
        CallError::new(
            ErrorKind::Failed,
            "plugin library used before its root module was loaded",
        )
    })?;
    REGISTRY
        .get_or_init(|| {
            guard(|| {
                let mut registry = PluginRegistry::default();
                (identity.register)(&mut registry);
                registry
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

extern "C" fn ffi_init(host: HostApi) -> RResult<LibraryInfo, CallError> {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        install_panic_hook();
        // Each cdylib has its own `log` statics: without this its records vanish.
        if log::set_boxed_logger(Box::new(HostLogger(host))).is_ok() {
            log::set_max_level(max_level_from_u8(host.max_level));
        }
    });
    let identity = IDENTITY.get();
    match registry() {
        Ok(registry) => RResult::ROk(LibraryInfo {
            crate_name: identity.map_or("", |i| i.crate_name).into(),
            crate_version: identity.map_or("", |i| i.crate_version).into(),
            plugins: registry
                .entries
                .iter()
                .map(|e| PluginInfo {
                    name: e.name.as_str().into(),
                    kind: e.kind(),
                    description: e.description.as_str().into(),
                })
                .collect(),
            options: registry.options.iter().cloned().collect(),
        }),
        Err(e) => RResult::RErr(e),
    }
}

fn construct<T>(
    name: RStr<'_>,
    pick: impl FnOnce(&Ctor) -> Option<Result<T, crate::error::PluginError>>,
) -> RResult<T, CallError> {
    let registry = match registry() {
        Ok(r) => r,
        Err(e) => return RResult::RErr(e),
    };
    let Some(entry) = registry.entries.iter().find(|e| e.name == name.as_str()) else {
        return RResult::RErr(CallError::new(
            ErrorKind::Failed,
            format!("this library provides no plugin named {:?}", name.as_str()),
        ));
    };
    match guard(|| pick(&entry.ctor)) {
        Ok(Some(Ok(obj))) => RResult::ROk(obj),
        Ok(Some(Err(e))) => RResult::RErr(e.into()),
        Ok(None) => RResult::RErr(CallError::new(
            ErrorKind::Failed,
            format!(
                "plugin {:?} is a {}, not the kind requested",
                name.as_str(),
                entry.kind().as_str()
            ),
        )),
        Err(panic) => RResult::RErr(panic),
    }
}

extern "C" fn ffi_new_pollster(name: RStr<'_>, config: &Config) -> RResult<PollsterBox, CallError> {
    construct(name, |ctor| match ctor {
        Ctor::Pollster(f) => Some(f(config)),
        Ctor::Discovery(_) => None,
    })
}

extern "C" fn ffi_new_discovery(
    name: RStr<'_>,
    config: &Config,
) -> RResult<DiscoveryBox, CallError> {
    construct(name, |ctor| match ctor {
        Ctor::Discovery(f) => Some(f(config)),
        Ctor::Pollster(_) => None,
    })
}

/// Called by the code `export_plugin_library!` generates.
#[doc(hidden)]
pub fn root_module(
    register: fn(&mut PluginRegistry),
    crate_name: &'static str,
    crate_version: &'static str,
) -> PluginLibRef {
    let _ = IDENTITY.set(Identity {
        register,
        crate_name,
        crate_version,
    });
    PluginLib {
        init: ffi_init,
        new_pollster: ffi_new_pollster,
        new_discovery: ffi_new_discovery,
    }
    .leak_into_prefix()
}

struct PollsterAdapter<P>(P);

impl<P: Pollster> FfiPollster for PollsterAdapter<P> {
    fn default_discovery(&self) -> ROption<RString> {
        match guard(|| self.0.default_discovery()) {
            Ok(d) => d.map(RString::from).into(),
            Err(panic) => {
                log::error!(target: "longshore::plugin", "default_discovery: {panic}");
                ROption::RNone
            }
        }
    }

    fn per_resource(&self) -> bool {
        guard(|| self.0.per_resource()).unwrap_or_else(|panic| {
            log::error!(target: "longshore::plugin", "per_resource: {panic}");
            false
        })
    }

    fn get_samples(&self, ctx: FfiContext<'_>, resources: RSlice<'_, Resource>) -> PollOutcome {
        let ctx = PollContext::new(ctx);
        // Most pollsters make at least one sample per resource: growing from empty would
        // copy every sample once more (a sample is ~440 bytes). Capped, so that a call
        // on thousands of resources that makes few samples does not reserve megabytes;
        // the host's slices (~150 resources) fit.
        let mut out = Vec::with_capacity(resources.len().min(256));
        let error = match guard(|| self.0.get_samples(&ctx, resources.as_slice(), &mut out)) {
            Ok(Ok(())) => ROption::RNone,
            Ok(Err(e)) => ROption::RSome(e.into()),
            Err(panic) => ROption::RSome(panic),
        };
        PollOutcome {
            samples: RVec::from(out),
            error,
        }
    }
}

struct DiscoveryAdapter<D>(D);

impl<D: Discovery> FfiDiscovery for DiscoveryAdapter<D> {
    fn group_id(&self) -> ROption<RString> {
        match guard(|| self.0.group_id()) {
            Ok(g) => g.map(RString::from).into(),
            Err(panic) => {
                log::error!(target: "longshore::plugin", "group_id: {panic}");
                ROption::RNone
            }
        }
    }

    fn discover(&self, ctx: FfiContext<'_>, param: ROption<RStr<'_>>) -> DiscoverOutcome {
        let ctx = PollContext::new(ctx);
        let param = param.map(|p| p.as_str()).into_option();
        match guard(|| self.0.discover(&ctx, param)) {
            Ok(Ok(resources)) => DiscoverOutcome {
                resources: RVec::from(resources),
                error: ROption::RNone,
            },
            Ok(Err(e)) => DiscoverOutcome {
                resources: RVec::new(),
                error: ROption::RSome(e.into()),
            },
            Err(panic) => DiscoverOutcome {
                resources: RVec::new(),
                error: ROption::RSome(panic),
            },
        }
    }
}

pub(crate) fn pollster_box<P: Pollster>(p: P) -> PollsterBox {
    FfiPollster_TO::from_value(PollsterAdapter(p), TD_Opaque)
}

pub(crate) fn discovery_box<D: Discovery>(d: D) -> DiscoveryBox {
    FfiDiscovery_TO::from_value(DiscoveryAdapter(d), TD_Opaque)
}

/// Export this crate's plugins. Call it once, at the crate root of a `cdylib`, with a
/// function that registers every plugin the library provides:
///
/// ```ignore
/// use longshore_plugin_api::{export_plugin_library, PluginRegistry};
///
/// fn register(plugins: &mut PluginRegistry) {
///     plugins.pollster("memory.util", "Memory in use, percent", MemoryUtil::new);
/// }
///
/// export_plugin_library!(register);
/// ```
#[macro_export]
macro_rules! export_plugin_library {
    ($register:path) => {
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __LONGSHORE_LIB_HEADER: $crate::__private::LibHeader = {
            fn __longshore_root_module() -> $crate::__private::PluginLibRef {
                $crate::__private::root_module(
                    $register,
                    env!("CARGO_PKG_NAME"),
                    env!("CARGO_PKG_VERSION"),
                )
            }
            extern "C" fn __longshore_erased_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::call_root_module_loader(__longshore_root_module)
            }
            // SAFETY: the constructor returns the erased prefix reference of a
            // `PluginLibRef`, as `from_constructor` requires.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::__private::PluginLibRef>(
                    __longshore_erased_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
