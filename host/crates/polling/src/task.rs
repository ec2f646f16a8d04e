//! Interval tasks and Ceilometer's per-cycle algorithm (`PollingTask.poll_and_notify`,
//! spec §4): per-cycle discovery and pollster caches, static resources then discovery
//! then the pollster's default discovery, per-pollster-name dedup, the per
//! (source, pollster) blacklist, one timestamp per pollster run, batching, plus the
//! per-call timeout and collectd's failure backoff.
//!
//! Deviations from Ceilometer, all deliberate:
//! - a discovery URL runs at most once per cycle, even with parallel pollsters and even
//!   when it fails (Ceilometer races and retries for every pollster);
//! - samples a pollster produced before an error or a panic are published, including
//!   the partial batch (Ceilometer drops the unsent tail, §13.16);
//! - sources run in file order and pollsters in the order given, not shuffled;
//! - a scheme may contain `_` in `name://param` (`urlparse` does not allow it, so
//!   Ceilometer cannot pass a parameter to `local_instances`);
//! - a pollster that declares `per_resource` is called on slices of its resources
//!   ([`slice_len`]); the slices fill the same batches one call would, a
//!   permanent error's resources are blacklisted and the next slices polled, any other
//!   error ends the run (and is the one reported), and the run's timeout bounds the sum
//!   of its calls;
//! - consecutive per-resource pollsters of a source are run together, slice by slice
//!   (each slice polled by every one of them before the next), so their batches
//!   interleave on the bus; each run still has its own timestamp, batches, timeout,
//!   blacklist and backoff, and a hung one is abandoned alone.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use longshore_plugin_api::host::{
    CallContext, CycleCache, DiscoveryHandle, PollsterHandle, Samples,
};
use longshore_plugin_api::{ErrorKind, Resource};
use longshore_publisher::message::{monotonic_now, polling_timestamp};
use longshore_publisher::{Batch, Batcher, MeterMessage};

use crate::agent::Engine;
use crate::call::CallOutcome;
use crate::report::{CycleReport, DiscoveryReport, Failure, Outcome, PollsterReport, SkipReason};
use crate::runner::{Published, Watch};

const LOG: &str = "longshore::polling";

/// About how many resources a per-resource pollster is called on at a time ([`slice_len`]
/// rounds it to whole batches): their data, renderings and samples (~0.5 MB for
/// compute-like metadata) stay in a core's L2 cache between the plugin's pass and the
/// publisher's.
pub(crate) const PER_RESOURCE_SLICE: usize = 128;

/// Resources per call of a per-resource pollster with batches of `batch_size`: about
/// [`PER_RESOURCE_SLICE`], rounded up to whole batches, so that a pollster with one
/// sample per resource ends each slice with no partial batch to hold while the other
/// runs of its group take their turn.
pub(crate) fn slice_len(batch_size: usize) -> usize {
    let batch = batch_size.max(1);
    if batch >= 2 * PER_RESOURCE_SLICE {
        PER_RESOURCE_SLICE
    } else {
        PER_RESOURCE_SLICE.div_ceil(batch) * batch
    }
}

/// The most per-resource pollsters a runner interleaves, slice by slice
/// (`runner`): each slice's resources and renderings are then read from memory once per
/// group rather than once per pollster, while the group's unfinished batches (at most
/// `batch_size` - 1 messages each) stay few.
pub(crate) const GROUP_MAX: usize = 8;

/// A pollster's run in progress, between two of its plugin calls: its resources and how
/// far it got, its batches and its report. Nothing in it borrows the runner's stack, so
/// a run can be handed to another runner when the one driving it is abandoned.
pub(crate) struct PollsterRun {
    /// The pollster's position in its source.
    pub(crate) index: usize,
    resources: Arc<[Resource]>,
    /// Resources already handed to the plugin.
    polled: usize,
    /// Resources per call: a slice for a per-resource pollster, else all of them.
    slice: usize,
    ctx: CallContext,
    timeout: Duration,
    /// Time spent in the plugin's calls (the timeout bounds their sum).
    spent: Duration,
    produced: usize,
    outcome: Outcome,
    report: PollsterReport,
    started: Instant,
    /// The run's samples on their way to the publisher: cut into signed batches (so a
    /// per-resource run's slices fill the same batches one call would), each batch sent
    /// as soon as it is complete.
    batcher: Batcher,
    failed_messages: usize,
    first_error: Option<String>,
}

/// What a runner does with a run after one of its calls.
pub(crate) enum Step {
    /// More slices to poll.
    More,
    /// Over: finish it ([`PollingTask::finish_run`]).
    Done,
    /// Abandoned mid-call: the watcher reported it and the runner must stop.
    Abandoned,
}

impl PollsterRun {
    fn push(&mut self, engine: &Engine, source: &TaskSource, p: &TaskPollster, samples: Samples) {
        if samples.is_empty() {
            return;
        }
        self.report.samples += samples.len();
        // A slice's renderings fit a core's L2 cache: ask for them all before signing.
        if p.per_resource {
            longshore_publisher::metadata::prefetch(samples.iter().map(|s| s.resource_metadata()));
        }
        let monotonic = monotonic_now();
        let mut samples = samples.into_iter();
        while let Some(batch) = self.batcher.fill(&engine.factory, &mut samples, monotonic) {
            self.send(engine, source, p, batch);
        }
    }

    fn send(
        &mut self,
        engine: &Engine,
        source: &TaskSource,
        p: &TaskPollster,
        messages: Vec<MeterMessage>,
    ) {
        let n = messages.len();
        self.report.batches += 1;
        let b = Batch {
            source: source.name.clone(),
            pollster: p.name.clone(),
            messages,
        };
        if let Err(e) = engine.publisher.publish(b) {
            self.report.publish_errors += 1;
            self.failed_messages += n;
            self.first_error.get_or_insert_with(|| e.to_string());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// All sources of one interval, polled together (Ceilometer's `PollingTask`).
pub(crate) struct PollingTask {
    pub(crate) interval: Duration,
    pub(crate) sources: Vec<TaskSource>,
    /// Per discovery URL: set while a call is running (see `CallPool::call`).
    discovery_busy: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

pub(crate) struct TaskSource {
    pub(crate) name: String,
    static_resources: Vec<Resource>,
    discovery: Vec<String>,
    pub(crate) pollsters: Vec<TaskPollster>,
}

pub(crate) struct TaskPollster {
    pub(crate) name: String,
    handle: Arc<PollsterHandle>,
    default_discovery: Option<String>,
    /// The pollster may be called on slices of its resources (`Pollster::per_resource`).
    pub(crate) per_resource: bool,
    state: Mutex<PollsterState>,
    busy: Arc<AtomicBool>,
    /// Another source of the task polls the same pollster name, so the resources
    /// handed to this one must be remembered for the cycle's dedup (see `finish`).
    keep_history: bool,
}

/// What outlives a cycle for one (source, pollster) pair.
#[derive(Default)]
struct PollsterState {
    /// Resource ids this pollster can never poll in this source.
    blacklist: HashSet<String>,
    /// Consecutive wholesale failures.
    failures: u32,
    /// While backing off: the earliest cycle start at which to call it again.
    suspended_until: Option<Instant>,
}

impl PollingTask {
    pub(crate) fn new(interval: Duration) -> PollingTask {
        PollingTask {
            interval,
            sources: Vec::new(),
            discovery_busy: Mutex::new(HashMap::new()),
        }
    }

    /// Ceilometer's `PollingTask.add(ext, source)`.
    pub(crate) fn add(
        &mut self,
        source: &crate::definition::PollingSource,
        name: &str,
        handle: &Arc<PollsterHandle>,
    ) {
        let idx = match self.sources.iter().position(|s| s.name == source.name()) {
            Some(i) => i,
            None => {
                self.sources.push(TaskSource {
                    name: source.name().to_string(),
                    static_resources: source.resources().iter().map(Resource::new).collect(),
                    discovery: source.discovery().to_vec(),
                    pollsters: Vec::new(),
                });
                self.sources.len() - 1
            }
        };
        self.sources[idx].pollsters.push(TaskPollster {
            name: name.to_string(),
            handle: Arc::clone(handle),
            default_discovery: handle.default_discovery().filter(|d| !d.is_empty()),
            per_resource: handle.per_resource(),
            state: Mutex::new(PollsterState::default()),
            busy: Arc::new(AtomicBool::new(false)),
            keep_history: false,
        });
    }

    /// Called once all pollsters are added. Dedup is per pollster name across the
    /// task's sources, so a cycle needs to remember a pollster's resources only when
    /// its name is in more than one source; otherwise its source's candidates are
    /// deduplicated once per cycle and shared (at N=1000 instances the cycle-long sets
    /// of 36 compute pollsters held about 1 MiB).
    pub(crate) fn finish(&mut self) {
        let mut count: HashMap<String, usize> = HashMap::new();
        for p in self.sources.iter().flat_map(|s| &s.pollsters) {
            *count.entry(p.name.clone()).or_default() += 1;
        }
        for p in self.sources.iter_mut().flat_map(|s| &mut s.pollsters) {
            p.keep_history = count[&p.name] > 1;
        }
    }

    /// One cycle of task `index`. `slot` is the scheduled start: backoff is measured
    /// in slots so that a late dispatch never costs an extra interval.
    pub(crate) fn run_cycle(engine: &Arc<Engine>, index: usize, slot: Instant) -> CycleReport {
        let task = &engine.tasks[index];
        let started = Instant::now();
        let started_at = SystemTime::now();
        let cycle = Arc::new(Cycle {
            cache: Arc::new(CycleCache::new()),
            discovered: Mutex::new(HashMap::new()),
            history: Mutex::new(HashMap::new()),
            candidates: Mutex::new(HashMap::new()),
            discoveries: Mutex::new(Vec::new()),
        });
        let mut reports = Vec::new();
        for source in 0..task.sources.len() {
            reports.extend(crate::runner::run_source(
                engine, index, source, &cycle, slot,
            ));
        }
        let discoveries = std::mem::take(&mut *lock(&cycle.discoveries));
        // The cycle's resources are released here, and the renderings of their
        // metadata with them (longshore-publisher keeps each with its entries).
        drop(cycle);
        log::debug!(target: LOG, "Rendered resource metadata alive: {}",
            longshore_publisher::metadata::live_renderings());
        CycleReport {
            interval: task.interval,
            started_at,
            duration: started.elapsed(),
            pollsters: reports,
            discoveries,
        }
    }

    /// A pollster's run up to its first call (Ceilometer's `poll_and_notify` for one
    /// pollster: backoff, candidates, dedup, blacklist, timestamp), or its report when
    /// it is not called this cycle.
    pub(crate) fn start_run(
        &self,
        engine: &Engine,
        cycle: &Cycle,
        source: &TaskSource,
        p: &TaskPollster,
        slot: Instant,
        index: usize,
    ) -> Result<PollsterRun, Box<PollsterReport>> {
        let started = Instant::now();
        let skipped = |reason: SkipReason| {
            let mut report = PollsterReport::new(&source.name, &p.name);
            report.outcome = Outcome::Skipped(reason);
            report.duration = started.elapsed();
            Box::new(report)
        };
        if engine.stop.is_stopping() {
            return Err(skipped(SkipReason::ShuttingDown));
        }
        {
            let st = lock(&p.state);
            if let Some(until) = st.suspended_until {
                // Half an interval of tolerance absorbs scheduling jitter.
                if until > slot + self.interval / 2 {
                    log::debug!(target: LOG,
                        "Skip pollster {} on source {}: suspended after {} consecutive failure(s)",
                        p.name, source.name, st.failures);
                    let for_secs = until.saturating_duration_since(slot).as_secs();
                    return Err(skipped(SkipReason::BackedOff {
                        failures: st.failures,
                        for_secs,
                    }));
                }
            }
        }

        // Candidates: static resources, then the source's discoveries, else the
        // pollster's default discovery.
        let candidates = || {
            let mut candidates: Vec<Resource> = source.static_resources.clone();
            if !source.discovery.is_empty() {
                candidates.extend(self.discover(engine, cycle, &source.discovery));
            }
            if candidates.is_empty() {
                if let Some(d) = &p.default_discovery {
                    candidates = self.discover(engine, cycle, std::slice::from_ref(d));
                }
            }
            candidates
        };

        // Dedup by pollster name across the cycle's sources (a resource enters the
        // history even when blacklisted here, as in Ceilometer), then the blacklist.
        let (resources, had_history): (Arc<[Resource]>, bool) = if p.keep_history {
            let candidates = candidates();
            let st = lock(&p.state);
            let mut history = lock(&cycle.history);
            let seen = match history.get_mut(&p.name) {
                Some(seen) => seen,
                None => history.entry(p.name.clone()).or_default(),
            };
            let had_history = !seen.is_empty();
            seen.reserve(candidates.len());
            let fresh: Vec<Resource> = candidates
                .into_iter()
                .filter(|r| seen.insert(r.clone()) && !st.blacklist.contains(r.id()))
                .collect();
            (fresh.into(), had_history)
        } else {
            // No other source polls this name, so its dedup is within the run alone:
            // the deduplicated candidates are made once per cycle for every pollster
            // of the source with the same candidates (rather than copying and hashing
            // every resource again for each of them). The default discovery decides
            // whenever the source has no static resources: also when its own
            // discoveries find nothing this cycle.
            let key = (
                source.name.clone(),
                source
                    .static_resources
                    .is_empty()
                    .then(|| p.default_discovery.clone())
                    .flatten(),
            );
            let made = lock(&cycle.candidates).get(&key).cloned();
            let shared = match made {
                Some(r) => r,
                None => {
                    let r = dedup(candidates());
                    lock(&cycle.candidates).entry(key).or_insert(r).clone()
                }
            };
            let st = lock(&p.state);
            let resources = if st.blacklist.is_empty() {
                shared
            } else {
                shared
                    .iter()
                    .filter(|r| !st.blacklist.contains(r.id()))
                    .cloned()
                    .collect()
            };
            (resources, false)
        };
        if resources.is_empty() {
            log::debug!(target: LOG,
                "Skip pollster {}, no {}resources found this cycle",
                p.name, if had_history { "new " } else { "" });
            return Err(skipped(SkipReason::NoResources));
        }
        let mut report = PollsterReport::new(&source.name, &p.name);
        report.resources = resources.len();
        log::debug!(target: LOG, "Polling pollster {} in the context of {}", p.name, source.name);
        engine.emit(crate::agent::AgentEvent::PollsterCalled {
            interval: self.interval,
            source: source.name.clone(),
            pollster: p.name.clone(),
        });

        // One timestamp per pollster run, taken before the call (Ceilometer's
        // `polling_timestamp`); one shared copy for all its messages.
        let timestamp = polling_timestamp(SystemTime::now());
        // A per-resource pollster is called on slices of its resources, each slice's
        // samples signed and published right away, while those resources' metadata and
        // renderings are still in the CPU's caches: a run over thousands of resources
        // otherwise makes the plugin walk them all, then the publisher again, from memory.
        // The samples, their order and the batches are the same either way.
        let slice = if p.per_resource {
            slice_len(engine.options.batch_size)
        } else {
            resources.len()
        };
        Ok(PollsterRun {
            index,
            resources,
            polled: 0,
            slice: slice.max(1),
            ctx: CallContext::new(Arc::clone(&cycle.cache), Arc::new(AtomicBool::new(false))),
            timeout: engine.options.timeout_for(self.interval),
            spent: Duration::ZERO,
            produced: 0,
            outcome: Outcome::Polled,
            report,
            started,
            batcher: Batcher::new(engine.options.batch_size, timestamp.into()),
            failed_messages: 0,
            first_error: None,
        })
    }

    /// The run's next call: its next slice of resources (or all of them), its samples
    /// published, its error handled.
    pub(crate) fn step(
        &self,
        engine: &Engine,
        source: &TaskSource,
        p: &TaskPollster,
        run: &mut PollsterRun,
        watch: &Watch,
    ) -> Step {
        let timeout = run.timeout;
        // The timeout bounds the plugin's calls, not the signing and publishing between
        // a per-resource pollster's slices.
        let budget = timeout.saturating_sub(run.spent);
        if budget.is_zero() {
            log::warn!(target: LOG,
                "Pollster {} on source {} timed out after {timeout:?} between calls \
                 ({} sample(s) kept)", p.name, source.name, run.produced);
            run.outcome = Outcome::Failed(Failure::TimedOut(timeout));
            return Step::Done;
        }
        let end = (run.polled + run.slice).min(run.resources.len());
        let resources = &run.resources[run.polled..end];
        if p.per_resource {
            longshore_plugin_api::sample::prefetch_resources(resources);
        }
        let ctx = &run.ctx;
        let call = || p.handle.get_samples(ctx, resources);
        let call_started = Instant::now();
        let total = run.resources.len();
        // Its signed samples still waiting for a full batch are not published if this
        // call is abandoned.
        let published = Published {
            samples: run.report.samples - run.batcher.pending(),
            batches: run.report.batches,
            publish_errors: run.report.publish_errors,
        };
        let watched = watch.call(
            engine, run.index, total, published, ctx, budget, &p.busy, call,
        );
        let Some(call_outcome) = watched else {
            // Abandoned mid-call: the watcher reported it, and the task has moved on
            // (it may be a later cycle, or after shutdown): neither this call's result
            // nor the earlier slices' unsent partial batch is published.
            if run.batcher.pending() > 0 {
                log::warn!(target: LOG,
                    "Pollster {} on source {} was abandoned: {} signed sample(s) of \
                     its earlier slices not published", p.name, source.name, run.batcher.pending());
            }
            return Step::Abandoned;
        };
        run.spent += call_started.elapsed();
        run.polled = end;
        let stop = match call_outcome {
            CallOutcome::Done(result) => {
                run.produced += result.samples.len();
                run.push(engine, source, p, result.samples);
                match result.error {
                    None => false,
                    Some(err) => {
                        let permanent = err.kind() == ErrorKind::Permanent;
                        let named = err.resources().next().is_some();
                        if permanent {
                            let ids: Vec<String> = err.resources().map(str::to_string).collect();
                            let mut st = lock(&p.state);
                            let new: Vec<&str> = ids
                                .iter()
                                .filter(|id| st.blacklist.insert((*id).clone()))
                                .map(String::as_str)
                                .collect();
                            if !new.is_empty() {
                                log::error!(target: LOG,
                                    "Prevent pollster {} from polling [{}] on source {} anymore! ({})",
                                    p.name, new.join(", "), source.name, err.message());
                            }
                        } else {
                            log::error!(target: LOG,
                                "Continue after error from {} on source {}: {} ({} sample(s) kept)",
                                p.name, source.name, err, run.produced);
                        }
                        // Resources named by a permanent error are blacklisted and the
                        // next slices go on; any other error ends the run (its remaining
                        // slices are not polled this cycle) and is the one reported, so a
                        // panic or a transient failure still backs off.
                        let stop = !(permanent && named);
                        if stop || matches!(run.outcome, Outcome::Polled) {
                            run.outcome = Outcome::Failed(Failure::Error {
                                kind: err.kind(),
                                message: err.message().to_string(),
                            });
                        }
                        stop
                    }
                }
            }
            // The watcher reports overruns and shutdown itself (`runner`).
            CallOutcome::TimedOut => {
                run.outcome = Outcome::Failed(Failure::TimedOut(timeout));
                true
            }
            CallOutcome::Aborted => {
                run.outcome = Outcome::Failed(Failure::Aborted);
                true
            }
            CallOutcome::StillRunning => {
                log::warn!(target: LOG,
                    "Pollster {} on source {}: its previous call timed out and has still not \
                     returned; not calling it again until it does",
                    p.name, source.name);
                run.outcome = Outcome::Failed(Failure::StillRunning);
                true
            }
            CallOutcome::Failed(m) => {
                log::error!(target: LOG, "Cannot call pollster {} on source {}: {m}", p.name, source.name);
                run.outcome = Outcome::Failed(Failure::Host(m));
                true
            }
        };
        if stop || run.polled >= run.resources.len() {
            Step::Done
        } else {
            Step::More
        }
    }

    /// A run whose remaining slices will not be polled (the agent is stopping, or no
    /// runner could be started to go on with it): what it collected is published, and
    /// it is reported with `failure` unless it had failed already.
    pub(crate) fn cut_run(
        &self,
        engine: &Engine,
        source: &TaskSource,
        p: &TaskPollster,
        slot: Instant,
        mut run: PollsterRun,
        failure: Failure,
    ) -> PollsterReport {
        // A runner that could not be started is not the pollster's failure: its
        // backoff is left as it was.
        let backoff = (!matches!(failure, Failure::Host(_))).then_some(slot);
        if matches!(run.outcome, Outcome::Polled) {
            run.outcome = Outcome::Failed(failure);
        }
        self.end_run(engine, source, p, backoff, run)
    }

    /// The run is over: send its last, partial batch, update its backoff, report it.
    pub(crate) fn finish_run(
        &self,
        engine: &Engine,
        source: &TaskSource,
        p: &TaskPollster,
        slot: Instant,
        run: PollsterRun,
    ) -> PollsterReport {
        self.end_run(engine, source, p, Some(slot), run)
    }

    /// [`PollingTask::finish_run`], the backoff updated only with `slot`.
    fn end_run(
        &self,
        engine: &Engine,
        source: &TaskSource,
        p: &TaskPollster,
        slot: Option<Instant>,
        mut run: PollsterRun,
    ) -> PollsterReport {
        if let Some(batch) = run.batcher.finish() {
            run.send(engine, source, p, batch);
        }
        if let Some(e) = &run.first_error {
            log::error!(target: LOG,
                "Publisher {} refused {} batch(es) ({} sample(s)) of pollster {} on source {}: {e}",
                engine.publisher.describe(), run.report.publish_errors, run.failed_messages,
                p.name, source.name);
        }
        if let Some(slot) = slot {
            self.update_backoff(engine, source, p, slot, &run.outcome, run.produced);
        }
        let mut report = run.report;
        report.outcome = run.outcome;
        report.duration = run.started.elapsed();
        report
    }

    /// collectd's read backoff (plugin-host-anchors §4.3): a run that fails outright
    /// doubles the pollster's effective interval, up to the cap; a success resets it.
    pub(crate) fn update_backoff(
        &self,
        engine: &Engine,
        source: &TaskSource,
        p: &TaskPollster,
        slot: Instant,
        outcome: &Outcome,
        produced: usize,
    ) {
        let wholesale = match outcome {
            Outcome::Failed(Failure::Error { kind, .. }) => match kind {
                ErrorKind::Panicked => true,
                ErrorKind::Permanent => false,
                _ => produced == 0,
            },
            Outcome::Failed(Failure::Aborted) => false,
            Outcome::Failed(_) => true,
            _ => false,
        };
        let mut st = lock(&p.state);
        if wholesale {
            st.failures = st.failures.saturating_add(1);
            let factor = 1u32 << st.failures.min(30);
            let effective = self
                .interval
                .saturating_mul(factor)
                .min(engine.options.max_backoff_interval)
                .max(self.interval);
            st.suspended_until = slot.checked_add(effective);
            log::warn!(target: LOG,
                "Pollster {} on source {} failed {} time(s) in a row: suspending it for {} s",
                p.name, source.name, st.failures, effective.as_secs());
        } else if st.failures > 0 {
            log::info!(target: LOG,
                "Pollster {} on source {} works again after {} consecutive failure(s)",
                p.name, source.name, st.failures);
            st.failures = 0;
            st.suspended_until = None;
        }
    }

    /// Ceilometer's `AgentManager.discover`, each URL at most once per cycle.
    fn discover(&self, engine: &Engine, cycle: &Cycle, urls: &[String]) -> Vec<Resource> {
        let mut out = Vec::new();
        for url in urls {
            let slot = Arc::clone(lock(&cycle.discovered).entry(url.clone()).or_default());
            // OnceLock: concurrent pollsters wait for the one running discovery.
            let found = slot.get_or_init(|| Arc::new(self.run_discovery(engine, cycle, url)));
            out.extend(found.iter().cloned());
        }
        out
    }

    fn run_discovery(&self, engine: &Engine, cycle: &Cycle, url: &str) -> Vec<Resource> {
        let (name, param) = parse_discovery_url(url);
        let mut report = DiscoveryReport {
            url: url.to_string(),
            resources: 0,
            error: None,
        };
        let resources = match engine.discoveries.get(&name) {
            None => {
                log::warn!(target: LOG, "Unknown discovery extension: {name} (in {url:?})");
                report.error = Some(format!("unknown discovery extension {name:?}"));
                Vec::new()
            }
            Some(handle) => self.call_discovery(engine, cycle, url, handle, param, &mut report),
        };
        report.resources = resources.len();
        lock(&cycle.discoveries).push(report);
        resources
    }

    fn call_discovery(
        &self,
        engine: &Engine,
        cycle: &Cycle,
        url: &str,
        handle: &Arc<DiscoveryHandle>,
        param: Option<String>,
        report: &mut DiscoveryReport,
    ) -> Vec<Resource> {
        let busy = Arc::clone(
            lock(&self.discovery_busy)
                .entry(url.to_string())
                .or_default(),
        );
        engine.emit(crate::agent::AgentEvent::DiscoveryCalled {
            interval: self.interval,
            url: url.to_string(),
        });
        let ctx = CallContext::new(Arc::clone(&cycle.cache), Arc::new(AtomicBool::new(false)));
        let timeout = engine.options.timeout_for(self.interval);
        let call = {
            let handle = Arc::clone(handle);
            let ctx = ctx.clone();
            move || handle.discover(&ctx, param.as_deref())
        };
        let failure =
            match engine
                .pool
                .call(&ctx, timeout, &engine.stop.abort_rx, Some(&busy), call)
            {
                CallOutcome::Done(result) => match result.error {
                    None => return result.resources,
                    Some(e) => e.to_string(),
                },
                CallOutcome::TimedOut => {
                    format!("no answer within {:.3} s: cancelled", timeout.as_secs_f64())
                }
                CallOutcome::Aborted => "interrupted by shutdown".to_string(),
                CallOutcome::StillRunning => {
                    "its previous call timed out and has still not returned".to_string()
                }
                CallOutcome::Failed(m) => m,
            };
        log::error!(target: LOG, "Unable to discover resources with {url}: {failure}");
        report.error = Some(failure);
        Vec::new()
    }
}

/// One discovery URL's result in a cycle, computed by the first pollster that needs it.
type DiscoverySlot = Arc<OnceLock<Arc<Vec<Resource>>>>;

/// The state shared by every pollster run of one cycle.
pub(crate) struct Cycle {
    /// The pollster cache (`ctx.cached`).
    cache: Arc<CycleCache>,
    /// Discovery URL → resources, computed once per cycle.
    discovered: Mutex<HashMap<String, DiscoverySlot>>,
    /// Pollster name → resources already handed to it this cycle.
    history: Mutex<HashMap<String, ResourceSet>>,
    /// The deduplicated candidates of pollsters with no cross-source history, by what
    /// determines them ([`CandidatesKey`]); each filters its own blacklist from them.
    candidates: Mutex<HashMap<CandidatesKey, Arc<[Resource]>>>,
    discoveries: Mutex<Vec<DiscoveryReport>>,
}

/// What determines a pollster's candidates in a cycle: its source, and its default
/// discovery when the source has no static resources (the default is used when the
/// source's own discoveries find nothing, or it has none).
type CandidatesKey = (String, Option<String>);

/// `candidates` without repeats, in order (Ceilometer drops a resource it has seen in
/// the same run).
fn dedup(candidates: Vec<Resource>) -> Arc<[Resource]> {
    let mut seen: HashSet<&str, foldhash::fast::RandomState> = HashSet::default();
    seen.reserve(candidates.len());
    let keep: Vec<bool> = candidates.iter().map(|r| seen.insert(r.id())).collect();
    drop(seen);
    if keep.iter().all(|k| *k) {
        return candidates.into();
    }
    candidates
        .into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

/// Resources by id. foldhash instead of SipHash: every resource a cycle hands to a
/// pollster goes through a set of ids (this one, or `dedup`'s), and foldhash is several
/// times faster on ids while still seeded per process.
type ResourceSet = HashSet<Resource, foldhash::fast::RandomState>;

/// A discovery entry of polling.yaml as Ceilometer's `urlparse` reads it: `name` alone,
/// or `name://param` (`param` = host and path; query and fragment dropped; the name is
/// lower-cased). Unlike `urlparse`, `_` is accepted in the name.
pub fn parse_discovery_url(url: &str) -> (String, Option<String>) {
    let cut = |s: &str| -> String {
        let end = s.find(['?', '#']).unwrap_or(s.len());
        s[..end].to_string()
    };
    if let Some(i) = url.find(':') {
        let scheme = &url[..i];
        let valid = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c));
        if valid {
            let rest = &url[i + 1..];
            let param = match rest.strip_prefix("//") {
                Some(r) => {
                    let end = r.find(['/', '?', '#']).unwrap_or(r.len());
                    format!("{}{}", &r[..end], cut(&r[end..]))
                }
                None => cut(rest),
            };
            return (scheme.to_ascii_lowercase(), Some(param));
        }
    }
    (cut(url), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_whole_batches_near_the_cache_sized_slice() {
        assert_eq!(slice_len(50), 150);
        assert_eq!(slice_len(1), 128);
        assert_eq!(slice_len(0), 128);
        assert_eq!(slice_len(100), 200);
        assert_eq!(slice_len(255), 255);
        assert_eq!(slice_len(256), 128);
        assert_eq!(slice_len(10_000), 128);
    }

    #[test]
    fn discovery_urls_like_urlparse() {
        let p = |u: &str| {
            let (n, p) = parse_discovery_url(u);
            (n, p)
        };
        assert_eq!(p("local_instances"), ("local_instances".into(), None));
        assert_eq!(p("fixed://vm"), ("fixed".into(), Some("vm".into())));
        assert_eq!(
            p("fixed://host/a/b"),
            ("fixed".into(), Some("host/a/b".into()))
        );
        assert_eq!(
            p("endpoint:image"),
            ("endpoint".into(), Some("image".into()))
        );
        assert_eq!(p("Fixed://x?q=1#f"), ("fixed".into(), Some("x".into())));
        assert_eq!(p("fixed://"), ("fixed".into(), Some(String::new())));
        assert_eq!(
            p("local_instances://x"),
            ("local_instances".into(), Some("x".into()))
        );
        assert_eq!(p("local_instances?x"), ("local_instances".into(), None));
        assert_eq!(p("1abc://x"), ("1abc://x".into(), None));
    }
}
