//! Notifier options: the oslo options Ceilometer's notifier reads (transport_url,
//! control_exchange, topics, amqp_durable_queues, amqp_auto_delete, rabbit_ha_queues,
//! rabbit_quorum_queue) plus longshore's reliability options (buffer limits, spool, backoff).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConfigError;
use crate::url::{Backoff, TransportUrl};

/// Everything a [`crate::Notifier`] needs. Build with [`NotifierConfig::new`] and adjust
/// the public fields; `Notifier::new` validates.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// `[oslo_messaging_notifications] transport_url` (or `[DEFAULT] transport_url`).
    pub transport_url: TransportUrl,
    /// `[DEFAULT] control_exchange`; Ceilometer's default is `ceilometer`.
    pub exchange: String,
    /// `[oslo_messaging_notifications] topics`; one publish per topic, routing key
    /// `<topic>.sample`.
    pub topics: Vec<String>,
    /// `publisher_id` of the notification (`ceilometer.polling`).
    pub publisher_id: String,
    /// `event_type` of the notification (`telemetry.polling`).
    pub event_type: String,
    /// `[oslo_messaging_rabbit] amqp_durable_queues`: exchange and queue durable.
    pub durable: bool,
    /// `[oslo_messaging_rabbit] amqp_auto_delete`.
    pub auto_delete: bool,
    /// `[oslo_messaging_rabbit] rabbit_ha_queues`: queue argument `x-ha-policy: all`.
    pub ha_queues: bool,
    /// `[oslo_messaging_rabbit] rabbit_quorum_queue`: `x-queue-type: quorum`, implies durable.
    pub quorum_queue: bool,
    /// Most samples held while the broker is slow or away (oldest dropped beyond).
    pub max_buffered_samples: usize,
    /// Most body bytes held (oldest dropped beyond).
    pub max_buffered_bytes: usize,
    /// Directory where notifications wait on disk until confirmed (survives restarts).
    pub spool_dir: Option<PathBuf>,
    /// fsync each spool file (survives power loss, costs a disk flush per notification).
    pub spool_fsync: bool,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// Bound on TCP connect + AMQP handshake + declarations with one broker.
    pub connect_timeout: Duration,
    /// Most notifications published and not yet confirmed on the channel.
    pub max_in_flight: usize,
}

impl NotifierConfig {
    /// Ceilometer's defaults with this transport URL.
    pub fn new(transport_url: &str) -> Result<NotifierConfig, ConfigError> {
        Ok(NotifierConfig {
            transport_url: TransportUrl::parse(transport_url)?,
            exchange: "ceilometer".into(),
            topics: vec!["notifications".into()],
            publisher_id: "ceilometer.polling".into(),
            event_type: "telemetry.polling".into(),
            durable: false,
            auto_delete: false,
            ha_queues: false,
            quorum_queue: false,
            max_buffered_samples: 100_000,
            max_buffered_bytes: 128 * 1024 * 1024,
            spool_dir: None,
            spool_fsync: false,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            max_in_flight: 512,
        })
    }

    /// The routing keys (`<topic>.sample`), which are also the queue names.
    pub fn routing_keys(&self) -> Vec<String> {
        self.topics.iter().map(|t| format!("{t}.sample")).collect()
    }

    /// Check the options; the error names the option and what to do.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |option: &'static str, reason: &str| {
            Err(ConfigError::InvalidOption {
                option,
                reason: reason.to_string(),
            })
        };
        if self.exchange.is_empty() || self.exchange.len() > 255 {
            return bad("control_exchange", "must be 1..255 characters");
        }
        if self.topics.is_empty() {
            return bad(
                "topics",
                "give at least one topic (Ceilometer's default is notifications)",
            );
        }
        for t in &self.topics {
            if t.is_empty()
                || t.len() > 240
                || t.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return bad(
                    "topics",
                    &format!("topic '{t}' must be 1..240 characters without spaces"),
                );
            }
        }
        if self.max_buffered_samples == 0 {
            return bad("max_buffered_samples", "must be at least 1");
        }
        if self.max_buffered_bytes < 1024 {
            return bad("max_buffered_bytes", "must be at least 1024");
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight", "must be at least 1");
        }
        if self.backoff.initial.is_zero() || self.backoff.max < self.backoff.initial {
            return bad("backoff", "initial must be > 0 and max >= initial");
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout", "must be > 0");
        }
        Ok(())
    }
}
