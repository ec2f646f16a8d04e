//! The compute library against a real libvirt daemon (libvirt's test driver hosted by a
//! private libvirtd, reached through the remote driver as `qemu:///system` is): when
//! the daemon hangs, keepalive closes the connection, the stuck call fails instead of
//! waiting forever, and polling reconnects once the daemon answers again.
//!
//! Needs `libvirtd` (tests/scripts/libvirtd-test-driver.sh installs libvirt-daemon when
//! run as root; .ci/setup does it for CI).

mod compute_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use compute_common::*;
use longshore_plugin_api::{Config, ErrorKind};
use longshore_tests::node_xml::{self, NodeSpec};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/libvirtd-test-driver.sh")
}

/// A private libvirtd, stopped (and resumed first, if the test stopped it) on drop.
struct Daemon {
    dir: tempfile::TempDir,
    socket: String,
    pid: i32,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("longshore-lvd")
            .tempdir()
            .expect("tempdir");
        // The daemon runs as `nobody`: it must reach the directory and the node file.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let out = Command::new("sh")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .env("LIBVIRTD_TEST_IDLE_TIMEOUT", "120")
            .output()
            .expect("run the libvirtd script");
        assert!(
            out.status.success(),
            "starting libvirtd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket = String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string();
        let status = Command::new("sh")
            .arg(script())
            .arg("status")
            .arg(dir.path())
            .output()
            .expect("status");
        let pid = String::from_utf8_lossy(&status.stdout)
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("daemon pid");
        Daemon { dir, socket, pid }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on the daemon this test started.
        assert_eq!(unsafe { libc::kill(self.pid, sig) }, 0, "kill {sig}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = Command::new("sh")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_hung_daemon_fails_the_stuck_call_and_polling_reconnects() {
    let daemon = Daemon::start();
    let node = daemon.dir.path().join("node.xml");
    node_xml::write(
        &NodeSpec {
            n: 2,
            seed: 3,
            ..Default::default()
        },
        &node,
    )
    .expect("write node");
    std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod node");
    let uri = format!("test+unix://{}?socket={}", node.display(), daemon.socket);
    let cfg: Config = config(&uri)
        .with("compute", "libvirt_keepalive_interval", 1)
        .with("compute", "libvirt_keepalive_count", 1);

    let c = run_cycle_in(&cycle(), &cfg, &["cpu", "memory"]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.of("cpu").len(), 2);
    let resources = c.resources.clone();

    // The daemon hangs (stopped, its socket still open): the call must not wait forever.
    daemon.signal(libc::SIGSTOP);
    let (tx, rx) = mpsc::channel();
    let r = resources.clone();
    let cfg2 = cfg.clone();
    let started = Instant::now();
    std::thread::spawn(move || {
        let p = compute().new_pollster("cpu", &cfg2).expect("pollster");
        let _ = tx.send(p.get_samples(&cycle(), &r));
    });
    let polled = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the call on a hung daemon returned (keepalive closed the connection)");
    let err = polled.error.expect("an error, not samples");
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );

    // The daemon answers again: the next cycle reconnects and polls.
    daemon.signal(libc::SIGCONT);
    let c = run_cycle_in(&cycle(), &cfg, &["cpu", "memory"]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.of("cpu").len(), 2);
    assert!(
        !logged(log::Level::Warn, "no longer alive").is_empty()
            || !logged(log::Level::Info, "connected to libvirt").is_empty(),
        "the connection was re-opened"
    );
}
