//! The options the compute library reads (Ceilometer's names and defaults, §5.1, §7.1,
//! §11.3) and how they resolve: the libvirt URI, the stopped-instance switch, the host
//! name that goes into samples.

use std::sync::atomic::{AtomicBool, Ordering};

use longshore_plugin_api::{Config, OptionKind, OptionSpec, PluginError, Value};

/// The options this library declares, so the host validates and lists them.
pub fn option_specs() -> Vec<OptionSpec> {
    use OptionKind::*;
    vec![
        OptionSpec::new(
            "compute",
            "libvirt_uri",
            Str,
            "",
            "libvirt connection URI (e.g. qemu:///system, test:///ABS/PATH/node.xml). Empty: \
             [DEFAULT] libvirt_uri, else derived from [DEFAULT] libvirt_type. When both \
             [compute] and [DEFAULT] libvirt_uri are set, [compute] wins.",
        ),
        OptionSpec::new(
            "DEFAULT",
            "libvirt_uri",
            Str,
            "",
            "Ceilometer's spelling of the libvirt URI (accepted for drop-in configs); \
             [compute] libvirt_uri takes precedence when set.",
        ),
        OptionSpec::new(
            "DEFAULT",
            "libvirt_type",
            Str,
            "kvm",
            "Hypervisor type (kvm, lxc, qemu, parallels), used to derive the libvirt URI \
             when none is set: kvm/qemu → qemu:///system, lxc → lxc:///, parallels → \
             parallels:///system.",
        ),
        OptionSpec::new(
            "compute",
            "instance_discovery_method",
            Str,
            "libvirt_metadata",
            "How local_instances finds instances. Only libvirt_metadata (Nova's metadata \
             in the libvirt domain XML) is supported: naive and workload_partitioning need \
             the Nova API.",
        ),
        OptionSpec::new(
            "compute",
            "report_stopped_instance_metrics",
            Bool,
            false,
            "Also report power.state, vcpus, memory and disk.device.capacity/allocation/usage \
             for SHUTOFF instances.",
        ),
        OptionSpec::new(
            "compute",
            "libvirt_keepalive_interval",
            Int,
            0,
            "Seconds between libvirt keepalive probes on a connection to a libvirt daemon \
             (qemu:///system, any remote URI); after libvirt_keepalive_count unanswered \
             probes the connection is closed, calls stuck on an unresponsive daemon or \
             network fail, and the next poll reconnects. 0 (the default, as Ceilometer): \
             off. On, libvirt's event loop runs in the agent, which costs CPU on every \
             libvirt call (about 30 µs each). In-process drivers (test:///) have none.",
        ),
        OptionSpec::new(
            "compute",
            "libvirt_keepalive_count",
            Int,
            5,
            "Unanswered keepalive probes after which the libvirt connection is closed \
             (see libvirt_keepalive_interval).",
        ),
        OptionSpec::new(
            "compute",
            "fetch_extra_metadata",
            Bool,
            false,
            "Ceilometer queries the Nova API for user metadata when true. longshore has no \
             Nova client: accepted, but user_metadata stays empty (a warning is logged).",
        ),
    ]
}

/// The resolved settings every compute plugin of the library uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeConfig {
    pub libvirt_uri: String,
    pub host: String,
    pub report_stopped: bool,
    pub discovery_method: String,
    pub fetch_extra_metadata: bool,
    pub keepalive: Keepalive,
}

/// libvirt keepalive on connections to a daemon: probe every `interval` seconds, give
/// up after `count` unanswered probes; `interval` 0 = off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub interval: i32,
    pub count: u32,
}

fn non_empty<'a>(
    cfg: &'a Config,
    section: &str,
    option: &str,
) -> Result<Option<&'a str>, PluginError> {
    Ok(cfg
        .str(section, option)?
        .map(str::trim)
        .filter(|s| !s.is_empty()))
}

/// Ceilometer's choice of URI for `[DEFAULT] libvirt_type`.
pub fn uri_for_type(libvirt_type: &str) -> Result<&'static str, PluginError> {
    match libvirt_type {
        "kvm" | "qemu" => Ok("qemu:///system"),
        "lxc" => Ok("lxc:///"),
        "parallels" => Ok("parallels:///system"),
        other => Err(PluginError::failed(format!(
            "option [DEFAULT] libvirt_type: {other:?} is not one of kvm, lxc, qemu, parallels"
        ))),
    }
}

/// `[compute] option` as an integer within `min..=max` (default `default`).
fn int_in(
    cfg: &Config,
    option: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, PluginError> {
    let v = cfg.i64("compute", option)?.unwrap_or(default);
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(PluginError::failed(format!(
            "option [compute] {option} = {v} is out of range: use {min} to {max}"
        )))
    }
}

static WARNED_TWO_URIS: AtomicBool = AtomicBool::new(false);
static WARNED_EXTRA_METADATA: AtomicBool = AtomicBool::new(false);

impl ComputeConfig {
    pub fn from_config(cfg: &Config) -> Result<ComputeConfig, PluginError> {
        let compute_uri = non_empty(cfg, "compute", "libvirt_uri")?;
        let default_uri = non_empty(cfg, "DEFAULT", "libvirt_uri")?;
        let libvirt_uri = match (compute_uri, default_uri) {
            (Some(c), Some(d)) => {
                if c != d && !WARNED_TWO_URIS.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "both [compute] libvirt_uri ({}) and [DEFAULT] libvirt_uri ({}) are set; using [compute]",
                        mask_uri(c),
                        mask_uri(d)
                    );
                }
                c.to_string()
            }
            (Some(u), None) | (None, Some(u)) => u.to_string(),
            (None, None) => {
                let t = non_empty(cfg, "DEFAULT", "libvirt_type")?.unwrap_or("kvm");
                uri_for_type(t)?.to_string()
            }
        };
        let host = match non_empty(cfg, "DEFAULT", "host")? {
            Some(h) => h.to_string(),
            None => hostname(),
        };
        let fetch_extra_metadata = cfg
            .bool("compute", "fetch_extra_metadata")?
            .unwrap_or(false);
        if fetch_extra_metadata && !WARNED_EXTRA_METADATA.swap(true, Ordering::Relaxed) {
            log::warn!(
                "[compute] fetch_extra_metadata = true: longshore does not query the Nova API; \
                 user_metadata stays empty and flavor ids come from the libvirt metadata"
            );
        }
        Ok(ComputeConfig {
            libvirt_uri,
            host,
            report_stopped: cfg
                .bool("compute", "report_stopped_instance_metrics")?
                .unwrap_or(false),
            discovery_method: non_empty(cfg, "compute", "instance_discovery_method")?
                .unwrap_or("libvirt_metadata")
                .to_string(),
            fetch_extra_metadata,
            keepalive: Keepalive {
                interval: int_in(cfg, "libvirt_keepalive_interval", 0, 0, 3600)? as i32,
                count: int_in(cfg, "libvirt_keepalive_count", 5, 1, 100)? as u32,
            },
        })
    }

    /// Only the discovery needs this check: pollsters work on whatever instances they
    /// are given.
    pub fn check_discovery_method(&self) -> Result<(), PluginError> {
        match self.discovery_method.as_str() {
            "libvirt_metadata" => Ok(()),
            m @ ("naive" | "workload_partitioning") => Err(PluginError::failed(format!(
                "[compute] instance_discovery_method = {m} is not supported by longshore: it \
                 needs the Nova API; set it to libvirt_metadata (instances are read from Nova's \
                 metadata in the libvirt domain XML)"
            ))),
            other => Err(PluginError::failed(format!(
                "[compute] instance_discovery_method: {other:?} is not one of libvirt_metadata, \
                 naive, workload_partitioning"
            ))),
        }
    }
}

/// The machine's hostname (Ceilometer's `socket.gethostname()` default for `host`).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; we stop at the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A URI fit for logs: a password in the user part is replaced by `***`.
pub fn mask_uri(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://") else {
        return uri.to_string();
    };
    let rest = &uri[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}://{}:***{}",
                &uri[..scheme_end],
                &authority[..colon],
                &rest[at..]
            ),
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

/// `Value` helper: an optional string as a value (None → null).
pub fn opt_str(v: &Option<String>) -> Value {
    match v {
        Some(s) => Value::from(s.as_str()),
        None => Value::NULL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_resolution_order() {
        let cfg = Config::new().with("DEFAULT", "host", "h");
        assert_eq!(
            ComputeConfig::from_config(&cfg).unwrap().libvirt_uri,
            "qemu:///system"
        );
        let cfg = cfg.with("DEFAULT", "libvirt_type", "lxc");
        assert_eq!(
            ComputeConfig::from_config(&cfg).unwrap().libvirt_uri,
            "lxc:///"
        );
        let cfg = cfg.with("DEFAULT", "libvirt_uri", "test:///default");
        assert_eq!(
            ComputeConfig::from_config(&cfg).unwrap().libvirt_uri,
            "test:///default"
        );
        let cfg = cfg.with("compute", "libvirt_uri", "test:///x.xml");
        assert_eq!(
            ComputeConfig::from_config(&cfg).unwrap().libvirt_uri,
            "test:///x.xml"
        );
        let bad = Config::new().with("DEFAULT", "libvirt_type", "xen");
        let err = ComputeConfig::from_config(&bad).unwrap_err();
        assert!(err.to_string().contains("libvirt_type"), "{err}");
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_uri("qemu+tcp://u:secret@h/system"),
            "qemu+tcp://u:***@h/system"
        );
        assert_eq!(mask_uri("qemu+ssh://u@h/system"), "qemu+ssh://u@h/system");
        assert_eq!(mask_uri("test:///default"), "test:///default");
    }

    #[test]
    fn only_libvirt_metadata_discovery() {
        let cfg = Config::new().with("compute", "instance_discovery_method", "naive");
        let err = ComputeConfig::from_config(&cfg)
            .unwrap()
            .check_discovery_method()
            .unwrap_err();
        assert!(err.to_string().contains("Nova API"), "{err}");
    }
}
