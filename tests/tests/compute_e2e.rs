//! End to end through the real agent: `longshore poll --once` with the repository's
//! entry_points.toml, the built libcompute.so and libmemory_util.so in a plugin
//! directory, the capture's polling.yaml and node: the published messages of the 23
//! meters Ceilometer 27 produced match the capture, plus the meters Ceilometer could not
//! produce on the test driver and the example plugin's memory.util.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value as Json;

#[test]
fn longshore_poll_once_publishes_what_ceilometer_published_and_more() {
    longshore_tests::build_plugins(&[
        "longshore",
        "longshore-plugin-compute",
        "longshore-plugin-memory-util",
    ]);
    let plugins = longshore_tests::plugin_dir_with(&[
        ("compute", "libcompute.so"),
        ("memory_util", "libmemory_util.so"),
    ]);
    let root = longshore_tests::workspace_root();
    let fixtures = longshore_tests::fixtures_dir().join("compute");
    let polling = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        polling.path(),
        "sources:\n  - name: all_compute_pollsters\n    interval: 5\n    meters:\n      - \"*\"\n",
    )
    .unwrap();
    let node = fixtures.join("node-capture.xml").canonicalize().unwrap();
    let out = Command::new(longshore_tests::target_profile_dir().join("longshore"))
        .current_dir(&root)
        .args(["poll", "--once", "--entry-points"])
        .arg(root.join("entry_points.toml"))
        .arg("--plugin-dir")
        .arg(plugins.path())
        .arg("--polling-file")
        .arg(polling.path())
        .args(["--host", "peer-compute-0", "--libvirt-uri"])
        .arg(format!("test://{}", node.display()))
        .env_remove("LONGSHORE_CONFIG")
        .output()
        .expect("run longshore");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "longshore poll failed: {stderr}");

    let messages: Vec<Json> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let mut by_meter: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &messages {
        *by_meter
            .entry(m["counter_name"].as_str().unwrap())
            .or_default() += 1;
        assert_eq!(m["source"], "openstack");
        assert_eq!(m["message_signature"].as_str().map(str::len), Some(64));
    }
    // 82 samples of Ceilometer's 23 meters + vcpus (3) + disk read/write (4 × 4 disks) +
    // memory.util (3). Rates need a second poll; perf and latency have no data here.
    assert_eq!(messages.len(), 82 + 3 + 16 + 3, "{by_meter:?}");
    assert_eq!(by_meter["vcpus"], 3);
    assert_eq!(by_meter["memory.util"], 3);
    assert_eq!(by_meter["disk.device.write.bytes"], 4);

    let capture: Vec<Json> = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("ceilometer27-samples.json")).unwrap(),
    )
    .unwrap();
    for want in capture.iter().filter(|s| s["cycle"] == 1) {
        let name = want["counter_name"].as_str().unwrap();
        let rid = &want["resource_id"];
        let got: Vec<&Json> = messages
            .iter()
            .filter(|m| m["counter_name"] == name && &m["resource_id"] == rid)
            .collect();
        assert_eq!(got.len(), 1, "{name} {rid}");
        let got = got[0];
        for key in [
            "counter_type",
            "counter_unit",
            "user_id",
            "project_id",
            "user_name",
            "project_name",
        ] {
            assert_eq!(got[key], want[key], "{name} {rid}: {key}");
        }
        let mut md = got["resource_metadata"].clone();
        let mut want_md = want["resource_metadata"].clone();
        if name == "cpu" {
            md.as_object_mut().unwrap().remove("cpu_number");
            want_md.as_object_mut().unwrap().remove("cpu_number");
        }
        assert_eq!(md, want_md, "{name} {rid}: resource_metadata");
        let keys: Vec<&String> = md.as_object().unwrap().keys().collect();
        let want_keys: Vec<&String> = want_md.as_object().unwrap().keys().collect();
        assert_eq!(keys, want_keys, "{name} {rid}: key order");
        let clock = name == "cpu" || (name.starts_with("network.") && !name.ends_with(".delta"));
        if !clock {
            assert_eq!(
                got["counter_volume"], want["counter_volume"],
                "{name} {rid}: volume"
            );
        }
    }
}
