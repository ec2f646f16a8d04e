//! Building the publishers samples go to from the configuration: the AMQP notifier
//! (`notifier://`, with oslo's transport_url and options) and JSON-lines files or
//! stdout. With no broker configured, samples go to stdout and the host says so.

use std::sync::Arc;

use anyhow::Context;
use longshore_notifier::{Notifier, NotifierConfig};
use longshore_publisher::{FanOut, FilePublisher, Publisher};

use crate::config::{Origin, Settings};

/// The publishers of `[publisher] publishers`, or the default: the notifier when a
/// transport_url is configured anywhere, else stdout.
pub fn build(settings: &Settings) -> anyhow::Result<Arc<dyn Publisher>> {
    let urls = match settings.str_list("publisher", "publishers") {
        Some(urls) if !urls.is_empty() => urls,
        _ => default_publishers(settings),
    };
    let mut publishers: Vec<Arc<dyn Publisher>> = Vec::new();
    for url in &urls {
        let publisher: Arc<dyn Publisher> = if url.starts_with("notifier:") {
            Arc::new(notifier(settings)?)
        } else {
            Arc::new(
                FilePublisher::from_url(url)
                    .with_context(|| format!("[publisher] publishers: {url:?}"))?,
            )
        };
        log::info!("publishing to {}", publisher.describe());
        publishers.push(publisher);
    }
    Ok(match publishers.len() {
        1 => publishers.remove(0),
        _ => Arc::new(FanOut::new(publishers)),
    })
}

fn configured(settings: &Settings, section: &str, option: &str) -> bool {
    !matches!(
        settings.origin(section, option),
        None | Some(Origin::Default)
    )
}

fn default_publishers(settings: &Settings) -> Vec<String> {
    let enabled = settings
        .bool("polling", "enable_notifications")
        .unwrap_or(true);
    let broker = configured(settings, "DEFAULT", "transport_url")
        || configured(settings, "oslo_messaging_notifications", "transport_url");
    if enabled && broker {
        vec!["notifier://".to_string()]
    } else {
        log::warn!(
            "no message broker configured ([DEFAULT] transport_url unset{}): publishing samples to stdout as JSON lines; set transport_url or [publisher] publishers to send them to RabbitMQ",
            if enabled { "" } else { ", or [polling] enable_notifications = false" }
        );
        vec!["stdout".to_string()]
    }
}

/// The notifier, configured from oslo's options.
fn notifier(settings: &Settings) -> anyhow::Result<Notifier> {
    let url = settings
        .str("oslo_messaging_notifications", "transport_url")
        .or_else(|| settings.str("DEFAULT", "transport_url"))
        .unwrap_or("rabbit://");
    // The notifier's errors mask the password themselves.
    let mut cfg = NotifierConfig::new(url).context("[DEFAULT] transport_url")?;
    if let Some(exchange) = settings.str("DEFAULT", "control_exchange") {
        cfg.exchange = exchange.to_string();
    }
    if let Some(topics) = settings.str_list("oslo_messaging_notifications", "topics") {
        cfg.topics = topics;
    }
    let flag = |option: &str| {
        settings
            .bool("oslo_messaging_rabbit", option)
            .unwrap_or(false)
    };
    cfg.durable = flag("amqp_durable_queues");
    cfg.auto_delete = flag("amqp_auto_delete");
    cfg.ha_queues = flag("rabbit_ha_queues");
    cfg.quorum_queue = flag("rabbit_quorum_queue");
    let limit = |option: &str, default: usize| {
        settings
            .i64("publisher_notifier", option)
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(default)
    };
    cfg.max_buffered_samples = limit("max_buffered_samples", cfg.max_buffered_samples);
    cfg.max_buffered_bytes = limit("max_buffered_bytes", cfg.max_buffered_bytes);
    cfg.spool_dir = settings.path("publisher_notifier", "spool_dir");
    Notifier::new(cfg).context("starting the AMQP notifier")
}
