//! What a polling cycle did, pollster by pollster: returned by `poll_once` (the CLI's
//! `poll --once` exits non-zero when any pollster failed) and sent to event subscribers.

use std::time::{Duration, SystemTime};

use longshore_plugin_api::ErrorKind;

/// The result of one pollster run in one source.
#[derive(Debug, Clone, PartialEq)]
pub struct PollsterReport {
    pub source: String,
    pub pollster: String,
    pub outcome: Outcome,
    /// Resources handed to the pollster.
    pub resources: usize,
    /// Samples received and published (kept even when the run ended in an error).
    pub samples: usize,
    /// Batches handed to the publisher.
    pub batches: usize,
    /// Batches the publisher refused.
    pub publish_errors: usize,
    /// From the run's start to its end: for pollsters run interleaved (per-resource ones
    /// of one source), the other runs' turns are included.
    pub duration: Duration,
}

impl PollsterReport {
    pub(crate) fn new(source: &str, pollster: &str) -> PollsterReport {
        PollsterReport {
            source: source.to_string(),
            pollster: pollster.to_string(),
            outcome: Outcome::Polled,
            resources: 0,
            samples: 0,
            batches: 0,
            publish_errors: 0,
            duration: Duration::ZERO,
        }
    }

    pub fn is_failure(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_)) || self.publish_errors > 0
    }
}

/// How a pollster run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Called and returned without error.
    Polled,
    /// Not called this cycle.
    Skipped(SkipReason),
    /// Called and failed; samples produced before the failure were still published.
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    /// No (new, non-blacklisted) resources this cycle.
    NoResources,
    /// Suspended after consecutive failures, until `for_secs` after its last failure.
    BackedOff { failures: u32, for_secs: u64 },
    /// The agent is stopping.
    ShuttingDown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The plugin returned an error or panicked (`kind` says which).
    Error { kind: ErrorKind, message: String },
    /// No answer within the timeout; the call was cancelled and abandoned.
    TimedOut(Duration),
    /// The agent stopped while the call was running.
    Aborted,
    /// The previous, abandoned call has still not returned: not called again.
    StillRunning,
    /// The call could not be made.
    Host(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Error { kind, message } => write!(f, "{} error: {message}", kind.as_str()),
            Failure::TimedOut(t) => write!(f, "no answer within {:.3} s", t.as_secs_f64()),
            Failure::Aborted => write!(f, "interrupted by shutdown"),
            Failure::StillRunning => write!(
                f,
                "its previous call timed out and has still not returned (the plugin ignores \
                 cancellation)"
            ),
            Failure::Host(m) => f.write_str(m),
        }
    }
}

/// One discovery URL run in a cycle (at most once per cycle).
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryReport {
    pub url: String,
    pub resources: usize,
    pub error: Option<String>,
}

/// One cycle of one interval task.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleReport {
    /// The task's interval.
    pub interval: Duration,
    pub started_at: SystemTime,
    pub duration: Duration,
    /// Pollster runs in source order, then pollster order.
    pub pollsters: Vec<PollsterReport>,
    pub discoveries: Vec<DiscoveryReport>,
}

impl CycleReport {
    pub fn samples(&self) -> usize {
        self.pollsters.iter().map(|p| p.samples).sum()
    }
    pub fn failures(&self) -> usize {
        self.pollsters.iter().filter(|p| p.is_failure()).count()
            + self
                .discoveries
                .iter()
                .filter(|d| d.error.is_some())
                .count()
    }
}

/// The result of [`crate::AgentManager::poll_once`].
#[derive(Debug, Clone, PartialEq)]
pub struct PollReport {
    /// One per interval task, in task order.
    pub cycles: Vec<CycleReport>,
    /// Set when the final publisher flush failed or timed out.
    pub flush_error: Option<String>,
}

impl PollReport {
    pub fn samples(&self) -> usize {
        self.cycles.iter().map(CycleReport::samples).sum()
    }
    pub fn pollsters(&self) -> impl Iterator<Item = &PollsterReport> + '_ {
        self.cycles.iter().flat_map(|c| c.pollsters.iter())
    }
    pub fn failed_pollsters(&self) -> impl Iterator<Item = &PollsterReport> + '_ {
        self.pollsters().filter(|p| p.is_failure())
    }
    pub fn failed_discoveries(&self) -> impl Iterator<Item = &DiscoveryReport> + '_ {
        self.cycles
            .iter()
            .flat_map(|c| c.discoveries.iter())
            .filter(|d| d.error.is_some())
    }
    /// True when every pollster and discovery succeeded (or was skipped) and everything
    /// was delivered to the publisher: `poll --once` exits 0.
    pub fn is_success(&self) -> bool {
        self.flush_error.is_none()
            && self.failed_pollsters().next().is_none()
            && self.failed_discoveries().next().is_none()
    }
}
