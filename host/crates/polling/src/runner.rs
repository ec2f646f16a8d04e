//! Runs a source's pollsters on pool threads while the task thread keeps the clock.
//! A runner calls its pollsters in process (consecutive per-resource ones interleaved
//! slice by slice, [`GROUP_MAX`] at a time) and posts which call it is in and until
//! when; the task thread sleeps until the earliest such deadline (or until the runners
//! are done) and, on an overrun or at shutdown, cancels the call, abandons that runner
//! and starts another for the runs and pollsters left. That is one thread hand-off per
//! source and cycle, where a hand-off per plugin call cost more CPU than the call itself
//! on small nodes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Sender};
use longshore_plugin_api::host::CallContext;

use crate::agent::Engine;
use crate::call::CallOutcome;
use crate::report::{Failure, Outcome, PollsterReport, SkipReason};
use crate::task::{Cycle, PollsterRun, Step, TaskPollster, GROUP_MAX};

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
    /// What the run had published before this call (samples, batches, refused batches),
    /// for its report if the call is abandoned.
    published: Published,
    started: Instant,
    deadline: Instant,
    ctx: CallContext,
}

/// A run's published counts so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Published {
    pub(crate) samples: usize,
    pub(crate) batches: usize,
    pub(crate) publish_errors: usize,
}

/// What a runner shares with the task thread that watches it.
#[derive(Default)]
pub(crate) struct Watch {
    current: Mutex<Option<Running>>,
    /// Set (under `current`'s lock) when the task thread gave up on the current call:
    /// it has reported that pollster and handed the rest of the source to another
    /// runner, so this one must neither report nor publish nor continue.
    abandoned: AtomicBool,
    /// The runner's group of runs between their calls (the one being called is not
    /// here): the task thread hands them to another runner when it abandons this one.
    members: Mutex<Vec<PollsterRun>>,
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
        published: Published,
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
                published,
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
    /// The first pollster no runner has claimed yet.
    next: AtomicUsize,
    /// The most pollsters a runner claims at once.
    group: usize,
    /// Runs taken from abandoned runners, for the next runner to go on with.
    resume: Mutex<Vec<Vec<PollsterRun>>>,
    reports: Mutex<Vec<Option<PollsterReport>>>,
    exits: Sender<usize>,
}

impl SourceRun {
    /// The next pollsters for a runner: one, or up to `group` consecutive per-resource
    /// ones, which it interleaves slice by slice.
    fn claim(&self, pollsters: &[TaskPollster]) -> Option<std::ops::Range<usize>> {
        let mut first = self.next.load(Ordering::Relaxed);
        loop {
            let p = pollsters.get(first)?;
            let mut end = first + 1;
            if p.per_resource {
                while end < pollsters.len()
                    && end - first < self.group
                    && pollsters[end].per_resource
                {
                    end += 1;
                }
            }
            match self
                .next
                .compare_exchange(first, end, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(first..end),
                Err(now) => first = now,
            }
        }
    }

    fn report(&self, index: usize, report: PollsterReport) {
        lock(&self.reports)[index] = Some(report);
    }
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
        group: GROUP_MAX.min(count.div_ceil(threads)).max(1),
        resume: Mutex::new(Vec::new()),
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
                run.report(i, report);
                // The rest of its group goes on in another runner, where it left off.
                let rest = std::mem::take(&mut *lock(&watch.members));
                if !rest.is_empty() {
                    lock(&run.resume).push(rest);
                }
                restart += 1;
                false
            }
        });
        if !aborted {
            for _ in 0..restart {
                if run.next.load(Ordering::Relaxed) < count || !lock(&run.resume).is_empty() {
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
    // Runs left over from an abandoned runner when no other took them over (at an
    // abort, or when no runner could be started): what they collected is still
    // published.
    let stopping = engine.stop.is_stopping();
    let left = std::mem::take(&mut *lock(&run.resume));
    for r in left.into_iter().flatten() {
        let i = r.index;
        let failure = match (&start_error, aborted || stopping) {
            (Some(e), false) => Failure::Host(e.clone()),
            _ => Failure::Aborted,
        };
        let report = t.cut_run(engine, src, &src.pollsters[i], slot, r, failure);
        run.report(i, report);
    }
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
    report.samples = running.published.samples;
    report.batches = running.published.batches;
    report.publish_errors = running.published.publish_errors;
    report.duration = running.started.elapsed();
    report
}

/// A runner: the source's next pollsters, until none is left or it is abandoned. A
/// group of per-resource pollsters is polled slice by slice, each slice by every run of
/// the group in turn, so that its resources' data is read from memory once per group.
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
    let internal_error = |i: usize, panic: Box<dyn std::any::Any + Send>| {
        let p = &source.pollsters[i];
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        log::error!(target: LOG,
            "Internal error while polling {} on source {}: {what}", p.name, source.name);
        let mut r = PollsterReport::new(&source.name, &p.name);
        r.outcome = Outcome::Failed(Failure::Host(format!("internal error: {what}")));
        run.report(i, r);
    };
    loop {
        let resumed = lock(&run.resume).pop();
        let group = match resumed {
            Some(group) => group,
            None => {
                let Some(claimed) = run.claim(&source.pollsters) else {
                    break;
                };
                let mut group = Vec::with_capacity(claimed.len());
                for i in claimed {
                    let p = &source.pollsters[i];
                    let started = catch_unwind(AssertUnwindSafe(|| {
                        task.start_run(engine, &run.cycle, source, p, run.slot, i)
                    }));
                    match started {
                        Ok(Ok(r)) => group.push(r),
                        Ok(Err(report)) => run.report(i, *report),
                        Err(panic) => internal_error(i, panic),
                    }
                }
                group
            }
        };
        *lock(&watch.members) = group;
        let mut k = 0;
        loop {
            // Out of `members` while it is called: if the call hangs, the task thread
            // reports this run and hands the others on.
            let mut r = {
                let mut members = lock(&watch.members);
                if members.is_empty() {
                    break;
                }
                k %= members.len();
                members.remove(k)
            };
            let i = r.index;
            let p = &source.pollsters[i];
            let step = catch_unwind(AssertUnwindSafe(|| {
                task.step(engine, source, p, &mut r, watch)
            }));
            if watch.is_abandoned() {
                return;
            }
            match step {
                Ok(Step::More) => {
                    lock(&watch.members).insert(k, r);
                    k += 1;
                }
                Ok(Step::Done) => {
                    let finished = catch_unwind(AssertUnwindSafe(|| {
                        task.finish_run(engine, source, p, run.slot, r)
                    }));
                    match finished {
                        Ok(report) => run.report(i, report),
                        Err(panic) => internal_error(i, panic),
                    }
                }
                // Only after the watcher abandoned it, checked above.
                Ok(Step::Abandoned) => return,
                Err(panic) => internal_error(i, panic),
            }
        }
    }
}
