//! Domains that come and go, and a libvirt that is not there: a domain disappearing
//! during a cycle is skipped without touching the others, and a URI that cannot be
//! opened fails polls transiently with a clear error until libvirt is reachable, then
//! polling recovers — no restart needed (Ceilometer disables its pollsters for good).
//!
//! The disappearing domain is real: `test:///default` is one shared driver state per
//! process, so domains the test defines and destroys through its own read-write
//! connection are seen by the plugin's read-only connection (the same libvirt library
//! is loaded once in the process).

mod compute_common;

use compute_common::*;
use longshore_plugin_api::{ErrorKind, Resource};
use longshore_tests::node_xml::{self, domain_xml, NodeSpec};
use virt::connect::Connect;

fn ours<'a>(c: &'a CycleResult, uuid: &str) -> Vec<&'a str> {
    c.samples
        .iter()
        .filter(|s| {
            s.resource_metadata()
                .get("instance_id")
                .and_then(|v| v.as_str())
                == Some(uuid)
        })
        .map(|s| s.name())
        .collect()
}

#[test]
fn a_domain_that_disappears_mid_cycle_is_skipped_and_the_others_are_polled() {
    let rw = Connect::open(Some("test:///default")).expect("read-write test:///default");
    let doms = node_xml::domains(&NodeSpec {
        n: 3,
        seed: 77,
        ..Default::default()
    });
    let mut handles = Vec::new();
    for (i, d) in doms.iter().enumerate() {
        let mut d = d.clone();
        d.name = format!("lifecycle-{i}");
        let dom = rw.define_domain_xml(&domain_xml(&d)).expect("define");
        dom.create().expect("start");
        handles.push(dom);
    }
    let [a, b, c] = [&doms[0].uuid, &doms[1].uuid, &doms[2].uuid];
    let cfg = config("test:///default");

    // Discovery sees the three Nova domains (the driver's own "test" domain has no Nova
    // metadata and is skipped).
    let ctx = cycle();
    let mut result = run_cycle_in(&ctx, &cfg, &[]);
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    let ids: Vec<&str> = result.resources.iter().map(Resource::id).collect();
    assert!(
        ids.contains(&a.as_str()) && ids.contains(&b.as_str()) && ids.contains(&c.as_str()),
        "{ids:?}"
    );
    result
        .resources
        .retain(|r| [a, b, c].contains(&&r.id().to_string()));

    // B vanishes after discovery, before any pollster ran.
    handles[1].destroy().expect("destroy B");
    handles[1].undefine().expect("undefine B");
    poll_in(&ctx, &cfg, &["cpu", "memory", "power.state"], &mut result);
    // C vanishes after the instance meters, before the disk and network ones.
    handles[2].destroy().expect("destroy C");
    handles[2].undefine().expect("undefine C");
    poll_in(
        &ctx,
        &cfg,
        &[
            "disk.device.read.bytes",
            "disk.device.capacity",
            "network.incoming.bytes",
            "disk.root.size",
        ],
        &mut result,
    );
    assert!(
        result.errors.is_empty(),
        "no pollster fails: {:?}",
        result.errors
    );

    let mut got_a = ours(&result, a);
    got_a.sort();
    assert_eq!(
        got_a.len(),
        3 + doms[0].disks().len() * 2 + doms[0].taps().len() + 1,
        "A is polled by every meter: {got_a:?}"
    );
    // B: only the flavor-based meter, which needs no hypervisor (as in Ceilometer).
    assert_eq!(ours(&result, b), ["disk.root.size"]);
    // C: what was inspected before it vanished, nothing after.
    let mut got_c = ours(&result, c);
    got_c.sort();
    assert_eq!(got_c, ["cpu", "disk.root.size", "memory", "power.state"]);

    // Next cycle: B and C are gone, A is polled.
    let next = run_cycle(&cfg);
    assert!(next.errors.is_empty(), "{:?}", next.errors);
    let ids: Vec<&str> = next.resources.iter().map(Resource::id).collect();
    assert!(ids.contains(&a.as_str()) && !ids.contains(&b.as_str()) && !ids.contains(&c.as_str()));
    assert!(!ours(&next, a).is_empty());

    handles[0].destroy().expect("destroy A");
    handles[0].undefine().expect("undefine A");
}

#[test]
fn an_unopenable_uri_fails_polls_clearly_and_polling_recovers_when_libvirt_is_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("later.xml");
    let uri = format!("test://{}", path.display());
    let cfg = config(&uri);

    // Construction never needs libvirt: the plugins load and the host keeps running.
    let disc = compute()
        .new_discovery("local_instances", &cfg)
        .expect("discovery constructs");
    let cpu = compute()
        .new_pollster("cpu", &cfg)
        .expect("pollster constructs");

    for _ in 0..2 {
        let found = disc.discover(&cycle(), None);
        let err = found.error.expect("no libvirt: an error");
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
        assert!(err.message().contains(&uri), "names the URI: {err}");
        assert!(err.message().contains("cannot connect to libvirt"), "{err}");
        let polled = cpu.get_samples(
            &cycle(),
            &[Resource::new("5be6128e-18c2-4797-a142-ea7d17be3111")],
        );
        let err = polled.error.expect("pollster error too");
        assert_eq!(err.kind(), ErrorKind::Transient);
        assert!(err.message().contains(&uri), "{err}");
    }

    // libvirt "comes back": the next cycle connects and polls.
    node_xml::write(
        &NodeSpec {
            n: 2,
            seed: 1,
            ..Default::default()
        },
        &path,
    )
    .expect("write node");
    let c = run_cycle_in(&cycle(), &cfg, &["cpu", "memory"]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.resources.len(), 2);
    assert_eq!(c.of("cpu").len(), 2);
}

#[test]
fn an_unknown_driver_uri_is_a_clear_transient_error() {
    let cfg = config("nosuchdriver:///system");
    let disc = compute()
        .new_discovery("local_instances", &cfg)
        .expect("constructs");
    let err = disc.discover(&cycle(), None).error.expect("error");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.message().contains("nosuchdriver:///system"), "{err}");
}

#[test]
fn flavor_size_meters_skip_a_resource_without_flavor_sizes() {
    // A resource that does not come from local_instances carries no `disk_gb` /
    // `ephemeral_gb`: it gets no sample (and a warning), the others are polled, and
    // nothing fails (the plugin sizes its output before making it).
    let cfg = config("test:///default");
    let with_sizes = longshore_plugin_api::Resource::builder("vm-a")
        .metadata(
            longshore_plugin_api::Map::new()
                .with("disk_gb", 20)
                .with("ephemeral_gb", 5)
                .into_shared(),
        )
        .build();
    let resources = [with_sizes, Resource::new("vm-b")];
    for (meter, want) in [("disk.root.size", 15), ("disk.ephemeral.size", 5)] {
        let p = compute().new_pollster(meter, &cfg).expect("constructs");
        let polled = p.get_samples(&cycle(), &resources);
        assert!(polled.error.is_none(), "{meter}: {:?}", polled.error);
        assert_eq!(polled.samples.len(), 1, "{meter}");
        assert_eq!(polled.samples[0].resource_id(), "vm-a");
        assert_eq!(polled.samples[0].volume().as_i64(), Some(want), "{meter}");
    }
}
