//! Runs a source's pollsters on pool threads while the task thread keeps the clock.
//! A runner calls its pollsters one after another, in process, and posts which call it
//! is in and until when; the task thread sleeps until the earliest such deadline (or
//! until the runners are done) and, on an overrun or at shutdown, cancels the call,
//! abandons that runner and starts another for the pollsters left. That is one thread
//! hand-off per source and cycle, where a hand-off per plugin call cost more CPU than
//! the call itself on small nodes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Sender};
use longshore_plugin_api::host::CallContext;

use crate::agent::Engine;
use crate::call::CallOutcome;
use crate::report::{Failure, Outcome, PollsterReport, SkipReason};
use crate::task::Cycle;

const LOG: &str = "longshore::polling";
/// The task thread's shortest sleep while no call is posted.
const IDLE_WAKE: Duration = Duration::from_millis(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A runner's plugin call in progress, as the task thread sees it.
struct Running {
    index: usize,
    resources: usize,
    started: Instant,
    deadline: Instant,
    ctx: CallContext,
}

/// What a runner shares with the task thread that watches it.
#[derive(Default)]
pub(crate) struct Watch {
    current: Mutex<Option<Running>>,
    /// Set (under `current`'s lock) when the task thread gave up on the current call:
    /// it has reported that pollster and handed the rest of the source to another
    /// runner, so this one must neither report nor publish nor continue.
    abandoned: AtomicBool,
}

impl Watch {
    /// Call `f` (a pollster's plugin call) on this thread, visible to the watcher until
    /// `timeout`. `None`: the call overran (or the agent stopped) and was abandoned
    /// while it ran; the watcher has reported it, the caller drops the result.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn call<T>(
        &self,
        engine: &Engine,
        index: usize,
        resources: usize,
        ctx: &CallContext,
        timeout: Duration,
        busy: &AtomicBool,
        f: impl FnOnce() -> T,
    ) -> Option<CallOutcome<T>> {
        if busy.swap(true, Ordering::AcqRel) {
            return Some(CallOutcome::StillRunning);
        }
        {
            let mut current = lock(&self.current);
            // The watcher's last pass after an abort may be over: a call posted now
            // would be neither cancelled nor abandoned until `timeout` later.
            if engine.stop.is_aborted() {
                busy.store(false, Ordering::Release);
                return Some(CallOutcome::Aborted);
            }
            let started = Instant::now();
            *current = Some(Running {
                index,
                resources,
                started,
                deadline: far_add(started, timeout),
                ctx: ctx.clone(),
            });
        }
        let result = catch_unwind(AssertUnwindSafe(f));
        busy.store(false, Ordering::Release);
        let mut current = lock(&self.current);
        if self.abandoned.load(Ordering::Acquire) {
            drop(current);
            engine.pool.abandoned_returned();
            return None;
        }
        *current = None;
        Some(match result {
            Ok(v) => CallOutcome::Done(v),
            Err(_) => CallOutcome::Failed("the host-side call wrapper panicked".into()),
        })
    }

    fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    /// The watcher's look at the runner at `now`: the call to give up on (past its
    /// deadline, or any call when `all`), else the running call's deadline.
    fn expire(&self, engine: &Engine, now: Instant, all: bool) -> Expired {
        let mut current = lock(&self.current);
        match current.as_ref() {
            None => Expired::Idle,
            Some(r) if !all && r.deadline > now => Expired::Until(r.deadline),
            Some(_) => {
                // Counted under the lock: the runner's `abandoned_returned` comes after.
                engine.pool.abandoned_call();
                self.abandoned.store(true, Ordering::Release);
                current.take().map_or(Expired::Idle, Expired::Abandoned)
            }
        }
    }
}

enum Expired {
    Idle,
    Until(Instant),
    Abandoned(Running),
}

fn far_add(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(t)
}

/// One source's pollster runs in one cycle.
struct SourceRun {
    engine: Arc<Engine>,
    task: usize,
    source: usize,
    slot: Instant,
    cycle: Arc<Cycle>,
    next: AtomicUsize,
    reports: Mutex<Vec<Option<PollsterReport>>>,
    exits: Sender<usize>,
}

/// Run the pollsters of source `source` of task `task`, `[polling]
/// threads_to_process_pollsters` at a time, and return their reports in polling order.
pub(crate) fn run_source(
    engine: &Arc<Engine>,
    task: usize,
    source: usize,
    cycle: &Arc<Cycle>,
    slot: Instant,
) -> Vec<PollsterReport> {
    let t = &engine.tasks[task];
    let src = &t.sources[source];
    let count = src.pollsters.len();
    if count == 0 {
        return Vec::new();
    }
    let threads = match engine.options.threads_to_process_pollsters {
        0 => count,
        n => n.min(count),
    };
    let (exits, exit_rx) = crossbeam_channel::unbounded();
    let run = Arc::new(SourceRun {
        engine: Arc::clone(engine),
        task,
        source,
        slot,
        cycle: Arc::clone(cycle),
        next: AtomicUsize::new(0),
        reports: Mutex::new(vec![None; count]),
        exits,
    });
    let timeout = engine.options.timeout_for(t.interval);
    let mut ids = 0usize;
    let mut live: Vec<(usize, Arc<Watch>)> = Vec::with_capacity(threads);
    let mut start_error = None;
    let mut start = |live: &mut Vec<(usize, Arc<Watch>)>| {
        let watch = Arc::new(Watch::default());
        let id = ids;
        ids += 1;
        let job = {
            let run = Arc::clone(&run);
            let watch = Arc::clone(&watch);
            Box::new(move || runner(&run, id, &watch))
        };
        match engine.pool.submit(job) {
            Ok(()) => live.push((id, watch)),
            Err(e) => {
                log::error!(target: LOG, "Cannot start a pollster runner for source {}: {e}", src.name);
                start_error.get_or_insert(e);
            }
        }
    };
    for _ in 0..threads {
        start(&mut live);
    }
    let mut aborted = false;
    while !live.is_empty() {
        let now = Instant::now();
        // A call that starts after `now` ends no earlier than `now + timeout` (a tiny
        // timeout may be overrun by up to IDLE_WAKE rather than polled for).
        let mut wake = far_add(now, timeout.max(IDLE_WAKE));
        let mut restart = 0;
        live.retain(|(_, watch)| match watch.expire(engine, now, aborted) {
            Expired::Idle => true,
            Expired::Until(deadline) => {
                wake = wake.min(deadline);
                true
            }
            Expired::Abandoned(running) => {
                let i = running.index;
                let report = abandoned(engine, task, source, slot, timeout, running, aborted);
                lock(&run.reports)[i] = Some(report);
                restart += 1;
                false
            }
        });
        if !aborted {
            for _ in 0..restart {
                if run.next.load(Ordering::Relaxed) < count {
                    start(&mut live);
                }
            }
        }
        if live.is_empty() {
            break;
        }
        let gone = if aborted {
            exit_rx.recv_deadline(wake).ok()
        } else {
            select! {
                recv(exit_rx) -> id => id.ok(),
                recv(engine.stop.abort_rx) -> _ => {
                    aborted = true;
                    None
                },
                default(wake.saturating_duration_since(Instant::now())) => None,
            }
        };
        if let Some(id) = gone {
            live.retain(|(i, _)| *i != id);
        }
    }
    let stopping = engine.stop.is_stopping();
    let reports = std::mem::take(&mut *lock(&run.reports));
    reports
        .into_iter()
        .zip(&src.pollsters)
        .map(|(r, p)| {
            r.unwrap_or_else(|| {
                // Never taken by a runner: the agent is stopping, or none could start.
                let mut r = PollsterReport::new(&src.name, &p.name);
                r.outcome = match (&start_error, stopping) {
                    (Some(e), false) => Outcome::Failed(Failure::Host(e.clone())),
                    _ => Outcome::Skipped(SkipReason::ShuttingDown),
                };
                r
            })
        })
        .collect()
}

/// Report a call the watcher gave up on, and count it against the pollster's backoff.
fn abandoned(
    engine: &Engine,
    task: usize,
    source: usize,
    slot: Instant,
    timeout: Duration,
    running: Running,
    aborted: bool,
) -> PollsterReport {
    running.ctx.cancel();
    let t = &engine.tasks[task];
    let src = &t.sources[source];
    let p = &src.pollsters[running.index];
    let failure = if aborted {
        Failure::Aborted
    } else {
        log::error!(target: LOG,
            "Pollster {} on source {} gave no answer within {:.3} s: cancelled, \
             its task moves on ({} abandoned call(s) still running)",
            p.name, src.name, timeout.as_secs_f64(), engine.pool.abandoned_running());
        Failure::TimedOut(timeout)
    };
    let outcome = Outcome::Failed(failure);
    t.update_backoff(engine, src, p, slot, &outcome, 0);
    let mut report = PollsterReport::new(&src.name, &p.name);
    report.outcome = outcome;
    report.resources = running.resources;
    report.duration = running.started.elapsed();
    report
}

/// A runner: the source's next pollster, until none is left or it is abandoned.
fn runner(run: &SourceRun, id: usize, watch: &Watch) {
    // Sent on every way out, unwinding included (an abandoned runner was already
    // dropped from the task thread's list and sends nothing).
    struct Exit<'a>(&'a SourceRun, usize, &'a Watch);
    impl Drop for Exit<'_> {
        fn drop(&mut self) {
            if !self.2.is_abandoned() {
                let _ = self.0.exits.send(self.1);
            }
        }
    }
    let _exit = Exit(run, id, watch);
    let engine = &run.engine;
    let task = &engine.tasks[run.task];
    let source = &task.sources[run.source];
    loop {
        let i = run.next.fetch_add(1, Ordering::Relaxed);
        let Some(p) = source.pollsters.get(i) else {
            break;
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            task.run_pollster(engine, &run.cycle, source, p, run.slot, watch, i)
        }));
        if watch.is_abandoned() {
            return;
        }
        let report = result.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!(target: LOG,
                "Internal error while polling {} on source {}: {what}", p.name, source.name);
            let mut r = PollsterReport::new(&source.name, &p.name);
            r.outcome = Outcome::Failed(Failure::Host(format!("internal error: {what}")));
            r
        });
        lock(&run.reports)[i] = Some(report);
    }
}
