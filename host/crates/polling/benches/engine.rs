//! Benchmark of the polling engine alone, with the real synthetic plugin library:
//! 30 `bench` pollsters over N compute-like instances (one discovery, 30 pollster runs
//! per cycle), every sample stamped, signed, batched by 50 and written as a JSON line by
//! the real file publisher to /dev/null. CPU time (user + system, all threads, from
//! getrusage) per sample, median of several cycles, for 1,000 to 300,000 samples per
//! cycle; and a baseline measured in the same run: the same messages made and
//! serialised in a plain loop, with no plugin, engine or publisher thread.
//!
//! Run: `cargo bench -p longshore-polling --bench engine` (release profile). Set
//! `LONGSHORE_SYNTHETIC_SO=/path/libtest_synthetic.so` to skip building the plugin, and
//! `LONGSHORE_BENCH_PUBLISHER=null` to drop batches instead of writing JSON (isolates
//! the engine from the publisher), `LONGSHORE_BENCH_INSTANCES=3334` to run one size,
//! `LONGSHORE_BENCH_BASELINE=0` to skip the baselines, `LONGSHORE_BENCH_KEEP_INSTANCES=1`
//! to have the discovery return the same resources every cycle, as the compute plugin's
//! does for unchanged domains (by default it builds new ones every cycle, as
//! Ceilometer's discoveries do, and each cycle renders every resource's metadata anew).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use longshore_plugin_api::host::{CallContext, CycleCache, Library};
use longshore_plugin_api::{Config, Resource};
use longshore_polling::{AgentManager, PollingDefinition, PollingOptions};
use longshore_publisher::message::{monotonic_now, polling_timestamp};
use longshore_publisher::{Batch, FileOptions, FilePublisher, MessageFactory, PublishError};

const METERS: usize = 30;
/// The engine's default `batch_size`, as the baselines batch.
const BATCH: usize = 50;

fn rusage() -> libc::rusage {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru
}

fn cpu_time() -> Duration {
    let ru = rusage();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Context switches of all threads so far: thread hand-offs, counted without the
/// timing noise of a shared machine.
fn context_switches() -> i64 {
    let ru = rusage();
    ru.ru_nvcsw + ru.ru_nivcsw
}

fn synthetic_library() -> PathBuf {
    if let Some(p) = std::env::var_os("LONGSHORE_SYNTHETIC_SO") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "longshore-plugin-synthetic",
        ])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the synthetic plugin failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release").join("libtest_synthetic.so")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Row {
    samples: usize,
    cpu_us_per_sample: f64,
    wall_ms_per_cycle: f64,
    switches_per_cycle: f64,
}

fn run_engine(lib: &Library, resources: usize, measures: usize) -> Row {
    let cfg = Config::new()
        .with("synthetic", "instances", resources as i64)
        .with("synthetic", "bench_samples_per_resource", 1)
        .with("synthetic", "keep_instances", keep_instances());
    let options = PollingOptions::from_config(&cfg).expect("options");
    let definition = PollingDefinition::parse(
        "sources:\n  - name: bench\n    interval: 300\n    meters: ['*']\n",
        Path::new("bench.yaml"),
    )
    .expect("definition");
    let pollsters = (0..METERS)
        .map(|i| {
            let h = lib.new_pollster("bench", &cfg).expect("bench pollster");
            (format!("bench.{i}"), Arc::new(h))
        })
        .collect();
    let mut discoveries = HashMap::new();
    discoveries.insert(
        "instances".to_string(),
        Arc::new(lib.new_discovery("instances", &cfg).expect("discovery")),
    );
    let publisher = Arc::new(
        FilePublisher::from_url_with(
            "file:///dev/null",
            FileOptions {
                queue_batches: 1 << 16,
                publish_wait: Duration::from_secs(600),
            },
        )
        .expect("file publisher"),
    );
    let null = null_publisher();
    let agent = if null {
        AgentManager::new(options, &definition, pollsters, discoveries, Arc::new(Null))
    } else {
        AgentManager::new(
            options,
            &definition,
            pollsters,
            discoveries,
            publisher.clone(),
        )
    };
    let expected = resources * METERS;
    // Warm-up (first-touch allocations, lazy statics).
    let r = agent.poll_once();
    assert_eq!(r.samples(), expected);
    // getrusage is tick-granular: each measurement spans enough cycles for at least
    // ~100,000 samples (about a second of CPU).
    let per_measure = (100_000 / expected).max(1);
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    let mut switches = Vec::new();
    for _ in 0..measures {
        let (c0, w0, s0) = (cpu_time(), Instant::now(), context_switches());
        for _ in 0..per_measure {
            let r = agent.poll_once(); // includes the publisher's flush
            assert!(r.is_success(), "{r:?}");
            assert_eq!(r.samples(), expected);
        }
        let (c1, w1, s1) = (cpu_time(), w0.elapsed(), context_switches());
        switches.push((s1 - s0) as f64 / per_measure as f64);
        let n = (expected * per_measure) as f64;
        cpu.push((c1 - c0).as_secs_f64() * 1e6 / n);
        wall.push(w1.as_secs_f64() * 1e3 / per_measure as f64);
    }
    agent.close(Duration::from_secs(60)).expect("close");
    let stats = publisher.stats();
    if !null {
        assert_eq!(
            stats.dropped, 0,
            "the publisher dropped messages: {stats:?}"
        );
        assert_eq!(
            stats.written as usize,
            expected * (1 + measures * per_measure)
        );
    }
    Row {
        samples: expected,
        cpu_us_per_sample: median(cpu),
        wall_ms_per_cycle: median(wall),
        switches_per_cycle: median(switches),
    }
}

/// Costs measured without the engine, per sample (µs).
struct Baseline {
    /// The plugin's `get_samples` (compute-like samples, metadata copied) and dropping
    /// the samples.
    plugin: f64,
    /// Stamp + sign (MessageFactory) of ready samples, in a plain loop.
    sign: f64,
    /// Stamp + sign + Python JSON line to /dev/null, in a plain loop.
    sign_json: f64,
}

fn run_baseline(lib: &Library, resources: usize, rounds: usize) -> Baseline {
    let cfg = Config::new()
        .with("synthetic", "instances", resources as i64)
        .with("synthetic", "bench_samples_per_resource", METERS as i64);
    let ctx = CallContext::new(Arc::new(CycleCache::new()), Default::default());
    let found: Vec<Resource> = lib
        .new_discovery("instances", &cfg)
        .expect("discovery")
        .discover(&ctx, None)
        .resources;
    let pollster = lib.new_pollster("bench", &cfg).expect("pollster");
    let factory = MessageFactory::new("change this for valid signing", "openstack");
    let mut out = Vec::with_capacity(4096);
    let mut sink = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null"),
    );
    let (mut plugin, mut sign, mut sign_json) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds * 3 {
        let c0 = cpu_time();
        let samples = pollster.get_samples(&ctx, &found).samples;
        let n = samples.len() as f64;
        let c1 = cpu_time();
        let ts = polling_timestamp(SystemTime::now());
        let mono = monotonic_now();
        match round % 3 {
            0 => {
                drop(samples);
                plugin.push((cpu_time() - c0).as_secs_f64() * 1e6 / n);
            }
            1 => {
                let ts: Arc<str> = ts.into();
                for batch in factory.batches_at(samples, BATCH, &ts, mono) {
                    std::hint::black_box(batch);
                }
                sign.push((cpu_time() - c1).as_secs_f64() * 1e6 / n);
            }
            _ => {
                let ts: Arc<str> = ts.into();
                for batch in factory.batches_at(samples, BATCH, &ts, mono) {
                    for m in batch {
                        out.clear();
                        m.write_json(&mut out);
                        out.push(b'\n');
                        std::io::Write::write_all(&mut sink, &out).expect("write");
                    }
                }
                std::io::Write::flush(&mut sink).expect("flush");
                sign_json.push((cpu_time() - c1).as_secs_f64() * 1e6 / n);
            }
        }
    }
    Baseline {
        plugin: median(plugin),
        sign: median(sign),
        sign_json: median(sign_json),
    }
}

fn main() {
    let lib = Library::open(&synthetic_library()).expect("load the synthetic plugin");
    let publisher = if null_publisher() {
        "null publisher (batches dropped)"
    } else {
        "file publisher to /dev/null"
    };
    println!("polling engine benchmark: {METERS} pollsters x N instances per cycle, batch 50,");
    println!("{publisher}; CPU = user+sys of all threads (getrusage), median");
    println!(
        "discovery: {}\n",
        if keep_instances() {
            "the same resources every cycle (LONGSHORE_BENCH_KEEP_INSTANCES=1)"
        } else {
            "new resources every cycle"
        }
    );
    // `LONGSHORE_BENCH_BASELINE=0` skips the baselines (for profiling the engine alone).
    let b = if std::env::var("LONGSHORE_BENCH_BASELINE").is_ok_and(|v| v == "0") {
        Baseline {
            plugin: f64::NAN,
            sign: f64::NAN,
            sign_json: f64::NAN,
        }
    } else {
        run_baseline(&lib, 3334, 5)
    };
    println!("baselines without the engine (100,020 samples, us/sample):");
    println!("  plugin get_samples + drop:           {:.3}", b.plugin);
    println!("  stamp + sign (MessageFactory):       {:.3}", b.sign);
    println!("  stamp + sign + JSON line:            {:.3}", b.sign_json);
    let baseline = b.plugin + b.sign_json;
    // Not a floor: these loops hold a whole call's 100,020 samples and messages in
    // memory, where the engine works on slices of a call (since session 5 it can beat it).
    println!("  plugin + sign + JSON, plain loops:   {baseline:.3}\n");
    println!("| instances | samples/cycle | CPU us/sample | vs baseline | wall ms/cycle | context switches/cycle |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    // `LONGSHORE_BENCH_INSTANCES=3334,10000` runs only those sizes (for profiling).
    let sizes: Vec<usize> = std::env::var("LONGSHORE_BENCH_INSTANCES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![34, 334, 3334, 10_000]);
    for resources in sizes {
        let row = run_engine(&lib, resources, 5);
        println!(
            "| {resources} | {} | {:.3} | {:.2}x | {:.1} | {:.0} |",
            row.samples,
            row.cpu_us_per_sample,
            row.cpu_us_per_sample / baseline,
            row.wall_ms_per_cycle,
            row.switches_per_cycle
        );
        rows.push(row);
    }
    let lo = rows
        .iter()
        .map(|r| r.cpu_us_per_sample)
        .fold(f64::MAX, f64::min);
    let hi = rows.iter().map(|r| r.cpu_us_per_sample).fold(0.0, f64::max);
    println!(
        "\nper-sample cost spread 1k..300k samples/cycle: max/min = {:.2}",
        hi / lo
    );
}

fn null_publisher() -> bool {
    std::env::var("LONGSHORE_BENCH_PUBLISHER").is_ok_and(|v| v == "null")
}

/// `LONGSHORE_BENCH_KEEP_INSTANCES=1`: the discovery returns the same resources every cycle.
fn keep_instances() -> bool {
    std::env::var("LONGSHORE_BENCH_KEEP_INSTANCES").is_ok_and(|v| v == "1")
}

/// Drops every batch (`LONGSHORE_BENCH_PUBLISHER=null`).
struct Null;

impl longshore_publisher::Publisher for Null {
    fn describe(&self) -> String {
        "null://".into()
    }
    fn publish(&self, _batch: Batch) -> Result<(), PublishError> {
        Ok(())
    }
    fn flush(&self, _: Duration) -> Result<(), PublishError> {
        Ok(())
    }
    fn close(&self, _: Duration) -> Result<(), PublishError> {
        Ok(())
    }
}
