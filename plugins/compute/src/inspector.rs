//! The libvirt inspector (Ceilometer's `LibvirtInspector`, §7): one process-wide read-only
//! connection per URI shared by every plugin of the library, reconnected when dead, and
//! the per-cycle inspections pollsters share through the host's cycle cache, so that
//! each hypervisor query per instance happens once per cycle.
//!
//! One bulk `virConnectGetAllDomainStats` per cycle lists the domains with every stats
//! group the driver reports; what a driver leaves out (the test driver reports only
//! `state.*`) is fetched per call: `virDomainGetInfo`, `virDomainMemoryStats`,
//! `virDomainBlockStats`, `virDomainGetBlockInfo`, `virDomainInterfaceStats`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use longshore_plugin_api::{Map, PollContext, PollError, Value};

use crate::config::{mask_uri, opt_str, Keepalive};
use crate::domxml::Interface;
use crate::libvirt::{Conn, Dom, DomInfo, DomStats, IfStats, LibvirtError, MemStats, Perf};

pub const SHUTOFF: i32 = 5;

/// Seconds on the monotonic clock (Python's `time.monotonic()`), for `monotonic_time`.
pub fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The outcome of one inspection of one instance, cached for the cycle. Anything but
/// `Ok` means: no sample for this instance from the pollsters sharing the inspection.
#[derive(Debug)]
pub enum Inspection<T> {
    Ok(T),
    /// The domain no longer exists (it disappeared during the cycle).
    NotFound,
    /// SHUTOFF (and this inspection skips stopped instances).
    ShutOff,
    /// A libvirt error for this instance only; already logged.
    Failed,
}

impl<T> Inspection<T> {
    /// The value of an `Ok` inspection.
    pub fn ok(&self) -> Option<&T> {
        match self {
            Inspection::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// The value, or the same non-`Ok` status for an inspection built on this one.
    pub fn ok_or_status<U>(&self) -> Result<&T, Inspection<U>> {
        match self {
            Inspection::Ok(v) => Ok(v),
            Inspection::NotFound => Err(Inspection::NotFound),
            Inspection::ShutOff => Err(Inspection::ShutOff),
            Inspection::Failed => Err(Inspection::Failed),
        }
    }
}

/// A domain as listed at the start of the cycle.
pub struct DomEntry {
    pub dom: Dom,
    pub uuid: String,
    pub state: i32,
    pub stats: DomStats,
    /// What the cycle's pollsters inspected of it.
    inspections: Inspections,
}

/// One domain's inspections in the current cycle, each made once however many meters
/// use it. They hang on the domain's entry in the cycle's domain list, which the cycle
/// cache holds for exactly one cycle: one cycle-cache entry (a key and a slot) per
/// instance and inspection would cost ~150 bytes each, ~0.75 MB a cycle at N=1000.
#[derive(Default)]
struct Inspections {
    devices: Once<Inspection<Arc<Devices>>>,
    /// Without and with `report_stopped_instance_metrics`.
    instance: [Once<Inspection<InstanceStats>>; 2],
    disks: Once<Inspection<Timed<Vec<DiskStat>>>>,
    /// Without and with `report_stopped_instance_metrics`.
    disk_info: [Once<Inspection<Timed<Vec<DiskInfoStat>>>>; 2],
    vnics: Once<Inspection<VnicStats>>,
}

/// A value computed at most once, by the first caller that succeeds: callers that come
/// while it is being computed wait for it (as the cycle cache's do); an error is
/// returned to its caller only and not kept.
struct Once<T>(Mutex<Option<Arc<T>>>);

impl<T> Default for Once<T> {
    fn default() -> Once<T> {
        Once(Mutex::new(None))
    }
}

impl<T> Once<T> {
    fn get_or_try(&self, init: impl FnOnce() -> Result<T, PollError>) -> Result<Arc<T>, PollError> {
        let mut slot = lock(&self.0);
        if let Some(v) = slot.as_ref() {
            return Ok(v.clone());
        }
        let v = Arc::new(init()?);
        *slot = Some(v.clone());
        Ok(v)
    }
}

/// Every domain of the hypervisor, once per cycle.
pub struct Domains {
    pub order: Vec<Arc<DomEntry>>,
    /// Indexes into `order`, sorted by uuid.
    by_uuid: Vec<u32>,
}

impl Domains {
    pub fn get(&self, uuid: &str) -> Option<&Arc<DomEntry>> {
        let i = self
            .by_uuid
            .binary_search_by(|&i| self.order[i as usize].uuid.as_str().cmp(uuid))
            .ok()?;
        self.order.get(self.by_uuid[i] as usize)
    }
}

/// A vNIC with its sample resource id and what its samples add to the base metadata.
///
/// The additional metadata is kept as its values, not as a `Map`: every sample gets its
/// own copy of the entries anyway (a sample's additional keys are its own), so a map
/// per vNIC would only be a second copy held for the instance's lifetime.
#[derive(Debug)]
pub struct VnicDevice {
    /// The tap device (shared with the counters kept for the next inspection).
    pub name: Arc<str>,
    pub resource_id: String,
    pub mac: String,
    pub fref: Option<String>,
    /// The `parameters` dict, shared: each sample's copy costs a reference count.
    pub parameters: Value,
}

impl VnicDevice {
    /// Add `name, mac, fref, parameters, vnic_name` to a sample's metadata, in
    /// Ceilometer's order (`name` overrides the instance name in its place).
    pub fn add_metadata(&self, md: &mut Map) {
        md.insert("name", &*self.name);
        md.insert("mac", self.mac.as_str());
        md.insert("fref", opt_str(&self.fref));
        md.insert("parameters", self.parameters.clone());
        md.insert("vnic_name", self.fref.as_deref().unwrap_or(&self.name));
    }
}

/// The devices the inspector polls, from the domain XML.
#[derive(Debug, Default)]
pub struct Devices {
    /// Target device names (shared with each cycle's disk inspections).
    pub disks: Vec<Arc<str>>,
    pub vnics: Vec<VnicDevice>,
}

impl Devices {
    pub fn new(
        uuid: &str,
        instance_name: &str,
        disks: Vec<String>,
        ifaces: Vec<Interface>,
    ) -> Devices {
        let disks = disks.into_iter().map(Arc::from).collect();
        let vnics = ifaces
            .into_iter()
            .map(|i| {
                // Ceilometer's NetworkPollster.get_resource_id: the nwfilter name when
                // there is one, else "<instance name>-<uuid>-<tap>".
                let resource_id = match &i.fref {
                    Some(f) => f.clone(),
                    None => format!("{instance_name}-{uuid}-{}", i.name),
                };
                let mut params = Map::with_capacity(i.parameters.len());
                for (k, v) in &i.parameters {
                    params.insert(k.as_str(), opt_str(v));
                }
                VnicDevice {
                    name: Arc::from(i.name),
                    resource_id,
                    mac: i.mac,
                    fref: i.fref,
                    parameters: Value::from(params.into_shared()),
                }
            })
            .collect();
        Devices { disks, vnics }
    }
}

/// `inspect_instance` (§7.4).
#[derive(Debug, Default)]
pub struct InstanceStats {
    pub at: f64,
    pub power_state: i32,
    pub cpu_time: Option<u64>,
    pub cpu_number: Option<u64>,
    pub memory_actual: Option<f64>,
    pub memory_available: Option<f64>,
    pub memory_usage: Option<f64>,
    pub memory_resident: Option<f64>,
    pub memory_swap_in: Option<f64>,
    pub memory_swap_out: Option<f64>,
    pub perf: Perf,
}

/// `inspect_disks`, one device.
#[derive(Debug)]
pub struct DiskStat {
    pub dev: Arc<str>,
    pub rd_req: i64,
    pub rd_bytes: i64,
    pub wr_req: i64,
    pub wr_bytes: i64,
    pub rd_total_times: Option<u64>,
    pub wr_total_times: Option<u64>,
}

/// `inspect_disk_info`, one device.
#[derive(Debug)]
pub struct DiskInfoStat {
    pub dev: Arc<str>,
    pub capacity: u64,
    pub allocation: u64,
    pub physical: u64,
}

/// `inspect_vnics`, one interface: counters, deltas since the previous inspection, and
/// rates (which Ceilometer's libvirt inspector does not implement).
#[derive(Debug)]
pub struct VnicStat {
    /// Index into the instance's `Devices::vnics`.
    pub index: usize,
    pub stats: IfStats,
    pub rx_delta: i64,
    pub tx_delta: i64,
    pub rx_rate: Option<f64>,
    pub tx_rate: Option<f64>,
}

#[derive(Debug)]
pub struct Timed<T> {
    pub at: f64,
    pub items: T,
}

pub struct VnicStats {
    pub at: f64,
    pub devices: Arc<Devices>,
    pub items: Vec<VnicStat>,
}

/// The previous counters of one vNIC, for deltas and rates.
#[derive(Debug, Clone)]
struct PrevVnic {
    name: Arc<str>,
    rx: i64,
    tx: i64,
    at: f64,
}

/// One libvirt URI: its connection and the state that outlives a cycle.
pub struct Hypervisor {
    uri: String,
    /// Keepalive for connections to a daemon (from the first plugin that asked for
    /// this URI).
    keepalive: Keepalive,
    /// Its cycle-cache key: its index in the library's registry (decimal, unique
    /// among the URIs of the library), then `L`.
    domains_key: String,
    masked: String,
    conn: Mutex<Option<Arc<Conn>>>,
    bulk_unsupported: AtomicBool,
    flags_unsupported: AtomicBool,
    was_down: AtomicBool,
    /// vNIC counters of the previous inspection, keyed by instance uuid then tap name
    /// (Ceilometer keys by tap name only, process-wide, and never prunes: §13.7).
    vnic_prev: Mutex<HashMap<String, Vec<PrevVnic>>>,
    /// Keys of messages already logged at WARNING (later ones go to DEBUG).
    logged: Mutex<HashSet<String>>,
}

/// The process-wide hypervisor for `uri` (one connection shared by every plugin of the
/// library that uses this URI).
pub fn hypervisor(uri: &str, keepalive: Keepalive) -> Arc<Hypervisor> {
    static ALL: OnceLock<Mutex<HashMap<String, Arc<Hypervisor>>>> = OnceLock::new();
    let mut all = lock(ALL.get_or_init(Default::default));
    let index = all.len();
    all.entry(uri.to_string())
        .or_insert_with(|| {
            Arc::new(Hypervisor {
                uri: uri.to_string(),
                keepalive,
                domains_key: format!("{index}L"),
                masked: mask_uri(uri),
                conn: Mutex::new(None),
                bulk_unsupported: AtomicBool::new(false),
                flags_unsupported: AtomicBool::new(false),
                was_down: AtomicBool::new(false),
                vnic_prev: Mutex::new(HashMap::new()),
                logged: Mutex::new(HashSet::new()),
            })
        })
        .clone()
}

impl Hypervisor {
    /// The URI as it may be logged (password masked).
    pub fn masked_uri(&self) -> &str {
        &self.masked
    }

    /// True the first time `key` is seen: log at WARNING once, then at DEBUG.
    pub fn first_time(&self, key: String) -> bool {
        lock(&self.logged).insert(key)
    }

    /// The open connection, reconnecting if there is none or it is dead.
    pub fn connection(&self) -> Result<Arc<Conn>, PollError> {
        let mut slot = lock(&self.conn);
        if let Some(c) = slot.as_ref() {
            if c.is_alive() {
                return Ok(c.clone());
            }
            log::warn!(
                "libvirt connection to {} is no longer alive; reconnecting",
                self.masked
            );
            *slot = None;
        }
        match Conn::open_read_only(&self.uri, self.keepalive.interval > 0) {
            Ok(c) => {
                let c = Arc::new(c);
                if self.was_down.swap(false, Ordering::Relaxed) {
                    log::warn!("connected to libvirt at {} again", self.masked);
                } else {
                    log::info!("connected to libvirt at {}", self.masked);
                }
                let Keepalive { interval, count } = self.keepalive;
                if interval > 0 {
                    match c.set_keep_alive(interval, count) {
                        Ok(true) => log::debug!(
                            "libvirt keepalive on {}: every {interval} s, closed after {count} unanswered",
                            self.masked
                        ),
                        Ok(false) => log::debug!(
                            "libvirt at {} does not answer keepalive probes",
                            self.masked
                        ),
                        // In-process drivers have no keepalive (nothing can hang there).
                        Err(e) => log::debug!("no libvirt keepalive on {}: {}", self.masked, e.message),
                    }
                }
                // A new connection may reach another daemon version.
                self.bulk_unsupported.store(false, Ordering::Relaxed);
                self.flags_unsupported.store(false, Ordering::Relaxed);
                *slot = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                self.was_down.store(true, Ordering::Relaxed);
                Err(PollError::transient(format!(
                    "cannot connect to libvirt at {}: {}; check [compute] libvirt_uri (or \
                     [DEFAULT] libvirt_uri / libvirt_type) and that libvirt is running — \
                     polling retries next cycle",
                    self.masked, e.message
                )))
            }
        }
    }

    fn drop_connection(&self) {
        *lock(&self.conn) = None;
    }

    /// What a libvirt error during an instance's inspection means for the poll: the
    /// connection is gone (abort the run, reconnect next time), the domain is gone or
    /// stopped (skip it), or something about this instance only (log, skip it).
    fn instance_error<T>(
        &self,
        e: LibvirtError,
        what: &str,
        uuid: &str,
    ) -> Result<Inspection<T>, PollError> {
        if e.is_disconnect() {
            self.drop_connection();
            self.was_down.store(true, Ordering::Relaxed);
            return Err(PollError::transient(format!(
                "libvirt connection to {} lost while {what}: {e}",
                self.masked
            )));
        }
        if e.is_no_domain() {
            log::debug!("instance {uuid} disappeared while {what}: {e}");
            return Ok(Inspection::NotFound);
        }
        if e.is_not_running() {
            log::debug!("instance {uuid} stopped while {what}: {e}");
            return Ok(Inspection::ShutOff);
        }
        log::warn!("could not inspect instance {uuid} ({what}): {e}");
        Ok(Inspection::Failed)
    }

    /// Every domain with its bulk stats, once per cycle: the cycle-cache entry
    /// `<hypervisor index>L`. What the cycle inspects of each domain hangs on its entry.
    pub fn domains(&self, ctx: &PollContext<'_>) -> Result<Arc<Domains>, PollError> {
        ctx.cached(&self.domains_key, || self.fetch_domains())
    }

    fn fetch_domains(&self) -> Result<Domains, PollError> {
        let conn = self.connection()?;
        let mut entries: Vec<Arc<DomEntry>> = Vec::new();
        let mut listed = false;
        if !self.bulk_unsupported.load(Ordering::Relaxed) {
            match conn.all_domain_stats(0) {
                Ok(records) => {
                    listed = true;
                    entries.reserve(records.len());
                    for rec in records {
                        let Ok(uuid) = rec.dom.uuid_string() else {
                            continue;
                        };
                        let state = match rec.stats.state {
                            Some(s) => s,
                            None => match rec.dom.state() {
                                Ok(s) => s,
                                Err(_) => continue,
                            },
                        };
                        entries.push(Arc::new(DomEntry {
                            dom: rec.dom,
                            uuid,
                            state,
                            stats: rec.stats,
                            inspections: Inspections::default(),
                        }));
                    }
                }
                Err(e) if e.is_unsupported() => {
                    log::info!(
                        "libvirt at {} has no bulk domain stats ({e}); querying per domain",
                        self.masked
                    );
                    self.bulk_unsupported.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(self.list_error(e)),
            }
        }
        if !listed {
            let doms = conn.list_all_domains().map_err(|e| self.list_error(e))?;
            for dom in doms {
                let Ok(uuid) = dom.uuid_string() else {
                    continue;
                };
                let Ok(state) = dom.state() else { continue };
                entries.push(Arc::new(DomEntry {
                    dom,
                    uuid,
                    state,
                    stats: DomStats::default(),
                    inspections: Inspections::default(),
                }));
            }
        }
        let mut by_uuid: Vec<u32> = (0..entries.len() as u32).collect();
        by_uuid.sort_unstable_by(|&a, &b| entries[a as usize].uuid.cmp(&entries[b as usize].uuid));
        Ok(Domains {
            order: entries,
            by_uuid,
        })
    }

    fn list_error(&self, e: LibvirtError) -> PollError {
        if e.is_disconnect() {
            self.drop_connection();
        }
        PollError::transient(format!(
            "cannot list libvirt domains at {}: {e}",
            self.masked
        ))
    }

    /// The devices of an instance (seeded by the discovery in the same cycle, else read
    /// from the domain XML).
    pub fn devices(&self, entry: &DomEntry) -> Result<Arc<Inspection<Arc<Devices>>>, PollError> {
        entry.inspections.devices.get_or_try(|| {
            log::trace!("inspecting the devices of instance {}", entry.uuid);
            let xml = match entry.dom.xml_desc() {
                Ok(x) => x,
                Err(e) => return self.instance_error(e, "reading its domain XML", &entry.uuid),
            };
            match crate::domxml::parse_domain(&xml) {
                Ok(d) => Ok(Inspection::Ok(Arc::new(Devices::new(
                    &entry.uuid,
                    &d.name,
                    d.disks,
                    d.interfaces,
                )))),
                Err(e) => {
                    log::warn!("instance {}: {e}", entry.uuid);
                    Ok(Inspection::Failed)
                }
            }
        })
    }

    /// Store the devices the discovery read, for the pollsters of the same cycle.
    pub fn seed_devices(&self, entry: &DomEntry, devices: Arc<Devices>) {
        let _ = entry
            .inspections
            .devices
            .get_or_try(|| Ok(Inspection::Ok(devices)));
    }

    /// Forget vNIC counters of instances that no longer exist.
    pub fn retain_vnic_state(&self, alive: &HashSet<&str>) {
        lock(&self.vnic_prev).retain(|uuid, _| alive.contains(uuid.as_str()));
    }

    fn entry(&self, ctx: &PollContext<'_>, uuid: &str) -> Result<Option<Arc<DomEntry>>, PollError> {
        Ok(self.domains(ctx)?.get(uuid).cloned())
    }

    /// `inspect_instance`, once per instance per cycle.
    pub fn instance(
        &self,
        ctx: &PollContext<'_>,
        uuid: &str,
        report_stopped: bool,
    ) -> Result<Arc<Inspection<InstanceStats>>, PollError> {
        let Some(entry) = self.entry(ctx, uuid)? else {
            log::debug!("instance {uuid} is not on this hypervisor (any more)");
            return Ok(Arc::new(Inspection::NotFound));
        };
        entry.inspections.instance[usize::from(report_stopped)].get_or_try(|| {
            log::trace!("inspecting instance {uuid}");
            self.inspect_instance(&entry, report_stopped)
        })
    }

    fn inspect_instance(
        &self,
        e: &DomEntry,
        report_stopped: bool,
    ) -> Result<Inspection<InstanceStats>, PollError> {
        let at = monotonic();
        let mut info: Option<DomInfo> = None;
        // virDomainGetInfo, at most once, only when needed.
        macro_rules! info {
            () => {
                match info {
                    Some(i) => i,
                    None => match e.dom.info() {
                        Ok(i) => *info.insert(i),
                        Err(err) => return self.instance_error(err, "reading its info", &e.uuid),
                    },
                }
            };
        }
        if e.state == SHUTOFF {
            if !report_stopped {
                return Ok(Inspection::ShutOff);
            }
            let i = info!();
            return Ok(Inspection::Ok(InstanceStats {
                at,
                power_state: SHUTOFF,
                cpu_number: Some(i.nr_virt_cpu as u64),
                memory_actual: Some(i.max_mem as f64 / 1024.0),
                ..Default::default()
            }));
        }
        let s = &e.stats;
        let mem = match s.balloon {
            Some(b) => b,
            None => match e.dom.memory_stats() {
                Ok(m) => m,
                Err(err) if err.is_disconnect() || err.is_no_domain() => {
                    return self.instance_error(err, "reading its memory stats", &e.uuid)
                }
                Err(err) => {
                    if self.first_time(format!("memstats:{}", e.uuid)) {
                        log::warn!("instance {}: no memory stats: {err}", e.uuid);
                    }
                    MemStats::default()
                }
            },
        };
        // Where the driver reports no CPU data at all (the test driver),
        // virDomainGetInfo's cpuTime, not Ceilometer's 0.
        let mut cpu_time = bulk_cpu_time(s);
        if cpu_time.is_none() {
            cpu_time = Some(info!().cpu_time);
        }
        let cpu_number = match s.vcpu_current {
            Some(c) => Some(c),
            None => Some(info!().nr_virt_cpu as u64),
        };
        let mib = |v: Option<u64>| v.map(|v| v as f64 / 1024.0);
        let diff = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some((a as i128 - b as i128) as f64 / 1024.0),
            _ => None,
        };
        let both_swap = mem.swap_in.is_some() && mem.swap_out.is_some();
        Ok(Inspection::Ok(InstanceStats {
            at,
            power_state: e.state,
            cpu_time,
            cpu_number,
            memory_actual: mib(mem.actual),
            memory_available: mib(mem.available),
            memory_usage: diff(mem.available, mem.usable)
                .or_else(|| diff(mem.available, mem.unused)),
            memory_resident: mib(mem.rss),
            memory_swap_in: if both_swap { mib(mem.swap_in) } else { None },
            memory_swap_out: if both_swap { mib(mem.swap_out) } else { None },
            perf: s.perf,
        }))
    }

    /// `inspect_disks`, once per instance per cycle. Stopped instances are skipped.
    pub fn disks(
        &self,
        ctx: &PollContext<'_>,
        uuid: &str,
    ) -> Result<Arc<Inspection<Timed<Vec<DiskStat>>>>, PollError> {
        let Some(e) = self.entry(ctx, uuid)? else {
            return Ok(Arc::new(Inspection::NotFound));
        };
        e.inspections.disks.get_or_try(|| {
            log::trace!("inspecting the disks of instance {uuid}");
            if e.state == SHUTOFF {
                return Ok(Inspection::ShutOff);
            }
            let devices = match self.devices(&e)?.ok_or_status() {
                Ok(d) => d.clone(),
                Err(status) => return Ok(status),
            };
            let at = monotonic();
            let mut items = Vec::with_capacity(devices.disks.len());
            for dev in &devices.disks {
                let bulk = e.stats.block(dev).filter(|b| b.rd_reqs.is_some());
                let stat = match bulk {
                    Some(b) => DiskStat {
                        dev: dev.clone(),
                        rd_req: b.rd_reqs.unwrap_or(-1),
                        rd_bytes: b.rd_bytes.unwrap_or(-1),
                        wr_req: b.wr_reqs.unwrap_or(-1),
                        wr_bytes: b.wr_bytes.unwrap_or(-1),
                        rd_total_times: b.rd_times,
                        wr_total_times: b.wr_times,
                    },
                    None => match e.dom.block_stats(dev) {
                        Ok(bs) => {
                            let (rd_t, wr_t) = self.block_latency(&e.dom, dev);
                            DiskStat {
                                dev: dev.clone(),
                                rd_req: bs.rd_req,
                                rd_bytes: bs.rd_bytes,
                                wr_req: bs.wr_req,
                                wr_bytes: bs.wr_bytes,
                                rd_total_times: rd_t,
                                wr_total_times: wr_t,
                            }
                        }
                        Err(err) if err.is_disconnect() || err.is_no_domain() || err.is_not_running() => {
                            return self.instance_error(err, "reading block stats", uuid)
                        }
                        Err(err) => {
                            log::warn!("Error from libvirt while checking blockStats of {dev} on instance {uuid}: {err}");
                            continue;
                        }
                    },
                };
                items.push(stat);
            }
            Ok(Inspection::Ok(Timed { at, items }))
        })
    }

    /// Whether the driver lacks `virDomainBlockStatsFlags` (already logged once).
    pub fn latency_unsupported(&self) -> bool {
        self.flags_unsupported.load(Ordering::Relaxed)
    }

    /// Latency counters (`virDomainBlockStatsFlags`); drivers without it (the test
    /// driver) are remembered and not asked again on this connection.
    fn block_latency(&self, dom: &Dom, dev: &str) -> (Option<u64>, Option<u64>) {
        if self.flags_unsupported.load(Ordering::Relaxed) {
            return (None, None);
        }
        match dom.block_stats_flags(dev) {
            Ok(t) => t,
            Err(e) if e.is_unsupported() => {
                log::info!(
                    "libvirt at {} has no virDomainBlockStatsFlags ({}): no disk.device.read/write.latency",
                    self.masked,
                    e.message
                );
                self.flags_unsupported.store(true, Ordering::Relaxed);
                (None, None)
            }
            Err(e) => {
                log::debug!("blockStatsFlags({dev}): {e}");
                (None, None)
            }
        }
    }

    /// `inspect_disk_info`, once per instance per cycle.
    pub fn disk_info(
        &self,
        ctx: &PollContext<'_>,
        uuid: &str,
        report_stopped: bool,
    ) -> Result<Arc<Inspection<Timed<Vec<DiskInfoStat>>>>, PollError> {
        let Some(e) = self.entry(ctx, uuid)? else {
            return Ok(Arc::new(Inspection::NotFound));
        };
        e.inspections.disk_info[usize::from(report_stopped)].get_or_try(|| {
            log::trace!("inspecting the disk info of instance {uuid}");
            if e.state == SHUTOFF && !report_stopped {
                return Ok(Inspection::ShutOff);
            }
            let devices = match self.devices(&e)?.ok_or_status() {
                Ok(d) => d.clone(),
                Err(status) => return Ok(status),
            };
            let at = monotonic();
            let mut items = Vec::with_capacity(devices.disks.len());
            for dev in &devices.disks {
                let bulk = e
                    .stats
                    .block(dev)
                    .and_then(|b| Some((b.capacity?, b.allocation?, b.physical?)));
                let (capacity, allocation, physical) = match bulk {
                    Some(t) => t,
                    None => match e.dom.block_info(dev) {
                        Ok(bi) => (bi.capacity, bi.allocation, bi.physical),
                        Err(err) if err.is_disconnect() || err.is_no_domain() => {
                            return self.instance_error(err, "reading block info", uuid)
                        }
                        Err(err) => {
                            log::warn!(
                                "could not read block info of {dev} on instance {uuid}: {err}"
                            );
                            continue;
                        }
                    },
                };
                items.push(DiskInfoStat {
                    dev: dev.clone(),
                    capacity,
                    allocation,
                    physical,
                });
            }
            Ok(Inspection::Ok(Timed { at, items }))
        })
    }

    /// `inspect_vnics`, once per instance per cycle, with deltas and rates against the
    /// previous inspection of the same (instance, tap).
    pub fn vnics(
        &self,
        ctx: &PollContext<'_>,
        uuid: &str,
    ) -> Result<Arc<Inspection<VnicStats>>, PollError> {
        let Some(e) = self.entry(ctx, uuid)? else {
            return Ok(Arc::new(Inspection::NotFound));
        };
        e.inspections.vnics.get_or_try(|| {
            log::trace!("inspecting the vNICs of instance {uuid}");
            if e.state == SHUTOFF {
                return Ok(Inspection::ShutOff);
            }
            let devices = match self.devices(&e)?.ok_or_status() {
                Ok(d) => d.clone(),
                Err(status) => return Ok(status),
            };
            let at = monotonic();
            let mut current: Vec<(usize, IfStats)> = Vec::with_capacity(devices.vnics.len());
            let mut failed: Vec<&str> = Vec::new();
            for (index, nic) in devices.vnics.iter().enumerate() {
                let bulk = e.stats.net(&nic.name);
                let stats = match bulk {
                    Some(b) => b.stats,
                    None => match e.dom.interface_stats(&nic.name) {
                        Ok(s) => s,
                        Err(err) if err.is_disconnect() || err.is_no_domain() || err.is_not_running() => {
                            return self.instance_error(err, "reading interface stats", uuid)
                        }
                        Err(err) => {
                            log::warn!("Error from libvirt while checking interface stats of {} on instance {uuid}: {err}", nic.name);
                            failed.push(&*nic.name);
                            continue;
                        }
                    },
                };
                current.push((index, stats));
            }
            // Counters of interfaces that failed this time are kept for next time, as
            // Ceilometer does not update its cache on failure.
            let old = lock(&self.vnic_prev).remove(uuid).unwrap_or_default();
            let mut items = Vec::with_capacity(current.len());
            let mut next: Vec<PrevVnic> = old
                .iter()
                .filter(|p| failed.contains(&&*p.name))
                .cloned()
                .collect();
            for (index, s) in current {
                let name = &devices.vnics[index].name;
                let prev = old.iter().find(|p| &p.name == name);
                let delta = |now: i64, before: Option<i64>| match before {
                    None => 0,
                    Some(b) if now - b < 0 => now,
                    Some(b) => now - b,
                };
                let rate = |now: i64, before: Option<(i64, f64)>| {
                    let (b, t) = before?;
                    let dt = at - t;
                    (now >= b && dt > 0.0).then(|| (now - b) as f64 / dt)
                };
                items.push(VnicStat {
                    index,
                    stats: s,
                    rx_delta: delta(s.rx_bytes, prev.map(|p| p.rx)),
                    tx_delta: delta(s.tx_bytes, prev.map(|p| p.tx)),
                    rx_rate: rate(s.rx_bytes, prev.map(|p| (p.rx, p.at))),
                    tx_rate: rate(s.tx_bytes, prev.map(|p| (p.tx, p.at))),
                });
                next.push(PrevVnic {
                    name: name.clone(),
                    rx: s.rx_bytes,
                    tx: s.tx_bytes,
                    at,
                });
            }
            lock(&self.vnic_prev).insert(uuid.to_string(), next);
            Ok(Inspection::Ok(VnicStats { at, devices, items }))
        })
    }
}

/// Ceilometer's CPU time from bulk stats (§7.4): Σ(vcpu.N.time + vcpu.N.wait) when every
/// current vCPU reports both, else `cpu.time`.
pub fn bulk_cpu_time(s: &DomStats) -> Option<u64> {
    match s.vcpu_current {
        Some(current) => {
            let mut sum = 0u64;
            let mut counted = 0u64;
            for n in 0..s.vcpu_maximum.unwrap_or(0) as usize {
                if let Some(v) = s.vcpus.get(n) {
                    if let (Some(t), Some(w)) = (v.time, v.wait) {
                        sum = sum.saturating_add(t.saturating_add(w));
                        counted += 1;
                    }
                }
            }
            if counted == current {
                Some(sum)
            } else {
                s.cpu_time
            }
        }
        None => s.cpu_time,
    }
}

/// A metadata value for an optional integer.
pub fn opt_int(v: Option<u64>) -> Value {
    v.map_or(Value::NULL, Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::VcpuTimes;

    fn vcpu(time: Option<u64>, wait: Option<u64>) -> VcpuTimes {
        VcpuTimes { time, wait }
    }

    #[test]
    fn cpu_time_sums_vcpus_only_when_all_current_ones_report() {
        let mut s = DomStats {
            cpu_time: Some(1000),
            vcpu_current: Some(2),
            vcpu_maximum: Some(4),
            vcpus: vec![vcpu(Some(10), Some(1)), vcpu(Some(20), Some(2))],
            ..Default::default()
        };
        assert_eq!(bulk_cpu_time(&s), Some(33));
        s.vcpus[1].wait = None;
        assert_eq!(
            bulk_cpu_time(&s),
            Some(1000),
            "a vCPU without wait: cpu.time"
        );
        s.vcpu_current = None;
        assert_eq!(bulk_cpu_time(&s), Some(1000));
        assert_eq!(
            bulk_cpu_time(&DomStats::default()),
            None,
            "no data: the caller asks virDomainGetInfo"
        );
    }

    #[test]
    fn vnic_ids_and_metadata_follow_ceilometer() {
        let iface = |fref: Option<&str>| Interface {
            name: "tap1".into(),
            mac: "fa:16:3e:00:00:01".into(),
            fref: fref.map(str::to_string),
            parameters: vec![
                ("interfaceid".into(), Some("port".into())),
                ("bridge".into(), None),
            ],
        };
        let d = Devices::new(
            "uuid",
            "instance-1",
            vec![],
            vec![iface(None), iface(Some("nova-f"))],
        );
        assert_eq!(d.vnics[0].resource_id, "instance-1-uuid-tap1");
        assert_eq!(d.vnics[1].resource_id, "nova-f");
        let md = |i: usize| {
            let mut m = Map::new();
            d.vnics[i].add_metadata(&mut m);
            m
        };
        let m0 = md(0);
        let keys: Vec<&str> = m0.keys().collect();
        assert_eq!(keys, ["name", "mac", "fref", "parameters", "vnic_name"]);
        assert_eq!(m0.get("vnic_name").and_then(Value::as_str), Some("tap1"));
        assert_eq!(
            md(1).get("vnic_name").and_then(Value::as_str),
            Some("nova-f")
        );
        assert!(m0.get("fref").unwrap().is_null());
        let params = m0.get("parameters").and_then(Value::as_map).unwrap();
        assert_eq!(params.keys().collect::<Vec<_>>(), ["interfaceid", "bridge"]);
    }
}
