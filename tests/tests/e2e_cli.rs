//! The `longshore` binary's service behaviours with real plugins: `poll --once` prints
//! JSON lines and fails when a pollster fails; `run` with no broker configured says so
//! and publishes to stdout, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use longshore_tests::{build_host, build_plugins, plugin_dir_with};

const ENTRY_POINTS: &str = r#"
[ceilometer.poll.compute]
"test.counter" = "test_synthetic:counter"
"test.panic" = "test_synthetic:panic"

[ceilometer.discover.compute]
fixed = "test_synthetic:fixed"
"#;

fn setup(meters: &str) -> (tempfile::TempDir, tempfile::TempDir) {
    build_plugins(&["longshore-plugin-synthetic"]);
    let plugins = plugin_dir_with(&[("test_synthetic", "libtest_synthetic.so")]);
    let conf = tempfile::tempdir().unwrap();
    std::fs::write(conf.path().join("entry_points.toml"), ENTRY_POINTS).unwrap();
    std::fs::write(
        conf.path().join("polling.yaml"),
        format!("sources:\n  - name: test\n    interval: 3600\n    meters: {meters}\n    discovery: [fixed]\n"),
    )
    .unwrap();
    (plugins, conf)
}

fn longshore(plugins: &Path, conf: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(build_host());
    cmd.args(args)
        .arg("--plugin-dir")
        .arg(plugins)
        .arg("--entry-points")
        .arg(conf.join("entry_points.toml"))
        .arg("--polling-file")
        .arg(conf.join("polling.yaml"))
        .env("RUST_LOG", "info")
        .env_remove("LONGSHORE_DEFAULT__TRANSPORT_URL");
    cmd
}

#[test]
fn poll_once_prints_json_lines_and_exits_1_when_a_pollster_fails() {
    let (plugins, conf) = setup("['test.*']");
    let out = longshore(plugins.path(), conf.path(), &["poll", "--once"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    let samples: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let counters = samples
        .iter()
        .filter(|s| s["counter_name"] == "test.counter")
        .count();
    assert_eq!(counters, 3, "one per discovered resource:\n{stdout}");
    // The sample the panicking pollster produced before panicking is not lost.
    assert_eq!(
        samples
            .iter()
            .filter(|s| s["counter_name"] == "test.panic")
            .count(),
        1
    );
    assert!(
        stderr.contains("test.panic"),
        "the failure is named:\n{stderr}"
    );

    let (plugins, conf) = setup("['test.counter']");
    let out = longshore(plugins.path(), conf.path(), &["poll", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lines of a child's pipe, as they come.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(
    rx: &mpsc::Receiver<String>,
    what: impl Fn(&str) -> bool,
    timeout: Duration,
    seen: &mut Vec<String>,
) -> bool {
    let deadline = Instant::now() + timeout;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let hit = what(&line);
        seen.push(line);
        if hit {
            return true;
        }
    }
    false
}

fn stop(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_without_a_broker_says_so_and_publishes_to_stdout() {
    let (plugins, conf) = setup("['test.counter']");
    let mut child = longshore(plugins.path(), conf.path(), &["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let mut log = Vec::new();
    let said = wait_for(
        &err,
        |l| l.contains("no message broker configured"),
        Duration::from_secs(30),
        &mut log,
    );
    let mut printed = Vec::new();
    let published = wait_for(
        &out,
        |l| l.contains("\"test.counter\""),
        Duration::from_secs(30),
        &mut printed,
    );
    let status = stop(&mut child);
    assert!(said, "no notice at start:\n{}", log.join("\n"));
    assert!(published, "no sample on stdout: {printed:?}");
    assert!(status.success(), "exit {status}");
}

#[test]
fn sighup_reloads_polling_definitions_and_refuses_a_broken_one() {
    let (plugins, conf) = setup("['test.counter']");
    let mut child = longshore(plugins.path(), conf.path(), &["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let (mut log, mut printed) = (Vec::new(), Vec::new());
    let hup = |child: &Child| {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    };
    let first = wait_for(
        &out,
        |l| l.contains("\"test.counter\""),
        Duration::from_secs(30),
        &mut printed,
    );

    // A broken polling.yaml: the reload is refused and the agent keeps running.
    let yaml = conf.path().join("polling.yaml");
    std::fs::write(
        &yaml,
        "sources:\n  - name: test\n    interval: -5\n    meters: ['*']\n",
    )
    .unwrap();
    hup(&child);
    let refused = wait_for(
        &err,
        |l| l.contains("reload refused"),
        Duration::from_secs(30),
        &mut log,
    );

    // A good one with another meter: after the reload its samples appear.
    std::fs::write(
        &yaml,
        "sources:\n  - name: other\n    interval: 3600\n    meters: ['test.panic']\n    discovery: [fixed]\n",
    )
    .unwrap();
    hup(&child);
    let reloaded = wait_for(
        &err,
        |l| l.contains("reloaded"),
        Duration::from_secs(30),
        &mut log,
    );
    let new_meter = wait_for(
        &out,
        |l| l.contains("\"test.panic\""),
        Duration::from_secs(30),
        &mut printed,
    );
    let status = stop(&mut child);
    let log = log.join("\n");
    assert!(first, "no first cycle: {printed:?}");
    assert!(refused, "broken polling.yaml not refused:\n{log}");
    assert!(reloaded, "no reload:\n{log}");
    assert!(
        new_meter,
        "the reloaded definition was not polled: {printed:?}"
    );
    assert!(status.code().is_some(), "killed by a signal: {status}");
}
