//! Support for the end-to-end tests: building the real plugin `.so` files once (cargo
//! does not build cdylibs for integration tests), locating them, and fixture paths.

pub mod node_xml;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The workspace root (the directory holding entry_points.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// tests/fixtures.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests").join("fixtures")
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Where cargo puts the built libraries for the profile the tests were built with.
pub fn target_profile_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join(profile())
}

static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Build these plugin packages (e.g. `longshore-plugin-compute`) once per test
/// process, with the same profile as the tests, and return the directory holding
/// the `.so` files. Panics with cargo's output if the build fails.
pub fn build_plugins(packages: &[&str]) -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashSet::new);
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !built.contains(*p))
        .collect();
    if !missing.is_empty() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .arg("build")
            .arg("--quiet");
        if profile() == "release" {
            cmd.arg("--release");
        }
        for p in &missing {
            cmd.arg("-p").arg(p);
        }
        let out = cmd.output().expect("run cargo build for the test plugins");
        assert!(
            out.status.success(),
            "building test plugins {missing:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        built.extend(missing.iter().map(|s| s.to_string()));
    }
    target_profile_dir()
}

/// Path of the built library `lib<name>.so` (call [`build_plugins`] first).
pub fn built_library(name: &str) -> PathBuf {
    target_profile_dir().join(format!("lib{name}.so"))
}

/// A fresh plugin directory holding copies of the given built libraries
/// (`(library name, file name in the directory)`).
pub fn plugin_dir_with(libs: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (lib, file) in libs {
        std::fs::copy(built_library(lib), dir.path().join(file))
            .unwrap_or_else(|e| panic!("copy lib{lib}.so: {e}"));
    }
    dir
}

/// Build the `longshore` binary (same profile as the tests) and return its path.
pub fn build_host() -> PathBuf {
    build_plugins(&["longshore"]);
    target_profile_dir().join("longshore")
}

/// The 36 compute meter names of Ceilometer 27 (setup.cfg order).
pub const COMPUTE_METERS: [&str; 36] = [
    "power.state",
    "cpu",
    "vcpus",
    "memory",
    "memory.available",
    "memory.usage",
    "memory.resident",
    "memory.swap.in",
    "memory.swap.out",
    "perf.cpu.cycles",
    "perf.instructions",
    "perf.cache.references",
    "perf.cache.misses",
    "disk.device.read.requests",
    "disk.device.read.bytes",
    "disk.device.write.requests",
    "disk.device.write.bytes",
    "disk.device.read.latency",
    "disk.device.write.latency",
    "disk.device.capacity",
    "disk.device.allocation",
    "disk.device.usage",
    "disk.root.size",
    "disk.ephemeral.size",
    "network.incoming.bytes",
    "network.incoming.packets",
    "network.incoming.packets.error",
    "network.incoming.packets.drop",
    "network.outgoing.bytes",
    "network.outgoing.packets",
    "network.outgoing.packets.error",
    "network.outgoing.packets.drop",
    "network.incoming.bytes.delta",
    "network.outgoing.bytes.delta",
    "network.incoming.bytes.rate",
    "network.outgoing.bytes.rate",
];

/// The 23 meters Ceilometer 27 publishes on the test driver (the capture's set).
pub const CEILOMETER_TEST_DRIVER_METERS: [&str; 23] = [
    "power.state",
    "cpu",
    "memory",
    "memory.available",
    "memory.usage",
    "memory.resident",
    "memory.swap.in",
    "memory.swap.out",
    "disk.device.capacity",
    "disk.device.allocation",
    "disk.device.usage",
    "disk.root.size",
    "disk.ephemeral.size",
    "network.incoming.bytes",
    "network.incoming.packets",
    "network.incoming.packets.error",
    "network.incoming.packets.drop",
    "network.outgoing.bytes",
    "network.outgoing.packets",
    "network.outgoing.packets.error",
    "network.outgoing.packets.drop",
    "network.incoming.bytes.delta",
    "network.outgoing.bytes.delta",
];
