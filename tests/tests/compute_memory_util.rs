//! The example plugin of plugins/memory-util: its own .so, polled over the instances the
//! compute library discovers, like an operator would configure it.

mod compute_common;

use compute_common::*;
use longshore_plugin_api::host::Library;
use longshore_plugin_api::ValueRef;
use longshore_tests::node_xml::{self, NodeSpec};

#[test]
fn memory_util_is_the_percent_of_available_memory_in_use() {
    longshore_tests::build_plugins(&["longshore-plugin-memory-util"]);
    let lib = Library::open(&longshore_tests::built_library("memory_util"))
        .expect("load libmemory_util.so");
    let names: Vec<&str> = lib.info().plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["memory.util"]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.xml");
    let doms = node_xml::write(
        &NodeSpec {
            n: 3,
            shutoff: 1,
            seed: 2,
            ..Default::default()
        },
        &path,
    )
    .unwrap();
    let cfg = config(&test_uri(&path));
    let ctx = cycle();
    let discovered = run_cycle_in(&ctx, &cfg, &[]);
    assert_eq!(discovered.resources.len(), 3);

    let p = lib.new_pollster("memory.util", &cfg).expect("construct");
    assert_eq!(p.default_discovery().as_deref(), Some("local_instances"));
    let polled = p.get_samples(&ctx, &discovered.resources);
    assert!(polled.error.is_none(), "{:?}", polled.error);
    // The stopped instance has no memory stats.
    assert_eq!(polled.samples.len(), 2);
    for s in &polled.samples {
        assert_eq!(
            (s.name(), s.kind().as_str(), s.unit()),
            ("memory.util", "gauge", "%")
        );
        // The test driver reports usable = available / 2.
        assert_eq!(s.volume().get(), ValueRef::Float(50.0));
        assert!(doms[..2].iter().any(|d| d.uuid == s.resource_id()));
        assert_eq!(
            s.resource_metadata()
                .get("instance_host")
                .and_then(|v| v.as_str()),
            Some("peer-compute-0")
        );
    }
}
