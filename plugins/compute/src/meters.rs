//! The 36 compute meters (§6.2): Ceilometer's exact names, types, units, resource ids and
//! additional metadata, and the one pollster type that produces any of them from the
//! shared per-cycle inspections.

use std::sync::Arc;

use longshore_plugin_api::{
    Config, PluginError, PollContext, PollError, Pollster, Resource, Sample, SampleType, Value,
};

use crate::config::ComputeConfig;
use crate::inspector::{
    hypervisor, monotonic, opt_int, DiskInfoStat, DiskStat, Hypervisor, Inspection, InstanceStats,
    Timed, VnicStats,
};

use SampleType::{Cumulative as C, Delta as D, Gauge as G};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InstanceField {
    PowerState,
    Cpu,
    Vcpus,
    Memory,
    MemoryAvailable,
    MemoryUsage,
    MemoryResident,
    SwapIn,
    SwapOut,
    PerfCycles,
    PerfInstructions,
    PerfCacheReferences,
    PerfCacheMisses,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiskField {
    ReadRequests,
    ReadBytes,
    WriteRequests,
    WriteBytes,
    ReadLatency,
    WriteLatency,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InfoField {
    Capacity,
    Allocation,
    Usage,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VnicField {
    RxBytes,
    RxPackets,
    RxErrors,
    RxDrop,
    TxBytes,
    TxPackets,
    TxErrors,
    TxDrop,
    RxDelta,
    TxDelta,
    RxRate,
    TxRate,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    Instance(InstanceField),
    Disk(DiskField),
    DiskInfo(InfoField),
    RootSize,
    EphemeralSize,
    Vnic(VnicField),
}

/// One meter: what Ceilometer publishes under this name.
#[derive(Debug)]
pub struct Meter {
    pub name: &'static str,
    pub kind: SampleType,
    pub unit: &'static str,
    pub source: Source,
    pub help: &'static str,
}

macro_rules! meters {
    ($($name:literal, $kind:ident, $unit:literal, $src:expr, $help:literal;)*) => {
        /// Every compute meter, in Ceilometer's setup.cfg order.
        pub static METERS: &[Meter] = &[$(Meter { name: $name, kind: $kind, unit: $unit, source: $src, help: $help }),*];
    };
}

use DiskField as DF;
use InfoField as IF;
use InstanceField as I;
use Source::*;
use VnicField as VF;

meters! {
    "power.state", G, "", Instance(I::PowerState), "libvirt domain state (1 running, 5 shut off)";
    "cpu", C, "ns", Instance(I::Cpu), "CPU time used";
    "vcpus", G, "vcpu", Instance(I::Vcpus), "Number of virtual CPUs";
    "memory", G, "MiB", Instance(I::Memory), "Memory allocated (balloon actual)";
    "memory.available", G, "MiB", Instance(I::MemoryAvailable), "Memory the guest sees";
    "memory.usage", G, "MiB", Instance(I::MemoryUsage), "Memory used by the guest";
    "memory.resident", G, "MiB", Instance(I::MemoryResident), "Resident memory of the instance process";
    "memory.swap.in", C, "MiB", Instance(I::SwapIn), "Memory swapped in";
    "memory.swap.out", C, "MiB", Instance(I::SwapOut), "Memory swapped out";
    "perf.cpu.cycles", G, "", Instance(I::PerfCycles), "CPU cycles (perf events)";
    "perf.instructions", G, "", Instance(I::PerfInstructions), "Instructions (perf events)";
    "perf.cache.references", G, "", Instance(I::PerfCacheReferences), "Cache references (perf events)";
    "perf.cache.misses", G, "", Instance(I::PerfCacheMisses), "Cache misses (perf events)";
    "disk.device.read.requests", C, "request", Disk(DF::ReadRequests), "Read requests per disk";
    "disk.device.read.bytes", C, "B", Disk(DF::ReadBytes), "Bytes read per disk";
    "disk.device.write.requests", C, "request", Disk(DF::WriteRequests), "Write requests per disk";
    "disk.device.write.bytes", C, "B", Disk(DF::WriteBytes), "Bytes written per disk";
    "disk.device.read.latency", C, "ns", Disk(DF::ReadLatency), "Total read time per disk";
    "disk.device.write.latency", C, "ns", Disk(DF::WriteLatency), "Total write time per disk";
    "disk.device.capacity", G, "B", DiskInfo(IF::Capacity), "Disk capacity";
    "disk.device.allocation", G, "B", DiskInfo(IF::Allocation), "Disk allocation";
    "disk.device.usage", G, "B", DiskInfo(IF::Usage), "Disk physical size";
    "disk.root.size", G, "GiB", RootSize, "Root disk size of the flavor";
    "disk.ephemeral.size", G, "GiB", EphemeralSize, "Ephemeral disk size of the flavor";
    "network.incoming.bytes", C, "B", Vnic(VF::RxBytes), "Bytes received per vNIC";
    "network.incoming.packets", C, "packet", Vnic(VF::RxPackets), "Packets received per vNIC";
    "network.incoming.packets.error", C, "packet", Vnic(VF::RxErrors), "Receive errors per vNIC";
    "network.incoming.packets.drop", C, "packet", Vnic(VF::RxDrop), "Received packets dropped per vNIC";
    "network.outgoing.bytes", C, "B", Vnic(VF::TxBytes), "Bytes sent per vNIC";
    "network.outgoing.packets", C, "packet", Vnic(VF::TxPackets), "Packets sent per vNIC";
    "network.outgoing.packets.error", C, "packet", Vnic(VF::TxErrors), "Send errors per vNIC";
    "network.outgoing.packets.drop", C, "packet", Vnic(VF::TxDrop), "Sent packets dropped per vNIC";
    "network.incoming.bytes.delta", D, "B", Vnic(VF::RxDelta), "Bytes received since the previous poll (0 on first sight)";
    "network.outgoing.bytes.delta", D, "B", Vnic(VF::TxDelta), "Bytes sent since the previous poll (0 on first sight)";
    "network.incoming.bytes.rate", G, "B/s", Vnic(VF::RxRate), "Receive rate between the last two polls (none on the first poll)";
    "network.outgoing.bytes.rate", G, "B/s", Vnic(VF::TxRate), "Send rate between the last two polls (none on the first poll)";
}

/// Any compute meter.
pub struct ComputePollster {
    meter: &'static Meter,
    hv: Arc<Hypervisor>,
    report_stopped: bool,
}

impl ComputePollster {
    pub fn new(meter: &'static Meter, cfg: &Config) -> Result<ComputePollster, PluginError> {
        let c = ComputeConfig::from_config(cfg)?;
        Ok(ComputePollster {
            meter,
            hv: hypervisor(&c.libvirt_uri, c.keepalive),
            report_stopped: c.report_stopped,
        })
    }

    fn sample(&self, r: &Resource, volume: impl Into<Value>, at: f64) -> Sample {
        Sample::from_resource(r, self.meter.name, self.meter.kind, self.meter.unit, volume)
            .with_monotonic_time(at)
    }

    /// Ceilometer's NoVolumeException: a WARNING per instance per cycle there; here once
    /// per (meter, instance), then DEBUG. Perf counters are off unless perf events are
    /// enabled, and a driver without latency counters was already reported once, so
    /// those are only DEBUG notes.
    fn no_volume(&self, uuid: &str) {
        let quiet = match self.meter.source {
            Instance(f) => matches!(
                f,
                I::PerfCycles | I::PerfInstructions | I::PerfCacheReferences | I::PerfCacheMisses
            ),
            Disk(DF::ReadLatency | DF::WriteLatency) => self.hv.latency_unsupported(),
            _ => false,
        };
        if !quiet
            && self
                .hv
                .first_time(format!("novolume:{}:{uuid}", self.meter.name))
        {
            log::warn!(
                "{} statistic is not available for instance {uuid}",
                self.meter.name
            );
        } else {
            log::debug!(
                "{} statistic is not available for instance {uuid}",
                self.meter.name
            );
        }
    }

    fn instance_value(&self, f: InstanceField, s: &InstanceStats) -> Option<Value> {
        let float = |v: Option<f64>| v.map(Value::from);
        let int = |v: Option<u64>| v.map(Value::from);
        match f {
            I::PowerState => Some(Value::from(s.power_state)),
            I::Cpu => int(s.cpu_time),
            I::Vcpus => int(s.cpu_number),
            I::Memory => float(s.memory_actual),
            I::MemoryAvailable => float(s.memory_available),
            I::MemoryUsage => float(s.memory_usage),
            I::MemoryResident => float(s.memory_resident),
            I::SwapIn => float(s.memory_swap_in),
            I::SwapOut => float(s.memory_swap_out),
            I::PerfCycles => int(s.perf.cpu_cycles),
            I::PerfInstructions => int(s.perf.instructions),
            I::PerfCacheReferences => int(s.perf.cache_references),
            I::PerfCacheMisses => int(s.perf.cache_misses),
        }
    }

    /// The cycle's inspection of one instance that this meter reads.
    fn inspect(&self, ctx: &PollContext<'_>, uuid: &str) -> Result<Option<Inspected>, PollError> {
        Ok(Some(match self.meter.source {
            Instance(_) => Inspected::Instance(self.hv.instance(ctx, uuid, self.report_stopped)?),
            Disk(_) => Inspected::Disks(self.hv.disks(ctx, uuid)?),
            DiskInfo(_) => {
                Inspected::DiskInfo(self.hv.disk_info(ctx, uuid, self.report_stopped)?)
            }
            Vnic(_) => Inspected::Vnics(self.hv.vnics(ctx, uuid)?),
            RootSize | EphemeralSize => return Ok(None),
        }))
    }

    /// `disk.root.size` / `disk.ephemeral.size` from the flavor sizes in the resource's
    /// metadata, if it has them.
    fn flavor_size(&self, r: &Resource) -> Option<i64> {
        let md = r.metadata();
        let disk = md.get("disk_gb").and_then(Value::as_i64);
        let eph = md.get("ephemeral_gb").and_then(Value::as_i64);
        match (self.meter.source, disk, eph) {
            (RootSize, Some(d), Some(e)) => Some(d - e),
            (EphemeralSize, _, Some(e)) => Some(e),
            _ => None,
        }
    }

    /// At most how many samples `emit` makes from `inspected`: one per device or
    /// instance (`emit` may skip some: no latency counters, no rate yet, no value).
    fn most(inspected: Option<&Inspected>) -> usize {
        match inspected {
            Some(Inspected::Disks(i)) => i.ok().map_or(0, |t| t.items.len()),
            Some(Inspected::DiskInfo(i)) => i.ok().map_or(0, |t| t.items.len()),
            Some(Inspected::Vnics(i)) => i.ok().map_or(0, |v| v.items.len()),
            Some(Inspected::Instance(_)) | None => 1,
        }
    }

    /// The samples of one instance from its inspection.
    fn emit(&self, r: &Resource, inspected: Option<&Inspected>, out: &mut Vec<Sample>) {
        let uuid = r.id();
        match (self.meter.source, inspected) {
            (Instance(f), Some(Inspected::Instance(i))) => {
                if let Inspection::Ok(s) = &**i {
                    match self.instance_value(f, s) {
                        Some(v) => {
                            let mut sample = self.sample(r, v, s.at);
                            if f == I::Cpu {
                                sample = sample.with_metadata("cpu_number", opt_int(s.cpu_number));
                            }
                            out.push(sample);
                        }
                        None => self.no_volume(uuid),
                    }
                }
            }
            (Disk(f), Some(Inspected::Disks(i))) => {
                if let Inspection::Ok(t) = &**i {
                    for d in &t.items {
                        let v = match f {
                            DF::ReadRequests => Some(d.rd_req),
                            DF::ReadBytes => Some(d.rd_bytes),
                            DF::WriteRequests => Some(d.wr_req),
                            DF::WriteBytes => Some(d.wr_bytes),
                            DF::ReadLatency => d.rd_total_times.map(|v| v as i64),
                            DF::WriteLatency => d.wr_total_times.map(|v| v as i64),
                        };
                        match v {
                            Some(v) => out.push(disk_sample(self.sample(r, v, t.at), uuid, &d.dev)),
                            None => self.no_volume(uuid),
                        }
                    }
                }
            }
            (DiskInfo(f), Some(Inspected::DiskInfo(i))) => {
                if let Inspection::Ok(t) = &**i {
                    for d in &t.items {
                        let v = match f {
                            // max() works around CD-ROM capacities rounded down (§7.4).
                            IF::Capacity => d.capacity.max(d.physical),
                            IF::Allocation => d.allocation,
                            IF::Usage => d.physical,
                        };
                        out.push(disk_sample(self.sample(r, v, t.at), uuid, &d.dev));
                    }
                }
            }
            (RootSize | EphemeralSize, None) => match self.flavor_size(r) {
                Some(v) => out.push(self.sample(r, v, monotonic())),
                None => log::warn!(
                    "{}: resource {uuid} carries no flavor sizes (not from local_instances?)",
                    self.meter.name
                ),
            },
            (Vnic(f), Some(Inspected::Vnics(i))) => {
                if let Inspection::Ok(v) = &**i {
                    for n in &v.items {
                        let s = &n.stats;
                        let volume: Value = match f {
                            VF::RxBytes => s.rx_bytes.into(),
                            VF::RxPackets => s.rx_packets.into(),
                            VF::RxErrors => s.rx_errs.into(),
                            VF::RxDrop => s.rx_drop.into(),
                            VF::TxBytes => s.tx_bytes.into(),
                            VF::TxPackets => s.tx_packets.into(),
                            VF::TxErrors => s.tx_errs.into(),
                            VF::TxDrop => s.tx_drop.into(),
                            VF::RxDelta => n.rx_delta.into(),
                            VF::TxDelta => n.tx_delta.into(),
                            VF::RxRate => match n.rx_rate {
                                Some(r) => r.into(),
                                None => continue,
                            },
                            VF::TxRate => match n.tx_rate {
                                Some(r) => r.into(),
                                None => continue,
                            },
                        };
                        let nic = &v.devices.vnics[n.index];
                        // The vNIC's keys go to the sample's own entries, over the
                        // instance's shared ones. Inserted one by one they would sit
                        // in a buffer grown to 8 entries for 5; the copy is exact.
                        let mut md = r.metadata().clone();
                        nic.add_metadata(&mut md);
                        out.push(
                            self.sample(r, volume, v.at)
                                .with_resource_id(nic.resource_id.as_str())
                                .with_resource_metadata(md.clone()),
                        );
                    }
                }
            }
            // `inspect` gives each source its own kind of inspection.
            _ => {}
        }
    }
}

/// One instance's inspection, as a meter's source reads it.
enum Inspected {
    Instance(Arc<Inspection<InstanceStats>>),
    Disks(Arc<Inspection<Timed<Vec<DiskStat>>>>),
    DiskInfo(Arc<Inspection<Timed<Vec<DiskInfoStat>>>>),
    Vnics(Arc<Inspection<VnicStats>>),
}

fn disk_sample(s: Sample, uuid: &str, dev: &str) -> Sample {
    let mut id = String::with_capacity(uuid.len() + dev.len() + 1);
    id.push_str(uuid);
    id.push('-');
    id.push_str(dev);
    s.with_resource_id(id).with_metadata("disk_name", dev)
}

impl Pollster for ComputePollster {
    fn default_discovery(&self) -> Option<String> {
        Some("local_instances".to_string())
    }

    /// Each instance is inspected (through the cycle's cache) and emitted on its own.
    fn per_resource(&self) -> bool {
        true
    }

    fn get_samples(
        &self,
        ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        // Every instance is inspected first (the inspections are the cycle's, shared
        // with the other meters), so the samples go into one vector sized for them:
        // grown by doubling, it would hold up to twice the samples' size, and both
        // buffers while it moves.
        let mut inspected = Vec::with_capacity(resources.len());
        let mut error = None;
        for r in resources {
            if ctx.is_cancelled() {
                error = Some(PollError::transient(format!(
                    "{} cancelled by the host",
                    self.meter.name
                )));
                break;
            }
            match self.inspect(ctx, r.id()) {
                Ok(i) => inspected.push(i),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        out.reserve_exact(inspected.iter().map(|i| Self::most(i.as_ref())).sum());
        for (r, i) in resources.iter().zip(&inspected) {
            self.emit(r, i.as_ref(), out);
        }
        // Shrinking in place gives back what skipped samples did not use.
        out.shrink_to_fit();
        drop(inspected);
        if let Some(e) = error {
            return Err(e);
        }
        Ok(())
    }
}
