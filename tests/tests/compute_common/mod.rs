//! Shared helpers of the compute tests: the real libcompute.so (built and opened once),
//! a config for a libvirt URI, one polling cycle through the library (discovery then
//! pollsters, sharing one cycle cache, as the engine does), and a log capture to check
//! what the plugin logged.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use longshore_plugin_api::host::{CallContext, CycleCache, DiscoveryHandle, Library};
use longshore_plugin_api::{CallError, Config, Resource, Sample};

pub use longshore_tests::COMPUTE_METERS as ALL_METERS;

/// Log records the plugin sent to the host's logger: (level, message).
pub static LOGS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((record.level(), record.args().to_string()));
    }
    fn flush(&self) {}
}

/// Messages logged at `level` that contain `needle`.
pub fn logged(level: log::Level, needle: &str) -> Vec<String> {
    LOGS.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(l, m)| *l == level && m.contains(needle))
        .map(|(_, m)| m.clone())
        .collect()
}

/// libcompute.so, built with the tests' profile and opened once per test process.
pub fn compute() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        // Before the library is opened: it takes the host's max level at init.
        if log::set_boxed_logger(Box::new(Capture)).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
        longshore_tests::build_plugins(&["longshore-plugin-compute"]);
        Library::open(&longshore_tests::built_library("compute")).expect("load libcompute.so")
    })
}

/// `test:///ABS/PATH` for a node file.
pub fn test_uri(path: &Path) -> String {
    format!(
        "test://{}",
        path.canonicalize().expect("node file exists").display()
    )
}

/// The config of the capture: host peer-compute-0 and the given URI.
pub fn config(uri: &str) -> Config {
    Config::new()
        .with("DEFAULT", "host", "peer-compute-0")
        .with("compute", "libvirt_uri", uri)
}

/// A new polling cycle: a fresh cycle cache.
pub fn cycle() -> CallContext {
    CallContext::new(Arc::new(CycleCache::new()), Default::default())
}

/// What one cycle produced.
#[derive(Debug, Default)]
pub struct CycleResult {
    pub resources: Vec<Resource>,
    pub samples: Vec<Sample>,
    /// (meter, error) for pollsters that returned an error.
    pub errors: Vec<(String, CallError)>,
}

impl CycleResult {
    pub fn of(&self, meter: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name() == meter).collect()
    }
    pub fn one(&self, meter: &str, resource_id: &str) -> &Sample {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name() == meter && s.resource_id() == resource_id)
            .collect();
        assert_eq!(found.len(), 1, "{meter} for {resource_id}: {found:?}");
        found[0]
    }
}

/// The `local_instances` discovery for `cfg`, constructed once per configuration and
/// kept across cycles, as the engine keeps its extensions.
pub fn discovery(cfg: &Config) -> Arc<DiscoveryHandle> {
    static ALL: Mutex<Option<HashMap<String, Arc<DiscoveryHandle>>>> = Mutex::new(None);
    let mut all = ALL.lock().unwrap_or_else(|p| p.into_inner());
    all.get_or_insert_with(HashMap::new)
        .entry(format!("{cfg:?}"))
        .or_insert_with(|| {
            Arc::new(
                compute()
                    .new_discovery("local_instances", cfg)
                    .expect("construct local_instances"),
            )
        })
        .clone()
}

/// Discover with `local_instances`, then run `meters` over the discovered resources,
/// all in one cycle `ctx`.
pub fn run_cycle_in(ctx: &CallContext, cfg: &Config, meters: &[&str]) -> CycleResult {
    let disc = discovery(cfg);
    let found = disc.discover(ctx, None);
    let mut result = CycleResult {
        resources: found.resources,
        ..Default::default()
    };
    if let Some(e) = found.error {
        result.errors.push(("local_instances".into(), e));
        return result;
    }
    poll_in(ctx, cfg, meters, &mut result);
    result
}

/// Run `meters` over `result.resources` in cycle `ctx`, appending to `result`.
pub fn poll_in(ctx: &CallContext, cfg: &Config, meters: &[&str], result: &mut CycleResult) {
    let lib = compute();
    for m in meters {
        let p = lib
            .new_pollster(m, cfg)
            .unwrap_or_else(|e| panic!("construct {m}: {e}"));
        assert_eq!(p.default_discovery().as_deref(), Some("local_instances"));
        let polled = p.get_samples(ctx, &result.resources);
        result.samples.extend(polled.samples);
        if let Some(e) = polled.error {
            result.errors.push((m.to_string(), e));
        }
    }
}

/// One whole cycle of every compute meter.
pub fn run_cycle(cfg: &Config) -> CycleResult {
    run_cycle_in(&cycle(), cfg, &ALL_METERS)
}

/// Nanoseconds / microseconds since the epoch (the test driver's counters derive from
/// the wall clock).
pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// The sample's resource_metadata as JSON (key order preserved).
pub fn metadata_json(s: &Sample) -> serde_json::Value {
    serde_json::to_value(s.resource_metadata()).expect("metadata serialises")
}

pub fn volume_json(s: &Sample) -> serde_json::Value {
    serde_json::to_value(s.volume()).expect("volume serialises")
}
