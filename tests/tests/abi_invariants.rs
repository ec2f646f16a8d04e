//! The four ABI invariants of the plugin host, each with real libraries:
//! 1. a panic in any plugin call (constructor, discover, get_samples, …) becomes an
//!    error value and the host keeps running;
//! 2. plugins' `log` records reach the host's logger with the plugin's target;
//! 3. a library built against an incompatible plugin-api (version or layout) is
//!    refused with a clear error;
//! 4. a library named by many entry points is opened once and never unloaded.

mod extension_fixture;

use std::sync::{Arc, Mutex, Once};

use extension_fixture::Fixture;
use longshore_extension::*;
use longshore_plugin_api::host::{CallContext, DiscoveryHandle, LoadError, PollsterHandle};
use longshore_plugin_api::{
    Config, Discovery, ErrorKind, PollContext, PollError, Pollster, Resource, Sample,
};

/// Every record the host's logger received, from any thread.
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        RECORDS
            .lock()
            .unwrap()
            .push((r.level(), r.target().to_string(), r.args().to_string()));
    }
    fn flush(&self) {}
}

/// Must run before any library is loaded: a library reads the host's level at init.
fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_boxed_logger(Box::new(Capture)).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

fn records_with_target(target: &str) -> Vec<(log::Level, String)> {
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t, _)| t == target)
        .map(|(l, _, m)| (*l, m.clone()))
        .collect()
}

#[test]
fn panics_in_plugin_calls_become_error_values() {
    install_logger();
    let f = Fixture::new();
    let r = f.registry("[abi.poll.x]\nctor_panic = \"t:ctor_panic\"\npanic = \"t:panic\"\n");
    let m = ExtensionManager::<PollsterHandle>::new(
        &r,
        "abi.poll.x",
        Options::new()
            .invoke_on_load(Config::new())
            .on_load_failure(|_, _, _| Ok(())),
    )
    .unwrap();

    // Constructor.
    let failure = m.report().failures().next().expect("ctor_panic fails");
    let LoadCause::ConstructorPanicked(err) = failure.cause() else {
        panic!("expected a constructor panic, got {failure}")
    };
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(
        err.message()
            .contains("ctor_panic panics in its constructor"),
        "{err}"
    );

    // get_samples, several times: the host is still here to call again.
    let pollster = m.get("panic").unwrap().obj().unwrap();
    for _ in 0..3 {
        let out = pollster.get_samples(&CallContext::default(), &[Resource::new("vm-0")]);
        let err = out.error.expect("a panic becomes an error");
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert!(err.message().contains("test.panic always panics"), "{err}");
        assert_eq!(
            out.samples.len(),
            1,
            "samples made before the panic are kept"
        );
    }
}

/// A discovery whose every method panics. In-process plugins go through the same
/// boundary code (sabi_trait objects and the plugin-side guard) as loaded ones; the
/// synthetic library has no panicking discovery.
struct PanickingDiscovery;

impl Discovery for PanickingDiscovery {
    fn discover(
        &self,
        _: &PollContext<'_>,
        param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError> {
        panic!("discover panicked with {param:?}")
    }
    fn group_id(&self) -> Option<String> {
        panic!("group_id panicked")
    }
}

struct PanickingDefaults;

impl Pollster for PanickingDefaults {
    fn default_discovery(&self) -> Option<String> {
        panic!("default_discovery panicked")
    }
    fn get_samples(
        &self,
        _: &PollContext<'_>,
        _: &[Resource],
        _: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        Ok(())
    }
}

#[test]
fn panics_in_discover_and_accessors_become_error_values() {
    install_logger();
    let discovery = DiscoveryHandle::from_local(PanickingDiscovery);
    let out = discovery.discover(&CallContext::default(), Some("x"));
    let err = out.error.expect("a panic becomes an error");
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(
        err.message().contains("discover panicked with Some(\"x\")"),
        "{err}"
    );
    assert_eq!(
        discovery.group_id(),
        None,
        "a panicking accessor yields nothing"
    );
    let pollster = PollsterHandle::from_local(PanickingDefaults);
    assert_eq!(pollster.default_discovery(), None);
}

#[test]
fn plugin_log_records_reach_the_host_logger_with_the_plugin_target() {
    install_logger();
    let f = Fixture::new();
    f.add_built("test_broken", "libbroken.so");
    let r = f.registry("[abi.poll.x]\ncounter = \"t:counter\"\nbroken = \"broken:x\"\n");
    let m = ExtensionManager::<PollsterHandle>::new(
        &r,
        "abi.poll.x",
        Options::new()
            .invoke_on_load(Config::new())
            .on_load_failure(|_, _, _| Ok(())),
    )
    .unwrap();
    let resources: Vec<Resource> = (0..7).map(|i| Resource::new(format!("vm-{i}"))).collect();
    m.get("counter")
        .unwrap()
        .obj()
        .unwrap()
        .get_samples(&CallContext::default(), &resources);
    assert!(
        records_with_target("test_synthetic")
            .contains(&(log::Level::Info, "polling 7 resources".to_string())),
        "{:?}",
        RECORDS.lock().unwrap()
    );
    // A library logging during its (failing) initialisation is bridged too.
    assert!(records_with_target("test_broken").contains(&(
        log::Level::Error,
        "test_broken is about to fail its registration".to_string()
    )));
}

#[test]
fn incompatible_plugin_api_version_and_layout_are_refused() {
    install_logger();
    let f = Fixture::new();
    let old = f.add_built("test_old_api", "libold.so");
    let bad = f.add_built("test_bad_abi", "libbadabi.so");

    let err = libraries::open(&old).unwrap_err();
    let LoadError::IncompatibleVersion {
        expected, found, ..
    } = &err
    else {
        panic!("expected an incompatible version, got {err}")
    };
    assert_eq!(expected, longshore_plugin_api::host::API_VERSION);
    assert_eq!(found, "0.0.1");
    assert!(
        err.to_string()
            .contains("rebuild the plugin against longshore-plugin-api"),
        "{err}"
    );

    let err = libraries::open(&bad).unwrap_err();
    let LoadError::LayoutMismatch { detail, .. } = &err else {
        panic!("expected a layout mismatch, got {err}")
    };
    // The same root module type of the same package and version: only the layout
    // differs (`new_pollster` takes an extra argument in bad-abi), and the error says
    // where.
    assert!(
        detail.contains("PluginLib.new_pollster") && detail.contains("param_2: u64"),
        "{detail}"
    );
    assert!(err.to_string().contains("rebuild the plugin"), "{err}");

    // Asking again gives the same refusal; nothing was called in the library.
    assert_eq!(
        libraries::open(&bad).unwrap_err().class(),
        "layout-mismatch"
    );
}

#[test]
fn a_library_named_by_many_entry_points_is_opened_once_and_never_unloaded() {
    install_logger();
    let f = Fixture::new();
    let lib = f.lib("libt.so");
    // 40 entry points, some naming the library through other spellings of its path.
    let mut toml = String::from("[abi.poll.many]\n");
    for i in 0..30 {
        toml.push_str(&format!("p{i} = \"t:counter\"\n"));
    }
    for i in 0..5 {
        toml.push_str(&format!("q{i} = \"./plugins/libt.so:counter\"\n"));
        toml.push_str(&format!("r{i} = \"plugins/../plugins/libt.so:panic\"\n"));
    }
    let r = f.registry(&toml);
    assert!(!libraries::is_opened(&lib));
    let a = ExtensionManager::<PollsterHandle>::new(
        &r,
        "abi.poll.many",
        Options::new().invoke_on_load(Config::new()),
    )
    .unwrap();
    let b = ExtensionManager::<PollsterHandle>::new(&r, "abi.poll.many", Options::new()).unwrap();
    assert_eq!(a.len(), 40);
    let first = a.extensions()[0].plugin().library().unwrap().clone();
    for ext in a.iter().chain(b.iter()) {
        assert!(
            Arc::ptr_eq(ext.plugin().library().unwrap(), &first),
            "{} has its own copy of the library",
            ext.name()
        );
    }
    assert!(libraries::is_opened(&lib));
    assert!(extension_fixture::is_mapped(&lib));

    // Drop every manager, extension, handle and library reference: still mapped.
    drop((a, b, first));
    assert!(
        extension_fixture::is_mapped(&lib),
        "a plugin library was unloaded"
    );
    assert!(libraries::loaded()
        .iter()
        .any(|l| l.path() == lib.canonicalize().unwrap()));
}
