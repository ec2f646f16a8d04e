//! The polling agent (Ceilometer's `AgentManager`): interval tasks built from the
//! definition and the loaded pollsters, run once (`poll_once`) or as a service on a timer
//! thread and a pool of task workers (`start`), with a bounded clean shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use longshore_plugin_api::host::{DiscoveryHandle, PollsterHandle};
use longshore_publisher::{MessageFactory, PublishError, Publisher};

use crate::call::CallPool;
use crate::definition::PollingDefinition;
use crate::options::PollingOptions;
use crate::report::{CycleReport, PollReport};
use crate::schedule::{Action, Schedule};
use crate::task::{parse_discovery_url, PollingTask};

const LOG: &str = "longshore::polling";

/// After the shutdown bound, how long aborted cycles get to unwind.
const ABORT_GRACE: Duration = Duration::from_secs(1);
/// The publisher always gets at least this long to flush at shutdown.
const MIN_FLUSH: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// "Stop starting things" and "give up on running calls".
pub(crate) struct StopSignal {
    stopping: AtomicBool,
    /// Set just before `abort_tx` is dropped: a runner checks it under its watch lock.
    aborted: AtomicBool,
    abort_tx: Mutex<Option<Sender<()>>>,
    /// Disconnected (fires in `select!`) once `abort` is called.
    pub(crate) abort_rx: Receiver<()>,
}

impl StopSignal {
    fn new() -> StopSignal {
        let (tx, rx) = crossbeam_channel::bounded(0);
        StopSignal {
            stopping: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            abort_tx: Mutex::new(Some(tx)),
            abort_rx: rx,
        }
    }
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
    fn begin(&self) {
        self.stopping.store(true, Ordering::Release);
    }
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        lock(&self.abort_tx).take();
    }
}

/// Everything a cycle needs, shared by the task workers.
pub(crate) struct Engine {
    pub(crate) options: PollingOptions,
    pub(crate) factory: MessageFactory,
    pub(crate) publisher: Arc<dyn Publisher>,
    pub(crate) discoveries: HashMap<String, Arc<DiscoveryHandle>>,
    pub(crate) pool: CallPool,
    pub(crate) stop: StopSignal,
    pub(crate) tasks: Vec<PollingTask>,
    events: Mutex<Vec<Sender<AgentEvent>>>,
}

impl Engine {
    pub(crate) fn emit(&self, event: AgentEvent) {
        let mut subs = lock(&self.events);
        if subs.is_empty() {
            return;
        }
        subs.retain(|s| s.send(event.clone()).is_ok());
    }
}

/// What the running agent reports to subscribers ([`RunningAgent::subscribe`]).
#[derive(Debug, Clone)]
pub enum AgentEvent {
    CycleStarted {
        task: usize,
        interval: Duration,
    },
    CycleFinished {
        task: usize,
        report: CycleReport,
    },
    /// A pollster is being called (it was not skipped); emitted when its run starts,
    /// before its first call (for per-resource pollsters run interleaved, before the
    /// group's calls).
    PollsterCalled {
        interval: Duration,
        source: String,
        pollster: String,
    },
    /// A discovery is being called (once per URL and cycle); emitted just before it.
    DiscoveryCalled {
        interval: Duration,
        url: String,
    },
    /// A slot came while the task's previous cycle was still running.
    CycleSkipped {
        task: usize,
        interval: Duration,
        running_for: Duration,
    },
}

/// One interval task as set up: for `longshore check` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPlan {
    pub interval: Duration,
    /// (source name, pollster names) in polling order.
    pub sources: Vec<(String, Vec<String>)>,
}

/// The polling agent. Build it with the loaded pollsters and discoveries, then either
/// [`poll_once`](AgentManager::poll_once) or [`start`](AgentManager::start).
pub struct AgentManager {
    engine: Arc<Engine>,
}

impl AgentManager {
    /// Ceilometer's `setup_polling_tasks`: every pollster (in the given order, named by
    /// its entry-point name) is matched against every source (in file order); sources
    /// with the same interval share one task. Logs a warning for every discovery the
    /// definition names that is not loaded.
    pub fn new(
        options: PollingOptions,
        definition: &PollingDefinition,
        pollsters: Vec<(String, Arc<PollsterHandle>)>,
        discoveries: HashMap<String, Arc<DiscoveryHandle>>,
        publisher: Arc<dyn Publisher>,
    ) -> AgentManager {
        let mut tasks: Vec<PollingTask> = Vec::new();
        for source in definition.sources() {
            let interval = Duration::from_secs(source.interval());
            let mut matched = 0;
            for (name, handle) in &pollsters {
                if !source.support_meter(name) {
                    continue;
                }
                matched += 1;
                let idx = match tasks.iter().position(|t| t.interval == interval) {
                    Some(i) => i,
                    None => {
                        tasks.push(PollingTask::new(interval));
                        tasks.len() - 1
                    }
                };
                tasks[idx].add(source, name, handle);
            }
            if matched == 0 {
                log::info!(target: LOG,
                    "Source {} ({}) matches none of the {} loaded pollster(s): it polls nothing",
                    source.name(), definition.path().display(), pollsters.len());
            }
            for url in source.discovery() {
                let (name, _) = parse_discovery_url(url);
                if !discoveries.contains_key(&name) {
                    log::warn!(target: LOG,
                        "Source {} names discovery {url:?}, but no discovery extension {name:?} is loaded",
                        source.name());
                }
            }
        }
        for task in &mut tasks {
            task.finish();
        }
        let factory = MessageFactory::new(&options.telemetry_secret, &options.sample_source);
        AgentManager {
            engine: Arc::new(Engine {
                options,
                factory,
                publisher,
                discoveries,
                pool: CallPool::new(),
                stop: StopSignal::new(),
                tasks,
                events: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Events of the running agent (subscribe before `start` to see the first cycles).
    /// Drop the receiver when done: events are not buffered for receivers that are gone.
    pub fn subscribe(&self) -> Receiver<AgentEvent> {
        subscribe(&self.engine)
    }

    /// The tasks, sources and pollsters that will be polled.
    pub fn plan(&self) -> Vec<TaskPlan> {
        self.engine
            .tasks
            .iter()
            .map(|t| TaskPlan {
                interval: t.interval,
                sources: t
                    .sources
                    .iter()
                    .map(|s| {
                        (
                            s.name.clone(),
                            s.pollsters.iter().map(|p| p.name.clone()).collect(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    /// The factory that signs this agent's messages (and caches rendered metadata).
    pub fn message_factory(&self) -> &MessageFactory {
        &self.engine.factory
    }

    /// Run every task once, one after the other, then flush the publisher (bounded by
    /// `[DEFAULT] graceful_shutdown_timeout`). The publisher stays open.
    pub fn poll_once(&self) -> PollReport {
        self.poll_once_at(Instant::now())
    }

    /// As [`poll_once`](AgentManager::poll_once), with `now` as the cycles' scheduled
    /// start: repeated calls with growing `now` simulate successive cycles (failure
    /// backoff is measured against it), for tests and dry runs.
    pub fn poll_once_at(&self, now: Instant) -> PollReport {
        let cycles: Vec<CycleReport> = (0..self.engine.tasks.len())
            .map(|i| {
                let report = PollingTask::run_cycle(&self.engine, i, now);
                log_cycle(&report);
                report
            })
            .collect();
        let flush_error = self
            .engine
            .publisher
            .flush(self.engine.options.shutdown_timeout)
            .err()
            .map(|e| e.to_string());
        PollReport {
            cycles,
            flush_error,
        }
    }

    /// Close the publisher (after `poll_once`), waiting at most `timeout` for delivery.
    pub fn close(&self, timeout: Duration) -> Result<(), PublishError> {
        self.engine.publisher.close(timeout)
    }

    /// Start the service: a timer thread dispatching due tasks to `[polling] workers`
    /// task threads. Every task runs at once, then every interval.
    pub fn start(self) -> std::io::Result<RunningAgent> {
        let engine = self.engine;
        let ntasks = engine.tasks.len();
        if ntasks == 0 {
            log::warn!(target: LOG, "No pollster matches any source: nothing to poll");
        }
        let nworkers = match engine.options.workers {
            0 => ntasks.max(1),
            n => n,
        };
        if nworkers < ntasks {
            log::warn!(target: LOG,
                "[polling] workers = {nworkers} is less than the {ntasks} interval tasks: a \
                 slow task can delay others (0 means one worker per task)");
        }
        let (control_tx, control_rx) = crossbeam_channel::unbounded::<Control>();
        let (dispatch_tx, dispatch_rx) = crossbeam_channel::unbounded::<Job>();
        let (exited_tx, exited_rx) = crossbeam_channel::unbounded::<()>();
        let mut workers = Vec::with_capacity(nworkers);
        for i in 0..nworkers {
            let engine = Arc::clone(&engine);
            let rx = dispatch_rx.clone();
            let control = control_tx.clone();
            let exited = exited_tx.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("longshore-task-{i}"))
                    .spawn(move || {
                        worker_loop(&engine, &rx, &control);
                        let _ = exited.send(());
                    })?,
            );
        }
        let timer = {
            let engine = Arc::clone(&engine);
            let intervals: Vec<Duration> = engine.tasks.iter().map(|t| t.interval).collect();
            std::thread::Builder::new()
                .name("longshore-timer".into())
                .spawn(move || timer_loop(&engine, &intervals, &control_rx, dispatch_tx))?
        };
        log::info!(target: LOG,
            "Polling started: {ntasks} interval task(s) on {nworkers} worker(s), publishing to {}",
            engine.publisher.describe());
        Ok(RunningAgent {
            engine,
            control: control_tx,
            timer: Some(timer),
            workers,
            exited_rx,
            stopped: false,
        })
    }
}

fn subscribe(engine: &Engine) -> Receiver<AgentEvent> {
    let (tx, rx) = crossbeam_channel::unbounded();
    lock(&engine.events).push(tx);
    rx
}

fn log_cycle(r: &CycleReport) {
    let polled = r
        .pollsters
        .iter()
        .filter(|p| !matches!(p.outcome, crate::report::Outcome::Skipped(_)))
        .count();
    log::info!(target: LOG,
        "Polling cycle (interval {} s): {polled} pollster run(s), {} sample(s), {} failure(s), in {:.3} s",
        r.interval.as_secs(), r.samples(), r.failures(), r.duration.as_secs_f64());
}

enum Control {
    Finished(usize),
    Stop,
}

struct Job {
    task: usize,
    slot: Instant,
}

fn timer_loop(
    engine: &Engine,
    intervals: &[Duration],
    control: &Receiver<Control>,
    dispatch: Sender<Job>,
) {
    let mut schedule = Schedule::new(intervals, Instant::now());
    loop {
        let now = Instant::now();
        for action in schedule.poll(now) {
            match action {
                Action::Dispatch { task, slot } => {
                    if dispatch.send(Job { task, slot }).is_err() {
                        return;
                    }
                }
                Action::Skip {
                    task, running_for, ..
                } => {
                    let interval = intervals.get(task).copied().unwrap_or_default();
                    log::warn!(target: LOG,
                        "Polling task (interval {} s) is still running the cycle it started {:.1} s \
                         ago: skipping this cycle. Raise the interval, [polling] \
                         threads_to_process_pollsters or lower [polling] pollster_timeout.",
                        interval.as_secs(), running_for.as_secs_f64());
                    engine.emit(AgentEvent::CycleSkipped {
                        task,
                        interval,
                        running_for,
                    });
                }
            }
        }
        match control.recv_deadline(schedule.next_deadline(now)) {
            Ok(Control::Finished(task)) => schedule.finished(task),
            Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn worker_loop(engine: &Arc<Engine>, jobs: &Receiver<Job>, control: &Sender<Control>) {
    while let Ok(job) = jobs.recv() {
        if !engine.stop.is_stopping() {
            if let Some(task) = engine.tasks.get(job.task) {
                engine.emit(AgentEvent::CycleStarted {
                    task: job.task,
                    interval: task.interval,
                });
                let report = PollingTask::run_cycle(engine, job.task, job.slot);
                log_cycle(&report);
                engine.emit(AgentEvent::CycleFinished {
                    task: job.task,
                    report,
                });
            }
        }
        let _ = control.send(Control::Finished(job.task));
    }
}

/// What a shutdown achieved.
#[derive(Debug)]
pub struct ShutdownReport {
    /// Every running cycle finished within the bound (none was aborted).
    pub cycles_finished: bool,
    /// Plugin calls abandoned and still running in plugin code (they are detached).
    pub abandoned_calls: usize,
    /// The publisher's close result.
    pub publisher: Result<(), PublishError>,
}

/// The agent as a service. Stop it with [`shutdown`](RunningAgent::shutdown); dropping
/// it shuts down with `[DEFAULT] graceful_shutdown_timeout`.
pub struct RunningAgent {
    engine: Arc<Engine>,
    control: Sender<Control>,
    timer: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    exited_rx: Receiver<()>,
    stopped: bool,
}

impl RunningAgent {
    /// Events from now on. Drop the receiver when done: events are not buffered for
    /// receivers that are gone.
    pub fn subscribe(&self) -> Receiver<AgentEvent> {
        subscribe(&self.engine)
    }

    /// The tasks being polled.
    pub fn plan(&self) -> Vec<TaskPlan> {
        AgentManager {
            engine: Arc::clone(&self.engine),
        }
        .plan()
    }

    /// Stop: no new cycle or pollster run starts; running pollster calls get until
    /// `timeout` to finish, then are cancelled (their context flag is set) and abandoned;
    /// finally the publisher is closed, with what is left of `timeout` (at least 1 s).
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> ShutdownReport {
        self.stopped = true;
        let deadline = Instant::now() + timeout;
        self.engine.stop.begin();
        let _ = self.control.send(Control::Stop);
        if let Some(timer) = self.timer.take() {
            // The timer never blocks on anything but its control channel.
            let _ = timer.join();
        }
        let total = self.workers.len();
        let mut exited = 0;
        while exited < total && self.exited_rx.recv_deadline(deadline).is_ok() {
            exited += 1;
        }
        let cycles_finished = exited == total;
        if !cycles_finished {
            log::warn!(target: LOG,
                "Shutdown: {} polling cycle(s) still running after {:.1} s: cancelling their calls",
                total - exited, timeout.as_secs_f64());
            self.engine.stop.abort();
            let grace = Instant::now() + ABORT_GRACE;
            while exited < total && self.exited_rx.recv_deadline(grace).is_ok() {
                exited += 1;
            }
        }
        if exited == total {
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
        } else {
            // Detached: they exit when the plugin call they wait for returns.
            self.workers.clear();
        }
        let flush = deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_FLUSH);
        let publisher = self.engine.publisher.close(flush);
        if let Err(e) = &publisher {
            log::error!(target: LOG, "Shutdown: publisher {}: {e}", self.engine.publisher.describe());
        }
        let abandoned_calls = self.engine.pool.abandoned_running();
        log::info!(target: LOG,
            "Polling stopped (cycles finished: {cycles_finished}, abandoned plugin calls: {abandoned_calls})");
        ShutdownReport {
            cycles_finished,
            abandoned_calls,
            publisher,
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if !self.stopped {
            let timeout = self.engine.options.shutdown_timeout;
            self.stop(timeout);
        }
    }
}
