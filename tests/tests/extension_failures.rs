//! Tolerating load failures with real broken libraries: each kind of failure is
//! reported once (entry point, namespace, library path, cause, what to do) and
//! skipped while the rest load; strict mode makes them fatal; insecure plugin files
//! are refused unless overridden.

mod extension_fixture;

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::sync::Once;

use extension_fixture::{Fixture, BROKEN_CLASSES, BROKEN_ENTRY_POINTS};
use longshore_extension::*;
use longshore_plugin_api::host::{LoadError, PollsterHandle};
use longshore_plugin_api::Config;

const NS: &str = "test.poll.broken";

thread_local! {
    static CAPTURED: RefCell<Vec<(log::Level, String, String)>> = const { RefCell::new(Vec::new()) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        CAPTURED.with(|c| {
            c.borrow_mut()
                .push((r.level(), r.target().to_string(), r.args().to_string()))
        });
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_boxed_logger(Box::new(Capture)).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
    CAPTURED.with(|c| c.borrow_mut().clear());
}

fn errors_logged() -> Vec<String> {
    CAPTURED.with(|c| {
        c.borrow()
            .iter()
            .filter(|(l, t, _)| *l == log::Level::Error && t.starts_with("longshore_extension"))
            .map(|(_, _, m)| m.clone())
            .collect()
    })
}

fn broken_fixture() -> (Fixture, Registry) {
    let f = Fixture::new();
    f.add_every_broken_kind();
    let r = f.registry(BROKEN_ENTRY_POINTS);
    (f, r)
}

#[test]
fn every_failure_kind_is_reported_once_and_the_rest_load() {
    capture_logs();
    let (f, r) = broken_fixture();
    let m = ExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        Options::new().invoke_on_load(Config::new()),
    )
    .expect("failures are tolerated");
    assert_eq!(m.names(), ["good", "good2"]);

    let failures: Vec<&LoadFailure> = m.report().failures().collect();
    let classes: Vec<(&str, &str)> = failures
        .iter()
        .map(|f| (f.entry_point().name(), f.cause().class()))
        .collect();
    assert_eq!(classes, BROKEN_CLASSES);

    let logged = errors_logged();
    assert_eq!(
        logged.len(),
        BROKEN_CLASSES.len(),
        "one ERROR line per failure: {logged:#?}"
    );
    for (failure, line) in failures.iter().zip(&logged) {
        let ep = failure.entry_point();
        let text = failure.to_string();
        assert!(line.contains(&text), "{line}");
        assert!(!text.contains('\n'), "one line per event: {text}");
        assert!(
            text.contains(&format!("entry point {:?}", ep.name())),
            "{text}"
        );
        assert!(text.contains(NS), "{text}");
        assert!(
            text.contains("entry_points.toml:"),
            "names the file and line: {text}"
        );
        if ep.name() != "missing" {
            let lib = failure.library().expect("library resolved");
            assert!(text.contains(&lib.display().to_string()), "{text}");
        }
    }

    let text_of = |name: &str| {
        failures
            .iter()
            .find(|f| f.entry_point().name() == name)
            .unwrap()
            .to_string()
    };
    // What to do, per cause.
    assert!(text_of("missing").contains("libnosuch.so not found"));
    assert!(text_of("missing").contains(&f.plugins().display().to_string()));
    assert!(text_of("missing").contains("--plugin-dir"));
    assert!(text_of("text").contains("is a shared library built for this platform"));
    assert!(text_of("system").contains("not a longshore plugin"));
    assert!(text_of("old_api").contains("built against longshore-plugin-api 0.0.1"));
    assert!(text_of("old_api").contains("rebuild the plugin"));
    assert!(text_of("bad_abi").contains("layout differs"));
    assert!(text_of("init_panics").contains("registration always panics"));
    assert!(text_of("no_such_plugin")
        .contains("no plugin named \"nonexistent\" (it provides: counter,"));
    assert!(text_of("wrong_kind").contains("\"fixed\" is a discovery"));
    assert!(text_of("ctor_error").contains("refuses to be built"));
    assert!(text_of("ctor_panic").contains("panicked"));
    assert!(text_of("ctor_panic").contains("bug in the plugin"));
}

#[test]
fn library_errors_keep_their_type() {
    let (_f, r) = broken_fixture();
    let m = ExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        Options::new().on_load_failure(|_, _, _| Ok(())),
    )
    .unwrap();
    let cause = |name: &str| {
        m.report()
            .failures()
            .find(|f| f.entry_point().name() == name)
            .map(|f| f.cause().clone())
            .unwrap()
    };
    assert!(matches!(
        cause("old_api"),
        LoadCause::Library(LoadError::IncompatibleVersion { found, .. }) if found == "0.0.1"
    ));
    assert!(matches!(
        cause("bad_abi"),
        LoadCause::Library(LoadError::LayoutMismatch { .. })
    ));
    assert!(matches!(
        cause("system"),
        LoadCause::Library(LoadError::NotAPlugin { .. })
    ));
    assert!(matches!(
        cause("empty"),
        LoadCause::Library(LoadError::Open { .. })
    ));
    assert!(matches!(
        cause("init_panics"),
        LoadCause::Library(LoadError::InitFailed { .. })
    ));
}

#[test]
fn a_broken_library_named_twice_fails_the_same_way_without_reopening() {
    let f = Fixture::new();
    f.add_built("test_broken", "libbroken.so");
    let r = f.registry("[test.poll.broken]\na = \"broken:x\"\nb = \"broken:y\"\n");
    let m = ExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        Options::new().on_load_failure(|_, _, _| Ok(())),
    )
    .unwrap();
    let classes: Vec<&str> = m.report().failures().map(|f| f.cause().class()).collect();
    assert_eq!(classes, ["init-failed", "init-failed"]);
}

#[test]
fn strict_mode_makes_any_failure_fatal_after_trying_everything() {
    let (_f, r) = broken_fixture();
    let err = ExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        Options::new()
            .invoke_on_load(Config::new())
            .strict(true)
            .on_load_failure(|_, _, _| Ok(())),
    )
    .unwrap_err();
    let ManagerError::Strict { failures, .. } = &err else {
        panic!("expected a strict-mode error, got {err}")
    };
    assert_eq!(failures.len(), BROKEN_CLASSES.len());
    assert!(err.to_string().contains("strict mode"));

    // Strict with nothing broken is fine.
    let ok =
        ExtensionManager::<PollsterHandle>::new(&r, "test.poll.none", Options::new().strict(true));
    assert!(ok.is_ok());
}

#[test]
fn plugin_set_loads_pollsters_and_discoveries_per_group() {
    let f = Fixture::new();
    let r = f.registry(
        "[ceilometer.poll.synthetic]\ncounter = \"t:counter\"\nbad = \"t:ctor_error\"\n[ceilometer.discover.synthetic]\nfixed = \"t:fixed\"\n",
    );
    let settings = LoadSettings {
        config: Config::new(),
        ..LoadSettings::default()
    };
    let set = PluginSet::load(&r, &["synthetic".to_string()], &settings).unwrap();
    assert_eq!(set.pollsters.len(), 1);
    assert_eq!(set.pollsters[0].name, "counter");
    assert_eq!(set.pollsters[0].namespace, "ceilometer.poll.synthetic");
    assert_eq!(set.discoveries.len(), 1);
    assert_eq!(set.discoveries[0].name, "fixed");
    assert_eq!(set.failures().count(), 1);
    assert_eq!(set.reports.len(), 2);

    let strict = LoadSettings {
        strict: true,
        ..settings
    };
    let err = PluginSet::load(&r, &["synthetic".to_string()], &strict).unwrap_err();
    assert!(matches!(err, ManagerError::Strict { failures, .. } if failures.len() == 1));
}

#[test]
fn insecure_plugin_files_are_refused_unless_overridden() {
    let f = Fixture::new();
    let r = f.registry("[test.poll.broken]\nt = \"t:counter\"\n");
    std::fs::set_permissions(f.lib("libt.so"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let m = ExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        Options::new().on_load_failure(|_, _, _| Ok(())),
    )
    .unwrap();
    assert!(m.is_empty());
    let failure = m.report().failures().next().unwrap();
    assert_eq!(failure.cause().class(), "insecure");
    let text = failure.to_string();
    assert!(text.contains("writable by group and others"), "{text}");
    assert!(text.contains("--allow-insecure-plugins"), "{text}");
    assert!(
        !libraries::is_opened(&f.lib("libt.so")),
        "refused before opening"
    );

    let m = ExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        Options::new().allow_insecure_plugins(true),
    )
    .unwrap();
    assert_eq!(m.names(), ["t"]);
}

#[test]
fn writable_plugin_directory_is_refused() {
    let f = Fixture::new();
    let r = f.registry("[test.poll.broken]\nt = \"t:counter\"\n");
    std::fs::set_permissions(f.plugins(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let m = ExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        Options::new().on_load_failure(|_, _, _| Ok(())),
    )
    .unwrap();
    let failure = m.report().failures().next().expect("refused");
    let LoadCause::Insecure(insecure) = failure.cause() else {
        panic!("expected insecure, got {failure}")
    };
    assert_eq!(insecure.offender, f.plugins().canonicalize().unwrap());
}

#[test]
fn load_namespace_reports_unknown_namespace_kinds() {
    let f = Fixture::new();
    let r = f.registry("[odd.namespace]\nx = \"t:counter\"\n");
    let report = load_namespace(&r, "odd.namespace", &LoadSettings::default());
    assert_eq!(report.kind, None);
    let failure = report.failures().next().unwrap();
    assert_eq!(failure.cause().class(), "unknown-namespace-kind");
    assert!(!libraries::is_opened(&f.lib("libt.so")));
}
