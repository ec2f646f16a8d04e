//! Plugin calls on threads the engine can walk away from: each call runs on a pooled
//! thread while the caller waits with a timeout. A call that times out (or is interrupted
//! by shutdown) is cancelled through its context flag and abandoned; its thread is no
//! longer idle, so the next call gets another one and the pool keeps its capacity.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{select, Receiver, Sender};
use longshore_plugin_api::host::CallContext;

pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle threads kept for reuse; more are created on demand and exit when idle.
const MAX_IDLE: usize = 16;

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// How a call ended, from the caller's side.
#[derive(Debug)]
pub(crate) enum CallOutcome<T> {
    Done(T),
    /// No answer within the timeout: cancelled and abandoned.
    TimedOut,
    /// The agent is stopping and gave up waiting: cancelled and abandoned.
    Aborted,
    /// The previous call for the same key is still running (it was abandoned and the
    /// plugin ignores cancellation): not called again.
    StillRunning,
    /// The call could not be run (no thread could be created, or the host-side call
    /// wrapper panicked).
    Failed(String),
}

struct PoolShared {
    rx: Receiver<Job>,
    state: Mutex<PoolState>,
    /// Abandoned calls still running in a plugin.
    abandoned_running: AtomicUsize,
}

#[derive(Default)]
struct PoolState {
    idle: usize,
}

/// The elastic pool of call threads.
pub(crate) struct CallPool {
    tx: Sender<Job>,
    shared: Arc<PoolShared>,
}

impl CallPool {
    pub(crate) fn new() -> CallPool {
        let (tx, rx) = crossbeam_channel::unbounded();
        CallPool {
            tx,
            shared: Arc::new(PoolShared {
                rx,
                state: Mutex::new(PoolState::default()),
                abandoned_running: AtomicUsize::new(0),
            }),
        }
    }

    /// Abandoned calls whose plugin code has not returned yet.
    pub(crate) fn abandoned_running(&self) -> usize {
        self.shared.abandoned_running.load(Ordering::Relaxed)
    }

    /// A call abandoned by its caller is still running in plugin code.
    pub(crate) fn abandoned_call(&self) {
        self.shared
            .abandoned_running
            .fetch_add(1, Ordering::Relaxed);
    }

    /// An abandoned call has returned.
    pub(crate) fn abandoned_returned(&self) {
        self.shared
            .abandoned_running
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Run `job` on a pool thread (an idle one, or a new one).
    pub(crate) fn submit(&self, job: Job) -> Result<(), String> {
        // Each submitted job reserves an idle thread or creates one, so a queued job is
        // always picked up at once even if other threads hang in plugins.
        let spawn = {
            let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.idle > 0 {
                st.idle -= 1;
                false
            } else {
                true
            }
        };
        if spawn {
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name("longshore-poll".into())
                .spawn(move || worker(&shared))
                .map_err(|e| format!("cannot start a call thread: {e}"))?;
        }
        self.tx
            .send(job)
            .map_err(|_| "the call pool is closed".to_string())
    }

    /// Run `f` on a pool thread and wait at most `timeout` (or until `abort` fires).
    /// On timeout or abort, `ctx` is cancelled so a cooperative plugin returns early.
    /// With `busy`, a call is refused while the previous call with the same flag is
    /// still running.
    pub(crate) fn call<T, F>(
        &self,
        ctx: &CallContext,
        timeout: Duration,
        abort: &Receiver<()>,
        busy: Option<&Arc<AtomicBool>>,
        f: F,
    ) -> CallOutcome<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if let Some(b) = busy {
            if b.swap(true, Ordering::AcqRel) {
                return CallOutcome::StillRunning;
            }
        }
        let (result_tx, result_rx) = crossbeam_channel::bounded::<T>(1);
        let state = Arc::new(AtomicU8::new(RUNNING));
        let job: Job = {
            let state = Arc::clone(&state);
            let shared = Arc::clone(&self.shared);
            let busy = busy.cloned();
            Box::new(move || {
                let result = catch_unwind(AssertUnwindSafe(f));
                // The plugin has returned: free the key before answering, so that the
                // caller's next call with it (the next cycle) is never refused.
                if let Some(b) = busy {
                    b.store(false, Ordering::Release);
                }
                if state.swap(DONE, Ordering::AcqRel) == ABANDONED {
                    shared.abandoned_running.fetch_sub(1, Ordering::Relaxed);
                }
                if let Ok(v) = result {
                    let _ = result_tx.send(v);
                }
            })
        };
        if let Err(e) = self.submit(job) {
            if let Some(b) = busy {
                b.store(false, Ordering::Release);
            }
            return CallOutcome::Failed(e);
        }
        let gave_up = select! {
            recv(result_rx) -> r => return match r {
                Ok(v) => CallOutcome::Done(v),
                Err(_) => CallOutcome::Failed("the host-side call wrapper panicked".into()),
            },
            recv(abort) -> _ => CallOutcome::Aborted,
            default(timeout) => CallOutcome::TimedOut,
        };
        ctx.cancel();
        self.shared
            .abandoned_running
            .fetch_add(1, Ordering::Relaxed);
        if state
            .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // It finished just as we gave up: take the answer after all.
            self.shared
                .abandoned_running
                .fetch_sub(1, Ordering::Relaxed);
            if let Ok(v) = result_rx.try_recv() {
                return CallOutcome::Done(v);
            }
            return CallOutcome::Failed("the host-side call wrapper panicked".into());
        }
        gave_up
    }
}

fn worker(shared: &PoolShared) {
    while let Ok(job) = shared.rx.recv() {
        job();
        let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.idle >= MAX_IDLE {
            return;
        }
        st.idle += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use longshore_plugin_api::host::CycleCache;
    use std::time::Instant;

    fn ctx() -> CallContext {
        CallContext::new(Arc::new(CycleCache::new()), Default::default())
    }

    #[test]
    fn done_timeout_and_capacity_after_a_hang() {
        let pool = CallPool::new();
        let (_abort_tx, abort) = crossbeam_channel::bounded::<()>(0);
        let c = ctx();
        assert!(matches!(
            pool.call(&c, Duration::from_secs(5), &abort, None, || 7),
            CallOutcome::Done(7)
        ));
        // A call that waits for cancellation: it times out, is cancelled, returns.
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
        let c = ctx();
        let c2 = c.clone();
        let busy = Arc::new(AtomicBool::new(false));
        let out = pool.call(
            &c,
            Duration::from_millis(50),
            &abort,
            Some(&busy),
            move || {
                let _ = release_rx.recv();
                c2.is_cancelled()
            },
        );
        assert!(matches!(out, CallOutcome::TimedOut));
        assert!(c.is_cancelled());
        assert_eq!(pool.abandoned_running(), 1);
        // The same key is refused while the hung call runs.
        assert!(matches!(
            pool.call(&ctx(), Duration::from_secs(5), &abort, Some(&busy), || 1),
            CallOutcome::StillRunning
        ));
        // Other calls still get a thread at once.
        let t = Instant::now();
        assert!(matches!(
            pool.call(&ctx(), Duration::from_secs(5), &abort, None, || 2),
            CallOutcome::Done(2)
        ));
        assert!(t.elapsed() < Duration::from_secs(5));
        drop(release_tx);
        // Once the hung call returns, its key is free again. (The worker frees the key
        // before it updates the abandoned count: wait for both.)
        let deadline = Instant::now() + Duration::from_secs(10);
        while (busy.load(Ordering::Acquire) || pool.abandoned_running() > 0)
            && Instant::now() < deadline
        {
            std::thread::yield_now();
        }
        assert_eq!(pool.abandoned_running(), 0);
        assert!(matches!(
            pool.call(&ctx(), Duration::from_secs(5), &abort, Some(&busy), || 3),
            CallOutcome::Done(3)
        ));
    }

    #[test]
    fn abort_interrupts_the_wait() {
        let pool = CallPool::new();
        let (abort_tx, abort) = crossbeam_channel::bounded::<()>(0);
        drop(abort_tx);
        let c = ctx();
        let c2 = c.clone();
        let out = pool.call(&c, Duration::from_secs(30), &abort, None, move || {
            while !c2.is_cancelled() {
                std::thread::yield_now();
            }
        });
        assert!(matches!(out, CallOutcome::Aborted));
    }
}
