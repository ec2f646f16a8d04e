//! longshore's polling engine: Ceilometer's polling agent behaviour (spec §1, §3, §4, §8)
//! on plain threads. It owns polling.yaml ([`definition`], [`meters`]), the interval
//! tasks and their per-cycle algorithm (`task`), the scheduler (`schedule`, `agent`) and
//! the hand-off of signed sample messages to a [`Publisher`](longshore_publisher::Publisher).
//!
//! # Using it (what the CLI does)
//!
//! ```ignore
//! use longshore_polling::*;
//!
//! let options = PollingOptions::from_config(&config)?;              // [polling] ...
//! let path = find_definition_file(&options.cfg_file, &config_dirs)?; // or a fixed path
//! let definition = PollingDefinition::load(&path)?;                  // `longshore check` too
//! for w in definition.warnings() { log::warn!("{w}"); }
//! let agent = AgentManager::new(options, &definition, pollsters, discoveries, publisher);
//!
//! // `longshore poll --once`: every task once, then flush; exit 1 unless all went well.
//! let report = agent.poll_once();
//! agent.close(timeout)?;
//! std::process::exit(if report.is_success() { 0 } else { 1 });
//!
//! // `longshore run`: the service, until a signal.
//! let running = agent.start()?;
//! wait_for_sigterm();
//! running.shutdown(timeout);
//! ```
//!
//! `pollsters` is `Vec<(entry-point name, Arc<PollsterHandle>)>` (the name is what
//! polling.yaml `meters` match), `discoveries` is `HashMap<name, Arc<DiscoveryHandle>>`.
//! [`options()`] lists every option read, for the host to validate and document.
//!
//! # Behaviour beyond Ceilometer (documented deviations)
//!
//! - polling.yaml: unknown keys, duplicate source names, non-list `meters`, empty or
//!   non-string meters, `interval: null` and fractional intervals are errors naming file,
//!   line, source and rule (Ceilometer ignores, merges or crashes);
//! - a discovery runs at most once per cycle, even with parallel pollsters or when it
//!   fails; the pollster cache computes each key once per cycle;
//! - samples produced before a pollster error or panic are published (Ceilometer drops
//!   the unsent partial batch);
//! - every plugin call has a timeout (`[polling] pollster_timeout`, default the task's
//!   interval capped at 60 s; a per-resource pollster's slices share one run's
//!   timeout): a hung call is cancelled and abandoned, its task moves on (pollster calls
//!   run on a runner thread watched by the task thread, `runner`);
//! - a pollster that declares `per_resource` is called on slices of about 128 resources
//!   (whole batches: 150 at batch 50), each slice signed and published while its
//!   resources are still in the CPU's caches (batches span the slices; monotonic time
//!   is read per slice), and up to 8 consecutive such pollsters of a source are run
//!   interleaved, each slice by all of them in turn;
//! - a pollster that fails outright (error without samples, panic, timeout) is backed
//!   off like a collectd read plugin: its interval doubles per consecutive failure up
//!   to `[polling] max_backoff_interval` (86400 s), reset by one success;
//! - a task slot that comes while the previous cycle runs is skipped with a warning (no
//!   catch-up); tasks run on `[polling] workers` threads (default one per interval);
//! - sources and pollsters run in a stable order (file order, then the order given),
//!   not Ceilometer's random shuffle.

pub mod agent;
mod call;
pub mod definition;
pub mod meters;
pub mod options;
pub mod report;
mod runner;
mod schedule;
mod task;

pub use agent::{AgentEvent, AgentManager, RunningAgent, ShutdownReport, TaskPlan};
pub use definition::{
    find_definition_file, DefinitionError, Location, PollingDefinition, PollingSource, Rule,
};
pub use meters::{MeterFilter, Pattern};
pub use options::{options, OptionsError, PollingOptions};
pub use report::{
    CycleReport, DiscoveryReport, Failure, Outcome, PollReport, PollsterReport, SkipReason,
};
pub use task::parse_discovery_url;
