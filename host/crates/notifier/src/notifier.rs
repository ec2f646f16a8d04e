//! [`Notifier`]: the synchronous face of the AMQP publisher. `publish()` encodes, spools
//! (optionally) and queues in the bounded buffer, never waiting for an unreachable
//! broker (a connected one that lags holds it back briefly, see `BEHIND`); `flush()`
//! waits on a condition variable signalled by confirms; a dedicated thread runs the
//! connection engine (`worker`).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use longshore_publisher::{Batch, Progress, PublishError, Publisher};
use tokio::sync::{watch, Notify};

use crate::buffer::{Buffer, Entry, Limits};
use crate::config::NotifierConfig;
use crate::encode::encode_for_topics;
use crate::error::{ConfigError, NotifierError};
use crate::spool::Spool;
use crate::worker;

/// Counters of a notifier (samples = meter messages; notifications = AMQP messages, one
/// per batch and topic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifierStats {
    /// Handed to `publish()` (per topic), plus those replayed from the spool.
    pub published_notifications: u64,
    pub published_samples: u64,
    /// Confirmed by the broker.
    pub confirmed_notifications: u64,
    pub confirmed_samples: u64,
    /// Removed because the buffer was full (oldest first), never delivered.
    pub dropped_notifications: u64,
    pub dropped_samples: u64,
    /// Sent again after a connection loss or a nack (they had not been confirmed).
    pub resent_notifications: u64,
    /// Held now, not yet confirmed.
    pub buffered_notifications: u64,
    pub buffered_samples: u64,
    pub buffered_bytes: u64,
    /// Connected to a broker right now.
    pub connected: bool,
    /// Successful connections (including the first).
    pub connections: u64,
    /// Failed connection attempts (one per broker tried).
    pub connect_failures: u64,
    /// Spool files that could not be written (those notifications stay in memory only).
    pub spool_errors: u64,
    /// The broker has blocked publishing (RabbitMQ resource alarm).
    pub blocked: bool,
}

pub(crate) struct State {
    pub buffer: Buffer,
    pub closed: bool,
    pub worker_running: bool,
    pub stats: NotifierStats,
}

/// What the caller threads and the connection thread share.
pub(crate) struct Shared {
    pub cfg: NotifierConfig,
    pub describe: String,
    pub routing_keys: Vec<Arc<str>>,
    pub state: Mutex<State>,
    /// Signalled when entries leave the buffer (confirmed or dropped) or the worker stops.
    pub changed: Condvar,
    /// Wakes the connection thread: new work.
    pub wake: Notify,
    pub spool: Option<Spool>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remove spool files of entries that left the buffer. Called with the state locked,
    /// so a file never outlives its entry as seen by `flush()` (a restart right after a
    /// successful flush replays nothing already confirmed).
    pub fn unspool(&self, st: &mut State, entries: &[Entry]) {
        if let Some(sp) = &self.spool {
            for e in entries.iter().filter(|e| e.spooled) {
                if let Err(err) = sp.remove(e.seq) {
                    st.stats.spool_errors += 1;
                    log::error!(
                        "{}: cannot remove spool file of notification #{} in {}: {err}; it will be sent again after a restart",
                        self.describe,
                        e.seq,
                        sp.dir().display()
                    );
                }
            }
        }
    }
}

/// The `notifier://` publisher: oslo.messaging-compatible notifications on RabbitMQ, with
/// publisher confirms, reconnect/failover, a bounded buffer and an optional disk spool.
pub struct Notifier {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Whether the broker confirms while `publish` waits on it.
    confirms: Progress,
}

impl Notifier {
    /// Validate the configuration, read back the spool (if any) and start the connection
    /// thread. Does not wait for a broker: an unreachable broker is retried in the
    /// background while `publish()` buffers.
    pub fn new(cfg: NotifierConfig) -> Result<Notifier, NotifierError> {
        cfg.validate()?;
        let describe = format!("notifier://{}", cfg.transport_url.masked());
        for p in &cfg.transport_url.ignored_params {
            log::warn!(
                "{describe}: transport_url parameter '{p}' is not used by longshore; ignored"
            );
        }
        let tls = match &cfg.transport_url.tls {
            None => None,
            Some(opts) => Some(make_tls(opts, &describe)?),
        };
        let limits = Limits {
            max_samples: cfg.max_buffered_samples,
            max_bytes: cfg.max_buffered_bytes,
        };
        let mut stats = NotifierStats::default();
        let (spool, buffer) = match &cfg.spool_dir {
            None => (None, Buffer::new(limits, 0)),
            Some(dir) => {
                let (spool, found, problems) =
                    Spool::open(dir, cfg.spool_fsync).map_err(|source| NotifierError::Spool {
                        path: dir.clone(),
                        source,
                    })?;
                for p in &problems {
                    log::error!("{describe}: unreadable spool file {p}");
                }
                let next = found.last().map_or(0, |f| f.seq + 1);
                let mut buffer = Buffer::new(limits, next);
                let (mut n, mut s) = (0, 0);
                let mut dropped = Vec::new();
                for f in found {
                    n += 1;
                    s += f.samples;
                    let mut e = Entry::new(f.seq, f.routing_key, f.body, f.samples);
                    e.spooled = true;
                    dropped.extend(buffer.push(e));
                }
                stats.published_notifications = n;
                stats.published_samples = s as u64;
                if n > 0 {
                    log::info!(
                        "{describe}: replaying {n} notification(s) ({s} samples) left in spool {}",
                        dir.display()
                    );
                }
                if !dropped.is_empty() {
                    let ds: usize = dropped.iter().map(|e| e.samples).sum();
                    stats.dropped_notifications = dropped.len() as u64;
                    stats.dropped_samples = ds as u64;
                    log::warn!(
                        "{describe}: spool holds more than the buffer limits ({} samples, {} bytes); dropped the {} oldest notification(s) ({ds} samples)",
                        limits.max_samples,
                        limits.max_bytes,
                        dropped.len()
                    );
                    for e in &dropped {
                        let _ = spool.remove(e.seq);
                    }
                }
                (Some(spool), buffer)
            }
        };
        let routing_keys = cfg.routing_keys().into_iter().map(Arc::from).collect();
        let shared = Arc::new(Shared {
            cfg,
            describe,
            routing_keys,
            state: Mutex::new(State {
                buffer,
                closed: false,
                worker_running: true,
                stats,
            }),
            changed: Condvar::new(),
            wake: Notify::new(),
            spool,
        });
        let (stop, stop_rx) = watch::channel(false);
        let thread = worker::spawn(shared.clone(), stop_rx, tls).map_err(NotifierError::Thread)?;
        log::info!("{}: started", shared.describe);
        Ok(Notifier {
            shared,
            stop,
            thread: Mutex::new(Some(thread)),
            confirms: Progress::new(),
        })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> NotifierStats {
        let st = self.shared.lock();
        let mut s = st.stats.clone();
        let (samples, notifications, bytes) = st.buffer.held();
        s.buffered_samples = samples as u64;
        s.buffered_notifications = notifications as u64;
        s.buffered_bytes = bytes as u64;
        s
    }

    /// Samples dropped so far because the buffer was full.
    pub fn dropped_samples(&self) -> u64 {
        self.shared.lock().stats.dropped_samples
    }

    pub fn config(&self) -> &NotifierConfig {
        &self.shared.cfg
    }

    fn stop_worker(&self) {
        let _ = self.stop.send(true);
        self.shared.wake.notify_one();
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            if h.join().is_err() {
                log::error!("{}: the notifier thread panicked", self.shared.describe);
            }
        }
    }
}

#[cfg(feature = "tls")]
fn make_tls(
    opts: &crate::url::TlsOptions,
    _describe: &str,
) -> Result<crate::tls::TlsClient, ConfigError> {
    crate::tls::TlsClient::new(opts)
}

#[cfg(not(feature = "tls"))]
fn make_tls(
    _opts: &crate::url::TlsOptions,
    describe: &str,
) -> Result<std::convert::Infallible, ConfigError> {
    Err(ConfigError::TlsUnsupported {
        url: describe.to_string(),
    })
}

/// Unconfirmed bytes from which `publish` waits for confirms while the broker is
/// connected: 4 notifications of 50 compute samples (a window of small notifications
/// stays as wide as `max_in_flight`)...
const BEHIND: usize = 256 * 1024;
/// ...and never fewer notifications than this (large batches keep a pipeline).
const BEHIND_MIN_NOTIFICATIONS: usize = 4;
/// The longest `publish` waits for them.
const BEHIND_WAIT: Duration = Duration::from_millis(20);
/// A connected broker that has confirmed nothing for this long while `publish` kept
/// waiting on it is stuck, not late: `publish` stops waiting (the buffer takes over).
const STALLED: Duration = Duration::from_millis(500);

impl Notifier {
    /// While a connected broker is BEHIND (its confirms lag the polling threads, which
    /// make a pollster run's notifications far faster than one connection sends them),
    /// wait up to BEHIND_WAIT for confirms: without this, a cycle's notifications
    /// pile up in memory (20+ MB for 1,000 instances' 680 notifications) and the process
    /// keeps that peak. During an outage or a broker's resource alarm nothing waits, nor
    /// once the broker has confirmed nothing for STALLED: the buffer is for that.
    fn wait_while_behind(&self) {
        let sh = &self.shared;
        let deadline = Instant::now() + BEHIND_WAIT;
        let mut st = sh.lock();
        let behind = |st: &State| {
            let (_, notifications, bytes) = st.buffer.held();
            st.stats.connected
                && !st.stats.blocked
                && !st.closed
                && bytes >= BEHIND
                && notifications >= BEHIND_MIN_NOTIFICATIONS
        };
        if !behind(&st)
            || self
                .confirms
                .stalled(st.stats.confirmed_notifications, STALLED)
        {
            return;
        }
        while behind(&st) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = sh
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Publisher for Notifier {
    fn describe(&self) -> String {
        self.shared.describe.clone()
    }

    fn publish(&self, batch: Batch) -> Result<(), PublishError> {
        let sh = &self.shared;
        if batch.messages.is_empty() {
            return Ok(());
        }
        if sh.lock().closed {
            return Err(PublishError::Closed(sh.describe.clone()));
        }
        // Encode outside the lock: it is the CPU-heavy part and runs on the caller's thread.
        let bodies = encode_for_topics(
            &batch.messages,
            &sh.cfg.publisher_id,
            &sh.cfg.event_type,
            sh.routing_keys.len(),
            SystemTime::now(),
        );
        let samples = batch.messages.len();
        let mut st = sh.lock();
        if st.closed {
            return Err(PublishError::Closed(sh.describe.clone()));
        }
        let mut dropped = Vec::new();
        for (rk, body) in sh.routing_keys.iter().zip(bodies) {
            let seq = st.buffer.alloc_seq();
            let mut e = Entry::new(seq, rk.clone(), Arc::new(body), samples);
            if let Some(sp) = &sh.spool {
                // Under the lock so that the buffer order is the spool order.
                match sp.write(seq, rk, samples, &e.body) {
                    Ok(()) => e.spooled = true,
                    Err(err) => {
                        st.stats.spool_errors += 1;
                        log::error!(
                            "{}: cannot write to spool {}: {err}; notification kept in memory only",
                            sh.describe,
                            sp.dir().display()
                        );
                    }
                }
            }
            st.stats.published_notifications += 1;
            st.stats.published_samples += samples as u64;
            dropped.extend(st.buffer.push(e));
        }
        if !dropped.is_empty() {
            let ds: usize = dropped.iter().map(|e| e.samples).sum();
            st.stats.dropped_notifications += dropped.len() as u64;
            st.stats.dropped_samples += ds as u64;
            sh.unspool(&mut st, &dropped);
            let total = st.stats.dropped_samples;
            let connected = st.stats.connected;
            drop(st);
            log::warn!(
                "{}: buffer full (limits {} samples / {} bytes, broker {}); dropped the {} oldest notification(s) ({ds} samples), {total} samples dropped so far",
                sh.describe,
                sh.cfg.max_buffered_samples,
                sh.cfg.max_buffered_bytes,
                if connected { "too slow" } else { "unreachable" },
                dropped.len(),
            );
            sh.changed.notify_all();
        } else {
            drop(st);
        }
        sh.wake.notify_one();
        self.wait_while_behind();
        Ok(())
    }

    fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        let sh = &self.shared;
        let deadline = Instant::now() + timeout;
        let mut st = sh.lock();
        let target = st.buffer.next_seq();
        loop {
            if st.buffer.oldest_seq().is_none_or(|s| s >= target) {
                return Ok(());
            }
            if !st.worker_running {
                return Err(PublishError::Failed {
                    publisher: sh.describe.clone(),
                    message: format!(
                        "stopped with {} sample(s) not delivered",
                        st.buffer.samples_before(target)
                    ),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(PublishError::Timeout {
                    publisher: sh.describe.clone(),
                    timeout,
                    pending: st.buffer.samples_before(target),
                });
            }
            st = sh
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn close(&self, timeout: Duration) -> Result<(), PublishError> {
        let already = std::mem::replace(&mut self.shared.lock().closed, true);
        if already
            && self
                .thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none()
        {
            return Ok(());
        }
        let res = self.flush(timeout);
        self.stop_worker();
        log::info!("{}: closed", self.shared.describe);
        res
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.stop_worker();
    }
}
