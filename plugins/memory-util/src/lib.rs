//! An example longshore plugin, the one README.md walks through: a single `memory.util`
//! pollster — the percentage of the guest's available memory in use, from libvirt's
//! memory stats — built into its own `libmemory_util.so`.

use std::sync::Mutex;

use longshore_plugin_api::{
    export_plugin_library, Config, OptionKind, OptionSpec, PluginError, PluginRegistry,
    PollContext, PollError, Pollster, Resource, Sample, SampleType,
};
use virt::connect::Connect;
use virt::sys;

/// The pollster: it only needs to know which libvirt to ask.
struct MemoryUtil {
    uri: String,
}

impl MemoryUtil {
    /// Called once when the agent loads the plugin, with the agent's configuration.
    fn new(cfg: &Config) -> Result<MemoryUtil, PluginError> {
        // The same libvirt as the compute plugin: [compute] libvirt_uri, else
        // Ceilometer's [DEFAULT] libvirt_uri, else the local QEMU/KVM.
        let configured = |section| {
            cfg.str(section, "libvirt_uri")
                .map(|u| u.filter(|u| !u.is_empty()))
        };
        let uri = configured("compute")?
            .or(configured("DEFAULT")?)
            .unwrap_or("qemu:///system")
            .to_string();
        Ok(MemoryUtil { uri })
    }
}

/// One read-only libvirt connection for the whole library, opened on first use and
/// reopened when it dies, so a libvirt restart does not need an agent restart.
static CONNECTION: Mutex<Option<(String, Connect)>> = Mutex::new(None);

fn connection(uri: &str) -> Result<Connect, PollError> {
    let mut slot = CONNECTION.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((u, conn)) = slot.as_ref() {
        if u == uri && conn.is_alive().unwrap_or(false) {
            return Ok(conn.clone());
        }
    }
    // libvirt prints every error to stderr unless told otherwise; we return them.
    virt::error::clear_error_callback();
    let conn = Connect::open_read_only(Some(uri)).map_err(|e| {
        PollError::transient(format!(
            "memory.util: cannot connect to libvirt at {uri}: {e}"
        ))
    })?;
    *slot = Some((uri.to_string(), conn.clone()));
    Ok(conn)
}

/// Percent of `available` in use: (available − usable), else (available − unused), as
/// Ceilometer's memory.usage; rounded to 2 decimals.
fn utilisation(available: Option<u64>, usable: Option<u64>, unused: Option<u64>) -> Option<f64> {
    let available = available.filter(|a| *a > 0)?;
    let free = usable.or(unused)?;
    let used = available as f64 - free as f64;
    Some((used / available as f64 * 100.0 * 100.0).round() / 100.0)
}

impl Pollster for MemoryUtil {
    /// Which discovery gives this pollster its resources when polling.yaml names none:
    /// the compute library's Nova instances.
    fn default_discovery(&self) -> Option<String> {
        Some("local_instances".to_string())
    }

    /// Each instance's sample depends on that instance alone and nothing is done once
    /// per call (the connection outlives calls), so the agent may call this on slices
    /// of the instances and publish each slice before the next: the samples of a
    /// thousand instances are never all in memory at once.
    fn per_resource(&self) -> bool {
        true
    }

    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        let conn = connection(&self.uri)?;
        for instance in resources {
            // A domain that vanished or is not running has no memory stats: skip it.
            let stats = match conn
                .lookup_domain_by_uuid_string(instance.id())
                .and_then(|dom| dom.memory_stats(0))
            {
                Ok(stats) => stats,
                Err(e) => {
                    log::debug!("memory.util: no memory stats for {}: {e}", instance.id());
                    continue;
                }
            };
            let stat = |tag| stats.iter().find(|s| s.tag == tag).map(|s| s.val);
            let percent = utilisation(
                stat(sys::VIR_DOMAIN_MEMORY_STAT_AVAILABLE),
                stat(sys::VIR_DOMAIN_MEMORY_STAT_USABLE),
                stat(sys::VIR_DOMAIN_MEMORY_STAT_UNUSED),
            );
            if let Some(percent) = percent {
                // from_resource copies the instance's id, owner and metadata, like every
                // compute meter.
                out.push(Sample::from_resource(
                    instance,
                    "memory.util",
                    SampleType::Gauge,
                    "%",
                    percent,
                ));
            }
        }
        Ok(())
    }
}

/// Everything the library provides, by name: entry_points.toml refers to
/// `memory_util:memory.util`.
fn register(plugins: &mut PluginRegistry) {
    plugins.option(OptionSpec::new(
        "compute",
        "libvirt_uri",
        OptionKind::Str,
        "",
        "libvirt connection URI; empty means qemu:///system",
    ));
    plugins.pollster(
        "memory.util",
        "Percent of the guest's available memory in use",
        MemoryUtil::new,
    );
}

export_plugin_library!(register);

#[cfg(test)]
mod tests {
    use super::utilisation;

    #[test]
    fn percent_in_use() {
        assert_eq!(utilisation(Some(2048), Some(1024), None), Some(50.0));
        assert_eq!(utilisation(Some(3000), None, Some(1000)), Some(66.67));
        assert_eq!(
            utilisation(Some(3000), Some(2000), Some(0)),
            Some(33.33),
            "usable wins"
        );
        assert_eq!(utilisation(None, Some(1), Some(1)), None);
        assert_eq!(utilisation(Some(0), Some(0), None), None);
    }
}
