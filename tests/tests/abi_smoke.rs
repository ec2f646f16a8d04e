//! The ABI end to end: a real cdylib loaded through plugin-api's host side.

use std::sync::Arc;

use longshore_plugin_api::host::{CallContext, CycleCache, Library};
use longshore_plugin_api::{Config, ErrorKind};

#[test]
fn load_construct_discover_poll_and_catch_panics() {
    longshore_tests::build_plugins(&["longshore-plugin-synthetic"]);
    let lib = Library::open(&longshore_tests::built_library("test_synthetic")).expect("load");
    assert_eq!(lib.info().crate_name, "longshore-plugin-synthetic");
    assert!(lib.plugin("counter").is_some());

    let cfg = Config::new().with("synthetic", "resources", 4);
    let ctx = CallContext::new(Arc::new(CycleCache::new()), Default::default());
    let disc = lib.new_discovery("fixed", &cfg).expect("discovery");
    let found = disc.discover(&ctx, Some("vm"));
    assert!(found.error.is_none());
    assert_eq!(found.resources.len(), 4);
    assert_eq!(found.resources[3].id(), "vm-3");

    let counter = lib.new_pollster("counter", &cfg).expect("pollster");
    assert_eq!(counter.default_discovery().as_deref(), Some("fixed"));
    let polled = counter.get_samples(&ctx, &found.resources);
    assert!(polled.error.is_none());
    assert_eq!(polled.samples.len(), 4);
    assert_eq!(polled.samples[2].volume().as_i64(), Some(2));

    let panicker = lib.new_pollster("panic", &cfg).expect("pollster");
    let polled = panicker.get_samples(&ctx, &found.resources);
    let err = polled.error.expect("a panic becomes an error");
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(err.message().contains("always panics"), "{err}");
    assert_eq!(
        polled.samples.len(),
        1,
        "samples produced before the panic are kept"
    );

    let err = lib.new_pollster("ctor_panic", &cfg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    let err = lib.new_pollster("ctor_error", &cfg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Failed);
    let err = lib.new_pollster("ctor_skip", &cfg).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Skip,
        "a quiet skip, like ExtensionLoadError"
    );

    // A discovery that panics in a loaded library: an error value, and the library
    // keeps answering afterwards.
    let panicking = lib
        .new_discovery("discover_panic", &cfg)
        .expect("discovery");
    let found = panicking.discover(&ctx, None);
    let err = found.error.expect("a panic becomes an error");
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(
        err.message().contains("discover_panic always panics"),
        "{err}"
    );
    assert_eq!(disc.discover(&ctx, Some("vm")).resources.len(), 4);
}
