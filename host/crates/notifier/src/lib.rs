//! The `notifier://` publisher: puts on RabbitMQ exactly what Ceilometer's polling agent puts
//! there (oslo.messaging `messagingv2` notifications, topic exchange `ceilometer`, routing key
//! and queue `notifications.sample`, kombu's properties; spec §9), and adds what Ceilometer
//! lacks: publisher confirms, reconnect with backoff and failover, a bounded buffer that never
//! blocks polling (oldest dropped and counted when full), and an optional disk spool.
//!
//! ```no_run
//! use longshore_notifier::{Notifier, NotifierConfig};
//! use longshore_publisher::Publisher;
//! let mut cfg = NotifierConfig::new("rabbit://guest:guest@127.0.0.1:5672/").unwrap();
//! cfg.spool_dir = Some("/var/lib/longshore/spool".into());
//! let notifier = Notifier::new(cfg).unwrap();
//! // notifier.publish(batch)?; … notifier.close(std::time::Duration::from_secs(10))?;
//! # let _ = notifier.describe();
//! ```
//!
//! Delivery guarantee: at least once from the host. A notification is removed only after the
//! broker confirms it; after a connection loss the unconfirmed ones are published again
//! (byte-identical, same `_unique_id`, so oslo consumers' duplicate detection applies), and
//! confirmed ones never are.

mod buffer;
pub mod config;
mod encode;
pub mod error;
mod notifier;
mod spool;
#[cfg(feature = "tls")]
mod tls;
pub mod url;
mod worker;

pub use config::NotifierConfig;
pub use error::{ConfigError, NotifierError};
pub use notifier::{Notifier, NotifierStats};
pub use url::{Backoff, Broker, TlsOptions, TransportUrl};
