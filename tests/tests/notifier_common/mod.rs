//! Shared helpers of the notifier tests: unique names per test, an AMQP consumer on the real
//! RabbitMQ (127.0.0.1:5672, guest/guest), a TCP proxy the test can cut and restore, a log
//! capture to wait for log lines (events, not sleeps), and sample batches.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use amqprs::channel::{
    BasicConsumeArguments, Channel, ExchangeDeleteArguments, QueueDeclareArguments,
    QueueDeleteArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use longshore_notifier::{Backoff, NotifierConfig};
use longshore_plugin_api::Map;
use longshore_publisher::Batch;

pub const BROKER: &str = "127.0.0.1:5672";

/// A name unique to this test run (exchange, topic).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos()
    )
}

/// A notifier config for `url` with a unique exchange and topic, and fast retries.
pub fn config(url: &str) -> NotifierConfig {
    let mut cfg = NotifierConfig::new(url).expect("valid url");
    cfg.exchange = unique("lsn-ex");
    cfg.topics = vec![unique("lsn-topic")];
    cfg.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
    };
    cfg.connect_timeout = Duration::from_secs(5);
    cfg
}

/// A Ceilometer-shaped meter message; `seq` goes into `message_id` and the volume.
pub fn sample(pollster: &str, seq: u64) -> Map {
    Map::new()
        .with("source", "openstack")
        .with("counter_name", pollster)
        .with("counter_type", "gauge")
        .with("counter_unit", "B")
        .with("counter_volume", seq as i64)
        .with("user_id", "9a1de644815ef6d13b8faa1837f8a88b")
        .with("user_name", longshore_plugin_api::Value::NULL)
        .with("project_id", "4737819096da1dac72ff5d2a386ecbe0")
        .with("project_name", longshore_plugin_api::Value::NULL)
        .with("resource_id", "451b4cf3-6123-4df7-b656-af7229d4beef")
        .with("timestamp", "2026-11-22T02:53:55.788625")
        .with(
            "resource_metadata",
            Map::new()
                .with("display_name", "kafka-2")
                .with("instance_host", "peer-compute-0"),
        )
        .with("message_id", format!("{pollster}-{seq:08}"))
        .with("monotonic_time", 725.042996987)
        .with("message_signature", "0".repeat(64))
}

/// Batch number `b` of `pollster` with `n` samples (message ids `<pollster>-<b*n+i>`).
pub fn batch(pollster: &str, b: u64, n: u64) -> Batch {
    Batch {
        source: "some_pollsters".into(),
        pollster: pollster.into(),
        messages: (0..n).map(|i| sample(pollster, b * n + i).into()).collect(),
    }
}

/// One message taken from a queue.
#[derive(Debug, Clone)]
pub struct Received {
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

impl Received {
    /// The decoded `oslo.message`.
    pub fn inner(&self) -> serde_json::Value {
        let outer: serde_json::Value = serde_json::from_slice(&self.body).expect("JSON body");
        serde_json::from_str(outer["oslo.message"].as_str().expect("oslo.message string"))
            .expect("inner JSON")
    }

    /// The sample message ids of the payload.
    pub fn sample_ids(&self) -> Vec<String> {
        self.inner()["payload"]["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| s["message_id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A test-side AMQP client on the real broker (not through any proxy).
pub struct Amqp {
    rt: tokio::runtime::Runtime,
    conn: Connection,
    chan: Channel,
}

impl Drop for Amqp {
    fn drop(&mut self) {
        // amqprs closes on drop with tokio::spawn: close here, inside the runtime.
        let (conn, chan) = (self.conn.clone(), self.chan.clone());
        let _enter = self.rt.enter();
        self.rt.block_on(async {
            let _ = chan.close().await;
            let _ = conn.close().await;
        });
    }
}

impl Amqp {
    pub fn connect() -> Amqp {
        let rt = runtime();
        let (conn, chan) = rt.block_on(async {
            let conn = Connection::open(&OpenConnectionArguments::new(
                "127.0.0.1",
                5672,
                "guest",
                "guest",
            ))
            .await
            .expect("RabbitMQ at 127.0.0.1:5672 (guest/guest) must be running for these tests");
            let chan = conn.open_channel(None).await.expect("channel");
            (conn, chan)
        });
        Amqp { rt, conn, chan }
    }

    /// Take `n` messages from `queue` (consumed with auto-ack), waiting at most `timeout`
    /// in total; then keep listening `grace` more for unexpected extra messages.
    pub fn take(&self, queue: &str, n: usize, timeout: Duration, grace: Duration) -> Vec<Received> {
        self.rt.block_on(async {
            let args = BasicConsumeArguments::new(queue, "")
                .auto_ack(true)
                .finish();
            let (tag, mut rx) = self
                .chan
                .basic_consume_rx(args)
                .await
                .expect("basic.consume");
            let mut out = Vec::new();
            let deadline = tokio::time::Instant::now() + timeout;
            while out.len() < n {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(m)) => out.push(to_received(m)),
                    _ => break,
                }
            }
            if out.len() >= n && !grace.is_zero() {
                let deadline = tokio::time::Instant::now() + grace;
                while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    out.push(to_received(m));
                }
            }
            let _ = self
                .chan
                .basic_cancel(amqprs::channel::BasicCancelArguments::new(&tag))
                .await;
            out
        })
    }

    /// Declare with exactly these flags; `Err` (PRECONDITION_FAILED) when the existing one
    /// differs. Uses a throw-away channel since a failure closes it.
    pub fn exchange_equivalent(
        &self,
        name: &str,
        kind: &str,
        durable: bool,
        auto_delete: bool,
    ) -> Result<(), String> {
        self.rt.block_on(async {
            let ch = self
                .conn
                .open_channel(None)
                .await
                .map_err(|e| e.to_string())?;
            let args = amqprs::channel::ExchangeDeclareArguments::new(name, kind)
                .durable(durable)
                .auto_delete(auto_delete)
                .finish();
            let r = ch.exchange_declare(args).await.map_err(|e| e.to_string());
            let _ = ch.close().await;
            r
        })
    }

    pub fn queue_equivalent(
        &self,
        name: &str,
        durable: bool,
        auto_delete: bool,
    ) -> Result<(u32, u32), String> {
        self.rt.block_on(async {
            let ch = self
                .conn
                .open_channel(None)
                .await
                .map_err(|e| e.to_string())?;
            let args = QueueDeclareArguments::new(name)
                .durable(durable)
                .auto_delete(auto_delete)
                .finish();
            let r = ch.queue_declare(args).await.map_err(|e| e.to_string());
            let _ = ch.close().await;
            r.map(|o| {
                o.map(|(_, msgs, consumers)| (msgs, consumers))
                    .unwrap_or((0, 0))
            })
        })
    }

    /// Remove what a test created.
    pub fn cleanup(&self, exchange: &str, queues: &[String]) {
        self.rt.block_on(async {
            for q in queues {
                let _ = self.chan.queue_delete(QueueDeleteArguments::new(q)).await;
            }
            let _ = self
                .chan
                .exchange_delete(ExchangeDeleteArguments::new(exchange))
                .await;
        })
    }
}

fn to_received(m: amqprs::channel::ConsumerMessage) -> Received {
    let d = m.deliver.expect("deliver");
    Received {
        exchange: d.exchange().clone(),
        routing_key: d.routing_key().clone(),
        properties: m.basic_properties.expect("properties"),
        body: m.content.unwrap_or_default(),
    }
}

/// A TCP proxy in front of the broker that the test can cut (every open connection is
/// shut down and new ones are closed right after accept) and restore. It can also cut by
/// itself once `n` bytes went towards the broker, so an outage lands mid-stream.
pub struct Proxy {
    pub addr: SocketAddr,
    inner: Arc<ProxyInner>,
}

struct ProxyInner {
    refusing: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    upstream_bytes: AtomicU64,
    cut_at: AtomicU64,
    cuts: Mutex<u64>,
    cut_cv: Condvar,
    stop: AtomicBool,
    /// Microseconds each read from the broker waits before it goes on to the client.
    downstream_delay_us: AtomicU64,
}

impl ProxyInner {
    fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        *self.cuts.lock().unwrap() += 1;
        self.cut_cv.notify_all();
    }
}

impl Proxy {
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(ProxyInner {
            refusing: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            upstream_bytes: AtomicU64::new(0),
            cut_at: AtomicU64::new(u64::MAX),
            cuts: Mutex::new(0),
            cut_cv: Condvar::new(),
            stop: AtomicBool::new(false),
            downstream_delay_us: AtomicU64::new(0),
        });
        let i = inner.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if i.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if i.refusing.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(BROKER) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut open = i.open.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (iu, id) = (i.clone(), i.clone());
                thread::spawn(move || pump(client, server, Some(iu)));
                thread::spawn(move || pump_down(s2, c2, id));
            }
        });
        Proxy { addr, inner }
    }

    /// `rabbit://guest:guest@<proxy>/`.
    pub fn url(&self) -> String {
        format!("rabbit://guest:guest@{}/", self.addr)
    }

    pub fn cut(&self) {
        self.inner.cut();
    }

    pub fn restore(&self) {
        self.inner.cut_at.store(u64::MAX, Ordering::SeqCst);
        self.inner.refusing.store(false, Ordering::SeqCst);
    }

    /// Cut by itself once `bytes` more bytes went towards the broker.
    pub fn cut_after(&self, bytes: u64) {
        let now = self.inner.upstream_bytes.load(Ordering::SeqCst);
        self.inner.cut_at.store(now + bytes, Ordering::SeqCst);
    }

    /// Hold every read from the broker for `delay` before passing it on: a broker whose
    /// confirms lag.
    pub fn slow_downstream(&self, delay: Duration) {
        self.inner
            .downstream_delay_us
            .store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    /// Wait until the proxy has cut `n` times in total.
    pub fn wait_cuts(&self, n: u64, timeout: Duration) -> bool {
        let g = self.inner.cuts.lock().unwrap();
        let (g, _) = self
            .inner
            .cut_cv
            .wait_timeout_while(g, timeout, |c| *c < n)
            .unwrap();
        *g >= n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.cut();
        // Unblock the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<ProxyInner>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(i) = &count {
            let total = i.upstream_bytes.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= i.cut_at.load(Ordering::SeqCst) {
                i.cut_at.store(u64::MAX, Ordering::SeqCst);
                i.cut();
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn pump_down(mut from: TcpStream, mut to: TcpStream, inner: Arc<ProxyInner>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = inner.downstream_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            thread::sleep(Duration::from_micros(delay));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Captures log lines of the whole test binary so tests can wait for one (an event) and
/// check that no line carries a secret.
pub struct LogCapture {
    lines: Mutex<VecDeque<String>>,
    cv: Condvar,
}

static CAPTURE: OnceLock<&'static LogCapture> = OnceLock::new();

impl log::Log for LogCapture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) || !r.target().starts_with("longshore") {
            return;
        }
        let line = format!("{} {}", r.level(), r.args());
        eprintln!("[log] {line}");
        self.lines.lock().unwrap().push_back(line);
        self.cv.notify_all();
    }
    fn flush(&self) {}
}

/// The process-wide capture (installed on first use).
pub fn logs() -> &'static LogCapture {
    CAPTURE.get_or_init(|| {
        let c: &'static LogCapture = Box::leak(Box::new(LogCapture {
            lines: Mutex::new(VecDeque::new()),
            cv: Condvar::new(),
        }));
        let _ = log::set_logger(c);
        log::set_max_level(log::LevelFilter::Info);
        c
    })
}

impl LogCapture {
    /// Wait for `count` lines matching `pred` (counting those already captured).
    pub fn wait_for(
        &self,
        count: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let g = self.lines.lock().unwrap();
        let (g, _) = self
            .cv
            .wait_timeout_while(g, timeout, |l| l.iter().filter(|x| pred(x)).count() < count)
            .unwrap();
        g.iter().filter(|x| pred(x)).cloned().collect()
    }

    pub fn all(&self) -> Vec<String> {
        self.lines.lock().unwrap().iter().cloned().collect()
    }
}
