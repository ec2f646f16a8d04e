//! Parity with the real Ceilometer 27 agent: the capture's node.xml polled through the
//! real libcompute.so must give, for each of the 23 meters Ceilometer published on it,
//! the same samples: name, type, unit, owner, resource_id, resource_metadata (keys, order
//! and values), and the volume wherever the test driver does not derive it from the
//! clock. Fixture: tests/fixtures/compute/ (node-capture.xml and the 164 samples the
//! capture holds, 2 cycles).

mod compute_common;

use std::collections::{BTreeMap, BTreeSet};

use compute_common::*;
use serde_json::Value as Json;

fn expected(cycle: u64) -> Vec<Json> {
    let path = longshore_tests::fixtures_dir().join("compute/ceilometer27-samples.json");
    let all: Vec<Json> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json");
    all.into_iter().filter(|s| s["cycle"] == cycle).collect()
}

/// Meters whose test-driver value follows the wall clock (`cpu`: Ceilometer's 0 there is
/// its bug; the counters: virDomainInterfaceStats is derived from gettimeofday).
fn clock_driven(meter: &str, cycle: u64) -> bool {
    meter == "cpu" || (meter.starts_with("network.") && (!meter.ends_with(".delta") || cycle > 1))
}

fn check_cycle(cycle: u64, ours: &CycleResult) {
    let want = expected(cycle);
    let meters: BTreeSet<&str> = want
        .iter()
        .map(|s| s["counter_name"].as_str().unwrap())
        .collect();
    assert_eq!(meters.len(), 23, "the capture has 23 meters");

    // Same (meter, resource_id) set for those meters: nothing missing, nothing extra.
    let want_keys: BTreeMap<(String, String), &Json> = want
        .iter()
        .map(|s| {
            (
                (
                    s["counter_name"].as_str().unwrap().to_string(),
                    s["resource_id"].as_str().unwrap().to_string(),
                ),
                s,
            )
        })
        .collect();
    assert_eq!(
        want_keys.len(),
        want.len(),
        "capture keys are unique per cycle"
    );
    let our_keys: BTreeSet<(String, String)> = ours
        .samples
        .iter()
        .filter(|s| meters.contains(s.name()))
        .map(|s| (s.name().to_string(), s.resource_id().to_string()))
        .collect();
    assert_eq!(
        our_keys,
        want_keys.keys().cloned().collect::<BTreeSet<_>>(),
        "cycle {cycle}: samples of the 23 meters differ"
    );

    for ((meter, rid), w) in &want_keys {
        let s = ours.one(meter, rid);
        let ctx = format!("cycle {cycle} {meter} {rid}");
        assert_eq!(s.kind().as_str(), w["counter_type"], "{ctx}: type");
        assert_eq!(s.unit(), w["counter_unit"], "{ctx}: unit");
        assert_eq!(
            Some(s.user_id().unwrap()),
            w["user_id"].as_str(),
            "{ctx}: user_id"
        );
        assert_eq!(
            Some(s.project_id().unwrap()),
            w["project_id"].as_str(),
            "{ctx}: project_id"
        );
        assert!(s.monotonic_time().is_some(), "{ctx}: monotonic_time");

        let mut got_md = metadata_json(s);
        let mut want_md = w["resource_metadata"].clone();
        if meter == "cpu" {
            // Ceilometer publishes cpu_number null on the test driver (its bulk stats
            // have no vcpu.current); longshore falls back to virDomainGetInfo.
            assert!(want_md["cpu_number"].is_null());
            assert_eq!(
                got_md["cpu_number"], want_md["flavor"]["vcpus"],
                "{ctx}: cpu_number"
            );
            got_md.as_object_mut().unwrap().remove("cpu_number");
            want_md.as_object_mut().unwrap().remove("cpu_number");
        }
        let got_keys: Vec<&String> = got_md.as_object().unwrap().keys().collect();
        let want_keys: Vec<&String> = want_md.as_object().unwrap().keys().collect();
        assert_eq!(got_keys, want_keys, "{ctx}: metadata keys or their order");
        assert_eq!(got_md, want_md, "{ctx}: metadata values");

        let got_v = volume_json(s);
        let want_v = &w["counter_volume"];
        if clock_driven(meter, cycle) {
            assert!(
                got_v.is_u64() && want_v.is_u64(),
                "{ctx}: int volume, got {got_v}"
            );
            assert!(got_v.as_u64().unwrap() > 0, "{ctx}: {got_v}");
        } else {
            assert_eq!(&got_v, want_v, "{ctx}: volume (and its int/float type)");
        }
    }
}

#[test]
fn two_cycles_match_ceilometer_27_on_the_capture_node() {
    let node = longshore_tests::fixtures_dir().join("compute/node-capture.xml");
    let cfg = config(&test_uri(&node));

    let first = run_cycle(&cfg);
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(first.resources.len(), 3);
    check_cycle(1, &first);
    assert!(
        first.of("network.incoming.bytes.rate").is_empty(),
        "no rate on the first poll"
    );

    let second = run_cycle(&cfg);
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    check_cycle(2, &second);

    // The second cycle's deltas are exactly the counter differences (one inspection per
    // instance per cycle feeds every network meter).
    for d in second.of("network.incoming.bytes.delta") {
        let before = first
            .one("network.incoming.bytes", d.resource_id())
            .volume()
            .as_i64()
            .unwrap();
        let after = second
            .one("network.incoming.bytes", d.resource_id())
            .volume()
            .as_i64()
            .unwrap();
        assert_eq!(
            d.volume().as_i64(),
            Some(after - before),
            "{}",
            d.resource_id()
        );
        assert!(after > before);
    }
    for d in second.of("network.outgoing.bytes.delta") {
        let before = first
            .one("network.outgoing.bytes", d.resource_id())
            .volume()
            .as_i64()
            .unwrap();
        let after = second
            .one("network.outgoing.bytes", d.resource_id())
            .volume()
            .as_i64()
            .unwrap();
        assert_eq!(
            d.volume().as_i64(),
            Some(after - before),
            "{}",
            d.resource_id()
        );
    }
}
