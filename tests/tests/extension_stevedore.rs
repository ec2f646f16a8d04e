//! stevedore's loading behaviours (SD-xx of plugin-host-anchors.md §1.8) with real
//! plugin libraries. stevedore's fixtures map onto the synthetic plugin library:
//! `t1`, `t2` load (its `counter` pollster), `e1`'s constructor fails (`ctor_error`),
//! `e2` cannot be imported (its library file does not exist).

mod extension_fixture;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use extension_fixture::Fixture;
use longshore_extension::*;
use longshore_plugin_api::host::{CallContext, DiscoveryHandle, PollsterHandle};
use longshore_plugin_api::{CallError, Config};

const NS: &str = "stevedore.poll.test";

const ENTRY_POINTS: &str = r#"
[stevedore.poll.test]
e1 = "t:ctor_error"
e2 = "nosuch:counter"
t1 = "t:counter"
t2 = "t:counter"

[stevedore.discover.test]
d1 = "t:fixed"
"#;

fn quiet() -> Options<PollsterHandle> {
    Options::new().on_load_failure(|_, _, _| Ok(()))
}

fn invoking() -> Options<PollsterHandle> {
    quiet().invoke_on_load(Config::new())
}

#[test]
fn sd01_without_invoke_only_unloadable_libraries_fail() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let m = ExtensionManager::new(&r, NS, quiet()).unwrap();
    assert_eq!(m.names(), ["e1", "t1", "t2"]);
    assert!(m.iter().all(|e| e.obj().is_none()));
    let failed: Vec<&str> = m
        .report()
        .failures()
        .map(|f| f.entry_point().name())
        .collect();
    assert_eq!(failed, ["e2"]);
}

#[test]
fn sd03_sd04_list_entry_points_lists_all_without_loading() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let m = NamedExtensionManager::<PollsterHandle>::new(&r, NS, &[] as &[&str], quiet()).unwrap();
    assert_eq!(m.entry_points_names(), ["e1", "e2", "t1", "t2"]);
    assert_eq!(m.list_entry_points().len(), 4);
    assert!(
        !libraries::is_opened(&f.lib("libt.so")),
        "listing opened a library"
    );
}

#[test]
fn sd07_managers_on_one_registry_share_entry_point_objects() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let a = ExtensionManager::new(&r, NS, quiet()).unwrap();
    let b = ExtensionManager::new(&r, NS, quiet()).unwrap();
    for (x, y) in a.list_entry_points().iter().zip(b.list_entry_points()) {
        assert!(Arc::ptr_eq(x, y));
    }
}

#[test]
fn sd08_managers_share_the_loaded_library() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let a = ExtensionManager::new(&r, NS, quiet()).unwrap();
    let b = ExtensionManager::new(&r, NS, invoking()).unwrap();
    let lib = |m: &ExtensionManager<PollsterHandle>, name| {
        m.get(name).unwrap().plugin().library().unwrap().clone()
    };
    assert!(Arc::ptr_eq(&lib(&a, "t1"), &lib(&b, "t1")));
    assert!(Arc::ptr_eq(&lib(&a, "t1"), &lib(&a, "t2")));
}

#[test]
fn sd09_a_seeded_registry_needs_no_file_and_an_empty_namespace_has_no_names() {
    let mut r = Registry::new();
    r.add_namespace("seeded.poll.empty");
    let m = ExtensionManager::<PollsterHandle>::new(&r, "seeded.poll.empty", quiet()).unwrap();
    assert!(m.names().is_empty());
    assert_eq!(r.namespaces().collect::<Vec<_>>(), ["seeded.poll.empty"]);
}

#[test]
fn sd11_invoke_on_load_constructs_with_the_config() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let m = ExtensionManager::new(&r, NS, invoking()).unwrap();
    assert_eq!(
        m.names(),
        ["t1", "t2"],
        "e1's constructor fails, e2 cannot load"
    );
    assert!(m.iter().all(|e| e.obj().is_some()));

    // The discovery reads `[synthetic] resources` from the config it was built with.
    let config = Config::new().with("synthetic", "resources", 5);
    let d = ExtensionManager::<DiscoveryHandle>::new(
        &r,
        "stevedore.discover.test",
        Options::new().invoke_on_load(config),
    )
    .unwrap();
    let found = d
        .get("d1")
        .unwrap()
        .obj()
        .unwrap()
        .discover(&CallContext::default(), None);
    assert_eq!(found.resources.len(), 5);
}

#[test]
fn sd26_named_manager_loads_only_the_named() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let m = NamedExtensionManager::new(&r, NS, &["t1"], invoking()).unwrap();
    assert_eq!(m.names(), ["t1"]);
}

#[test]
fn sd27_unlisted_names_are_never_opened() {
    let f = Fixture::new();
    // Each entry point names its own library file, so "opened" is observable per entry.
    f.add_built("test_synthetic", "libother.so");
    let r = f.registry("[stevedore.poll.test]\nt1 = \"t:counter\"\nother = \"other:ctor_panic\"\n");
    let m = NamedExtensionManager::new(&r, NS, &["no-such-extension"], invoking()).unwrap();
    assert!(m.names().is_empty());
    assert!(!libraries::is_opened(&f.lib("libt.so")));
    assert!(!libraries::is_opened(&f.lib("libother.so")));
    assert!(!extension_fixture::is_mapped(&f.lib("libother.so")));
    let statuses: Vec<&str> = m
        .report()
        .entries
        .iter()
        .map(|e| e.status.as_str())
        .collect();
    assert_eq!(statuses, ["not-requested", "not-requested"]);

    let m = NamedExtensionManager::new(&r, NS, &["t1"], invoking()).unwrap();
    assert_eq!(m.names(), ["t1"]);
    assert!(libraries::is_opened(&f.lib("libt.so")));
    assert!(
        !libraries::is_opened(&f.lib("libother.so")),
        "other was not requested"
    );
}

#[test]
fn sd28_name_order_follows_the_requested_order() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    for names in [["t1", "t2"], ["t2", "t1"]] {
        let m = NamedExtensionManager::new(&r, NS, &names, invoking().name_order(true)).unwrap();
        assert_eq!(m.names(), names);
    }
}

#[test]
fn sd29_name_order_skips_failed_names() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let m = NamedExtensionManager::new(
        &r,
        NS,
        &["e1", "t2", "e2", "t1"],
        invoking().name_order(true).ignore_missing_entrypoints(),
    )
    .unwrap();
    assert_eq!(m.names(), ["t2", "t1"]);
    let m = NamedExtensionManager::new(
        &r,
        NS,
        &["e1", "t1"],
        invoking().ignore_missing_entrypoints(),
    )
    .unwrap();
    assert_eq!(m.names(), ["t1"]);
}

#[test]
fn sd30_sd31_check_func_runs_after_load_and_invoke() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let seen = RefCell::new(Vec::new());
    let m = EnabledExtensionManager::new(
        &r,
        NS,
        |e| {
            seen.borrow_mut()
                .push((e.name().to_string(), e.obj().is_some()));
            e.name() == "t2"
        },
        invoking(),
    )
    .unwrap();
    assert_eq!(m.names(), ["t2"]);
    assert_eq!(m.len(), 1);
    assert_eq!(
        *seen.borrow(),
        [("t1".to_string(), true), ("t2".to_string(), true)],
        "check_func sees constructed objects, and only of loaded extensions"
    );
    let rejected: Vec<&str> = m
        .report()
        .entries
        .iter()
        .filter(|e| matches!(e.status, EntryStatus::Rejected))
        .map(|e| e.entry_point.name())
        .collect();
    assert_eq!(rejected, ["t1"]);
}

#[test]
fn sd32_sd34_dispatch_managers_on_real_libraries() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let d = DispatchExtensionManager::new(&r, NS, |_| true, invoking()).unwrap();
    let out = d
        .map(
            |e| e.name() == "t2",
            |e| Ok::<_, CallError>(e.name().to_string()),
        )
        .unwrap();
    assert_eq!(out, ["t2"]);
    let nd = NameDispatchExtensionManager::new(&r, NS, |_| true, invoking()).unwrap();
    let out = nd
        .map(&["t3", "t1"], |e| Ok::<_, CallError>(e.name().to_string()))
        .unwrap();
    assert_eq!(out, ["t1"]);
}

#[test]
fn sd37_hook_loads_every_entry_point_of_its_name() {
    let f = Fixture::new();
    let r = f.registry("[stevedore.poll.test]\nt1 = \"t:counter\"\nt2 = \"t:counter\"\n[\"stevedore.poll.test\"]\nt1 = \"t:panic\"\n");
    let hook = HookManager::new(&r, NS, "t1", invoking()).unwrap();
    assert_eq!(hook.names(), ["t1", "t1"]);
    assert_eq!(hook.get("t1").unwrap().len(), 2);
    assert!(hook.get("t2").is_none());
    let single = HookManager::new(&r, NS, "t2", invoking()).unwrap();
    assert_eq!(single.names(), ["t2"]);
}

#[test]
fn sd40_sd41_sd43_driver_on_a_real_library() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let dm = DriverManager::new(&r, NS, "t1", invoking()).unwrap();
    assert_eq!(dm.names(), ["t1"]);
    let result = dm
        .call(|e| Ok::<_, CallError>((e.name().to_string(), e.attr().to_string())))
        .unwrap();
    assert_eq!(result, Some(("t1".to_string(), "counter".to_string())));
    let Driver::Instance(pollster) = dm.driver() else {
        panic!("invoked: the driver is the instance")
    };
    assert_eq!(pollster.default_discovery().as_deref(), Some("fixed"));
}

#[test]
fn sd42_driver_without_invoke_is_its_factory() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let dm = DriverManager::new(&r, NS, "e1", quiet()).unwrap();
    let Driver::Factory(factory) = dm.driver() else {
        panic!("not invoked: the driver is the factory")
    };
    assert_eq!(factory.description(), "Constructor returns an error");
    let err = factory.construct(&Config::new()).unwrap_err();
    assert!(err.message().contains("refuses"), "{err}");
}

#[test]
fn sd44_driver_in_an_empty_namespace_is_no_matches() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let err = DriverManager::<PollsterHandle>::new(&r, "stevedore.poll.none", "t1", Options::new())
        .unwrap_err();
    assert!(matches!(err, ManagerError::NoMatches { .. }));
    assert!(
        err.to_string()
            .contains("No 'stevedore.poll.none' driver found"),
        "{err}"
    );
}

#[test]
fn sd45_driver_reraises_the_load_failure() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let err = DriverManager::<PollsterHandle>::new(&r, NS, "e2", Options::new()).unwrap_err();
    let ManagerError::LoadFailed(failure) = err else {
        panic!("expected the load failure, got {err}")
    };
    assert!(matches!(failure.cause(), LoadCause::LibraryNotFound(_)));
    let err = DriverManager::<PollsterHandle>::new(
        &r,
        NS,
        "e1",
        Options::new().invoke_on_load(Config::new()),
    )
    .unwrap_err();
    assert!(
        matches!(err, ManagerError::LoadFailed(f) if f.cause().class() == "constructor-failed")
    );
}

const DUPLICATE_DRIVER: &str =
    "[stevedore.poll.test]\nt1 = \"t:counter\"\n[\"stevedore.poll.test\"]\nt1 = \"t:panic\"\n";

#[test]
fn sd46_duplicate_driver_names_are_multiple_matches() {
    let f = Fixture::new();
    let r = f.registry(DUPLICATE_DRIVER);
    let err = DriverManager::<PollsterHandle>::new(&r, NS, "t1", Options::new()).unwrap_err();
    assert!(matches!(err, ManagerError::MultipleMatches { .. }));
    let text = err.to_string();
    assert!(
        text.contains("multiple implementations") && text.contains("'t1'"),
        "{text}"
    );
}

#[test]
fn sd47_sd48_driver_conflicts_resolved_by_the_given_resolver() {
    let f = Fixture::new();
    let r = f.registry(DUPLICATE_DRIVER);
    let last =
        DriverManager::new(&r, NS, "t1", quiet().conflict_resolver(ignore_conflicts)).unwrap();
    assert_eq!(last.extensions().len(), 1);
    assert_eq!(last.extensions()[0].attr(), "panic", "the last one wins");
    let first =
        DriverManager::new(&r, NS, "t1", quiet().conflict_resolver(|_, _, _| Ok(0))).unwrap();
    assert_eq!(first.extensions().len(), 1);
    assert_eq!(first.extensions()[0].attr(), "counter");
    assert_eq!(first.get("t1").unwrap().attr(), "counter");
}

#[test]
fn sd49_load_failure_callback_once_per_failing_entry_point() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let calls: Rc<RefCell<Vec<(String, String, usize)>>> = Rc::default();
    let sink = calls.clone();
    let m = ExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        Options::new()
            .invoke_on_load(Config::new())
            .on_load_failure(move |manager, ep, failure| {
                sink.borrow_mut().push((
                    ep.name().to_string(),
                    failure.cause().class().to_string(),
                    manager.len(),
                ));
                Ok(())
            }),
    )
    .unwrap();
    assert_eq!(
        *calls.borrow(),
        [
            ("e1".to_string(), "constructor-failed".to_string(), 0),
            ("e2".to_string(), "library-not-found".to_string(), 0),
        ],
        "called with the manager under construction"
    );
    assert_eq!(m.names(), ["t1", "t2"], "the good ones still load");
}

#[test]
fn load_failure_callback_can_abort() {
    let f = Fixture::new();
    let r = f.registry(ENTRY_POINTS);
    let err = ExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        Options::new().on_load_failure(|_, _, failure| Err(failure.clone())),
    )
    .unwrap_err();
    assert!(matches!(err, ManagerError::LoadFailed(f) if f.entry_point().name() == "e2"));
}

#[test]
fn sd50_missing_entrypoints_callback_gets_requested_names_not_loaded() {
    let f = Fixture::new();
    let r = f.registry("[stevedore.poll.test]\nfoo = \"t:counter\"\nbroken = \"t:ctor_error\"\n");
    let missing: Rc<RefCell<Vec<BTreeSet<String>>>> = Rc::default();
    let sink = missing.clone();
    let failed: Rc<RefCell<Vec<String>>> = Rc::default();
    let failed_sink = failed.clone();
    let m = NamedExtensionManager::<PollsterHandle>::new(
        &r,
        NS,
        &["foo", "bar", "broken"],
        Options::new()
            .invoke_on_load(Config::new())
            .on_missing_entrypoints(move |names| sink.borrow_mut().push(names.clone()))
            .on_load_failure(move |_, ep, _| {
                failed_sink.borrow_mut().push(ep.name().to_string());
                Ok(())
            }),
    )
    .unwrap();
    assert_eq!(m.names(), ["foo"]);
    let expected: BTreeSet<String> = ["bar", "broken"].iter().map(|s| s.to_string()).collect();
    assert_eq!(*missing.borrow(), [expected]);
    assert_eq!(
        *failed.borrow(),
        ["broken"],
        "a failed name is reported by both callbacks"
    );
}
