//! Typed errors of the notifier: configuration (bad URL, bad option, unreadable TLS file,
//! unusable spool directory) and start-up. Messages never contain a password.

use std::path::PathBuf;

/// A notifier configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid transport_url {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid notifier option {option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    #[error(
        "TLS is requested by {url} but longshore-notifier was built without the `tls` feature"
    )]
    TlsUnsupported { url: String },
    #[error("TLS file {path}: {reason}")]
    Tls { path: PathBuf, reason: String },
}

/// Why a notifier could not be created.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("spool directory {path}: {source} (check that it exists or can be created, and is writable)")]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the notifier thread: {0}")]
    Thread(#[source] std::io::Error),
}
