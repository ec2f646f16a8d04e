//! The whole agent as an operator runs it: the real `longshore` binary, the shipped
//! entry_points.toml, the compute plugin on the libvirt test node Ceilometer 27 was
//! captured on, RabbitMQ. What arrives on the bus must match what Ceilometer sent:
//! same meters, types, units, resource ids and metadata, and valid signatures.

mod notifier_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use longshore_tests::{build_host, build_plugins, fixtures_dir, plugin_dir_with, workspace_root};
use notifier_common::{unique, Amqp};
use serde_json::Value as Json;

const SECRET: &str = "peer-telemetry-secret";

fn capture() -> PathBuf {
    fixtures_dir().join("capture")
}

/// The first cycle's samples of the capture, keyed by (meter, resource id).
fn captured_samples() -> BTreeMap<(String, String), Json> {
    let mut out = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(capture().join("decoded"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let doc: Json = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        for s in doc["envelope"]["oslo.message"]["payload"]["samples"]
            .as_array()
            .unwrap()
        {
            let key = (
                s["counter_name"].as_str().unwrap().to_string(),
                s["resource_id"].as_str().unwrap().to_string(),
            );
            out.entry(key).or_insert_with(|| s.clone());
        }
    }
    out
}

/// Metadata without what depends on the clock.
fn stable_metadata(m: &Json) -> Json {
    let mut m = m.clone();
    if let Some(obj) = m.as_object_mut() {
        obj.remove("timestamp");
    }
    m
}

fn resign(sample: &Json) -> String {
    let text = serde_json::to_string(sample).unwrap();
    let value: longshore_plugin_api::Value = serde_json::from_str(&text).unwrap();
    longshore_publisher::compute_signature(value.as_map().unwrap(), SECRET)
}

#[test]
fn run_publishes_what_ceilometer_publishes() {
    build_plugins(&["longshore-plugin-compute"]);
    let longshore = build_host();
    let plugins = plugin_dir_with(&[("compute", "libcompute.so")]);
    let exchange = unique("e2e");
    let topic = unique("e2e-topic");
    let queue = format!("{topic}.sample");
    let node = capture().join("node.xml");
    let amqp = Amqp::connect();
    // Declared first, with the flags the notifier uses, so nothing is missed: the
    // notifier re-declares it (equivalent) and binds it before its first publish.
    amqp.queue_equivalent(&queue, false, false)
        .expect("declare the test queue");

    let mut child = Command::new(&longshore)
        .current_dir(workspace_root())
        .args(["run", "--plugin-dir"])
        .arg(plugins.path())
        .arg("--libvirt-uri")
        .arg(format!("test://{}", node.display()))
        .args(["--host", "peer-compute-0", "--telemetry-secret", SECRET])
        .args(["--transport-url", "rabbit://guest:guest@127.0.0.1:5672/"])
        .arg("--polling-file")
        .arg(capture().join("polling.yaml"))
        .arg("--set")
        .arg(format!("DEFAULT.control_exchange={exchange}"))
        .arg("--set")
        .arg(format!("oslo_messaging_notifications.topics=[\"{topic}\"]"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start longshore run");

    let expected = captured_samples();
    let wanted_meters: BTreeSet<&str> = expected.keys().map(|(m, _)| m.as_str()).collect();
    let mut got: BTreeMap<(String, String), Json> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let have: BTreeSet<&str> = got.keys().map(|(m, _)| m.as_str()).collect();
        if wanted_meters.is_subset(&have) && expected.keys().all(|k| got.contains_key(k)) {
            break;
        }
        {
            // Everything for 2 s, not one message: the consumer auto-acks, so bodies
            // already pushed to it when it is cancelled are lost, and a cycle publishes
            // its batches in one burst (taking one per call lost the burst's second).
            for msg in amqp.take(&queue, usize::MAX, Duration::from_secs(2), Duration::ZERO) {
                let inner = msg.inner();
                assert_eq!(inner["publisher_id"], "ceilometer.polling");
                assert_eq!(inner["event_type"], "telemetry.polling");
                assert_eq!(inner["priority"], "SAMPLE");
                for s in inner["payload"]["samples"].as_array().unwrap() {
                    let key = (
                        s["counter_name"].as_str().unwrap().to_string(),
                        s["resource_id"].as_str().unwrap().to_string(),
                    );
                    got.entry(key).or_insert_with(|| s.clone());
                }
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("longshore exited early with {status}");
        }
    }

    // Stop it the way a service manager does; it must exit cleanly.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stop_deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < stop_deadline,
            "longshore did not stop within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    amqp.cleanup(&exchange, std::slice::from_ref(&queue));
    assert!(status.success(), "exit status {status}; log:\n{stderr}");
    assert!(!stderr.contains(SECRET), "the secret leaked into the log");

    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "never arrived: {missing:?}\nlog:\n{stderr}"
    );
    for (key, want) in &expected {
        let have = got
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key:?} on the bus; log:\n{stderr}"));
        for field in [
            "counter_type",
            "counter_unit",
            "user_id",
            "project_id",
            "source",
            "user_name",
            "project_name",
        ] {
            assert_eq!(have[field], want[field], "{field} of {key:?}");
        }
        let (mut have_md, mut want_md) = (
            stable_metadata(&have["resource_metadata"]),
            stable_metadata(&want["resource_metadata"]),
        );
        if want_md["cpu_number"].is_null() && !have_md["cpu_number"].is_null() {
            // Ceilometer reads vcpu.current from bulk stats, which the test driver lacks,
            // and publishes null; longshore falls back to virDomainGetInfo (documented).
            assert!(
                have_md["cpu_number"].as_i64().unwrap() > 0,
                "cpu_number of {key:?}"
            );
            have_md.as_object_mut().unwrap().remove("cpu_number");
            want_md.as_object_mut().unwrap().remove("cpu_number");
        }
        assert_eq!(have_md, want_md, "resource_metadata of {key:?}");
        // Volumes are ints or floats exactly as Ceilometer's (512.0 stays a float).
        assert_eq!(
            have["counter_volume"].is_f64(),
            want["counter_volume"].is_f64(),
            "volume type of {key:?}"
        );
        assert_eq!(
            have["message_signature"].as_str().unwrap(),
            resign(have),
            "signature of {key:?}"
        );
    }
}
