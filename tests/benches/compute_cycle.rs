//! One full polling cycle of every compute meter through the real libcompute.so, at
//! N = 10, 100, 1000 Nova domains on the libvirt test driver: wall time, CPU time,
//! samples, peak RSS. Each N runs in a fresh child process (this binary re-executed), so
//! its peak RSS is its own; a second child per N only opens the test driver on the same
//! node, to show how much of the RSS is libvirt's in-process test driver.
//!
//! ```text
//! cargo bench -p longshore-tests --bench compute_cycle            # N = 10 100 1000
//! cargo bench -p longshore-tests --bench compute_cycle -- 1000 3000
//! ```
//!
//! A cycle = `local_instances` discovery + the 36 pollsters over its resources, sharing
//! one cycle cache (as the engine runs them); each pollster's samples are counted and
//! dropped, as the engine publishes and drops them per pollster. The first cycle (which
//! opens the connection and cannot compute rates yet) is reported apart; the figures are
//! medians of the following cycles.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use longshore_plugin_api::host::{CallContext, CycleCache, Library};
use longshore_plugin_api::Config;
use longshore_tests::node_xml::{self, NodeSpec};
use longshore_tests::{CEILOMETER_TEST_DRIVER_METERS, COMPUTE_METERS};

const CHILD_ENV: &str = "LONGSHORE_COMPUTE_BENCH_CHILD";
const MEASURED_CYCLES: usize = 7;

/// CPU time of the whole process so far, ns (CLOCK_PROCESS_CPUTIME_ID).
fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe {
        libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A `/proc/self/status` field in KiB (VmHWM = peak RSS, VmRSS = current).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct CycleFigures {
    wall_s: f64,
    cpu_s: f64,
    samples: usize,
    ceilometer_samples: usize,
    errors: usize,
}

fn one_cycle(
    disc: &longshore_plugin_api::host::DiscoveryHandle,
    pollsters: &[(&str, longshore_plugin_api::host::PollsterHandle)],
) -> CycleFigures {
    let cpu0 = process_cpu_ns();
    let t0 = Instant::now();
    let ctx = CallContext::new(Arc::new(CycleCache::new()), Default::default());
    let found = disc.discover(&ctx, None);
    let mut errors = usize::from(found.error.is_some());
    let mut samples = 0;
    let mut ceilometer_samples = 0;
    for (name, p) in pollsters {
        let polled = p.get_samples(&ctx, &found.resources);
        samples += polled.samples.len();
        if CEILOMETER_TEST_DRIVER_METERS.contains(name) {
            ceilometer_samples += polled.samples.len();
        }
        errors += usize::from(polled.error.is_some());
        drop(polled);
    }
    drop(ctx);
    CycleFigures {
        wall_s: t0.elapsed().as_secs_f64(),
        cpu_s: (process_cpu_ns() - cpu0) as f64 / 1e9,
        samples,
        ceilometer_samples,
        errors,
    }
}

/// Child: run the cycles on `node` and print one result line.
fn child(mode: &str, lib_path: &Path, node: &Path) {
    let uri = format!("test://{}", node.display());
    if mode == "driver" {
        // Only libvirt's in-process test driver holding the node.
        let conn = virt::connect::Connect::open_read_only(Some(&uri)).expect("open test driver");
        let n = conn.list_all_domains(0).expect("list").len();
        println!(
            "RESULT driver domains={n} rss_kib={} hwm_kib={}",
            status_kib("VmRSS:"),
            status_kib("VmHWM:")
        );
        return;
    }
    if mode == "xml" {
        let conn = virt::connect::Connect::open_read_only(Some(&uri)).expect("open test driver");
        let doms = conn.list_all_domains(0).expect("list");
        let c0 = process_cpu_ns();
        let mut bytes = 0;
        for d in &doms {
            bytes += d.xml_desc(0).expect("xml").len();
        }
        println!(
            "xmldesc x{} {:.2} ms, {bytes} bytes",
            doms.len(),
            (process_cpu_ns() - c0) as f64 / 1e6
        );
        return;
    }
    let lib = Library::open(lib_path).expect("load libcompute.so");
    let cfg = Config::new()
        .with("DEFAULT", "host", "bench-compute-0")
        .with("compute", "libvirt_uri", uri.as_str());
    let pollsters: Vec<_> = COMPUTE_METERS
        .iter()
        .map(|m| (*m, lib.new_pollster(m, &cfg).expect("pollster")))
        .collect();
    let disc = lib
        .new_discovery("local_instances", &cfg)
        .expect("discovery");
    let first = one_cycle(&disc, &pollsters);
    if mode == "phases" {
        // Where one steady-state cycle spends its CPU, per call.
        let ctx = CallContext::new(Arc::new(CycleCache::new()), Default::default());
        let c0 = process_cpu_ns();
        let found = disc.discover(&ctx, None);
        println!("discovery {:.2} ms", (process_cpu_ns() - c0) as f64 / 1e6);
        for (name, p) in &pollsters {
            let c0 = process_cpu_ns();
            let polled = p.get_samples(&ctx, &found.resources);
            let c1 = process_cpu_ns();
            let n = polled.samples.len();
            drop(polled);
            println!(
                "{name:32} {:8.2} ms {n:6} samples (drop {:.2} ms)",
                (c1 - c0) as f64 / 1e6,
                (process_cpu_ns() - c1) as f64 / 1e6
            );
        }
        return;
    }
    let rss_after_first = status_kib("VmRSS:");
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    let mut last = None;
    let cycles = std::env::var("LONGSHORE_COMPUTE_BENCH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MEASURED_CYCLES);
    for _ in 0..cycles {
        let f = one_cycle(&disc, &pollsters);
        wall.push(f.wall_s);
        cpu.push(f.cpu_s);
        last = Some(f);
    }
    let last = last.expect("cycles ran");
    println!(
        "RESULT cycle first_wall={:.6} first_cpu={:.6} first_samples={} wall={:.6} cpu={:.6} samples={} ceilometer_samples={} errors={} rss_after_first_kib={} hwm_kib={}",
        first.wall_s,
        first.cpu_s,
        first.samples,
        median(&mut wall),
        median(&mut cpu),
        last.samples,
        last.ceilometer_samples,
        first.errors + last.errors,
        rss_after_first,
        status_kib("VmHWM:"),
    );
}

fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn run_child(mode: &str, lib: &Path, node: &Path) -> String {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, "1")
        .args([
            mode,
            &lib.display().to_string(),
            &node.display().to_string(),
        ])
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .expect("child result line")
        .to_string()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if std::env::var_os(CHILD_ENV).is_some() {
        child(&args[0], Path::new(&args[1]), Path::new(&args[2]));
        return;
    }
    let sizes: Vec<usize> = if args.is_empty() {
        vec![10, 100, 1000]
    } else {
        args.iter()
            .map(|a| a.parse().expect("N must be a number"))
            .collect()
    };
    longshore_tests::build_plugins(&["longshore-plugin-compute"]);
    let lib = longshore_tests::built_library("compute");
    let dir = tempfile::tempdir().expect("temp dir");

    // Ceilometer 27, same kind of node and machine (issue #4).
    let ceilometer = |n: usize| match n {
        1000 => Some((6.08, 5.90, 26_694.0, 188.0)),
        100 => Some((0.48, 0.46, f64::NAN, f64::NAN)),
        _ => None,
    };
    println!("compute cycle, libcompute.so at {}", lib.display());
    let empty = dir.path().join("node-0.xml");
    std::fs::write(&empty, "<node></node>\n").expect("write empty node");
    let baseline = field(&run_child("driver", &lib, &empty), "hwm_kib") / 1024.0;
    println!("process + libvirt client libraries + empty test driver: {baseline:.1} MiB peak RSS");
    println!(
        "{:>6} {:>9} {:>9} {:>8} {:>10} {:>11} {:>10} {:>11} {:>10} {:>12} {:>6}",
        "N",
        "wall ms",
        "CPU ms",
        "samples",
        "(ceil. 23)",
        "1st wall ms",
        "peak MiB",
        "driver MiB",
        "own MiB",
        "CPU vs ceil",
        "errors"
    );
    for n in sizes {
        let node = dir.path().join(format!("node-{n}.xml"));
        node_xml::write(
            &NodeSpec {
                n,
                seed: 42,
                ..Default::default()
            },
            &node,
        )
        .expect("write node");
        let c = run_child("cycle", &lib, &node);
        let d = run_child("driver", &lib, &node);
        let cpu_s = field(&c, "cpu");
        let ratio = ceilometer(n).map_or("-".to_string(), |(_, ccpu, _, _)| {
            format!("{:.1}x less", ccpu / cpu_s)
        });
        let peak = field(&c, "hwm_kib") / 1024.0;
        let driver = field(&d, "hwm_kib") / 1024.0;
        println!(
            "{:>6} {:>9.2} {:>9.2} {:>8} {:>10} {:>11.1} {:>10.1} {:>11.1} {:>10.1} {:>12} {:>6}",
            n,
            field(&c, "wall") * 1e3,
            cpu_s * 1e3,
            field(&c, "samples"),
            field(&c, "ceilometer_samples"),
            field(&c, "first_wall") * 1e3,
            peak,
            driver,
            peak - driver,
            ratio,
            field(&c, "errors"),
        );
    }
    println!("wall/CPU: medians of {MEASURED_CYCLES} cycles after the first; samples: one steady-state cycle");
    println!("peak MiB: the bench child (longshore + libvirt's in-process test driver holding the N domains); driver MiB: a child that only opens the test driver on the same node; own MiB: the difference");
    println!("Ceilometer 27: N=1000 6.08 s wall, 5.90 s CPU, 26,694 samples, 188 MiB worker RSS; N=100 0.48 s / 0.46 s");
}
