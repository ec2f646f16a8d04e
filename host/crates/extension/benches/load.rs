//! Load benchmark (`cargo bench -p longshore-extension --bench load`).
//!
//! 1. Loading: 10 plugin libraries (copies of the synthetic test plugin under 10 file
//!    names) and 100 entry points across them, from process start to every plugin
//!    loaded and constructed. Libraries can never be unloaded, so every sample is a
//!    fresh process: the bench re-executes itself as a child per iteration and reports
//!    the medians of the child's own measurement (from `main` to all loaded) and of the
//!    whole process as seen by the parent (spawn to exit).
//! 2. Per-call overhead: one pollster's code called directly vs through the plugin ABI
//!    (`PollsterHandle::from_local`, the same boundary code a loaded library uses), and
//!    a similar pollster in a loaded library, for 0, 1 and 100 resources.
//!
//! Options: `LONGSHORE_BENCH_RUNS` (child processes, default 41).

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use longshore_extension::{libraries, ExtensionManager, Options, Registry};
use longshore_plugin_api::host::{CallContext, CycleCache, PollsterHandle};
use longshore_plugin_api::{
    Config, PollContext, PollError, Pollster, Resource, Sample, SampleType,
};

const CHILD_ENV: &str = "LONGSHORE_BENCH_CHILD";
const LIBRARIES: usize = 10;
const ENTRY_POINTS: usize = 100;
const NAMESPACE: &str = "bench.poll.load";

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this as a smoke test.
    let runs = std::env::var("LONGSHORE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            41
        } else {
            3
        });
    let profile = if cfg!(debug_assertions) {
        "debug (not representative)"
    } else {
        "release"
    };
    println!("# longshore-extension load benchmark ({profile} build)\n");
    load_benchmark(runs);
    println!();
    call_benchmark();
}

/// The child: time from `main` to 100 entry points loaded and constructed.
fn child(dir: &Path) {
    let start = Instant::now();
    let registry = Registry::load(&dir.join("entry_points.toml")).expect("entry points");
    let m = ExtensionManager::<PollsterHandle>::new(
        &registry,
        NAMESPACE,
        Options::new().invoke_on_load(Config::new()).strict(true),
    )
    .expect("every plugin loads");
    let elapsed = start.elapsed();
    assert_eq!(m.len(), ENTRY_POINTS);
    assert_eq!(libraries::loaded().len(), LIBRARIES);
    println!("{}", elapsed.as_nanos());
}

fn load_benchmark(runs: usize) {
    let lib_dir = longshore_tests::build_plugins(&["longshore-plugin-synthetic"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for i in 0..LIBRARIES {
        std::fs::copy(
            lib_dir.join("libtest_synthetic.so"),
            plugins.join(format!("libbench{i}.so")),
        )
        .unwrap();
    }
    let mut toml = format!("[{NAMESPACE}]\n");
    for i in 0..ENTRY_POINTS {
        toml.push_str(&format!("p{i:03} = \"bench{}:counter\"\n", i % LIBRARIES));
    }
    std::fs::write(dir.path().join("entry_points.toml"), toml).unwrap();

    let exe = std::env::current_exe().unwrap();
    let spawn = || {
        let t = Instant::now();
        let out = Command::new(&exe)
            .env(CHILD_ENV, dir.path())
            .output()
            .expect("run child");
        let wall = t.elapsed();
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inner: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("child output");
        (Duration::from_nanos(inner), wall)
    };
    // Warm the page cache.
    for _ in 0..3 {
        spawn();
    }
    let (mut inner, mut wall): (Vec<Duration>, Vec<Duration>) = (0..runs).map(|_| spawn()).unzip();
    println!(
        "## Loading {LIBRARIES} libraries / {ENTRY_POINTS} entry points ({runs} fresh processes)\n"
    );
    println!("| measure | median | min | max |");
    println!("|---|---|---|---|");
    for (name, samples) in [
        ("in process: main → all loaded and constructed", &mut inner),
        ("whole process: spawn → exit (parent's view)", &mut wall),
    ] {
        samples.sort();
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms |",
            ms(samples[samples.len() / 2]),
            ms(samples[0]),
            ms(samples[samples.len() - 1])
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The pollster code both calls run: one gauge sample per resource.
struct Gauge;

impl Gauge {
    fn collect(&self, resources: &[Resource], out: &mut Vec<Sample>) {
        for r in resources {
            out.push(Sample::from_resource(
                r,
                "bench.gauge",
                SampleType::Gauge,
                "B",
                1,
            ));
        }
    }
}

impl Pollster for Gauge {
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        self.collect(resources, out);
        Ok(())
    }
}

/// Median nanoseconds per call of `f` over 7 batches of about 100 ms each.
fn per_call(mut f: impl FnMut()) -> f64 {
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed() > Duration::from_millis(20) {
            break;
        }
        n *= 2;
    }
    let n = n * 5;
    let mut batches: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[batches.len() / 2]
}

fn call_benchmark() {
    // The loaded library of the load benchmark's build; a fresh copy for this process.
    let lib_dir = longshore_tests::build_plugins(&["longshore-plugin-synthetic"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        lib_dir.join("libtest_synthetic.so"),
        dir.path().join("plugins/libt.so"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("entry_points.toml"),
        "[bench.poll.call]\ncounter = \"t:counter\"\n",
    )
    .unwrap();
    let registry = Registry::load(&dir.path().join("entry_points.toml")).unwrap();
    let m = ExtensionManager::<PollsterHandle>::new(
        &registry,
        "bench.poll.call",
        Options::new().invoke_on_load(Config::new()),
    )
    .unwrap();
    let loaded = m.get("counter").unwrap().obj().unwrap().clone();

    let direct = Gauge;
    let through_abi = PollsterHandle::from_local(Gauge);
    let ctx = CallContext::new(Arc::new(CycleCache::new()), Default::default());

    println!("## Per-call overhead of a pollster call (median ns per call)\n");
    println!("| resources | direct Rust call | through the ABI (from_local) | ABI overhead | loaded .so (synthetic `counter`) |");
    println!("|---|---|---|---|---|");
    for count in [0usize, 1, 100] {
        let resources: Vec<Resource> = (0..count)
            .map(|i| Resource::new(format!("vm-{i}")))
            .collect();
        let d = per_call(|| {
            let mut out = Vec::new();
            direct.collect(black_box(&resources), &mut out);
            black_box(out);
        });
        let a = per_call(|| {
            black_box(through_abi.get_samples(&ctx, black_box(&resources)));
        });
        let l = per_call(|| {
            black_box(loaded.get_samples(&ctx, black_box(&resources)));
        });
        println!(
            "| {count} | {d:.0} | {a:.0} | {:+.0} ns ({:.2}×) | {l:.0} |",
            a - d,
            a / d.max(1.0)
        );
    }
}
