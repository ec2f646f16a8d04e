//! The options the host and its engine crates read, with Ceilometer's section and
//! option names where Ceilometer has them, their types, defaults and help: the
//! documented defaults. Plugin libraries declare their own options (e.g. `[compute]`)
//! through `OptionSpec`s; the host never lists them here.

use longshore_plugin_api::{OptionKind, OptionSpec, Value};

/// Sections owned by the host: an unknown option in them is always an error.
pub const HOST_SECTIONS: &[&str] = &[
    "DEFAULT",
    "polling",
    "publisher",
    "publisher_notifier",
    "oslo_messaging_notifications",
    "oslo_messaging_rabbit",
    "entry_points",
];

fn none() -> Value {
    Value::NULL
}

fn strs(items: &[&str]) -> Value {
    Value::list(items.iter().map(|s| Value::from(*s)))
}

/// Every host option, in documentation order.
pub fn host_options() -> Vec<OptionSpec> {
    let mut all = agent_options();
    all.extend(polling_options());
    all.extend(publishing_options());
    all.extend(messaging_options());
    all.extend(entry_points_options());
    all
}

fn agent_options() -> Vec<OptionSpec> {
    use OptionKind::*;
    vec![
        OptionSpec::new("DEFAULT", "host", Str, hostname(),
            "Name of this node in samples and the publisher id. Default: the machine's hostname."),
        OptionSpec::new("DEFAULT", "polling_namespaces", StrList, strs(&["compute"]),
            "Namespace groups to poll: loads ceilometer.poll.<group> and ceilometer.discover.<group>. (Ceilometer also defaults to `central`, which longshore does not provide.)"),
    ]
}

/// The polling engine's options, as the engine declares them.
fn polling_options() -> Vec<OptionSpec> {
    longshore_polling::options()
}

/// What the host itself adds for publishing: which publishers, and the notifier's
/// reliability settings (longshore's own; Ceilometer has none).
fn publishing_options() -> Vec<OptionSpec> {
    use OptionKind::*;
    vec![
        OptionSpec::new("publisher", "publishers", StrList, none(),
            "Where samples go: `notifier://` (AMQP to the transport_url), `-` or `stdout` (JSON lines), `file:///path` (JSON lines); several are allowed. Unset: `notifier://` when a transport_url is configured, else stdout (said at start)."),
        OptionSpec::new("publisher_notifier", "max_buffered_samples", Int, 100_000,
            "longshore: samples held while no broker confirms them; beyond, the oldest are dropped and counted."),
        OptionSpec::new("publisher_notifier", "max_buffered_bytes", Int, 128 * 1024 * 1024,
            "longshore: message bytes held while no broker confirms them; beyond, the oldest are dropped and counted."),
        OptionSpec::new("publisher_notifier", "spool_dir", Str, none(),
            "longshore: directory where unconfirmed notifications wait on disk, so a restart during a broker outage loses nothing. Unset: memory only."),
    ]
}

fn messaging_options() -> Vec<OptionSpec> {
    use OptionKind::*;
    vec![
        OptionSpec::new("DEFAULT", "transport_url", Str, "rabbit://",
            "oslo.messaging transport URL of the AMQP broker (rabbit://user:password@host:5672/vhost). The password is masked in listings and logs."),
        OptionSpec::new("DEFAULT", "control_exchange", Str, "ceilometer",
            "AMQP exchange notifications are published to."),
        OptionSpec::new("publisher_notifier", "telemetry_driver", Str, "messagingv2",
            "Notification driver (only messagingv2 is supported)."),
        OptionSpec::new("oslo_messaging_notifications", "topics", StrList, strs(&["notifications"]),
            "Topics notifications are sent to (routing key <topic>.sample)."),
        OptionSpec::new("oslo_messaging_notifications", "transport_url", Str, none(),
            "Broker for notifications; unset means [DEFAULT] transport_url."),
        OptionSpec::new("oslo_messaging_notifications", "retry", Int, -1,
            "Send attempts before a notification is dropped; -1 retries forever."),
        OptionSpec::new("oslo_messaging_rabbit", "amqp_durable_queues", Bool, false,
            "Declare the exchange and queues durable."),
        OptionSpec::new("oslo_messaging_rabbit", "amqp_auto_delete", Bool, false,
            "Declare the exchange and queues auto-delete."),
        OptionSpec::new("oslo_messaging_rabbit", "rabbit_ha_queues", Bool, false,
            "Declare queues with x-ha-policy: all."),
        OptionSpec::new("oslo_messaging_rabbit", "rabbit_quorum_queue", Bool, false,
            "Declare quorum queues (implies durable)."),
    ]
}

fn entry_points_options() -> Vec<OptionSpec> {
    use OptionKind::*;
    vec![
        OptionSpec::new("entry_points", "file", Str, "entry_points.toml",
            "The entry points file mapping plugin names to libraries; a relative path starts at the configuration file's directory (or the current directory)."),
        OptionSpec::new("entry_points", "plugin_dirs", StrList, none(),
            "Directories searched, in order, for lib<library>.so; unset means `plugins/` next to the entry points file."),
        OptionSpec::new("entry_points", "allow_insecure_plugins", Bool, false,
            "Load plugin files even when they, or a directory above them, are writable by group/others or owned by another user (not recommended)."),
    ]
}

/// The machine's hostname (Python's `socket.gethostname()`), or `localhost`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // when the name fits, and we stop at the first NUL or the buffer's end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
