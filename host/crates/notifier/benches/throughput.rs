//! Throughput of the notifier against the real RabbitMQ at 127.0.0.1:5672 (guest/guest):
//! samples/s delivered *and confirmed* at batch sizes 1, 50, 500, and the host CPU time
//! (getrusage) per 1,000 samples. Baselines measured in the same run: encoding + freeing the
//! batch (the CPU floor of publish()) and raw amqprs publishing of the same pre-encoded bodies with confirms (wire
//! floor, no buffer/bookkeeping).
//!
//! Run: `cargo bench -p longshore-notifier --bench throughput` (release profile).
//! Options: `-- --reps N` (default 5), `-- --quick` (fewer samples), `-- --batch N` (one size).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use amqprs::callbacks::ChannelCallback;
use amqprs::channel::{
    BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeleteArguments,
    QueueDeleteArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, CloseChannel, FieldTable, Nack, Return};
use longshore_notifier::{Notifier, NotifierConfig};
use longshore_plugin_api::{Map, Value};
use longshore_publisher::notification::encode_notification;
use longshore_publisher::{Batch, Publisher};

fn sample(i: u64) -> Map {
    // Shaped like the captured Ceilometer samples (~1.3 KB of JSON each).
    Map::new()
        .with("source", "openstack")
        .with("counter_name", "memory.usage")
        .with("counter_type", "gauge")
        .with("counter_unit", "MiB")
        .with("counter_volume", 2048.0 + i as f64)
        .with("user_id", "9a1de644815ef6d13b8faa1837f8a88b")
        .with("user_name", Value::NULL)
        .with("project_id", "4737819096da1dac72ff5d2a386ecbe0")
        .with("project_name", Value::NULL)
        .with("resource_id", "451b4cf3-6123-4df7-b656-af7229d4beef")
        .with("timestamp", "2026-11-22T02:53:55.788625")
        .with(
            "resource_metadata",
            Map::new()
                .with("display_name", "kafka-2")
                .with("name", "instance-00000102")
                .with("instance_id", "451b4cf3-6123-4df7-b656-af7229d4beef")
                .with("instance_type", "m1.small")
                .with(
                    "host",
                    "53eb93006ac3636d03c847b16c28924d917430fd093c94dabe6b2108",
                )
                .with("instance_host", "peer-compute-0")
                .with(
                    "flavor",
                    Map::new()
                        .with("id", "2")
                        .with("name", "m1.small")
                        .with("vcpus", 1)
                        .with("ram", 2048)
                        .with("disk", 20)
                        .with("ephemeral", 0)
                        .with("swap", 0),
                )
                .with("status", "active")
                .with("state", "running")
                .with("task_state", "")
                .with(
                    "image",
                    Map::new().with("id", "3c2a1f7e-8d4b-4e6a-9f0c-1b2d3e4f5a6b"),
                )
                .with("image_ref", "3c2a1f7e-8d4b-4e6a-9f0c-1b2d3e4f5a6b")
                .with("image_ref_url", Value::NULL)
                .with("architecture", "x86_64")
                .with("os_type", "hvm")
                .with("vcpus", 1)
                .with("memory_mb", 2048)
                .with("disk_gb", 20)
                .with("ephemeral_gb", 0)
                .with("root_gb", 20),
        )
        .with("message_id", format!("f53b9b76-e61f-11f1-aeaa-{i:012}"))
        .with("monotonic_time", 725.042996987)
        .with(
            "message_signature",
            "675e82e40b0d518fd1886a5fa78386350d35ae4df8ec318ceb3c19023f68a480",
        )
}

fn batches(batch_size: usize, total: usize) -> Vec<Batch> {
    (0..total / batch_size)
        .map(|b| Batch {
            source: "some_pollsters".into(),
            pollster: "memory.usage".into(),
            messages: (0..batch_size)
                .map(|i| sample((b * batch_size + i) as u64).into())
                .collect(),
        })
        .collect()
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

struct Run {
    samples_per_s: f64,
    cpu_ms_per_1000: f64,
    publish_ms_per_1000: f64,
}

fn unique(prefix: &str) -> String {
    let n = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{n}", std::process::id())
}

fn cleanup(exchange: &str, queue: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = Connection::open(&OpenConnectionArguments::new(
            "127.0.0.1",
            5672,
            "guest",
            "guest",
        ))
        .await
        .expect("RabbitMQ at 127.0.0.1:5672");
        let ch = conn.open_channel(None).await.unwrap();
        let _ = ch.queue_delete(QueueDeleteArguments::new(queue)).await;
        let _ = ch
            .exchange_delete(ExchangeDeleteArguments::new(exchange))
            .await;
        let _ = ch.close().await;
        let _ = conn.close().await;
    });
}

fn run_notifier(batch_size: usize, total: usize) -> Run {
    let input = batches(batch_size, total);
    let mut cfg = NotifierConfig::new("rabbit://guest:guest@127.0.0.1:5672/").unwrap();
    cfg.exchange = unique("lsn-bench");
    cfg.topics = vec![unique("lsn-bench-topic")];
    cfg.max_buffered_samples = total * 2;
    cfg.max_buffered_bytes = 4 << 30;
    let queue = cfg.routing_keys()[0].clone();
    let exchange = cfg.exchange.clone();
    let n = Notifier::new(cfg).unwrap();
    // Connect and declare before timing.
    n.publish(batches(1, 1).remove(0)).unwrap();
    n.flush(Duration::from_secs(30)).unwrap();

    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut publish_time = Duration::ZERO;
    for b in input {
        let t = Instant::now();
        n.publish(b).unwrap();
        publish_time += t.elapsed();
    }
    n.flush(Duration::from_secs(600)).unwrap();
    let wall = t0.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let s = n.stats();
    assert_eq!(s.dropped_samples, 0);
    assert_eq!(s.confirmed_samples as usize, total + 1);
    n.close(Duration::from_secs(10)).unwrap();
    cleanup(&exchange, &queue);
    Run {
        samples_per_s: total as f64 / wall.as_secs_f64(),
        cpu_ms_per_1000: cpu * 1e3 / total as f64 * 1000.0,
        publish_ms_per_1000: publish_time.as_secs_f64() * 1e3 / total as f64 * 1000.0,
    }
}

/// Encoding plus freeing the batch (publish() takes the batch by value): the CPU floor of
/// publish() whatever the transport.
fn run_encode(batch_size: usize, total: usize) -> f64 {
    let input = batches(batch_size, total);
    let cpu0 = cpu_seconds();
    let mut bytes = 0;
    for b in input {
        bytes += encode_notification(
            &b.messages,
            "ceilometer.polling",
            "telemetry.polling",
            SystemTime::now(),
        )
        .len();
        drop(b);
    }
    std::hint::black_box(bytes);
    (cpu_seconds() - cpu0) * 1e3 / total as f64 * 1000.0
}

struct Acks(Arc<AtomicU64>, Arc<tokio::sync::Notify>);

#[async_trait::async_trait]
impl ChannelCallback for Acks {
    async fn close(&mut self, _: &Channel, _: CloseChannel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, _: bool) -> Result<bool, amqprs::error::Error> {
        Ok(true)
    }
    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        self.0.fetch_max(ack.delivery_tag(), Ordering::SeqCst);
        self.1.notify_one();
    }
    async fn publish_nack(&mut self, _: &Channel, _: Nack) {}
    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {}
}

/// Raw amqprs: the same pre-encoded bodies, confirm mode, wait for the last ack. The wire
/// floor (no buffer, no per-message bookkeeping, no window).
fn run_raw(batch_size: usize, total: usize) -> (f64, f64) {
    let bodies: Vec<Vec<u8>> = batches(batch_size, total)
        .iter()
        .map(|b| {
            encode_notification(
                &b.messages,
                "ceilometer.polling",
                "telemetry.polling",
                SystemTime::now(),
            )
        })
        .collect();
    let exchange = unique("lsn-bench-raw");
    let queue = unique("lsn-bench-raw-q");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (wall, cpu) = rt.block_on(async {
        let conn = Connection::open(&OpenConnectionArguments::new(
            "127.0.0.1",
            5672,
            "guest",
            "guest",
        ))
        .await
        .unwrap();
        let ch = conn.open_channel(None).await.unwrap();
        ch.exchange_declare(amqprs::channel::ExchangeDeclareArguments::new(
            &exchange, "topic",
        ))
        .await
        .unwrap();
        ch.queue_declare(amqprs::channel::QueueDeclareArguments::new(&queue))
            .await
            .unwrap();
        ch.queue_bind(amqprs::channel::QueueBindArguments::new(
            &queue, &exchange, &queue,
        ))
        .await
        .unwrap();
        let acked = Arc::new(AtomicU64::new(0));
        let notify = Arc::new(tokio::sync::Notify::new());
        ch.register_callback(Acks(acked.clone(), notify.clone()))
            .await
            .unwrap();
        ch.confirm_select(ConfirmSelectArguments::default())
            .await
            .unwrap();
        let props = BasicProperties::default()
            .with_content_type("application/json")
            .with_content_encoding("utf-8")
            .with_headers(FieldTable::new())
            .with_delivery_mode(2)
            .with_priority(0)
            .finish();
        let n = bodies.len() as u64;
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        for b in bodies {
            ch.basic_publish(
                props.clone(),
                b,
                BasicPublishArguments::new(&exchange, &queue),
            )
            .await
            .unwrap();
        }
        while acked.load(Ordering::SeqCst) < n {
            notify.notified().await;
        }
        let r = (t0.elapsed(), cpu_seconds() - cpu0);
        let _ = ch.queue_delete(QueueDeleteArguments::new(&queue)).await;
        let _ = ch
            .exchange_delete(ExchangeDeleteArguments::new(&exchange))
            .await;
        let _ = ch.close().await;
        let _ = conn.close().await;
        r
    });
    (
        total as f64 / wall.as_secs_f64(),
        cpu * 1e3 / total as f64 * 1000.0,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 3 } else { 5 });
    let only: Option<usize> = args
        .iter()
        .position(|a| a == "--batch")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok());
    println!(
        "notifier throughput, real RabbitMQ on loopback, publisher confirms, median of {reps} runs"
    );
    println!(
        "{:>6} {:>9} | {:>14} {:>15} {:>16} | {:>14} {:>13} | {:>20}",
        "batch",
        "samples",
        "samples/s",
        "CPU ms/1000",
        "publish() ms/1000",
        "raw samples/s",
        "raw CPU/1000",
        "encode+free CPU/1000"
    );
    for (batch_size, total) in [(1usize, 20_000usize), (50, 200_000), (500, 250_000)] {
        if only.is_some_and(|o| o != batch_size) {
            continue;
        }
        let total = if quick { total / 4 } else { total };
        let mut runs = Vec::new();
        let mut raws = Vec::new();
        let mut encs = Vec::new();
        for _ in 0..reps {
            runs.push(run_notifier(batch_size, total));
            raws.push(run_raw(batch_size, total));
            encs.push(run_encode(batch_size, total));
        }
        println!(
            "{:>6} {:>9} | {:>14.0} {:>15.2} {:>16.2} | {:>14.0} {:>13.2} | {:>20.2}",
            batch_size,
            total,
            median(runs.iter().map(|r| r.samples_per_s).collect()),
            median(runs.iter().map(|r| r.cpu_ms_per_1000).collect()),
            median(runs.iter().map(|r| r.publish_ms_per_1000).collect()),
            median(raws.iter().map(|r| r.0).collect()),
            median(raws.iter().map(|r| r.1).collect()),
            median(encs),
        );
    }
}
