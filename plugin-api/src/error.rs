//! Errors plugins return, in Ceilometer's terms: a poll fails transiently or permanently
//! for some resources (`PollsterPermanentError`); a constructor fails or asks to be skipped
//! quietly (`ExtensionLoadError`). The host additionally sees panics, caught in the plugin.

use std::fmt;

use abi_stable::std_types::{RString, RVec};
use abi_stable::StableAbi;

/// Why `get_samples` or `discover` failed.
#[derive(Debug, Clone, PartialEq)]
pub enum PollError {
    /// Worth trying again next cycle (a hypervisor hiccup, a timeout).
    Transient(String),
    /// These resources can never be polled by this pollster: the host blacklists them
    /// for the (source, pollster) pair, as Ceilometer does with `PollsterPermanentError`.
    Permanent {
        message: String,
        /// Ids of the failed resources.
        resources: Vec<String>,
    },
}

impl PollError {
    pub fn transient(message: impl fmt::Display) -> PollError {
        PollError::Transient(message.to_string())
    }
    pub fn permanent(message: impl fmt::Display, resources: Vec<String>) -> PollError {
        PollError::Permanent {
            message: message.to_string(),
            resources,
        }
    }
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::Transient(m) => f.write_str(m),
            PollError::Permanent { message, resources } => {
                write!(
                    f,
                    "{message} (permanent for {} resource(s))",
                    resources.len()
                )
            }
        }
    }
}

impl std::error::Error for PollError {}

/// Why a plugin could not be constructed.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginError {
    /// The plugin does not apply here (Ceilometer's `ExtensionLoadError`): the host
    /// skips it with a debug log, not an error.
    Skip(String),
    /// The plugin should work but cannot: reported as a load failure.
    Failed(String),
}

impl PluginError {
    pub fn skip(message: impl fmt::Display) -> PluginError {
        PluginError::Skip(message.to_string())
    }
    pub fn failed(message: impl fmt::Display) -> PluginError {
        PluginError::Failed(message.to_string())
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::Skip(m) | PluginError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PluginError {}

/// The kind of a failed plugin call, as the host sees it.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `PollError::Transient`.
    Transient,
    /// `PollError::Permanent`: `resources` lists the failed resource ids.
    Permanent,
    /// `PluginError::Skip`.
    Skip,
    /// `PluginError::Failed`, or a failure of the library itself.
    Failed,
    /// The plugin panicked; the panic was caught inside the plugin.
    Panicked,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
            ErrorKind::Skip => "skip",
            ErrorKind::Failed => "failed",
            ErrorKind::Panicked => "panicked",
        }
    }
}

/// An error as it crosses the boundary, and as the host receives it.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct CallError {
    kind: ErrorKind,
    message: RString,
    resources: RVec<RString>,
}

impl CallError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CallError {
        CallError {
            kind,
            message: RString::from(message.into()),
            resources: RVec::new(),
        }
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    /// For `Permanent`: the ids of the resources to blacklist.
    pub fn resources(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.resources.iter().map(|s| s.as_str())
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Panicked => write!(f, "plugin panicked: {}", self.message),
            ErrorKind::Permanent => write!(
                f,
                "{} (permanent for {} resource(s))",
                self.message,
                self.resources.len()
            ),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for CallError {}

impl From<PollError> for CallError {
    fn from(e: PollError) -> CallError {
        match e {
            PollError::Transient(m) => CallError::new(ErrorKind::Transient, m),
            PollError::Permanent { message, resources } => CallError {
                kind: ErrorKind::Permanent,
                message: RString::from(message),
                resources: resources.into_iter().map(RString::from).collect(),
            },
        }
    }
}

impl From<PluginError> for CallError {
    fn from(e: PluginError) -> CallError {
        match e {
            PluginError::Skip(m) => CallError::new(ErrorKind::Skip, m),
            PluginError::Failed(m) => CallError::new(ErrorKind::Failed, m),
        }
    }
}
