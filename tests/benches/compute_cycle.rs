//! One full polling cycle of every compute meter through the real libcompute.so, at
//! N = 10, 100, 1000 Nova domains on the libvirt test driver: wall time, CPU time,
//! samples, peak RSS. Each N runs in a fresh child process (this binary re-executed), so
//! its peak RSS is its own; a second child per N only opens the test driver on the same
//! node, to show how much of the RSS is libvirt's in-process test driver.
//!
//! ```text
//! cargo bench -p longshore-tests --bench compute_cycle            # N = 10 100 1000
//! cargo bench -p longshore-tests --bench compute_cycle -- 1000 3000
//! cargo bench -p longshore-tests --bench compute_cycle -- --remote           # daemon-hosted
//! cargo bench -p longshore-tests --bench compute_cycle -- --remote=SOCKET    # running libvirtd
//! ```
//!
//! `--remote` (or `LONGSHORE_COMPUTE_BENCH_REMOTE=auto|SOCKET`) runs the same cycle with the
//! test driver hosted by a real libvirt daemon, reached through libvirt's remote driver
//! (`test+unix:///ABS/node.xml?socket=SOCKET`), as the agent reaches `qemu:///system` in
//! production: the agent's RSS is then its own plus the libvirt client, and the daemon's
//! RSS and CPU are reported apart. `--remote` starts a private daemon per N with
//! `tests/scripts/libvirtd-test-driver.sh` (fresh, so its peak RSS is per N) and stops it;
//! `--remote=SOCKET` uses a running daemon (its peak RSS is then cumulative). The node
//! files must be readable by the daemon's user. In remote mode the bench also runs one
//! short verification per N, in-process and remote, and compares what the plugin
//! produced: per-meter sample counts, resources, sample identities (resource, unit, type,
//! metadata) and volumes. It then runs the whole agent per N, the `longshore run`
//! service with every meter of entry_points.toml (the compute plugin and the memory.util
//! example) publishing JSON lines, against the same daemon, and reports its peak RSS
//! and CPU at the end of its first cycle: the figure to set beside Ceilometer's worker.
//!
//! A cycle = `local_instances` discovery + the 36 pollsters over its resources, sharing
//! one cycle cache (as the engine runs them); each pollster's samples are counted and
//! dropped, as the engine publishes and drops them per pollster. The first cycle (which
//! opens the connection and cannot compute rates yet) is reported apart; the figures are
//! medians of the following cycles.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use longshore_plugin_api::host::{CallContext, CycleCache, Library};
use longshore_plugin_api::Config;
use longshore_tests::node_xml::{self, NodeSpec};
use longshore_tests::{CEILOMETER_TEST_DRIVER_METERS, COMPUTE_METERS};

const CHILD_ENV: &str = "LONGSHORE_COMPUTE_BENCH_CHILD";
/// The libvirt URI a child uses instead of the in-process `test://NODE`.
const URI_ENV: &str = "LONGSHORE_COMPUTE_BENCH_URI";
/// The pid of the libvirt daemon hosting the test driver (remote mode).
const DAEMON_PID_ENV: &str = "LONGSHORE_COMPUTE_BENCH_DAEMON_PID";
/// `auto` or a libvirtd socket path: same as `--remote` / `--remote=SOCKET`.
const REMOTE_ENV: &str = "LONGSHORE_COMPUTE_BENCH_REMOTE";
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
    proc_status_kib("self", field)
}

/// A `/proc/<pid>/status` field in KiB.
fn proc_status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of another process (all its threads) so far, ns.
fn other_process_cpu_ns(pid: libc::pid_t) -> u64 {
    let mut clock: libc::clockid_t = 0;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointers.
    let ok = unsafe {
        libc::clock_getcpuclockid(pid, &mut clock) == 0 && libc::clock_gettime(clock, &mut ts) == 0
    };
    assert!(ok, "cannot read the CPU clock of process {pid}");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The pid of the process listening on a UNIX socket (SO_PEERCRED of a connection).
fn socket_peer_pid(socket: &Path) -> libc::pid_t {
    use std::os::fd::AsRawFd;
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("connect to {}: {e}", socket.display()));
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: valid socket and out-pointers of the right size.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    assert!(
        rc == 0 && cred.pid > 0,
        "SO_PEERCRED on {}",
        socket.display()
    );
    cred.pid
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

/// The libvirt daemon hosting the test driver, in remote mode (given by the parent).
fn daemon_pid() -> Option<libc::pid_t> {
    std::env::var(DAEMON_PID_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
}

/// ` daemon_rss_kib=.. daemon_hwm_kib=..` for a result line (empty in-process).
fn daemon_memory(daemon: Option<libc::pid_t>) -> String {
    daemon.map_or_else(String::new, |pid| {
        let pid = pid.to_string();
        format!(
            " daemon_rss_kib={} daemon_hwm_kib={}",
            proc_status_kib(&pid, "VmRSS:"),
            proc_status_kib(&pid, "VmHWM:")
        )
    })
}

/// Child: run the cycles on `node` and print one result line.
fn child(mode: &str, lib_path: &Path, node: &Path) {
    let uri = std::env::var(URI_ENV).unwrap_or_else(|_| format!("test://{}", node.display()));
    let daemon = daemon_pid();
    if mode == "driver" {
        // Only libvirt holding the node: the in-process test driver, or (remote) the
        // libvirt client with one connection to the daemon.
        let conn = virt::connect::Connect::open_read_only(Some(&uri)).expect("open test driver");
        let n = conn.list_all_domains(0).expect("list").len();
        println!(
            "RESULT driver domains={n} rss_kib={} hwm_kib={} anon_kib={} file_kib={}{}",
            status_kib("VmRSS:"),
            status_kib("VmHWM:"),
            status_kib("RssAnon:"),
            status_kib("RssFile:"),
            daemon_memory(daemon)
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
    if mode == "verify" {
        // Before the library is opened: it takes the host's log level then.
        log::set_logger(&LOGS).expect("logger");
        log::set_max_level(log::LevelFilter::Info);
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
    if mode == "verify" {
        verify(&disc, &pollsters);
        return;
    }
    let daemon_cpu0 = daemon.map(other_process_cpu_ns);
    let first = one_cycle(&disc, &pollsters);
    let daemon_first_cpu = daemon
        .zip(daemon_cpu0)
        .map(|(pid, c0)| (other_process_cpu_ns(pid) - c0) as f64 / 1e9);
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
    let mut daemon_cpu = Vec::new();
    let mut last = None;
    let cycles = std::env::var("LONGSHORE_COMPUTE_BENCH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MEASURED_CYCLES);
    for _ in 0..cycles {
        let d0 = daemon.map(other_process_cpu_ns);
        let f = one_cycle(&disc, &pollsters);
        if let Some((pid, d0)) = daemon.zip(d0) {
            daemon_cpu.push((other_process_cpu_ns(pid) - d0) as f64 / 1e9);
        }
        wall.push(f.wall_s);
        cpu.push(f.cpu_s);
        last = Some(f);
    }
    let last = last.expect("cycles ran");
    let daemon_figures = match daemon_first_cpu {
        Some(first_cpu) => format!(
            " daemon_first_cpu={first_cpu:.6} daemon_cpu={:.6}{}",
            median(&mut daemon_cpu),
            daemon_memory(daemon)
        ),
        None => String::new(),
    };
    println!(
        "RESULT cycle first_wall={:.6} first_cpu={:.6} first_samples={} wall={:.6} cpu={:.6} samples={} ceilometer_samples={} errors={} rss_after_first_kib={} hwm_kib={} anon_kib={} file_kib={}{daemon_figures}",
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
        status_kib("RssAnon:"),
        status_kib("RssFile:"),
    );
}

/// What the plugin logs at info and above (verify mode).
struct CollectLogger(Mutex<Vec<String>>);

impl log::Log for CollectLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{} {}: {}", record.level(), record.target(), record.args());
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    }
    fn flush(&self) {}
}

static LOGS: CollectLogger = CollectLogger(Mutex::new(Vec::new()));

fn digest<I: IntoIterator<Item = String>>(items: I) -> u64 {
    let mut v: Vec<String> = items.into_iter().collect();
    v.sort();
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// One pollster's output in one cycle, in comparable form.
struct MeterSummary {
    count: usize,
    /// Sorted (resource, unit, type, owner, metadata) of every sample.
    ids: u64,
    /// Sorted (resource, volume) of every sample.
    volumes: u64,
    error: Option<String>,
    /// The volume of the sample with the smallest resource id.
    example: String,
}

/// One cycle, summarised: the resources found and each meter's samples.
fn summarize_cycle(
    disc: &longshore_plugin_api::host::DiscoveryHandle,
    pollsters: &[(&str, longshore_plugin_api::host::PollsterHandle)],
) -> (usize, u64, Option<String>, Vec<MeterSummary>) {
    let ctx = CallContext::new(Arc::new(CycleCache::new()), Default::default());
    let found = disc.discover(&ctx, None);
    let resources = digest(found.resources.iter().map(|r| {
        format!(
            "{}|{}|{:?}|{:?}|{:?}|{:?}",
            r.id(),
            r.name(),
            r.user_id(),
            r.project_id(),
            r.metadata(),
            r.attributes()
        )
    }));
    let meters = pollsters
        .iter()
        .map(|(_, p)| {
            let polled = p.get_samples(&ctx, &found.resources);
            let s = &polled.samples;
            let example = s
                .iter()
                .min_by(|a, b| a.resource_id().cmp(b.resource_id()))
                .map_or("-".to_string(), |x| format!("{:?}", x.volume()));
            MeterSummary {
                count: s.len(),
                ids: digest(s.iter().map(|x| {
                    format!(
                        "{}|{}|{}|{:?}|{:?}|{:?}",
                        x.resource_id(),
                        x.unit(),
                        x.kind(),
                        x.user_id(),
                        x.project_id(),
                        x.resource_metadata()
                    )
                })),
                volumes: digest(
                    s.iter()
                        .map(|x| format!("{}|{:?}", x.resource_id(), x.volume())),
                ),
                error: polled.error.as_ref().map(|e| format!("{e:?}")),
                example,
            }
        })
        .collect();
    (
        found.resources.len(),
        resources,
        found.error.as_ref().map(|e| format!("{e:?}")),
        meters,
    )
}

/// Child, verify mode: the first cycle and the third (with rates), summarised.
fn verify(
    disc: &longshore_plugin_api::host::DiscoveryHandle,
    pollsters: &[(&str, longshore_plugin_api::host::PollsterHandle)],
) {
    let (_, _, first_error, first) = summarize_cycle(disc, pollsters);
    one_cycle(disc, pollsters);
    let (resources, resources_digest, error, steady) = summarize_cycle(disc, pollsters);
    println!(
        "RESULT verify resources={resources} resources_digest={resources_digest:016x} discovery_errors={}",
        usize::from(first_error.is_some()) + usize::from(error.is_some())
    );
    for (((name, _), f), s) in pollsters.iter().zip(&first).zip(&steady) {
        println!(
            "METER {name} first={} steady={} ids={:016x} volumes={:016x} error={} example={}",
            f.count,
            s.count,
            s.ids,
            s.volumes,
            s.error
                .as_deref()
                .or(f.error.as_deref())
                .unwrap_or("-")
                .replace(' ', "_"),
            s.example
        );
    }
    for line in LOGS.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("LOG {line}");
    }
}

fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Run this binary as a child in `mode` with extra environment; its whole stdout.
fn run_child_env(mode: &str, lib: &Path, node: &Path, env: &[(&str, String)]) -> String {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
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
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn result_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("RESULT"))
        .expect("child result line")
        .to_string()
}

fn run_child(mode: &str, lib: &Path, node: &Path) -> String {
    result_line(&run_child_env(mode, lib, node, &[]))
}

/// Where the daemon-hosted test driver comes from.
enum Remote {
    /// A private daemon per N, started with tests/scripts/libvirtd-test-driver.sh.
    Auto,
    /// A running daemon's socket.
    Socket(PathBuf),
}

fn remote_mode(raw_args: &[String]) -> Option<Remote> {
    let arg = raw_args
        .iter()
        .rev()
        .find_map(|a| {
            if a == "--remote" {
                Some("auto".to_string())
            } else {
                a.strip_prefix("--remote=").map(str::to_string)
            }
        })
        .or_else(|| std::env::var(REMOTE_ENV).ok())
        .filter(|v| !v.is_empty())?;
    Some(if arg == "auto" {
        Remote::Auto
    } else {
        Remote::Socket(PathBuf::from(arg))
    })
}

/// A libvirt daemon hosting the test driver, stopped on drop when the bench started it.
struct Daemon {
    socket: PathBuf,
    /// The script's DIR, when the bench started it.
    managed: Option<PathBuf>,
}

impl Daemon {
    fn script() -> PathBuf {
        longshore_tests::workspace_root().join("tests/scripts/libvirtd-test-driver.sh")
    }

    fn run_script(cmd: &str, dir: &Path) -> std::process::Output {
        let mut c = Command::new("sh");
        c.arg(Self::script()).arg(cmd).arg(dir);
        if std::env::var_os("LIBVIRTD_TEST_IDLE_TIMEOUT").is_none() {
            // If this bench dies without stopping it, the daemon exits once idle.
            c.env("LIBVIRTD_TEST_IDLE_TIMEOUT", "300");
        }
        c.output()
            .unwrap_or_else(|e| panic!("run {}: {e}", Self::script().display()))
    }

    fn start(dir: &Path) -> Daemon {
        let out = Self::run_script("start", dir);
        assert!(
            out.status.success(),
            "libvirtd-test-driver.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("socket path")
            .to_string();
        Daemon {
            socket: PathBuf::from(socket),
            managed: Some(dir.to_path_buf()),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(dir) = &self.managed {
            let out = Self::run_script("stop", dir);
            if !out.status.success() {
                eprintln!(
                    "libvirtd-test-driver.sh stop {}: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// Parsed output of a verify child.
struct Verified {
    result: String,
    meters: BTreeMap<String, String>,
    logs: Vec<String>,
}

fn parse_verify(out: &str, uri: &str) -> Verified {
    let mut meters = BTreeMap::new();
    let mut logs = Vec::new();
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix("METER ") {
            let (name, rest) = rest.split_once(' ').expect("meter line");
            meters.insert(name.to_string(), rest.to_string());
        } else if let Some(rest) = l.strip_prefix("LOG ") {
            logs.push(rest.replace(uri, "URI"));
        }
    }
    logs.sort();
    logs.dedup();
    Verified {
        result: result_line(out),
        meters,
        logs,
    }
}

/// The differences between two verify runs: identity (one line each) and the meters
/// whose volumes differ (name, example values).
fn compare(local: &Verified, remote: &Verified) -> (Vec<String>, Vec<(String, String)>) {
    let mut identity = Vec::new();
    let mut volumes = Vec::new();
    for key in ["resources", "resources_digest", "discovery_errors"] {
        let (a, b) = (
            local
                .result
                .split_whitespace()
                .find(|kv| kv.starts_with(key)),
            remote
                .result
                .split_whitespace()
                .find(|kv| kv.starts_with(key)),
        );
        if a != b {
            identity.push(format!("discovery: in-process {a:?}, remote {b:?}"));
        }
    }
    for (name, l) in &local.meters {
        let r = remote.meters.get(name).map_or("", String::as_str);
        let get = |s: &str, key: &str| -> String {
            s.split(' ')
                .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .unwrap_or("")
                .to_string()
        };
        for key in ["first", "steady", "ids", "error"] {
            if get(l, key) != get(r, key) {
                identity.push(format!(
                    "{name}: {key} in-process {} remote {}",
                    get(l, key),
                    get(r, key)
                ));
            }
        }
        if get(l, "volumes") != get(r, "volumes") {
            volumes.push((
                name.clone(),
                format!(
                    "{name} (e.g. in-process {}, remote {})",
                    get(l, "example"),
                    get(r, "example")
                ),
            ));
        }
    }
    if local.logs != remote.logs {
        for l in &local.logs {
            if !remote.logs.contains(l) {
                identity.push(format!("log in-process only: {l}"));
            }
        }
        for l in &remote.logs {
            if !local.logs.contains(l) {
                identity.push(format!("log remote only: {l}"));
            }
        }
    }
    (identity, volumes)
}

fn main_remote(remote: Remote, sizes: Vec<usize>, lib: &Path, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // The daemon (nobody, when the bench runs as root) reads the node files.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let existing = match &remote {
        Remote::Socket(s) => Some(Daemon {
            socket: s.clone(),
            managed: None,
        }),
        Remote::Auto => None,
    };
    println!(
        "compute cycle, remote: libvirt's test driver in {}, libcompute.so at {}",
        match &existing {
            Some(d) => format!("the libvirtd at {}", d.socket.display()),
            None =>
                "a fresh private libvirtd per N (tests/scripts/libvirtd-test-driver.sh)".to_string(),
        },
        lib.display()
    );
    println!(
        "{:>6} {:>9} {:>9} {:>8} {:>10} {:>11} {:>10} {:>11} {:>8} {:>10} {:>12} {:>10} {:>11} {:>6} {:>12}",
        "N",
        "wall ms",
        "CPU ms",
        "samples",
        "(ceil. 23)",
        "1st wall ms",
        "agent MiB",
        "client MiB",
        "own MiB",
        "lvd CPU ms",
        "lvd 1st CPU",
        "lvd MiB",
        "lvd peak MiB",
        "errors",
        "in-process"
    );
    let mut notes = Vec::new();
    let mut agents = Vec::new();
    for n in sizes {
        let node = dir.join(format!("node-{n}.xml"));
        node_xml::write(
            &NodeSpec {
                n,
                seed: 42,
                ..Default::default()
            },
            &node,
        )
        .expect("write node");
        let managed;
        let daemon = match &existing {
            Some(d) => d,
            None => {
                managed = Daemon::start(&dir.join(format!("libvirtd-{n}")));
                &managed
            }
        };
        let pid = socket_peer_pid(&daemon.socket);
        let idle = proc_status_kib(&pid.to_string(), "VmRSS:") as f64 / 1024.0;
        let uri = format!(
            "test+unix://{}?socket={}",
            node.display(),
            daemon.socket.display()
        );
        let env = [(URI_ENV, uri.clone()), (DAEMON_PID_ENV, pid.to_string())];
        let c = result_line(&run_child_env("cycle", lib, &node, &env));
        let d = result_line(&run_child_env("driver", lib, &node, &env));
        let local_uri = format!("test://{}", node.display());
        let local = parse_verify(&run_child_env("verify", lib, &node, &[]), &local_uri);
        let remote_v = parse_verify(&run_child_env("verify", lib, &node, &env), &uri);
        let (identity, volumes) = compare(&local, &remote_v);
        // The test driver derives CPU time and block/interface counters from the time of
        // day: those volumes differ between any two runs, in-process too.
        let local2 = parse_verify(&run_child_env("verify", lib, &node, &[]), &local_uri);
        let (_, time_dependent) = compare(&local, &local2);
        let time_dependent: Vec<String> = time_dependent.into_iter().map(|(m, _)| m).collect();
        let volumes: Vec<String> = volumes
            .into_iter()
            .filter(|(m, _)| !time_dependent.contains(m))
            .map(|(_, text)| text)
            .collect();
        let peak = field(&c, "hwm_kib") / 1024.0;
        let client = field(&d, "hwm_kib") / 1024.0;
        println!(
            "{:>6} {:>9.2} {:>9.2} {:>8} {:>10} {:>11.1} {:>10.1} {:>11.1} {:>8.1} {:>10.2} {:>12.1} {:>10.1} {:>11.1} {:>6} {:>12}",
            n,
            field(&c, "wall") * 1e3,
            field(&c, "cpu") * 1e3,
            field(&c, "samples"),
            field(&c, "ceilometer_samples"),
            field(&c, "first_wall") * 1e3,
            peak,
            client,
            peak - client,
            field(&c, "daemon_cpu") * 1e3,
            field(&c, "daemon_first_cpu") * 1e3,
            field(&c, "daemon_rss_kib") / 1024.0,
            field(&c, "daemon_hwm_kib") / 1024.0,
            field(&c, "errors"),
            if identity.is_empty() && volumes.is_empty() {
                "same"
            } else {
                "DIFFERS"
            },
        );
        notes.push(format!(
            "N={n}: agent RSS after the cycles {:.1} MiB = anon {:.1} + file-backed {:.1} (client-only child: anon {:.1} + file-backed {:.1}); libvirtd {pid} idle before the bench connected: {idle:.1} MiB RSS",
            (field(&c, "anon_kib") + field(&c, "file_kib")) / 1024.0,
            field(&c, "anon_kib") / 1024.0,
            field(&c, "file_kib") / 1024.0,
            field(&d, "anon_kib") / 1024.0,
            field(&d, "file_kib") / 1024.0,
        ));
        for l in identity {
            notes.push(format!("N={n}: differs from in-process: {l}"));
        }
        if !volumes.is_empty() {
            notes.push(format!(
                "N={n}: differs from in-process: volumes of {}",
                volumes.join("; ")
            ));
        }
        notes.push(format!(
            "N={n}: volumes compared except for the meters whose volumes differ between two in-process runs too (time-of-day based on the test driver): {}",
            time_dependent.join(" ")
        ));
        agents.push((n, "stdout", whole_agent(&uri, dir, Publish::Stdout)));
        agents.push((n, "RabbitMQ", whole_agent(&uri, dir, Publish::Amqp)));
    }
    println!("wall/CPU: medians of {MEASURED_CYCLES} cycles after the first; CPU = the agent process only; samples: one steady-state cycle");
    println!("agent MiB: the bench child's peak RSS (longshore + libvirt client); client MiB: a child that only opens the remote connection and lists the domains; own MiB: the difference");
    println!("lvd: the libvirt daemon hosting the test driver: CPU per cycle (median) and for the first cycle (connect: parsing the node file), RSS and peak RSS at the end of the bench child's cycles");
    println!("in-process: the plugin's output compared with the in-process test driver on the same node (per-meter sample counts, resources, sample identities and metadata, errors, logs)");
    for n in notes {
        println!("{n}");
    }
    println!();
    println!("whole agent: `longshore run`, every meter in entry_points.toml, publishing JSON lines to stdout (/dev/null) or to the local RabbitMQ (a fresh exchange and queue, deleted after), against the same daemon; /proc at the end of its first cycle");
    println!(
        "{:>6} {:>9} {:>8} {:>9} {:>9} {:>10} {:>9} {:>9}",
        "N", "publisher", "samples", "cycle s", "CPU s", "VmHWM MiB", "anon MiB", "file MiB"
    );
    for (n, publisher, a) in agents {
        println!(
            "{:>6} {:>9} {:>8} {:>9.3} {:>9.3} {:>10.1} {:>9.1} {:>9.1}",
            n,
            publisher,
            a.samples,
            a.cycle_s,
            a.cpu_s,
            a.hwm_kib as f64 / 1024.0,
            a.anon_kib as f64 / 1024.0,
            a.file_kib as f64 / 1024.0
        );
    }
    println!("cycle s: the agent's own log of its first cycle; CPU s: the process's user + system CPU from exec to the end of that cycle (start-up, plugin loading and connecting included)");
}

struct AgentFigures {
    samples: u64,
    cycle_s: f64,
    cpu_s: f64,
    hwm_kib: u64,
    anon_kib: u64,
    file_kib: u64,
}

/// Where the whole agent publishes.
#[derive(Clone, Copy)]
enum Publish {
    Stdout,
    /// The local RabbitMQ (127.0.0.1:5672, guest), on an exchange and queue of its own.
    Amqp,
}

/// Delete the bench's exchange and queue from the local RabbitMQ (the agent declared
/// them; nothing consumes what it published there).
fn delete_amqp(exchange: &str, queue: &str) {
    use amqprs::channel::{ExchangeDeleteArguments, QueueDeleteArguments};
    use amqprs::connection::{Connection, OpenConnectionArguments};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let args = OpenConnectionArguments::new("127.0.0.1", 5672, "guest", "guest");
        let Ok(conn) = Connection::open(&args).await else {
            eprintln!("could not reach RabbitMQ to delete {exchange} and {queue}");
            return;
        };
        if let Ok(chan) = conn.open_channel(None).await {
            let _ = chan.queue_delete(QueueDeleteArguments::new(queue)).await;
            let _ = chan
                .exchange_delete(ExchangeDeleteArguments::new(exchange))
                .await;
            let _ = chan.close().await;
        }
        let _ = conn.close().await;
    });
}

/// Run the real agent binary as the service on `uri` until the end of its first cycle,
/// read its memory and CPU, then stop it with SIGTERM as an init system would.
fn whole_agent(uri: &str, dir: &Path, publish: Publish) -> AgentFigures {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::time::Duration;

    longshore_tests::build_plugins(&["longshore-plugin-compute", "longshore-plugin-memory-util"]);
    let bin = longshore_tests::build_host();
    let plugins = longshore_tests::plugin_dir_with(&[
        ("compute", "libcompute.so"),
        ("memory_util", "libmemory_util.so"),
    ]);
    let polling = dir.join("agent-polling.yaml");
    std::fs::write(
        &polling,
        "sources:\n  - name: all\n    interval: 3600\n    meters: ['*']\n",
    )
    .expect("write polling.yaml");
    let name = format!("longshore-bench-{}", std::process::id());
    let mut cmd = Command::new(&bin);
    match publish {
        Publish::Stdout => cmd.arg("--set").arg(r#"publisher.publishers=["stdout"]"#),
        Publish::Amqp => cmd
            .arg("--set")
            .arg(r#"publisher.publishers=["notifier://"]"#)
            .arg("--transport-url")
            .arg("rabbit://guest:guest@127.0.0.1:5672/")
            .arg("--set")
            .arg(format!("DEFAULT.control_exchange={name}"))
            .arg("--set")
            .arg(format!(r#"oslo_messaging_notifications.topics=["{name}"]"#)),
    };
    let mut agent = cmd
        .arg("--entry-points")
        .arg(longshore_tests::workspace_root().join("entry_points.toml"))
        .arg("--plugin-dir")
        .arg(plugins.path())
        .arg("--polling-file")
        .arg(&polling)
        .arg("--libvirt-uri")
        .arg(uri)
        .arg("run")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let pid = agent.id();
    let stderr = agent.stderr.take().expect("piped stderr");
    let (tx, rx) = crossbeam_channel::unbounded();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The agent logs one line per cycle; read /proc while it idles after the first.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut log = Vec::new();
    let cycle = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("Polling cycle") => break line,
            Ok(line) => log.push(line),
            Err(e) => {
                let status = agent.try_wait().ok().flatten();
                let _ = agent.kill();
                let _ = agent.wait();
                let why = match (e, status) {
                    (_, Some(status)) => format!("the agent exited ({status})"),
                    (crossbeam_channel::RecvTimeoutError::Timeout, None) => {
                        "no polling cycle from the agent within 600 s".to_string()
                    }
                    (_, None) => "the agent closed its stderr".to_string(),
                };
                panic!("{why}:\n{}", log.join("\n"));
            }
        }
    };
    let p = pid.to_string();
    let figures = AgentFigures {
        samples: cycle
            .split(", ")
            .find_map(|f| f.strip_suffix(" sample(s)"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample count in {cycle:?}")),
        cycle_s: cycle
            .rsplit(" in ")
            .next()
            .and_then(|v| v.trim_end_matches(" s").parse().ok())
            .unwrap_or_else(|| panic!("no cycle time in {cycle:?}")),
        cpu_s: other_process_cpu_ns(pid as libc::pid_t) as f64 / 1e9,
        hwm_kib: proc_status_kib(&p, "VmHWM:"),
        anon_kib: proc_status_kib(&p, "RssAnon:"),
        file_kib: proc_status_kib(&p, "RssFile:"),
    };
    // SAFETY: signalling our own child, which has not been reaped yet.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    // It stops within its own shutdown bound (60 s); past twice that, it is killed.
    let deadline = Instant::now() + Duration::from_secs(120);
    let stopped = loop {
        match agent.try_wait().expect("wait for the agent") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = agent.kill();
                let _ = agent.wait();
                panic!("the agent did not stop within 120 s of SIGTERM");
            }
            // Its exit closes stderr: wait for that (or for a log line) instead of polling.
            None => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(_) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                // stderr closed: the process is exiting.
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    break agent.wait().expect("wait for the agent");
                }
            },
        }
    };
    drop(rx);
    let _ = reader.join();
    if let Publish::Amqp = publish {
        delete_amqp(&name, &format!("{name}.sample"));
    }
    assert!(
        stopped.success(),
        "the agent did not stop cleanly: {stopped}"
    );
    figures
}

fn main() {
    let raw_args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<String> = raw_args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .cloned()
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
    if let Some(remote) = remote_mode(&raw_args) {
        main_remote(remote, sizes, &lib, dir.path());
        return;
    }

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
