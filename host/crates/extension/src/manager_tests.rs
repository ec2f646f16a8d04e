//! stevedore's manager behaviours (SD-xx of plugin-host-anchors.md §1.8) on test
//! instances: in-memory extensions around in-process pollsters called through the
//! same boundary code as loaded ones; nothing is resolved or loaded.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use longshore_plugin_api::host::{CallContext, PollsterHandle};
use longshore_plugin_api::{
    CallError, Config, ErrorKind, PollContext, PollError, Pollster, Resource, Sample, SampleType,
};

use crate::*;

/// Emits one sample named after itself per resource.
struct Echo(String);

impl Pollster for Echo {
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        for r in resources {
            out.push(Sample::new(&self.0, SampleType::Gauge, "", 1, r.id()));
        }
        Ok(())
    }
}

type Ext = Extension<PollsterHandle>;

fn ext(name: &str) -> Ext {
    Extension::from_obj(name, PollsterHandle::from_local(Echo(name.to_string())))
}

/// An extension named `name` whose object echoes `tag` (to tell duplicates apart).
fn tagged(name: &str, tag: &str) -> Ext {
    Extension::from_obj(name, PollsterHandle::from_local(Echo(tag.to_string())))
}

/// `obj.get_samples` on one resource, as "sample-name@resource".
fn call(h: &PollsterHandle, arg: &str) -> Result<String, CallError> {
    let out = h.get_samples(&CallContext::default(), &[Resource::new(arg)]);
    if let Some(e) = out.error {
        return Err(e);
    }
    Ok(out
        .samples
        .iter()
        .map(|s| format!("{}@{}", s.name(), s.resource_id()))
        .collect())
}

fn opts() -> Options<PollsterHandle> {
    Options::new()
}

fn t1_t2() -> ExtensionManager<PollsterHandle> {
    ExtensionManager::make_test_instance(vec![ext("t1"), ext("t2")], None, opts()).unwrap()
}

// Log capture per test thread (the test harness runs tests on several threads).
thread_local! {
    static CAPTURED: RefCell<Vec<(log::Level, String)>> = const { RefCell::new(Vec::new()) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        CAPTURED.with(|c| {
            c.borrow_mut()
                .push((record.level(), record.args().to_string()))
        });
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_boxed_logger(Box::new(Capture)).expect("no other logger in unit tests");
        log::set_max_level(log::LevelFilter::Trace);
    });
    CAPTURED.with(|c| c.borrow_mut().clear());
}

fn logged(level: log::Level) -> Vec<String> {
    CAPTURED.with(|c| {
        c.borrow()
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, m)| m.clone())
            .collect()
    })
}

#[test]
fn sd02_sd05_sd06_get_and_contains() {
    let m = t1_t2();
    assert_eq!(m.get("t1").unwrap().name(), "t1");
    assert!(m.contains("t1"));
    assert!(m.get("t3").is_none());
    assert!(!m.contains("t3"));
}

#[test]
fn sd10_iteration_yields_extensions_in_order() {
    let m = t1_t2();
    let names: Vec<&str> = (&m).into_iter().map(Extension::name).collect();
    assert_eq!(names, ["t1", "t2"]);
    assert_eq!(m.iter().count(), 2);
}

#[test]
fn sd12_sd13_map_returns_one_result_per_extension_and_passes_captured_args() {
    let m = t1_t2();
    let (a, b) = (1, "B");
    let results = m
        .map(|e| Ok::<_, CallError>(format!("{}:{a}:{b}", e.name())))
        .unwrap();
    assert_eq!(results, ["t1:1:B", "t2:1:B"]);
}

#[test]
fn sd14_map_errors_are_logged_and_swallowed_by_default() {
    capture_logs();
    let m = t1_t2();
    let results: Vec<()> = m.map(|e| Err(format!("{} fails", e.name()))).unwrap();
    assert!(results.is_empty());
    let errors = logged(log::Level::Error);
    assert_eq!(
        errors,
        [
            "error calling 't1': t1 fails",
            "error calling 't2': t2 fails"
        ]
    );
}

#[test]
fn sd15_map_errors_propagate_when_asked() {
    let m = ExtensionManager::make_test_instance(
        vec![ext("t1"), ext("t2")],
        None,
        opts().propagate_map_errors(true),
    )
    .unwrap();
    let calls = AtomicUsize::new(0);
    let err = m
        .map(|e| {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(format!("{} fails", e.name()))
        })
        .unwrap_err();
    assert!(matches!(&err, MapError::Call { extension, .. } if extension == "t1"));
    assert_eq!(err.to_string(), "error calling 't1': t1 fails");
    assert_eq!(calls.load(Ordering::Relaxed), 1, "stops at the first error");
}

#[test]
fn sd16_map_on_an_empty_manager_is_no_matches() {
    let m = ExtensionManager::<PollsterHandle>::make_test_instance(
        vec![],
        Some("ns.poll.empty"),
        opts(),
    )
    .unwrap();
    let err = m.map(|_| Ok::<(), CallError>(())).unwrap_err();
    assert_eq!(err.to_string(), "No ns.poll.empty extensions found");
}

#[test]
fn sd17_map_method_calls_every_object() {
    let m = t1_t2();
    let results = m.map_method(|obj| call(obj, "42")).unwrap();
    assert_eq!(results, ["t1@42", "t2@42"]);
}

#[test]
fn map_method_without_objects_reports_not_invoked() {
    let not_invoked = Extension::from_factory(
        "t1",
        Factory::from_fn("never built", |_| {
            Ok(PollsterHandle::from_local(Echo("t1".into())))
        }),
    );
    let m = ExtensionManager::make_test_instance(
        vec![not_invoked],
        None,
        opts().propagate_map_errors(true),
    )
    .unwrap();
    let err = m.map_method(|obj| call(obj, "x")).unwrap_err();
    assert!(matches!(err, MapError::NotInvoked { .. }), "{err}");
}

#[test]
fn sd18_items_pair_each_name_with_get() {
    let m = t1_t2();
    let items: Vec<(&str, String)> = m
        .items()
        .into_iter()
        .map(|(n, e)| (n, e.name().to_string()))
        .collect();
    assert_eq!(items, [("t1", "t1".to_string()), ("t2", "t2".to_string())]);
    for name in m.names() {
        assert!(std::ptr::eq(
            m.items().into_iter().find(|(n, _)| *n == name).unwrap().1,
            m.get(name).unwrap()
        ));
    }
}

#[test]
fn sd19_ignore_conflicts_picks_the_last_with_one_warning() {
    capture_logs();
    let m = ExtensionManager::make_test_instance(
        vec![
            tagged("dup", "first"),
            tagged("dup", "second"),
            ext("other"),
        ],
        Some("ns.poll.x"),
        opts(),
    )
    .unwrap();
    let chosen = m.get("dup").unwrap();
    assert_eq!(call(chosen.obj().unwrap(), "r").unwrap(), "second@r");
    let warnings = logged(log::Level::Warn);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("multiple implementations found"));
    assert!(warnings[0].contains("'dup' extension"));
    assert!(warnings[0].contains("ns.poll.x namespace"));
    // Iteration and names still show every extension; contains ignores conflicts.
    assert_eq!(m.names(), ["dup", "dup", "other"]);
}

#[test]
fn sd20_error_on_conflict_is_multiple_matches() {
    let err = ExtensionManager::make_test_instance(
        vec![tagged("dup", "a"), tagged("dup", "b")],
        Some("ns.poll.x"),
        opts().conflict_resolver(error_on_conflict),
    )
    .unwrap_err();
    assert!(matches!(err, ManagerError::MultipleMatches { .. }));
    let text = err.to_string();
    assert!(text.contains("multiple implementations found"), "{text}");
    assert!(text.contains("'dup' command"), "{text}");
    assert!(text.contains("ns.poll.x namespace"), "{text}");
}

#[test]
fn sd21_custom_conflict_resolver_decides() {
    let m = ExtensionManager::make_test_instance(
        vec![
            tagged("dup", "first"),
            tagged("dup", "second"),
            tagged("dup", "third"),
        ],
        None,
        opts().conflict_resolver(|_, _, candidates: &[&Ext]| {
            assert_eq!(candidates.len(), 3);
            Ok(0)
        }),
    )
    .unwrap();
    assert_eq!(
        call(m.get("dup").unwrap().obj().unwrap(), "r").unwrap(),
        "first@r"
    );
}

#[test]
fn sd23_sd24_sd25_extension_target_parts() {
    let ep = Arc::new(EntryPoint::new("ns.poll.x", "cpu", "compute:cpu.time").unwrap());
    let e = Extension::new(
        ep,
        Factory::from_fn("d", |_| Ok(PollsterHandle::from_local(Echo("x".into())))),
        None,
    );
    assert_eq!(e.module_name(), "compute");
    assert_eq!(e.attr(), "cpu.time");
    assert_eq!(e.entry_point_target(), "compute:cpu.time");
}

#[test]
fn sd58_sd60_test_instances_keep_the_given_extensions_in_order() {
    let given = || vec![ext("b"), ext("a"), ext("c")];
    let order = ["b", "a", "c"];
    assert_eq!(
        ExtensionManager::make_test_instance(given(), None, opts())
            .unwrap()
            .names(),
        order
    );
    assert_eq!(
        NamedExtensionManager::make_test_instance(given(), None, opts())
            .unwrap()
            .names(),
        order
    );
    assert_eq!(
        HookManager::make_test_instance(given(), None, opts())
            .unwrap()
            .names(),
        order
    );
    assert_eq!(
        EnabledExtensionManager::make_test_instance(given(), None, opts())
            .unwrap()
            .names(),
        order
    );
    assert_eq!(
        DispatchExtensionManager::make_test_instance(given(), None, opts())
            .unwrap()
            .names(),
        order
    );
    let nd = NameDispatchExtensionManager::make_test_instance(given(), None, opts()).unwrap();
    assert_eq!(nd.names(), order);
    assert_eq!(nd.get("a").unwrap().name(), "a");
    assert_eq!(nd.iter().map(Extension::name).collect::<Vec<_>>(), order);
}

#[test]
fn sd59_test_instance_namespace_defaults_to_testing() {
    assert_eq!(
        ExtensionManager::make_test_instance(vec![ext("a")], None, opts())
            .unwrap()
            .namespace(),
        "TESTING"
    );
    assert_eq!(
        ExtensionManager::make_test_instance(vec![ext("a")], Some("other"), opts())
            .unwrap()
            .namespace(),
        "other"
    );
    assert_eq!(
        NamedExtensionManager::make_test_instance(vec![ext("a")], None, opts())
            .unwrap()
            .namespace(),
        "TESTING"
    );
    assert_eq!(
        HookManager::make_test_instance(vec![ext("a")], Some("h"), opts())
            .unwrap()
            .namespace(),
        "h"
    );
    assert_eq!(
        DriverManager::make_test_instance(ext("a"), None, opts())
            .unwrap()
            .namespace(),
        "TESTING"
    );
    assert_eq!(
        DriverManager::make_test_instance(ext("a"), Some("d"), opts())
            .unwrap()
            .namespace(),
        "d"
    );
}

#[test]
fn sd61_test_instance_map_calls_each_extension_once() {
    let m = ExtensionManager::make_test_instance(vec![ext("a"), ext("b"), ext("c")], None, opts())
        .unwrap();
    let seen = RefCell::new(Vec::new());
    let results = m
        .map(|e| {
            seen.borrow_mut().push(e.name().to_string());
            Ok::<_, CallError>(e.name().len())
        })
        .unwrap();
    assert_eq!(*seen.borrow(), ["a", "b", "c"]);
    assert_eq!(results, [1, 1, 1]);
}

#[test]
fn sd62_test_instance_map_errors_swallowed_or_propagated() {
    let quiet = ExtensionManager::make_test_instance(vec![ext("a")], None, opts()).unwrap();
    assert!(quiet.map(|_| Err::<(), _>("boom")).unwrap().is_empty());
    let loud = ExtensionManager::make_test_instance(
        vec![ext("a")],
        None,
        opts().propagate_map_errors(true),
    )
    .unwrap();
    assert!(loud.map(|_| Err::<(), _>("boom")).is_err());
}

#[test]
fn sd63_named_test_instance_keeps_the_given_order() {
    let m = NamedExtensionManager::make_test_instance(
        vec![ext("test_extension"), ext("another_one")],
        None,
        opts(),
    )
    .unwrap();
    assert_eq!(m.names(), ["test_extension", "another_one"]);
    assert_eq!(m.requested_names(), ["test_extension", "another_one"]);
}

#[test]
fn sd38_sd39_sd64_hook_returns_every_extension_of_its_name() {
    let hook =
        HookManager::make_test_instance(vec![tagged("h", "one"), tagged("h", "two")], None, opts())
            .unwrap();
    assert_eq!(hook.name(), "h");
    let all = hook.get("h").unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(call(all[0].obj().unwrap(), "r").unwrap(), "one@r");
    assert_eq!(call(all[1].obj().unwrap(), "r").unwrap(), "two@r");
    assert!(hook.get("t2").is_none());
}

#[test]
fn sd43_sd65_driver_test_instance() {
    let dm = DriverManager::make_test_instance(ext("drv"), None, opts()).unwrap();
    assert_eq!(dm.names(), ["drv"]);
    assert_eq!(dm.extensions().len(), 1);
    let result = dm
        .call(|e| Ok::<_, CallError>(format!("{}!", e.name())))
        .unwrap();
    assert_eq!(
        result.as_deref(),
        Some("drv!"),
        "a single result, not a list"
    );
    match dm.driver() {
        Driver::Instance(obj) => assert_eq!(call(obj, "r").unwrap(), "drv@r"),
        Driver::Factory(_) => panic!("an invoked driver is its instance"),
    }
    // A failing func gives None (stevedore's __call__ swallows it).
    assert_eq!(dm.call(|_| Err::<(), _>("no")).unwrap(), None);
}

#[test]
fn sd42_driver_without_invoke_is_its_factory() {
    let built = Arc::new(AtomicUsize::new(0));
    let counter = built.clone();
    let factory = Factory::from_fn("makes drv", move |_cfg: &Config| {
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(PollsterHandle::from_local(Echo("drv".into())))
    });
    let dm =
        DriverManager::make_test_instance(Extension::from_factory("drv", factory), None, opts())
            .unwrap();
    let Driver::Factory(f) = dm.driver() else {
        panic!("not invoked: the driver is the factory")
    };
    assert_eq!(built.load(Ordering::Relaxed), 0);
    let obj = f.construct(&Config::new()).unwrap();
    assert_eq!(call(&obj, "r").unwrap(), "drv@r");
    assert_eq!(f.description(), "makes drv");
}

#[test]
fn sd32_sd66_dispatch_calls_func_only_where_filter_is_true() {
    let m = DispatchExtensionManager::make_test_instance(vec![ext("t1"), ext("t2")], None, opts())
        .unwrap();
    let filtered = RefCell::new(Vec::new());
    let results = m
        .map(
            |e| {
                filtered.borrow_mut().push(e.name().to_string());
                e.name() == "t2"
            },
            |e| Ok::<_, CallError>((e.name().to_string(), "first")),
        )
        .unwrap();
    assert_eq!(results, [("t2".to_string(), "first")]);
    assert_eq!(
        *filtered.borrow(),
        ["t1", "t2"],
        "the filter sees every extension"
    );

    let called = AtomicUsize::new(0);
    let none = m
        .map(
            |_| false,
            |_| {
                called.fetch_add(1, Ordering::Relaxed);
                Ok::<(), CallError>(())
            },
        )
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(called.load(Ordering::Relaxed), 0);
}

#[test]
fn sd33_dispatch_map_method() {
    let m = DispatchExtensionManager::make_test_instance(vec![ext("t1"), ext("t2")], None, opts())
        .unwrap();
    let results = m
        .map_method(|e| e.name() == "t2", |obj| call(obj, "first"))
        .unwrap();
    assert_eq!(results, ["t2@first"]);
}

#[test]
fn dispatch_map_on_empty_is_no_matches_but_name_dispatch_is_not() {
    let d = DispatchExtensionManager::<PollsterHandle>::make_test_instance(vec![], None, opts())
        .unwrap();
    assert!(matches!(
        d.map(|_| true, |_| Ok::<(), CallError>(())),
        Err(MapError::NoMatches { .. })
    ));
    let nd =
        NameDispatchExtensionManager::<PollsterHandle>::make_test_instance(vec![], None, opts())
            .unwrap();
    assert!(nd
        .map(&["x"], |_| Ok::<(), CallError>(()))
        .unwrap()
        .is_empty());
}

#[test]
fn sd34_sd35_sd36_sd67_name_dispatch_calls_named_extensions_only() {
    capture_logs();
    let m = NameDispatchExtensionManager::make_test_instance(
        vec![ext("t1"), ext("t2"), ext("test_extension")],
        None,
        opts(),
    )
    .unwrap();
    assert_eq!(m.by_name().len(), 3);
    let only_t2 = m
        .map(&["t2"], |e| Ok::<_, CallError>(e.name().to_string()))
        .unwrap();
    assert_eq!(only_t2, ["t2"]);
    let t1 = m
        .map(&["t3", "t1"], |e| Ok::<_, CallError>(e.name().to_string()))
        .unwrap();
    assert_eq!(t1, ["t1"], "unknown t3 is ignored");
    assert!(logged(log::Level::Debug)
        .iter()
        .any(|m| m.contains("\"t3\" being ignored")));
    let by_method = m
        .map_method(&["t3", "t1"], |obj| call(obj, "first"))
        .unwrap();
    assert_eq!(by_method, ["t1@first"]);
    let calls = AtomicUsize::new(0);
    m.map(&["test_extension"], |_| {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok::<(), CallError>(())
    })
    .unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn name_dispatch_by_name_last_wins() {
    let m = NameDispatchExtensionManager::make_test_instance(
        vec![tagged("dup", "first"), tagged("dup", "second")],
        None,
        opts(),
    )
    .unwrap();
    let out = m.map_method(&["dup"], |obj| call(obj, "r")).unwrap();
    assert_eq!(out, ["second@r"]);
}

#[test]
fn constructor_errors_are_classified() {
    let skip = LoadCause::from_constructor(CallError::new(ErrorKind::Skip, "no libvirt here"));
    assert!(matches!(skip, LoadCause::Skipped(_)));
    let panic = LoadCause::from_constructor(CallError::new(ErrorKind::Panicked, "boom"));
    assert_eq!(panic.class(), "constructor-panicked");
    let failed = LoadCause::from_constructor(CallError::new(ErrorKind::Failed, "bad option"));
    assert_eq!(failed.class(), "constructor-failed");
    assert!(failed.to_string().contains("check the plugin's options"));
}

#[test]
fn managers_plugin_sets_and_reports_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ExtensionManager<PollsterHandle>>();
    assert_send_sync::<DriverManager<longshore_plugin_api::host::DiscoveryHandle>>();
    assert_send_sync::<PluginSet>();
    assert_send_sync::<LoadReport>();
    assert_send_sync::<LoadFailure>();
    assert_send_sync::<ManagerError>();
    assert_send_sync::<Registry>();
}
