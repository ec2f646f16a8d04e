//! The meters Ceilometer cannot produce on the libvirt test driver (cpu, vcpus, disk
//! read/write counters, rates), the shut-off behaviour with and without
//! report_stopped_instance_metrics, and discovery of non-Nova, broken and newer-Nova
//! domains — all through the real libcompute.so on generated test-driver nodes.

mod compute_common;

use std::path::PathBuf;

use compute_common::*;
use longshore_tests::node_xml::{self, domain_xml, DomainSpec, NodeSpec};

fn node(spec: &NodeSpec) -> (tempfile::TempDir, PathBuf, Vec<DomainSpec>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.xml");
    let doms = node_xml::write(spec, &path).expect("write node");
    (dir, path, doms)
}

fn node_from(domains: &[String]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.xml");
    let mut x = String::from("<node>\n");
    for d in domains {
        x.push_str(d);
    }
    x.push_str("</node>\n");
    std::fs::write(&path, x).expect("write node");
    (dir, path)
}

#[test]
fn cpu_vcpus_and_disk_io_come_from_the_per_call_fallbacks() {
    let (_dir, path, doms) = node(&NodeSpec {
        n: 4,
        seed: 11,
        ..Default::default()
    });
    let cfg = config(&test_uri(&path));
    let before = now_ns();
    let c = run_cycle(&cfg);
    let after = now_ns();
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.resources.len(), 4);

    for d in &doms {
        // cpu: the test driver's virDomainGetInfo cpuTime is the wall clock in ns.
        let cpu = c.one("cpu", &d.uuid);
        let ns = cpu.volume().as_i64().expect("int ns") as u128;
        assert!(
            before <= ns && ns <= after,
            "cpu {ns} outside [{before}, {after}]"
        );
        assert_eq!(
            cpu.resource_metadata()
                .get("cpu_number")
                .and_then(|v| v.as_i64()),
            Some(d.flavor.vcpus as i64)
        );
        let vcpus = c.one("vcpus", &d.uuid);
        assert_eq!(vcpus.kind().as_str(), "gauge");
        assert_eq!(vcpus.unit(), "vcpu");
        assert_eq!(vcpus.volume().as_i64(), Some(d.flavor.vcpus as i64));

        // Disk I/O: virDomainBlockStats works on the test driver (its Flags variant does
        // not, which made Ceilometer skip every device): rd_req = µs/10, rd_bytes = µs/20,
        // wr_req = µs/30, wr_bytes = µs/40 of the call's wall clock.
        for dev in d.disks() {
            let rid = format!("{}-{dev}", d.uuid);
            for (meter, unit, div) in [
                ("disk.device.read.requests", "request", 10),
                ("disk.device.read.bytes", "B", 20),
                ("disk.device.write.requests", "request", 30),
                ("disk.device.write.bytes", "B", 40),
            ] {
                let s = c.one(meter, &rid);
                assert_eq!(s.kind().as_str(), "cumulative", "{meter}");
                assert_eq!(s.unit(), unit, "{meter}");
                assert_eq!(
                    s.resource_metadata()
                        .get("disk_name")
                        .and_then(|v| v.as_str()),
                    Some(dev)
                );
                let v = s.volume().as_i64().expect("int") as u128;
                assert!(
                    before / 1000 / div <= v && v <= after / 1000 / div,
                    "{meter} {v}"
                );
            }
            // Capacity = max(capacity, physical) of the test driver's 1 TiB disks.
            assert_eq!(
                c.one("disk.device.capacity", &rid).volume().as_i64(),
                Some(1 << 40)
            );
        }
        // Latency needs virDomainBlockStatsFlags, which the test driver lacks.
        assert!(c.of("disk.device.read.latency").is_empty());

        // Memory, as floats in MiB: actual and available = the domain's memory, rss and
        // usage (available − usable) = half of it on the test driver.
        let mib = d.flavor.ram as f64;
        let mem = |m: &str| c.one(m, &d.uuid).volume().as_f64().unwrap();
        assert_eq!(mem("memory"), mib);
        assert_eq!(mem("memory.available"), mib);
        assert_eq!(mem("memory.usage"), mib / 2.0);
        assert_eq!(mem("memory.resident"), mib / 2.0);
        assert_eq!(
            c.one("memory.swap.in", &d.uuid).volume().get(),
            longshore_plugin_api::ValueRef::Float(0.0)
        );
        assert_eq!(c.one("power.state", &d.uuid).volume().as_i64(), Some(1));
        assert_eq!(
            c.one("disk.root.size", &d.uuid).volume().as_i64(),
            Some((d.flavor.disk - d.flavor.ephemeral) as i64)
        );
        assert_eq!(
            c.one("disk.ephemeral.size", &d.uuid).volume().as_i64(),
            Some(d.flavor.ephemeral as i64)
        );

        // Network counters: rx_bytes = µs/10 on the test driver.
        for tap in d.taps() {
            let rid = format!("{}-{}-{tap}", d.name, d.uuid);
            let v = c
                .one("network.incoming.bytes", &rid)
                .volume()
                .as_i64()
                .unwrap() as u128;
            assert!(before / 1000 / 10 <= v && v <= after / 1000 / 10);
            assert_eq!(
                c.one("network.incoming.bytes.delta", &rid)
                    .volume()
                    .as_i64(),
                Some(0),
                "0 on first sight"
            );
        }
    }
    // Perf events are not enabled on the test driver: no perf samples.
    assert!(c.samples.iter().all(|s| !s.name().starts_with("perf.")));
}

#[test]
fn rates_come_from_two_successive_polls() {
    let (_dir, path, doms) = node(&NodeSpec {
        n: 2,
        seed: 5,
        ..Default::default()
    });
    let cfg = config(&test_uri(&path));
    let first = run_cycle(&cfg);
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert!(first.of("network.incoming.bytes.rate").is_empty());
    // Not synchronisation: the rate needs counters some time apart.
    std::thread::sleep(std::time::Duration::from_millis(250));
    let second = run_cycle(&cfg);
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    let taps: usize = doms.iter().map(|d| d.taps().len()).sum();
    let rx = second.of("network.incoming.bytes.rate");
    let tx = second.of("network.outgoing.bytes.rate");
    assert_eq!((rx.len(), tx.len()), (taps, taps));
    for s in rx {
        assert_eq!((s.kind().as_str(), s.unit()), ("gauge", "B/s"));
        // The test driver's rx_bytes grow by 10^6/10 per second, tx_bytes by 10^6/20.
        let r = s.volume().as_f64().expect("float rate");
        assert!((r - 100_000.0).abs() < 5_000.0, "rx rate {r}");
        assert!(s.resource_metadata().contains_key("vnic_name"));
    }
    for s in tx {
        let r = s.volume().as_f64().unwrap();
        assert!((r - 50_000.0).abs() < 2_500.0, "tx rate {r}");
    }
}

#[test]
fn shut_off_instances_without_report_stopped_instance_metrics() {
    let (_dir, path, doms) = node(&NodeSpec {
        n: 4,
        shutoff: 2,
        seed: 3,
        ..Default::default()
    });
    let cfg = config(&test_uri(&path));
    let c = run_cycle(&cfg);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.resources.len(), 4, "discovery keeps stopped instances");
    for d in &doms[2..] {
        let r = c.resources.iter().find(|r| r.id() == d.uuid).unwrap();
        assert_eq!(
            r.metadata().get("state").and_then(|v| v.as_str()),
            Some("shutdown")
        );
        assert_eq!(
            r.metadata().get("status").and_then(|v| v.as_str()),
            Some("stopped")
        );
        let mine: Vec<&str> = c
            .samples
            .iter()
            .filter(|s| {
                s.resource_metadata()
                    .get("instance_id")
                    .and_then(|v| v.as_str())
                    == Some(&d.uuid)
            })
            .map(|s| s.name())
            .collect();
        assert_eq!(
            mine,
            ["disk.root.size", "disk.ephemeral.size"],
            "stopped {}",
            d.uuid
        );
    }
    for d in &doms[..2] {
        assert_eq!(c.one("power.state", &d.uuid).volume().as_i64(), Some(1));
    }
}

#[test]
fn shut_off_instances_with_report_stopped_instance_metrics() {
    let (_dir, path, doms) = node(&NodeSpec {
        n: 3,
        shutoff: 1,
        seed: 4,
        ..Default::default()
    });
    let cfg = config(&test_uri(&path)).with("compute", "report_stopped_instance_metrics", true);
    let c = run_cycle(&cfg);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let d = &doms[2];
    assert_eq!(d.runstate, Some(5));
    let mut mine: Vec<&str> = c
        .samples
        .iter()
        .filter(|s| {
            s.resource_metadata()
                .get("instance_id")
                .and_then(|v| v.as_str())
                == Some(&d.uuid)
        })
        .map(|s| s.name())
        .collect();
    mine.sort();
    let mut want = vec![
        "power.state",
        "vcpus",
        "memory",
        "disk.root.size",
        "disk.ephemeral.size",
    ];
    for _ in d.disks() {
        want.extend([
            "disk.device.capacity",
            "disk.device.allocation",
            "disk.device.usage",
        ]);
    }
    want.sort();
    assert_eq!(mine, want);
    assert_eq!(c.one("power.state", &d.uuid).volume().as_i64(), Some(5));
    assert_eq!(
        c.one("vcpus", &d.uuid).volume().as_i64(),
        Some(d.flavor.vcpus as i64)
    );
    // maxMem / 1024, a float like Ceilometer's.
    assert_eq!(
        c.one("memory", &d.uuid).volume().get(),
        longshore_plugin_api::ValueRef::Float(d.flavor.ram as f64)
    );
    // Running instances are unaffected.
    assert_eq!(
        c.one("power.state", &doms[0].uuid).volume().as_i64(),
        Some(1)
    );
    assert_eq!(c.of("cpu").len(), 2);
}

#[test]
fn non_nova_and_broken_domains_are_skipped_with_one_warning_each() {
    let doms = node_xml::domains(&NodeSpec {
        n: 6,
        non_nova: 1,
        seed: 9,
        ..Default::default()
    });
    // 0: owner/user without uuid (Ceilometer: KeyError, whole discovery aborted)
    // 1: flavor without name (same)
    // 2: no <owner> (Ceilometer: ERROR, domain skipped)
    // 3: a non-integer flavor disk (Ceilometer: ValueError, discovery aborted)
    // 4, 5: fine; 6: no Nova metadata at all (Ceilometer: ERROR every cycle)
    let mut xml: Vec<String> = doms.iter().map(domain_xml).collect();
    let user = format!("<nova:user uuid=\"{}\">", doms[0].user.1);
    xml[0] = xml[0].replace(&user, "<nova:user>");
    xml[1] = xml[1].replace(
        &format!("<nova:flavor name=\"{}\"", doms[1].flavor.name),
        "<nova:flavor",
    );
    let owner_start = xml[2].find("<nova:owner>").unwrap();
    let owner_end = xml[2].find("</nova:owner>").unwrap() + "</nova:owner>".len();
    xml[2].replace_range(owner_start..owner_end, "");
    xml[3] = xml[3].replace(
        &format!("<nova:disk>{}</nova:disk>", doms[3].flavor.disk),
        "<nova:disk>big</nova:disk>",
    );
    let (_dir, path) = node_from(&xml);
    let cfg = config(&test_uri(&path));

    let c = run_cycle(&cfg);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let ids: Vec<&str> = c.resources.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&doms[4].uuid.as_str()) && ids.contains(&doms[5].uuid.as_str()));
    assert_eq!(c.of("power.state").len(), 2);

    let expect = [
        (&doms[0].uuid, "<owner><user> has no uuid attribute"),
        (&doms[1].uuid, "<flavor> has no name attribute"),
        (&doms[2].uuid, "no <owner> element"),
        (&doms[3].uuid, "not an integer"),
        (&doms[6].uuid, "no Nova metadata"),
    ];
    for (uuid, why) in expect {
        let warnings = logged(log::Level::Warn, uuid);
        assert_eq!(warnings.len(), 1, "{uuid}: {warnings:?}");
        assert!(warnings[0].contains(why), "{}", warnings[0]);
    }
    // Next cycle: same result, no new warning (debug instead).
    let again = run_cycle(&cfg);
    assert_eq!(again.resources.len(), 2);
    for (uuid, _) in expect {
        assert_eq!(logged(log::Level::Warn, uuid).len(), 1);
        assert!(!logged(log::Level::Debug, uuid).is_empty());
    }
}

#[test]
fn newer_nova_metadata_and_missing_flavor_id() {
    let (_dir, path, doms) = node(&NodeSpec {
        n: 2,
        seed: 21,
        image_meta: true,
        flavor_id: false,
        ..Default::default()
    });
    let cfg = config(&test_uri(&path));
    let c = run_cycle_in(&cycle(), &cfg, &["disk.root.size"]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    for d in &doms {
        let s = c.one("disk.root.size", &d.uuid);
        let md = metadata_json(s);
        let keys: Vec<&str> = md.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "display_name",
                "name",
                "instance_id",
                "instance_type",
                "host",
                "instance_host",
                "flavor",
                "status",
                "state",
                "task_state",
                "image",
                "image_ref",
                "image_ref_url",
                "image_meta",
                "architecture",
                "os_type",
                "vcpus",
                "memory_mb",
                "disk_gb",
                "ephemeral_gb",
                "root_gb"
            ]
        );
        // Without flavor@id (and no Nova API) the flavor name is the id.
        assert_eq!(md["flavor"]["id"], d.flavor.name);
        assert_eq!(
            md["image_meta"],
            serde_json::json!({
                "base_image_ref": d.image.0,
                "container_format": "bare",
                "disk_format": d.image.2,
                "min_disk": d.flavor.disk.min(10).to_string(),
                "min_ram": "0",
                "os_distro": d.image.1,
                "os_type": "linux",
            })
        );
        let order: Vec<&str> = md["image_meta"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            order,
            [
                "base_image_ref",
                "container_format",
                "disk_format",
                "min_disk",
                "min_ram",
                "os_distro",
                "os_type"
            ]
        );
    }
}

#[test]
fn one_inspection_per_instance_per_cycle() {
    // Every meter of a cycle shares the cycle's domain list (its one cycle-cache
    // entry), and on it each instance's inspections: instance, disks, disk info, vNICs
    // and devices are inspected once per instance.
    let (_dir, path, _doms) = node(&NodeSpec {
        n: 3,
        seed: 8,
        ..Default::default()
    });
    let cfg = config(&test_uri(&path));
    let ctx = cycle();
    let c = run_cycle_in(&ctx, &cfg, &ALL_METERS);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(ctx.cache().len(), 1);
    let uuids: Vec<&str> = c.resources.iter().map(|r| r.id()).collect();
    assert_eq!(uuids.len(), 3);
    // (seed 8 is this test's alone: other tests' instances have other uuids.) The
    // devices come from the discovery's reading of each domain's XML in the same cycle.
    for (what, times) in [
        ("instance", 1),
        ("the disks of instance", 1),
        ("the disk info of instance", 1),
        ("the vNICs of instance", 1),
        ("the devices of instance", 0),
    ] {
        for uuid in &uuids {
            let line = format!("inspecting {what} {uuid}");
            let n = LOGS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|(l, m)| *l == log::Level::Trace && *m == line)
                .count();
            assert_eq!(n, times, "{line:?} logged {n} times");
        }
    }
}

#[test]
fn discovery_method_other_than_libvirt_metadata_is_refused_clearly() {
    let cfg = config("test:///default").with("compute", "instance_discovery_method", "naive");
    let err = compute()
        .new_discovery("local_instances", &cfg)
        .unwrap_err();
    assert!(err.to_string().contains("libvirt_metadata"), "{err}");
    // Pollsters do not care.
    assert!(compute().new_pollster("cpu", &cfg).is_ok());
    let info = compute().info();
    let names: Vec<&str> = info.plugins.iter().map(|p| p.name.as_str()).collect();
    for m in ALL_METERS {
        assert!(names.contains(&m), "{m} registered");
    }
    assert!(names.contains(&"local_instances") && names.contains(&"local_node"));
    assert_eq!(names.len(), 38);
}

#[test]
fn local_node_is_the_host() {
    let cfg = config("test:///default");
    let d = compute().new_discovery("local_node", &cfg).unwrap();
    let found = d.discover(&cycle(), None);
    assert!(found.error.is_none());
    assert_eq!(
        found.resources.iter().map(|r| r.id()).collect::<Vec<_>>(),
        ["peer-compute-0"]
    );
    assert_eq!(d.group_id().as_deref(), Some("LocalNode-peer-compute-0"));
}

#[test]
fn deltas_are_per_instance_even_when_two_instances_share_a_tap_name() {
    // Ceilometer keys its delta cache by tap name only (§13.7): the second instance's
    // delta would be taken against the first one's counter.
    let mut doms = node_xml::domains(&NodeSpec {
        n: 2,
        seed: 31,
        ..Default::default()
    });
    let shared = doms[0].interfaces[0].1.clone();
    doms[1].interfaces.truncate(1);
    doms[1].interfaces[0].1 = shared;
    doms[0].interfaces.truncate(1);
    let xml: Vec<String> = doms.iter().map(domain_xml).collect();
    let (_dir, path) = node_from(&xml);
    let cfg = config(&test_uri(&path));
    let meters = ["network.incoming.bytes", "network.incoming.bytes.delta"];
    let first = run_cycle_in(&cycle(), &cfg, &meters);
    let second = run_cycle_in(&cycle(), &cfg, &meters);
    assert!(first.errors.is_empty() && second.errors.is_empty());
    let tap = &doms[0].taps()[0];
    assert_eq!(tap, &doms[1].taps()[0]);
    for d in &doms {
        let rid = format!("{}-{}-{tap}", d.name, d.uuid);
        assert_eq!(
            first
                .one("network.incoming.bytes.delta", &rid)
                .volume()
                .as_i64(),
            Some(0)
        );
        let before = first
            .one("network.incoming.bytes", &rid)
            .volume()
            .as_i64()
            .unwrap();
        let after = second
            .one("network.incoming.bytes", &rid)
            .volume()
            .as_i64()
            .unwrap();
        assert_eq!(
            second
                .one("network.incoming.bytes.delta", &rid)
                .volume()
                .as_i64(),
            Some(after - before),
            "{rid}"
        );
    }
}
