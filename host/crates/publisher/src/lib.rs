//! Turning samples into Ceilometer's meter messages and handing them to publishers:
//! `message` (meter_message_from_counter), `signature` (message_signature), `pyjson`
//! (Python `json.dumps`-identical text), `notification` (the oslo.messaging v2 body), the
//! `Publisher` trait and the JSON-lines file publisher (`file`).

use std::time::Duration;

pub mod clock;
pub mod fanout;
pub mod file;
pub mod hmac_group;
pub mod ids;
pub mod message;
pub mod metadata;
pub mod notification;
pub mod progress;
pub mod pyjson;
pub mod signature;

pub use fanout::FanOut;
pub use file::{FileOptions, FilePublisher, FileStats};
pub use ids::Uuid1Generator;
pub use message::{
    into_meter_message, meter_message_from_counter, Batcher, MessageDefaults, MessageFactory,
    MessageJson, MeterMessage, DEFAULT_SAMPLE_SOURCE,
};
pub use notification::{encode_notification, NotificationIds};
pub use progress::Progress;
pub use signature::{compute_signature, Signer};

/// The meter messages of one pollster run in one source: never spans pollsters or
/// sources (as in Ceilometer), at most `batch_size` messages.
#[derive(Debug, Clone)]
pub struct Batch {
    /// polling.yaml source name.
    pub source: String,
    /// Pollster (meter) name.
    pub pollster: String,
    /// Signed meter messages, each the dict of Ceilometer's `meter_message_from_counter`
    /// (keys in Ceilometer's order, `message_signature` last).
    pub messages: Vec<MeterMessage>,
}

/// Where batches go. Implementations buffer: `publish` must never block polling for
/// long (a broker outage must not stall pollsters).
pub trait Publisher: Send + Sync {
    /// A description for logs (`notifier://rabbit://guest:***@host:5672/`): never a secret.
    fn describe(&self) -> String;
    /// Hand over a batch.
    fn publish(&self, batch: Batch) -> Result<(), PublishError>;
    /// Wait until everything handed over so far is delivered, or `timeout` passes.
    fn flush(&self, timeout: Duration) -> Result<(), PublishError>;
    /// Flush (bounded by `timeout`) and stop; later `publish` calls fail.
    fn close(&self, timeout: Duration) -> Result<(), PublishError>;
}

/// Why a publisher refused or could not finish.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("publisher {0} is closed")]
    Closed(String),
    #[error(
        "timed out after {timeout:?} with {pending} message(s) not yet delivered by {publisher}"
    )]
    Timeout {
        publisher: String,
        timeout: Duration,
        pending: usize,
    },
    #[error("{publisher}: {message}")]
    Failed { publisher: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
