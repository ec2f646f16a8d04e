//! The file publisher: every meter message as one line of Python-identical JSON, to a
//! file (`file:///path` or a plain path, appended) or standard output (`-`, `stdout`).
//! `publish` renders a batch's lines on the caller's thread; a writer thread does the
//! I/O behind a bounded queue, so `publish` never waits on the disk for long.
//!
//! Overload policy: the queue holds [`FileOptions::queue_batches`] batches. When it is
//! full, `publish` waits up to [`FileOptions::publish_wait`] for room, then drops the
//! batch, counts its messages in [`FileStats::dropped`], logs one WARN line and returns
//! `Ok` (the polling loop must not stall on a slow disk). Before that, with 16 batches
//! queued, `publish` waits up to 10 ms (at most `publish_wait`) for the writer to hand
//! a written buffer back, unless the writer has written nothing for 200 ms of such
//! waits: a writer that is only late bounds the lines in memory; a stuck one costs the
//! polling loop at most ~200 ms before the queue takes over. Write errors also drop the
//! messages being written (ERROR logged once per run of failures) and are reported by
//! the next `flush`.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

use crate::{Batch, Progress, PublishError, Publisher};

/// Queue size and overload behaviour of a [`FilePublisher`].
#[derive(Debug, Clone, Copy)]
pub struct FileOptions {
    /// Batches the queue holds before `publish` has to wait (default 1024).
    pub queue_batches: usize,
    /// How long `publish` waits for room in a full queue before dropping the batch
    /// (default 200 ms).
    pub publish_wait: Duration,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            queue_batches: 1024,
            publish_wait: Duration::from_millis(200),
        }
    }
}

/// Counters of a [`FilePublisher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStats {
    /// Messages written (handed to the OS or to the stdout buffer).
    pub written: u64,
    /// Messages dropped: queue full, or a write error.
    pub dropped: u64,
    /// Messages queued and not yet written.
    pub pending: usize,
}

/// Where a file publisher writes, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileTarget {
    Stdout,
    Path(PathBuf),
}

impl FileTarget {
    /// Parse `-`, `stdout`, `file:///abs/path`, `file://localhost/abs/path`,
    /// `file:/abs/path`, `file:relative/path` (`%XX` escapes decoded in `file:` URLs), or
    /// a plain path (taken as is).
    pub fn parse(url: &str) -> Result<FileTarget, PublishError> {
        let bad = |why: &str| PublishError::Failed {
            publisher: url.to_owned(),
            message: format!(
                "{why}; expected file:///absolute/path, file:relative/path, a plain path, \
                 - or stdout"
            ),
        };
        let url = url.trim();
        if url == "-" || url == "stdout" || url == "stdout://" {
            return Ok(FileTarget::Stdout);
        }
        let Some(rest) = url.strip_prefix("file:") else {
            if url.is_empty() || url.contains("://") {
                return Err(bad("not a file publisher URL"));
            }
            return Ok(FileTarget::Path(PathBuf::from(url)));
        };
        if rest.contains('?') {
            return Err(bad(
                "query parameters (Ceilometer's max_bytes/backup_count rotation) are not \
                 supported; rotate with logrotate's copytruncate instead",
            ));
        }
        let path = match rest.strip_prefix("//") {
            Some(after) if after.starts_with('/') => after,
            Some(after) => match after.strip_prefix("localhost") {
                Some(p) if p.starts_with('/') => p,
                _ => return Err(bad("file URLs name no host: use three slashes")),
            },
            None => rest,
        };
        if path.is_empty() {
            return Err(bad("no path given"));
        }
        let decoded = percent_decode(path).ok_or_else(|| bad("bad %-escape in the path"))?;
        Ok(FileTarget::Path(PathBuf::from(decoded)))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

enum Command {
    /// A batch's JSON lines and how many messages they are.
    Lines(Vec<u8>, usize),
    Flush(Sender<Result<(), io::Error>>),
    Stop(Sender<Result<(), io::Error>>),
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    pending: AtomicUsize,
}

/// JSON-lines [`Publisher`]: one meter message per line, `json.dumps` formatting.
pub struct FilePublisher {
    description: String,
    options: FileOptions,
    tx: Sender<Command>,
    counters: Arc<Counters>,
    /// true once closed. `publish` holds the read side while enqueueing so that nothing
    /// is enqueued after `close` sent its stop command.
    closed: RwLock<bool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// The writer thread, and whether it is lingering (parked with a timeout).
    writer: std::thread::Thread,
    lingering: Arc<AtomicBool>,
    /// Bytes per line of the last batch: sizes the next batch's buffer.
    line_hint: AtomicUsize,
    /// Line buffers the writer is done with, for the next batches: a fresh ~60 KB
    /// buffer per batch costs a round of page faults each time malloc trims it.
    spare: Receiver<Vec<u8>>,
    /// Whether the writer writes while `publish` waits on it.
    writer_progress: Progress,
}

impl std::fmt::Debug for FilePublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePublisher")
            .field("target", &self.description)
            .field("stats", &self.stats())
            .finish()
    }
}

impl FilePublisher {
    /// A publisher for `url` (see [`FileTarget::parse`]) with default options. Files are
    /// created if missing and appended to.
    pub fn from_url(url: &str) -> Result<FilePublisher, PublishError> {
        FilePublisher::from_url_with(url, FileOptions::default())
    }

    pub fn from_url_with(url: &str, options: FileOptions) -> Result<FilePublisher, PublishError> {
        match FileTarget::parse(url)? {
            FileTarget::Stdout => {
                FilePublisher::with_writer("stdout", BufWriter::new(io::stdout()), options)
            }
            FileTarget::Path(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|source| PublishError::Io {
                        path: path.display().to_string(),
                        source,
                    })?;
                let description = format!("file://{}", path.display());
                FilePublisher::with_writer(&description, BufWriter::new(file), options)
            }
        }
    }

    /// A publisher writing to any `writer` (a pipe, a socket); `description` names it in
    /// logs and errors.
    pub fn with_writer(
        description: &str,
        writer: impl Write + Send + 'static,
        options: FileOptions,
    ) -> Result<FilePublisher, PublishError> {
        let (tx, rx) = crossbeam_channel::bounded(options.queue_batches.max(1));
        let counters = Arc::new(Counters::default());
        let lingering = Arc::new(AtomicBool::new(false));
        let (spare_tx, spare) = crossbeam_channel::bounded(SPARE_BUFFERS);
        let worker = {
            let counters = Arc::clone(&counters);
            let lingering = Arc::clone(&lingering);
            let name = description.to_owned();
            std::thread::Builder::new()
                .name("file-publisher".into())
                .spawn(move || writer_loop(&name, writer, &rx, &counters, &lingering, &spare_tx))
                .map_err(|source| PublishError::Io {
                    path: description.to_owned(),
                    source,
                })?
        };
        Ok(FilePublisher {
            description: description.to_owned(),
            options,
            tx,
            counters,
            closed: RwLock::new(false),
            writer: worker.thread().clone(),
            worker: Mutex::new(Some(worker)),
            lingering,
            line_hint: AtomicUsize::new(1024),
            spare,
            writer_progress: Progress::new(),
        })
    }

    pub fn stats(&self) -> FileStats {
        FileStats {
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            pending: self.counters.pending.load(Ordering::Relaxed),
        }
    }

    fn timeout_error(&self, timeout: Duration) -> PublishError {
        PublishError::Timeout {
            publisher: self.description.clone(),
            timeout,
            pending: self.counters.pending.load(Ordering::Relaxed),
        }
    }

    fn io_error(&self, source: io::Error) -> PublishError {
        PublishError::Io {
            path: self.description.clone(),
            source,
        }
    }

    /// Send `make(ack)` and wait for the writer's answer, both before `deadline`.
    fn round_trip(
        &self,
        make: impl FnOnce(Sender<Result<(), io::Error>>) -> Command,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        match self.tx.send_deadline(make(ack_tx), deadline) {
            // Not worth a linger's wait.
            Ok(()) => self.writer.unpark(),
            Err(SendTimeoutError::Timeout(_)) => return Err(self.timeout_error(timeout)),
            Err(SendTimeoutError::Disconnected(_)) => {
                return Err(PublishError::Closed(self.description.clone()))
            }
        }
        match ack_rx.recv_deadline(deadline) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.io_error(e)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(self.timeout_error(timeout)),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(PublishError::Failed {
                publisher: self.description.clone(),
                message: "the writer thread stopped unexpectedly".into(),
            }),
        }
    }
}

impl Publisher for FilePublisher {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn publish(&self, batch: Batch) -> Result<(), PublishError> {
        let closed = self.closed.read().unwrap_or_else(|p| p.into_inner());
        if *closed {
            return Err(PublishError::Closed(self.description.clone()));
        }
        let n = batch.messages.len();
        if n == 0 {
            return Ok(());
        }
        // The lines are made here, on the polling thread that made the messages: their
        // samples are then freed by the thread that allocated them (cheap), and only
        // one buffer crosses to the writer.
        let hint = self.line_hint.load(Ordering::Relaxed);
        // A buffer the writer is done with. When none is spare and the writer is
        // BEHIND (woken, but on a busy machine a woken thread waits for a core), wait a
        // little for the one it writes next instead of making one more: that bounds the
        // lines held in memory during a burst (a batch of 50 compute messages is ~60
        // KB). Not when the writer is STALLED (a hung disk: that is the queue's
        // business, queue_batches and publish_wait), nor for buffers too large to be
        // handed back.
        let mut lines = match self.spare.try_recv() {
            Ok(lines) => lines,
            Err(_) if self.tx.len() < BEHIND || n * hint > SPARE_MAX_BYTES => Vec::new(),
            Err(_) => {
                self.writer.unpark();
                let written = self.counters.written.load(Ordering::Relaxed);
                match self.writer_progress.stalled(written, STALLED) {
                    true => Vec::new(),
                    false => self
                        .spare
                        .recv_timeout(BEHIND_WAIT.min(self.options.publish_wait))
                        .unwrap_or_default(),
                }
            }
        };
        lines.reserve(n * hint + hint / 2);
        for m in &batch.messages {
            m.write_json(&mut lines);
            lines.push(b'\n');
        }
        self.line_hint.store(lines.len() / n, Ordering::Relaxed);
        let Batch {
            source,
            pollster,
            messages,
        } = batch;
        drop(messages);
        self.counters.pending.fetch_add(n, Ordering::Relaxed);
        let sent = match self.tx.try_send(Command::Lines(lines, n)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(cmd)) => {
                // Never wait for room while the writer sleeps through its linger.
                self.writer.unpark();
                self.tx.send_timeout(cmd, self.options.publish_wait)
            }
            Err(TrySendError::Disconnected(cmd)) => Err(SendTimeoutError::Disconnected(cmd)),
        };
        match sent {
            Ok(()) => {
                let wake_at = WAKE_AT.min(self.options.queue_batches.max(1));
                if self.tx.len() >= wake_at && self.lingering.load(Ordering::Acquire) {
                    self.writer.unpark();
                }
                Ok(())
            }
            Err(SendTimeoutError::Timeout(_)) => {
                self.counters.pending.fetch_sub(n, Ordering::Relaxed);
                let total = self.counters.dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                log::warn!(
                    "{}: queue full for {:?}, dropped {n} message(s) of {pollster} in source {source} ({total} dropped so far)",
                    self.description,
                    self.options.publish_wait,
                );
                Ok(())
            }
            Err(_) => {
                self.counters.pending.fetch_sub(n, Ordering::Relaxed);
                Err(PublishError::Closed(self.description.clone()))
            }
        }
    }

    fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        if *self.closed.read().unwrap_or_else(|p| p.into_inner()) {
            return Err(PublishError::Closed(self.description.clone()));
        }
        self.round_trip(Command::Flush, timeout)
    }

    fn close(&self, timeout: Duration) -> Result<(), PublishError> {
        {
            let mut closed = self.closed.write().unwrap_or_else(|p| p.into_inner());
            if *closed {
                return Ok(());
            }
            *closed = true;
        }
        // Stop comes after every batch already queued, so this also flushes them.
        self.round_trip(Command::Stop, timeout)?;
        let handle = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            // The writer acknowledged Stop and is returning: this join is immediate.
            let _ = handle.join();
        }
        Ok(())
    }
}

/// How long the writer sleeps between looks at the queue while batches keep coming;
/// also the most a batch, a flush or a close waits for it.
const LINGER: Duration = Duration::from_millis(5);
/// Queued batches at which `publish` wakes a lingering writer: bounds the lines held in
/// memory during a fast burst (~1.2 KB per compute message).
const WAKE_AT: usize = 8;
/// Written line buffers kept for reuse (about 60 KB each for 50 compute messages).
const SPARE_BUFFERS: usize = 4;
/// Queued batches from which `publish` waits (up to BEHIND_WAIT) for a written buffer
/// rather than allocating another.
const BEHIND: usize = 2 * WAKE_AT;
const BEHIND_WAIT: Duration = Duration::from_millis(10);
/// A writer that has written nothing for this long while `publish` kept waiting on it
/// is stuck, not late: `publish` stops waiting on it.
const STALLED: Duration = Duration::from_millis(200);
/// The largest buffer kept for reuse: 50 compute messages need ~60 KB; a buffer sized
/// for a much larger `batch_size` is freed instead of being held for good.
const SPARE_MAX_BYTES: usize = 256 * 1024;

fn writer_loop(
    description: &str,
    mut writer: impl Write,
    rx: &Receiver<Command>,
    counters: &Counters,
    lingering: &AtomicBool,
    spare: &Sender<Vec<u8>>,
) {
    // The first write error since the last flush, reported by the next flush.
    let mut error: Option<io::Error> = None;
    let mut failing = false;
    let finish = |writer: &mut dyn Write, error: &mut Option<io::Error>| -> Result<(), io::Error> {
        let flushed = writer.flush();
        match error.take() {
            Some(e) => Err(e),
            None => flushed,
        }
    };
    // recv fails once every sender is gone (publisher dropped without close) and the
    // queue is drained: flush what we have and end.
    'idle: while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        loop {
            while let Some(cmd) = next.take().or_else(|| rx.try_recv().ok()) {
                match cmd {
                    Command::Lines(mut lines, n) => {
                        let mut res = writer.write_all(&lines);
                        // Flush when idle so lines show up promptly; under load, batches coalesce.
                        if res.is_ok() && rx.is_empty() {
                            res = writer.flush();
                        }
                        match res {
                            Ok(()) => {
                                counters.written.fetch_add(n as u64, Ordering::Relaxed);
                                if failing {
                                    log::info!("{description}: writing again");
                                    failing = false;
                                }
                            }
                            Err(e) => {
                                counters.dropped.fetch_add(n as u64, Ordering::Relaxed);
                                if !failing {
                                    log::error!(
                                        "{description}: write failed, dropping messages until it recovers: {e}"
                                    );
                                    failing = true;
                                }
                                error.get_or_insert(e);
                            }
                        }
                        counters.pending.fetch_sub(n, Ordering::Relaxed);
                        // Kept unless enough are spare already, or it grew for an
                        // unusually large batch (that memory is given back).
                        if lines.capacity() <= SPARE_MAX_BYTES {
                            lines.clear();
                            let _ = spare.try_send(lines);
                        }
                    }
                    Command::Flush(ack) => {
                        let _ = ack.send(finish(&mut writer, &mut error));
                    }
                    Command::Stop(ack) => {
                        let _ = ack.send(finish(&mut writer, &mut error));
                        return;
                    }
                }
            }
            // Drained. A polling run sends its batches in a burst: instead of being
            // woken by each one (a cross-thread wake costs more CPU than writing a
            // batch), sleep through the burst and collect what came, unless `publish`
            // finds WAKE_AT batches waiting. The burst is over when a whole LINGER
            // passes without a batch.
            lingering.store(true, Ordering::Release);
            std::thread::park_timeout(LINGER);
            lingering.store(false, Ordering::Release);
            match rx.try_recv() {
                Ok(cmd) => next = Some(cmd),
                Err(crossbeam_channel::TryRecvError::Empty) => continue 'idle,
                Err(crossbeam_channel::TryRecvError::Disconnected) => break 'idle,
            }
        }
    }
    let _ = writer.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_targets() {
        let p = |u: &str| FileTarget::parse(u).unwrap();
        assert_eq!(p("-"), FileTarget::Stdout);
        assert_eq!(p("stdout"), FileTarget::Stdout);
        assert_eq!(
            p("file:///var/log/x.jsonl"),
            FileTarget::Path("/var/log/x.jsonl".into())
        );
        assert_eq!(
            p("file://localhost/tmp/a b"),
            FileTarget::Path("/tmp/a b".into())
        );
        assert_eq!(p("file:/tmp/a%20b"), FileTarget::Path("/tmp/a b".into()));
        assert_eq!(
            p("file:out/x.jsonl"),
            FileTarget::Path("out/x.jsonl".into())
        );
        assert_eq!(
            p("/tmp/a%20b.jsonl"),
            FileTarget::Path("/tmp/a%20b.jsonl".into())
        );
        assert_eq!(p("out.jsonl"), FileTarget::Path("out.jsonl".into()));
        for bad in [
            "file://host/x",
            "file:",
            "file:///x?max_bytes=1",
            "notifier://",
            "file:///%zz",
            "",
        ] {
            let err = FileTarget::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with(bad.trim()), "{err}");
            assert!(err.contains("expected file:///absolute/path"), "{err}");
        }
    }

    /// A writer whose first write waits for `gate` (the writer thread is then busy and
    /// the queue fills behind it), and each write takes `delay` (as a thread that gets a
    /// core late does).
    struct Gated {
        gate: Option<Receiver<()>>,
        delay: Duration,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(gate) = self.gate.take() {
                let _ = gate.recv_timeout(Duration::from_secs(30));
            }
            std::thread::sleep(self.delay);
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn batch(pollster: &str, n: usize) -> Batch {
        use longshore_plugin_api::{Sample, SampleType};
        let factory = crate::MessageFactory::new("secret", "openstack");
        let ts: Arc<str> = "2026-11-22T08:00:00.000000".into();
        Batch {
            source: "src".into(),
            pollster: pollster.into(),
            messages: (0..n)
                .map(|i| {
                    let s =
                        Sample::new(pollster, SampleType::Gauge, "B", i as i64, format!("r{i}"));
                    factory.message_at(s, &ts, 1.5)
                })
                .collect(),
        }
    }

    #[test]
    fn lines_in_order_and_a_full_queue_drops_after_the_wait() {
        let (open, gate) = crossbeam_channel::bounded(1);
        let out = Arc::new(Mutex::new(Vec::new()));
        let p = FilePublisher::with_writer(
            "gated",
            Gated {
                gate: Some(gate),
                delay: Duration::ZERO,
                out: Arc::clone(&out),
            },
            FileOptions {
                queue_batches: 1,
                publish_wait: Duration::from_millis(50),
            },
        )
        .unwrap();
        // The writer takes the first batch and waits in its write; the second fills
        // the queue; the third finds no room within 50 ms and is dropped.
        p.publish(batch("m.a", 2)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.tx.is_empty() && Instant::now() < deadline {
            std::thread::yield_now();
        }
        p.publish(batch("m.b", 3)).unwrap();
        p.publish(batch("m.c", 4)).unwrap();
        assert_eq!(p.stats().dropped, 4);
        open.send(()).unwrap();
        p.flush(Duration::from_secs(10)).unwrap();
        let stats = p.stats();
        assert_eq!((stats.written, stats.pending), (5, 0));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let names: Vec<&str> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(v["message_signature"]
                    .as_str()
                    .is_some_and(|s| s.len() == 64));
                match v["counter_name"].as_str().unwrap() {
                    "m.a" => "a",
                    "m.b" => "b",
                    other => panic!("unexpected {other}"),
                }
            })
            .collect();
        assert_eq!(names, ["a", "a", "b", "b", "b"]);
        p.close(Duration::from_secs(10)).unwrap();
        assert!(matches!(
            p.publish(batch("m.d", 1)),
            Err(PublishError::Closed(_))
        ));
    }

    #[test]
    fn a_writer_behind_holds_publish_back_instead_of_piling_up_lines() {
        // The queue could take 1024 batches; a writer 2 ms per batch behind a fast
        // poller would have them all queued (each batch's lines in memory). publish
        // instead waits for written buffers once BEHIND batches are queued.
        let out = Arc::new(Mutex::new(Vec::new()));
        let p = FilePublisher::with_writer(
            "slow",
            Gated {
                gate: None,
                delay: Duration::from_millis(2),
                out: Arc::clone(&out),
            },
            FileOptions::default(),
        )
        .unwrap();
        let mut most = 0;
        for i in 0..60 {
            p.publish(batch(&format!("m.{i}"), 2)).unwrap();
            most = most.max(p.tx.len());
        }
        p.close(Duration::from_secs(10)).unwrap();
        assert_eq!((p.stats().dropped, p.stats().written), (0, 120));
        assert!(most <= BEHIND + 1, "{most} batches were queued at once");
    }

    #[test]
    fn a_stuck_writer_holds_publish_back_only_briefly() {
        // The writer hangs in its first write (a hung disk). Waiting 10 ms per batch for
        // it would stall polling 4 s over these 400 batches; publish gives up waiting
        // once it has written nothing for 200 ms of waits, and the queue (1024) takes
        // the rest.
        let (open, gate) = crossbeam_channel::bounded(1);
        let p = FilePublisher::with_writer(
            "stuck",
            Gated {
                gate: Some(gate),
                delay: Duration::ZERO,
                out: Arc::new(Mutex::new(Vec::new())),
            },
            FileOptions::default(),
        )
        .unwrap();
        let t = Instant::now();
        for i in 0..400 {
            p.publish(batch(&format!("m.{i}"), 1)).unwrap();
        }
        let took = t.elapsed();
        open.send(()).unwrap();
        p.close(Duration::from_secs(10)).unwrap();
        assert_eq!((p.stats().dropped, p.stats().written), (0, 400));
        assert!(took < Duration::from_secs(2), "publish stalled {took:?}");
    }

    #[test]
    fn a_queue_smaller_than_the_wake_threshold_still_drains_at_once() {
        // The writer lingers 5 ms between bursts; a publish that finds the queue full
        // must wake it rather than wait out the linger. Without that, 400 batches
        // through a 1-slot queue take 400 lingers (2 s); with it, a few ms.
        let out = Arc::new(Mutex::new(Vec::new()));
        let p = FilePublisher::with_writer(
            "small",
            Gated {
                gate: None,
                delay: Duration::ZERO,
                out: Arc::clone(&out),
            },
            FileOptions {
                queue_batches: 1,
                publish_wait: Duration::from_secs(5),
            },
        )
        .unwrap();
        let t = Instant::now();
        for i in 0..400 {
            p.publish(batch(&format!("m.{i}"), 1)).unwrap();
        }
        let took = t.elapsed();
        p.close(Duration::from_secs(10)).unwrap();
        assert_eq!((p.stats().dropped, p.stats().written), (0, 400));
        let lines = out.lock().unwrap().iter().filter(|b| **b == b'\n').count();
        assert_eq!(lines, 400);
        assert!(
            took < Duration::from_secs(1),
            "publish waited out lingers: {took:?}"
        );
    }
}
