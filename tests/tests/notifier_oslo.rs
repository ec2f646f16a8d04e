//! Interoperability with a consumer nobody here wrote: oslo.messaging (from PyPI, in a venv
//! cached under target/) runs a notification listener on the test's exchange and topic,
//! as Ceilometer's notification agent does, and must receive longshore's samples unchanged.
//!
//! The venv is created once (`target/notifier-oslo-venv`, marked ready by `.ready`); its
//! set-up is bounded (`timeout`), and fails this test with a clear message if PyPI cannot
//! be reached.

mod notifier_common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use longshore_notifier::Notifier;
use longshore_publisher::Publisher;
use notifier_common::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run_bounded(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        panic!(
            "{what} failed ({}); this interoperability test needs python3-venv and PyPI access to install oslo.messaging.\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// The venv's python with oslo.messaging installed (created on first use).
fn oslo_python() -> PathBuf {
    let venv = workspace().join("target").join("notifier-oslo-venv");
    let python = venv.join("bin").join("python");
    if venv.join(".ready").exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    run_bounded(
        "python3 -m venv",
        Command::new("timeout")
            .args(["120", "python3", "-m", "venv"])
            .arg(&venv),
    );
    run_bounded(
        "pip install oslo.messaging",
        Command::new("timeout")
            .arg("600")
            .arg(venv.join("bin").join("pip"))
            .args([
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "--default-timeout",
                "30",
                "oslo.messaging",
            ]),
    );
    std::fs::write(venv.join(".ready"), b"").unwrap();
    python
}

#[test]
fn oslo_messaging_listener_receives_longshore_samples() {
    let python = oslo_python();
    let amqp = Amqp::connect();
    let cfg = config("rabbit://guest:guest@127.0.0.1:5672/");
    let (exchange, topic) = (cfg.exchange.clone(), cfg.topics[0].clone());
    let script = workspace()
        .join("tests")
        .join("python")
        .join("notifier_listener.py");
    let mut child = Command::new("timeout")
        .arg("120")
        .arg(&python)
        .arg(&script)
        .args([
            "rabbit://guest:guest@127.0.0.1:5672/",
            &exchange,
            &topic,
            "3",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the oslo.messaging listener");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("listener output");
    assert_eq!(first, "READY", "listener did not start: {first}");

    let notifier = Notifier::new(cfg).unwrap();
    let batches = vec![
        batch("cpu", 0, 2),
        batch("memory.usage", 0, 3),
        batch("cpu", 1, 2),
    ];
    for b in &batches {
        notifier.publish(b.clone()).unwrap();
    }
    notifier.flush(Duration::from_secs(20)).unwrap();

    let mut got = Vec::new();
    while got.len() < 3 {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "the oslo listener received only {} of 3 notifications",
                    got.len()
                )
            });
        got.push(serde_json::from_str::<serde_json::Value>(&line).expect("JSON line"));
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "listener exit status {status}");

    // oslo's listener dispatches on a pool of threads: it may print them in another
    // order than they were sent. Pair them by their first sample's message_id.
    let first_id = |n: &serde_json::Value| n["payload"]["samples"][0]["message_id"].clone();
    got.sort_by_key(|n| first_id(n).to_string());
    let mut batches = batches;
    batches.sort_by_key(|b| {
        serde_json::to_value(b.messages[0].to_map()).unwrap()["message_id"].to_string()
    });
    for (g, b) in got.iter().zip(&batches) {
        assert_eq!(g["event_type"], "telemetry.polling");
        assert_eq!(g["publisher_id"], "ceilometer.polling");
        // We send no context (as Ceilometer: ctxt {}); oslo's listener adds its own
        // `client_timeout: None`.
        assert!(
            g["ctxt"].as_object().unwrap().values().all(|v| v.is_null()),
            "{}",
            g["ctxt"]
        );
        let want: Vec<serde_json::Value> = b
            .messages
            .iter()
            .map(|m| serde_json::to_value(m.to_map()).unwrap())
            .collect();
        assert_eq!(g["payload"]["samples"], serde_json::Value::Array(want));
        assert_eq!(g["metadata"]["message_id"].as_str().unwrap().len(), 36);
        assert!(g["metadata"]["timestamp"].as_str().unwrap().contains(' '));
    }
    notifier.close(Duration::from_secs(10)).unwrap();
    let queues: Vec<String> = [
        "audit", "debug", "info", "warn", "error", "critical", "sample",
    ]
    .iter()
    .map(|p| format!("{topic}.{p}"))
    .collect();
    amqp.cleanup(&exchange, &queues);
}
