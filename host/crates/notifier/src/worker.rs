//! The connection engine, on its own thread with a single-threaded tokio runtime: connect
//! (failover over the brokers, exponential backoff with jitter), declare the exchange and
//! queues as oslo.messaging does, publish the buffer in order with publisher confirms, and
//! on any loss put everything unconfirmed back to be resent.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::{
    BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeclareArguments,
    QueueBindArguments, QueueDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{
    Ack, BasicProperties, Cancel, Close, CloseChannel, FieldTable, FieldValue, Nack, Return,
};
use async_trait::async_trait;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};

use crate::notifier::Shared;
use crate::url::Broker;

#[cfg(feature = "tls")]
pub(crate) type Tls = crate::tls::TlsClient;
#[cfg(not(feature = "tls"))]
pub(crate) type Tls = std::convert::Infallible;

/// A session shorter than this counts as a failed attempt for the backoff (a broker that
/// accepts and then drops us must not make us spin).
const MIN_HEALTHY_SESSION: Duration = Duration::from_secs(5);

/// Start the connection thread.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    tls: Option<Tls>,
) -> std::io::Result<JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("longshore-notifier".into())
        .spawn(move || {
            // Runs even if the engine panics, so flush() and close() never wait on a dead
            // thread.
            let _exit = Exit(shared.clone());
            rt.block_on(run(shared, stop, tls));
            // Drop the runtime (and amqprs' tasks) before `_exit` says we are gone.
            drop(rt);
        })
}

/// Marks the engine as gone and accounts for what it leaves behind.
struct Exit(Arc<Shared>);

impl Drop for Exit {
    fn drop(&mut self) {
        let shared = &self.0;
        if std::thread::panicking() {
            log::error!(
                "{}: the notifier thread panicked; nothing more will be delivered",
                shared.describe
            );
        }
        let mut st = shared.lock();
        st.worker_running = false;
        st.stats.connected = false;
        let left = st.buffer.drain();
        if !left.is_empty() {
            let n: usize = left.iter().map(|e| e.samples).sum();
            let spooled = left.iter().filter(|e| e.spooled).count();
            if spooled == left.len() {
                log::info!(
                    "{}: stopped with {} undelivered notification(s) ({n} samples) kept in the spool for the next start",
                    shared.describe,
                    left.len()
                );
            } else {
                log::warn!(
                    "{}: stopped with {} undelivered notification(s) ({n} samples), {} of them not spooled and lost",
                    shared.describe,
                    left.len(),
                    left.len() - spooled
                );
            }
        }
        if let Some(sp) = &shared.spool {
            sp.release();
        }
        drop(st);
        shared.changed.notify_all();
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A dropped sender also means stop.
    let _ = stop.wait_for(|s| *s).await;
}

enum End {
    Stopped,
    Lost(String),
}

async fn run(sh: Arc<Shared>, mut stop: watch::Receiver<bool>, tls: Option<Tls>) {
    let brokers = sh.cfg.transport_url.brokers.clone();
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut next = 0usize;
    let mut failed_rounds = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut session = None;
        for i in 0..brokers.len() {
            let idx = (next + i) % brokers.len();
            let res = tokio::select! {
                r = connect(&sh, &brokers[idx], tls.as_ref()) => r,
                _ = stopped(&mut stop) => return,
            };
            match res {
                Ok(s) => {
                    session = Some((idx, s));
                    break;
                }
                Err(e) => {
                    sh.lock().stats.connect_failures += 1;
                    log::error!(
                        "{}: cannot connect to {}: {e}",
                        sh.describe,
                        broker_url(&sh, &brokers[idx])
                    );
                }
            }
        }
        let Some((idx, mut s)) = session else {
            let delay = sh.cfg.backoff.delay(failed_rounds, &mut rng);
            failed_rounds = failed_rounds.saturating_add(1);
            let buffered = sh.lock().buffer.held().0;
            log::warn!(
                "{}: no broker reachable; retrying in {:.2}s ({buffered} samples buffered)",
                sh.describe,
                delay.as_secs_f64()
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => continue,
                _ = stopped(&mut stop) => return,
            }
        };
        let started = Instant::now();
        {
            let mut st = sh.lock();
            st.stats.connected = true;
            st.stats.connections += 1;
            let pending = st.buffer.held().1;
            drop(st);
            log::info!(
                "{}: connected to {} ({} notification(s) waiting)",
                sh.describe,
                broker_url(&sh, &brokers[idx]),
                pending
            );
        }
        let end = s.run(&sh, &mut stop).await;
        let requeued = {
            let mut st = sh.lock();
            st.stats.connected = false;
            st.stats.blocked = false;
            st.buffer.requeue()
        };
        match end {
            End::Stopped => {
                s.shutdown().await;
                return;
            }
            End::Lost(reason) => {
                log::warn!(
                    "{}: connection to {} lost: {reason}; {requeued} unconfirmed notification(s) will be resent",
                    sh.describe,
                    broker_url(&sh, &brokers[idx])
                );
                drop(s);
                next = (idx + 1) % brokers.len();
                if started.elapsed() < MIN_HEALTHY_SESSION {
                    let delay = sh.cfg.backoff.delay(failed_rounds, &mut rng);
                    failed_rounds = failed_rounds.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stopped(&mut stop) => return,
                    }
                } else {
                    failed_rounds = 0;
                }
            }
        }
    }
}

/// `scheme://user:***@host:port/vhost` of one broker, for logs.
fn broker_url(sh: &Shared, b: &Broker) -> String {
    let u = &sh.cfg.transport_url;
    let vhost = if u.virtual_host == "/" {
        ""
    } else {
        &u.virtual_host
    };
    format!("{}://{}/{}", u.scheme, b.masked(), vhost)
}

/// Events of the publishing channel, forwarded by its callback.
enum ChanEvent {
    Ack(u64, bool),
    Nack(u64),
    Closed(String),
}

struct ChanEvents(mpsc::UnboundedSender<ChanEvent>);

#[async_trait]
impl ChannelCallback for ChanEvents {
    async fn close(
        &mut self,
        _: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        let _ = self.0.send(ChanEvent::Closed(format!(
            "{} {}",
            close.reply_code(),
            close.reply_text()
        )));
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, _active: bool) -> Result<bool, amqprs::error::Error> {
        // RabbitMQ uses connection.blocked instead; acknowledge whatever is asked.
        Ok(true)
    }
    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        let _ = self
            .0
            .send(ChanEvent::Ack(ack.delivery_tag(), ack.mutiple()));
    }
    async fn publish_nack(&mut self, _: &Channel, nack: Nack) {
        let _ = self.0.send(ChanEvent::Nack(nack.delivery_tag()));
    }
    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {
        // mandatory is false (as in oslo): the broker never returns messages.
    }
}

/// Remembers why the broker closed a declaration channel.
struct DeclEvents(Arc<std::sync::Mutex<Option<(u16, String)>>>);

#[async_trait]
impl ChannelCallback for DeclEvents {
    async fn close(
        &mut self,
        _: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((close.reply_code(), close.reply_text().clone()));
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, _active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(true)
    }
    async fn publish_ack(&mut self, _: &Channel, _: Ack) {}
    async fn publish_nack(&mut self, _: &Channel, _: Nack) {}
    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {}
}

struct ConnEvents {
    sh: Arc<Shared>,
    broker: String,
}

#[async_trait]
impl ConnectionCallback for ConnEvents {
    async fn close(&mut self, _: &Connection, close: Close) -> Result<(), amqprs::error::Error> {
        log::warn!(
            "{}: broker {} closed the connection: {} {}",
            self.sh.describe,
            self.broker,
            close.reply_code(),
            close.reply_text()
        );
        Ok(())
    }
    async fn blocked(&mut self, _: &Connection, reason: String) {
        self.sh.lock().stats.blocked = true;
        log::warn!(
            "{}: broker {} blocks publishing ({reason}); notifications wait in the buffer",
            self.sh.describe,
            self.broker
        );
    }
    async fn unblocked(&mut self, _: &Connection) {
        self.sh.lock().stats.blocked = false;
        log::info!(
            "{}: broker {} unblocked publishing",
            self.sh.describe,
            self.broker
        );
    }
    async fn secret_updated(&mut self, _: &Connection) {}
}

struct Session {
    conn: Connection,
    chan: Channel,
    events: mpsc::UnboundedReceiver<ChanEvent>,
    next_tag: u64,
}

/// Open a connection to one broker, declare, and open the confirm-mode channel, all within
/// `connect_timeout`.
async fn connect(sh: &Arc<Shared>, b: &Broker, tls: Option<&Tls>) -> Result<Session, String> {
    let url = &sh.cfg.transport_url;
    let mut args = OpenConnectionArguments::new(&b.host, b.port, &b.username, b.password());
    args.virtual_host(&url.virtual_host)
        .heartbeat(url.heartbeat)
        .connection_name(&format!("longshore-notifier pid {}", std::process::id()));
    #[cfg(feature = "tls")]
    if let Some(t) = tls {
        args.tls_adaptor(t.adaptor(&b.host));
    }
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    let setup = async {
        let conn = match Connection::open(&args).await {
            Ok(c) => c,
            Err(e) => return Err(explain_open_error(e, b, url).await),
        };
        conn.register_callback(ConnEvents {
            sh: sh.clone(),
            broker: broker_url(sh, b),
        })
        .await
        .map_err(|e| e.to_string())?;
        declare(sh, &conn).await?;
        let chan = conn.open_channel(None).await.map_err(|e| e.to_string())?;
        let (tx, events) = mpsc::unbounded_channel();
        chan.register_callback(ChanEvents(tx))
            .await
            .map_err(|e| e.to_string())?;
        chan.confirm_select(ConfirmSelectArguments::default())
            .await
            .map_err(|e| format!("cannot enable publisher confirms: {e}"))?;
        Ok(Session {
            conn,
            chan,
            events,
            next_tag: 1,
        })
    };
    match tokio::time::timeout(sh.cfg.connect_timeout, setup).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no complete AMQP handshake within {:?} (connect_timeout)",
            sh.cfg.connect_timeout
        )),
    }
}

/// amqprs reports a refused login as a dropped socket (RabbitMQ closes without a reason when
/// the client does not announce `authentication_failure_close`). To tell a refused login
/// from a network problem, probe the broker: if it answers a fresh protocol header with
/// `connection.start`, it is up and speaking AMQP, so the failure came at the login.
async fn explain_open_error(
    e: amqprs::error::Error,
    b: &Broker,
    url: &crate::url::TransportUrl,
) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let login = || {
        format!(
            "login refused ({text}): wrong user name or password for user '{}', or no access to virtual host '{}'; check transport_url and the broker's users and permissions",
            b.username, url.virtual_host
        )
    };
    if lower.contains("access_refused") || lower.contains("access-refused") {
        return login();
    }
    let network_drop = matches!(e, amqprs::error::Error::NetworkError(_))
        && [
            "peer shutdown",
            "reset by peer",
            "unexpected eof",
            "broken pipe",
        ]
        .iter()
        .any(|k| lower.contains(k));
    if network_drop {
        if url.tls.is_none() && speaks_amqp(&b.host, b.port).await {
            return login();
        }
        return format!(
            "{text} (the peer closed the connection before the AMQP handshake completed)"
        );
    }
    text
}

/// Whether `host:port` answers an AMQP 0-9-1 protocol header with a method frame on
/// channel 0 (`connection.start`) within 2 s.
async fn speaks_amqp(host: &str, port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut s = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        s.write_all(b"AMQP\x00\x00\x09\x01").await.ok()?;
        let mut head = [0u8; 3];
        s.read_exact(&mut head).await.ok()?;
        Some(head == [1, 0, 0])
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Some(true))
    )
}

async fn open_decl_channel(
    conn: &Connection,
) -> Result<(Channel, Arc<std::sync::Mutex<Option<(u16, String)>>>), String> {
    let ch = conn.open_channel(None).await.map_err(|e| e.to_string())?;
    let reason = Arc::new(std::sync::Mutex::new(None));
    ch.register_callback(DeclEvents(reason.clone()))
        .await
        .map_err(|e| e.to_string())?;
    Ok((ch, reason))
}

fn take_reason(r: &std::sync::Mutex<Option<(u16, String)>>) -> Option<(u16, String)> {
    r.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// What oslo.messaging does before the first notification on a connection (spec §9.2):
/// topic exchange, then per routing key a queue of that name bound with that key. An
/// exchange or queue that already exists with other flags (`PRECONDITION_FAILED`) is used
/// as it is (oslo re-declares a non-durable exchange in that case, which fails when the
/// existing one is durable; using it is what both intend).
async fn declare(sh: &Shared, conn: &Connection) -> Result<(), String> {
    let cfg = &sh.cfg;
    let durable = cfg.durable || cfg.quorum_queue;
    let (mut ch, mut why) = open_decl_channel(conn).await?;
    let ex = ExchangeDeclareArguments::new(&cfg.exchange, "topic")
        .durable(durable)
        .auto_delete(cfg.auto_delete)
        .finish();
    if let Err(e) = ch.exchange_declare(ex).await {
        match take_reason(&why) {
            Some((406, text)) => {
                log::warn!(
                    "{}: exchange '{}' exists with other flags ({text}); publishing to it as it is",
                    sh.describe,
                    cfg.exchange
                );
                (ch, why) = open_decl_channel(conn).await?;
                let passive = ExchangeDeclareArguments::new(&cfg.exchange, "topic")
                    .passive(true)
                    .finish();
                ch.exchange_declare(passive)
                    .await
                    .map_err(|e| format!("exchange '{}': {e}", cfg.exchange))?;
            }
            Some((code, text)) => {
                return Err(format!(
                    "declaring exchange '{}': {code} {text}",
                    cfg.exchange
                ))
            }
            None => return Err(format!("declaring exchange '{}': {e}", cfg.exchange)),
        }
    }
    let mut qargs = FieldTable::new();
    if cfg.quorum_queue {
        qargs.insert(
            "x-queue-type".try_into().expect("short name"),
            FieldValue::S("quorum".try_into().expect("short value")),
        );
    } else if cfg.ha_queues {
        qargs.insert(
            "x-ha-policy".try_into().expect("short name"),
            FieldValue::S("all".try_into().expect("short value")),
        );
    }
    for rk in &sh.routing_keys {
        let q = QueueDeclareArguments::new(rk)
            .durable(durable)
            .auto_delete(cfg.auto_delete)
            .arguments(qargs.clone())
            .finish();
        if let Err(e) = ch.queue_declare(q).await {
            match take_reason(&why) {
                Some((406, text)) => {
                    log::warn!(
                        "{}: queue '{rk}' exists with other flags ({text}); binding it as it is",
                        sh.describe
                    );
                    (ch, why) = open_decl_channel(conn).await?;
                }
                Some((code, text)) => return Err(format!("declaring queue '{rk}': {code} {text}")),
                None => return Err(format!("declaring queue '{rk}': {e}")),
            }
        }
        ch.queue_bind(QueueBindArguments::new(rk, &cfg.exchange, rk))
            .await
            .map_err(|e| match take_reason(&why) {
                Some((code, text)) => format!("binding queue '{rk}': {code} {text}"),
                None => format!("binding queue '{rk}': {e}"),
            })?;
    }
    let _ = ch.close().await;
    Ok(())
}

/// Properties kombu puts on every notification (spec §9.2, captured `*.amqp.json`).
fn properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json")
        .with_content_encoding("utf-8")
        .with_headers(FieldTable::new())
        .with_delivery_mode(2)
        .with_priority(0)
        .finish()
}

impl Session {
    async fn run(&mut self, sh: &Shared, stop: &mut watch::Receiver<bool>) -> End {
        let props = properties();
        let exchange = sh.cfg.exchange.as_str();
        loop {
            let out = {
                let mut st = sh.lock();
                let room = sh.cfg.max_in_flight.saturating_sub(st.buffer.in_flight());
                let out = st.buffer.take_unsent(room, &mut self.next_tag);
                st.stats.resent_notifications += out.iter().filter(|o| o.resend).count() as u64;
                out
            };
            // Bounded by the in-flight window, but a broker that stops reading (blocked,
            // or a dead peer before the heartbeat notices) must not keep `close()` waiting.
            let chan = &self.chan;
            let props = &props;
            let send = async move {
                for o in out {
                    let args = BasicPublishArguments::new(exchange, &o.routing_key);
                    chan.basic_publish(props.clone(), o.body.to_vec(), args)
                        .await?;
                }
                Ok::<(), amqprs::error::Error>(())
            };
            tokio::select! {
                r = send => if let Err(e) = r {
                    return End::Lost(format!("publish failed: {e}"));
                },
                _ = stopped(stop) => return End::Stopped,
            }
            tokio::select! {
                biased;
                _ = stopped(stop) => return End::Stopped,
                ev = self.events.recv() => match ev {
                    Some(ChanEvent::Ack(tag, multiple)) => self.confirm(sh, tag, multiple),
                    Some(ChanEvent::Nack(tag)) => {
                        return End::Lost(format!("broker nacked delivery tag {tag} (internal error); reconnecting to resend in order"))
                    }
                    Some(ChanEvent::Closed(reason)) => return End::Lost(format!("channel closed by the broker: {reason}")),
                    None => return End::Lost("connection closed".into()),
                },
                _ = sh.wake.notified() => {}
            }
        }
    }

    fn confirm(&mut self, sh: &Shared, tag: u64, multiple: bool) {
        let mut st = sh.lock();
        let done = st.buffer.confirm(tag, multiple);
        if done.is_empty() {
            return;
        }
        st.stats.confirmed_notifications += done.len() as u64;
        st.stats.confirmed_samples += done.iter().map(|e| e.samples as u64).sum::<u64>();
        sh.unspool(&mut st, &done);
        drop(st);
        sh.changed.notify_all();
    }

    /// Close politely (bounded: the broker may be gone).
    async fn shutdown(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.chan.close().await;
            let _ = self.conn.close().await;
        })
        .await;
    }
}
