//! Test plugins with scripted behaviour, for the host's end-to-end tests and the
//! engine benchmark. Everything here is a real plugin loaded through the real ABI.
//!
//! Options (`[synthetic]`): `resources` (fixed/counted discovery size), `slow_ms`,
//! `hang_from`, `stubborn_ms`, `flaky_failures`, `permanent_fail`, `inspect_delay_ms`,
//! `discovery_delay_ms`, `discovery_log`, `instances`, `bench_samples_per_resource`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use longshore_plugin_api::{
    export_plugin_library, Config, Discovery, Map, OptionKind, OptionSpec, PluginError,
    PluginRegistry, PollContext, PollError, Pollster, Resource, Sample, SampleType, Value,
};

fn opt_i64(cfg: &Config, name: &str, default: i64) -> Result<i64, PluginError> {
    Ok(cfg.i64("synthetic", name)?.unwrap_or(default))
}

/// The number after the last `-` of a resource id (`fixed-7` → 7): a value that depends
/// on the resource alone, not on its position in a call, as a per-resource pollster's
/// must.
fn ordinal(r: &Resource) -> Option<i64> {
    r.id().rsplit('-').next()?.parse().ok()
}

/// `[synthetic] per_resource`: whether counter, partial and permanent declare
/// `Pollster::per_resource` (the host may then call them on slices of their resources).
fn per_resource(cfg: &Config) -> Result<bool, PluginError> {
    Ok(cfg.bool("synthetic", "per_resource")?.unwrap_or(false))
}

fn opt_ms(cfg: &Config, name: &str, default: i64) -> Result<Duration, PluginError> {
    Ok(Duration::from_millis(
        opt_i64(cfg, name, default)?.max(0) as u64
    ))
}

/// Sleep `total`, returning early (false) once the host cancels the call.
fn sleep_unless_cancelled(ctx: &PollContext<'_>, total: Duration) -> bool {
    let end = Instant::now() + total;
    while Instant::now() < end {
        if ctx.is_cancelled() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2).min(end - Instant::now()));
    }
    !ctx.is_cancelled()
}

fn epoch_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// One gauge sample per resource, value = the index of the resource; the resource's
/// metadata is copied into the sample.
struct Counter {
    per_resource: bool,
}

impl Pollster for Counter {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn per_resource(&self) -> bool {
        self.per_resource
    }
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        log::info!("polling {} resources", resources.len());
        for (i, r) in resources.iter().enumerate() {
            // Its position in the call, unless it declares itself per resource.
            let volume = match self.per_resource {
                true => ordinal(r).unwrap_or(i as i64),
                false => i as i64,
            };
            out.push(Sample::from_resource(
                r,
                "test.counter",
                SampleType::Gauge,
                "item",
                volume,
            ));
        }
        Ok(())
    }
}

/// Panics after producing one sample.
struct Panicker;

impl Pollster for Panicker {
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        if let Some(r) = resources.first() {
            out.push(Sample::from_resource(
                r,
                "test.panic",
                SampleType::Gauge,
                "",
                1,
            ));
        }
        panic!("test.panic always panics");
    }
}

/// Sleeps `[synthetic] slow_ms` (honouring cancellation), then one sample per resource.
/// `[synthetic] slow_ms` < 0 never happens; a cancelled call returns a transient error.
struct Slow {
    delay: Duration,
    name: &'static str,
}

impl Pollster for Slow {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn get_samples(
        &self,
        ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        if !sleep_unless_cancelled(ctx, self.delay) {
            return Err(PollError::transient("cancelled by the host"));
        }
        for r in resources {
            out.push(Sample::from_resource(
                r,
                self.name,
                SampleType::Gauge,
                "",
                1,
            ));
        }
        Ok(())
    }
}

/// Sleeps `[synthetic] stubborn_ms` ignoring cancellation (a plugin stuck in a blocking
/// call), then one sample per resource.
struct Stubborn {
    delay: Duration,
}

impl Pollster for Stubborn {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        std::thread::sleep(self.delay);
        for r in resources {
            out.push(Sample::from_resource(
                r,
                "test.stubborn",
                SampleType::Gauge,
                "",
                1,
            ));
        }
        Ok(())
    }
}

/// A per-resource pollster that hangs in a later slice: one sample per resource, except
/// that a call given a resource numbered `[synthetic] hang_from` or more waits until
/// cancelled (at most 60 s) and returns a transient error.
struct HangFrom {
    from: i64,
}

impl Pollster for HangFrom {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn per_resource(&self) -> bool {
        true
    }
    fn get_samples(
        &self,
        ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        if resources
            .iter()
            .any(|r| ordinal(r).is_some_and(|o| o >= self.from))
        {
            sleep_unless_cancelled(ctx, Duration::from_secs(60));
            return Err(PollError::transient("cancelled by the host"));
        }
        for r in resources {
            out.push(Sample::from_resource(
                r,
                "test.hang_from",
                SampleType::Gauge,
                "",
                1,
            ));
        }
        Ok(())
    }
}

/// Fails (transient, no samples) for its first `[synthetic] flaky_failures` calls, then
/// succeeds with one sample per resource whose value is the call number.
struct Flaky {
    failures: u64,
    calls: AtomicU64,
}

impl Pollster for Flaky {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call <= self.failures {
            return Err(PollError::transient(format!(
                "flaky failure {call} of {}",
                self.failures
            )));
        }
        for r in resources {
            out.push(Sample::from_resource(
                r,
                "test.flaky",
                SampleType::Cumulative,
                "call",
                call,
            ));
        }
        Ok(())
    }
}

/// Produces samples for the first half of its resources, then fails (transient).
struct Partial {
    per_resource: bool,
}

impl Pollster for Partial {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn per_resource(&self) -> bool {
        self.per_resource
    }
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        let half = resources.len().div_ceil(2);
        for r in &resources[..half] {
            out.push(Sample::from_resource(
                r,
                "test.partial",
                SampleType::Gauge,
                "",
                1,
            ));
        }
        Err(PollError::transient(format!(
            "partial: failed after {half} of {} resources",
            resources.len()
        )))
    }
}

/// One sample per resource, except for resources whose id contains one of
/// `[synthetic] permanent_fail` (default `bad`): those fail permanently.
struct Permanent {
    markers: Vec<String>,
    per_resource: bool,
}

impl Pollster for Permanent {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn per_resource(&self) -> bool {
        self.per_resource
    }
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        let mut bad = Vec::new();
        for r in resources {
            if self.markers.iter().any(|m| r.id().contains(m.as_str())) {
                bad.push(r.id().to_string());
            } else {
                out.push(Sample::from_resource(
                    r,
                    "test.permanent",
                    SampleType::Gauge,
                    "",
                    1,
                ));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(PollError::permanent(
                "these resources cannot be polled",
                bad,
            ))
        }
    }
}

static INSPECTIONS: AtomicU64 = AtomicU64::new(0);

/// An expensive per-resource inspection shared through the cycle cache: `inspect.a` and
/// `inspect.b` both need it. Each real computation gets a fresh number (`inspection` in
/// the sample metadata, also the volume), so sharing is visible in the samples.
struct Inspection {
    number: u64,
}

struct Inspect {
    meter: &'static str,
    delay: Duration,
}

impl Pollster for Inspect {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn get_samples(
        &self,
        ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        for r in resources {
            let delay = self.delay;
            let inspection = ctx.cached(&format!("inspect:{}", r.id()), || {
                // Widen the window in which parallel pollsters would both compute.
                std::thread::sleep(delay);
                Ok(Inspection {
                    number: INSPECTIONS.fetch_add(1, Ordering::SeqCst) + 1,
                })
            })?;
            out.push(
                Sample::from_resource(r, self.meter, SampleType::Gauge, "", inspection.number)
                    .with_metadata("inspection", inspection.number),
            );
        }
        Ok(())
    }
}

/// Records when it was called (`called_at_us`, epoch µs) and takes 2 ms per sample: a
/// host stamping samples one by one would give them different timestamps.
struct Stamp;

impl Pollster for Stamp {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn get_samples(
        &self,
        ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        let called_at = epoch_micros();
        for r in resources {
            sleep_unless_cancelled(ctx, Duration::from_millis(2));
            out.push(
                Sample::from_resource(r, "test.stamp", SampleType::Gauge, "", 1)
                    .with_metadata("called_at_us", called_at),
            );
        }
        Ok(())
    }
}

/// The benchmark pollster: `[synthetic] bench_samples_per_resource` samples per resource
/// (meters `bench.m<k>`), each a copy of the resource's compute-like metadata plus one
/// additional key, ints and floats alternating as in real compute samples.
struct Bench {
    /// `bench.m0`, `bench.m1`, …: made once, as a real pollster's names are constants.
    names: Vec<String>,
}

impl Pollster for Bench {
    fn default_discovery(&self) -> Option<String> {
        Some("instances".to_string())
    }
    fn per_resource(&self) -> bool {
        true
    }
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        out.reserve(resources.len() * self.names.len());
        for (i, r) in resources.iter().enumerate() {
            // Per resource, whatever slice of the resources this call is given.
            let i = ordinal(r).map_or(i, |n| n as usize);
            for (k, name) in self.names.iter().enumerate() {
                let name = name.as_str();
                let s = if k % 2 == 0 {
                    Sample::from_resource(
                        r,
                        name,
                        SampleType::Cumulative,
                        "ns",
                        179_531_603_580_484u64 + i as u64,
                    )
                    .with_metadata("cpu_number", 2)
                } else {
                    Sample::from_resource(r, name, SampleType::Gauge, "MiB", 2048.0 + i as f64)
                };
                out.push(s);
            }
        }
        Ok(())
    }
}

/// A fixed set of resources: `count` from `[synthetic] resources` (default 3).
struct Fixed {
    count: i64,
}

impl Discovery for Fixed {
    fn discover(
        &self,
        _ctx: &PollContext<'_>,
        param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError> {
        let prefix = param.unwrap_or("res");
        Ok((0..self.count)
            .map(|i| Resource::new(format!("{prefix}-{i}")))
            .collect())
    }
}

/// Like `fixed`, but counts its calls: every resource carries `discovery_call` (the call
/// number) in its metadata, and each call appends `counted <param>` to
/// `[synthetic] discovery_log` when set. Takes `[synthetic] discovery_delay_ms` (20).
struct Counted {
    count: i64,
    delay: Duration,
    log: Option<String>,
    calls: AtomicU64,
}

impl Discovery for Counted {
    fn discover(
        &self,
        _ctx: &PollContext<'_>,
        param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        std::thread::sleep(self.delay);
        if let Some(path) = &self.log {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| PollError::transient(format!("{path}: {e}")))?;
            writeln!(f, "counted {}", param.unwrap_or(""))
                .map_err(|e| PollError::transient(format!("{path}: {e}")))?;
        }
        let prefix = param.unwrap_or("c");
        Ok((0..self.count)
            .map(|i| {
                Resource::builder(format!("{prefix}-{i}"))
                    .metadata(Map::new().with("discovery_call", call))
                    .build()
            })
            .collect())
    }
}

/// Always fails.
struct FailingDiscovery;

impl Discovery for FailingDiscovery {
    fn discover(
        &self,
        _ctx: &PollContext<'_>,
        _param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError> {
        Err(PollError::transient("failing discovery always fails"))
    }
}

/// `[synthetic] instances` (default 10) compute-like instances with the metadata of
/// Ceilometer's libvirt discovery (as in a real capture), deterministic ids.
struct Instances {
    count: usize,
    /// `[synthetic] keep_instances`: return the same resources every cycle, as the
    /// compute plugin's discovery does for unchanged domains (by default new ones every
    /// cycle, as Ceilometer's discoveries make).
    kept: Option<Vec<Resource>>,
}

fn instance(i: usize) -> Resource {
    let uuid = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        0x5be6_128e_u32.wrapping_add(i as u32),
        i % 0xffff,
        i % 0xfff,
        (i * 7) % 0xfff,
        0x0ea7_229d_4bee_u64 + i as u64
    );
    let (flavor, vcpus, ram, disk) = match i % 3 {
        0 => ("m1.small", 1, 2048, 20),
        1 => ("m1.medium", 2, 4096, 40),
        _ => ("m1.large", 4, 8192, 80),
    };
    let name = format!("instance-{:08x}", 0x100 + i);
    let metadata = Map::new()
        .with("display_name", format!("vm-{i}"))
        .with("name", name.as_str())
        .with("instance_id", uuid.as_str())
        .with("instance_type", flavor)
        .with(
            "host",
            format!(
                "{:056x}",
                0x53eb_9300_6ac3_636d_u64.wrapping_mul(i as u64 + 1)
            ),
        )
        .with("instance_host", "compute-0")
        .with(
            "flavor",
            Map::new()
                .with("id", format!("{}", i % 3 + 2))
                .with("name", flavor)
                .with("vcpus", vcpus)
                .with("ram", ram)
                .with("disk", disk)
                .with("ephemeral", 0)
                .with("swap", 0),
        )
        .with("status", "active")
        .with("state", "running")
        .with("task_state", "")
        .with(
            "image",
            Map::new().with("id", "3c2a1f7e-8d4b-4e6a-9f0c-1b2d3e4f5a6b"),
        )
        .with("image_ref", "3c2a1f7e-8d4b-4e6a-9f0c-1b2d3e4f5a6b")
        .with("image_ref_url", Value::NULL)
        .with("architecture", "x86_64")
        .with("os_type", "hvm")
        .with("vcpus", vcpus)
        .with("memory_mb", ram)
        .with("disk_gb", disk)
        .with("ephemeral_gb", 0)
        .with("root_gb", disk);
    Resource::builder(uuid)
        .name(name)
        .user_id(Some(format!(
            "{:032x}",
            0x9a1d_e644_815e_u64 + (i % 50) as u64
        )))
        .project_id(Some(format!(
            "{:032x}",
            0x4737_8190_96da_u64 + (i % 10) as u64
        )))
        .metadata(metadata)
        .build()
}

impl Discovery for Instances {
    fn discover(
        &self,
        _ctx: &PollContext<'_>,
        _param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError> {
        Ok(match &self.kept {
            Some(kept) => kept.clone(),
            None => (0..self.count).map(instance).collect(),
        })
    }
}

/// Panics whenever it is asked to discover.
struct PanickingDiscovery;

impl Discovery for PanickingDiscovery {
    fn discover(
        &self,
        _ctx: &PollContext<'_>,
        _param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError> {
        panic!("discover_panic always panics")
    }
}

fn register(plugins: &mut PluginRegistry) {
    use OptionKind::*;
    for (name, kind, default, help) in [
        (
            "resources",
            Int,
            Value::from(3),
            "Resources of the fixed and counted discoveries",
        ),
        (
            "slow_ms",
            Int,
            Value::from(200),
            "Delay of the slow pollster",
        ),
        (
            "stubborn_ms",
            Int,
            Value::from(1000),
            "Delay of the stubborn pollster (ignores cancellation)",
        ),
        (
            "hang_from",
            Int,
            Value::from(128),
            "First resource number the hang_from pollster hangs on",
        ),
        (
            "flaky_failures",
            Int,
            Value::from(2),
            "Calls the flaky pollster fails before succeeding",
        ),
        (
            "permanent_fail",
            StrList,
            Value::list([Value::from("bad")]),
            "Resource id parts the permanent pollster fails on",
        ),
        (
            "inspect_delay_ms",
            Int,
            Value::from(20),
            "Duration of one cached inspection",
        ),
        (
            "keep_instances",
            Bool,
            Value::from(false),
            "Whether the instances discovery returns the same resources every cycle",
        ),
        (
            "per_resource",
            Bool,
            Value::from(false),
            "Whether counter, partial and permanent may be called on slices of their resources",
        ),
        (
            "discovery_delay_ms",
            Int,
            Value::from(20),
            "Duration of one counted discovery",
        ),
        (
            "discovery_log",
            Str,
            Value::NULL,
            "File the counted discovery appends a line to per call",
        ),
        (
            "instances",
            Int,
            Value::from(10),
            "Instances found by the instances discovery",
        ),
        (
            "bench_samples_per_resource",
            Int,
            Value::from(1),
            "Samples per resource of the bench pollster",
        ),
    ] {
        plugins.option(OptionSpec::new("synthetic", name, kind, default, help));
    }
    plugins
        .pollster("counter", "One gauge per resource", |cfg: &Config| {
            Ok(Counter {
                per_resource: per_resource(cfg)?,
            })
        })
        .pollster("panic", "Panics in get_samples", |_: &Config| Ok(Panicker))
        .pollster(
            "slow",
            "Sleeps slow_ms, honouring cancellation",
            |cfg: &Config| {
                Ok(Slow {
                    delay: opt_ms(cfg, "slow_ms", 200)?,
                    name: "test.slow",
                })
            },
        )
        .pollster(
            "hang",
            "Waits until cancelled (at most 60 s)",
            |_: &Config| {
                Ok(Slow {
                    delay: Duration::from_secs(60),
                    name: "test.hang",
                })
            },
        )
        .pollster(
            "hang_from",
            "Per resource; hangs on a slice holding resource hang_from or later",
            |cfg: &Config| {
                Ok(HangFrom {
                    from: opt_i64(cfg, "hang_from", 128)?,
                })
            },
        )
        .pollster(
            "stubborn",
            "Sleeps stubborn_ms ignoring cancellation",
            |cfg: &Config| {
                Ok(Stubborn {
                    delay: opt_ms(cfg, "stubborn_ms", 1000)?,
                })
            },
        )
        .pollster(
            "flaky",
            "Fails flaky_failures times, then works",
            |cfg: &Config| {
                Ok(Flaky {
                    failures: opt_i64(cfg, "flaky_failures", 2)?.max(0) as u64,
                    calls: AtomicU64::new(0),
                })
            },
        )
        .pollster(
            "fail",
            "Always fails (transient, no samples)",
            |_: &Config| {
                Ok(Flaky {
                    failures: u64::MAX,
                    calls: AtomicU64::new(0),
                })
            },
        )
        .pollster(
            "partial",
            "Samples for half the resources, then an error",
            |cfg: &Config| {
                Ok(Partial {
                    per_resource: per_resource(cfg)?,
                })
            },
        )
        .pollster(
            "permanent",
            "Fails permanently for resources matching permanent_fail",
            |cfg: &Config| {
                Ok(Permanent {
                    markers: cfg
                        .str_list("synthetic", "permanent_fail")?
                        .unwrap_or_else(|| vec!["bad".to_string()]),
                    per_resource: per_resource(cfg)?,
                })
            },
        )
        .pollster(
            "inspect.a",
            "Uses the shared cached inspection",
            |cfg: &Config| {
                Ok(Inspect {
                    meter: "test.inspect.a",
                    delay: opt_ms(cfg, "inspect_delay_ms", 20)?,
                })
            },
        )
        .pollster(
            "inspect.b",
            "Uses the shared cached inspection",
            |cfg: &Config| {
                Ok(Inspect {
                    meter: "test.inspect.b",
                    delay: opt_ms(cfg, "inspect_delay_ms", 20)?,
                })
            },
        )
        .pollster(
            "stamp",
            "Records its call time, 2 ms per sample",
            |_: &Config| Ok(Stamp),
        )
        .pollster(
            "bench",
            "Benchmark: compute-like samples",
            |cfg: &Config| {
                let n = opt_i64(cfg, "bench_samples_per_resource", 1)?.clamp(1, 1000);
                Ok(Bench {
                    names: (0..n).map(|k| format!("bench.m{k}")).collect(),
                })
            },
        )
        .discovery("fixed", "N fixed resources", |cfg: &Config| {
            Ok(Fixed {
                count: cfg.i64("synthetic", "resources")?.unwrap_or(3),
            })
        })
        .discovery(
            "counted",
            "N fixed resources, counting calls",
            |cfg: &Config| {
                Ok(Counted {
                    count: opt_i64(cfg, "resources", 3)?,
                    delay: opt_ms(cfg, "discovery_delay_ms", 20)?,
                    log: cfg.str("synthetic", "discovery_log")?.map(str::to_string),
                    calls: AtomicU64::new(0),
                })
            },
        )
        .discovery("failing", "Always fails", |_: &Config| Ok(FailingDiscovery))
        .discovery("instances", "Compute-like instances", |cfg: &Config| {
            let count = opt_i64(cfg, "instances", 10)?.max(0) as usize;
            let keep = cfg.bool("synthetic", "keep_instances")?.unwrap_or(false);
            Ok(Instances {
                count,
                kept: keep.then(|| (0..count).map(instance).collect()),
            })
        })
        .pollster(
            "ctor_error",
            "Constructor returns an error",
            |_: &Config| Err::<Counter, _>(PluginError::failed("ctor_error refuses to be built")),
        )
        .pollster(
            "ctor_skip",
            "Constructor asks to be skipped quietly",
            |_: &Config| Err::<Counter, _>(PluginError::skip("ctor_skip does not apply here")),
        )
        .discovery("discover_panic", "Panics in discover", |_: &Config| {
            Ok(PanickingDiscovery)
        })
        .pollster(
            "ctor_panic",
            "Constructor panics",
            |_: &Config| -> Result<Counter, PluginError> {
                panic!("ctor_panic panics in its constructor")
            },
        );
}

export_plugin_library!(register);
