//! The notifier against a real RabbitMQ behind a TCP proxy the test controls: broker outage
//! mid-run (nothing lost, nothing duplicated, publish never blocked), a cut in the middle of
//! a stream (only unconfirmed notifications resent, byte-identical), wrong credentials,
//! buffer overflow (counted drops), disk spool across a restart, failover between brokers.

mod notifier_common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use longshore_notifier::{Notifier, NotifierConfig};
use longshore_plugin_api::Map;
use longshore_publisher::{PublishError, Publisher};
use notifier_common::*;

const POLLSTERS: [&str; 3] = ["cpu", "memory.usage", "disk.device.read.bytes"];

fn queue_of(cfg: &NotifierConfig) -> String {
    cfg.routing_keys()[0].clone()
}

/// Checks what a queue delivered against what was produced: every sample exactly once
/// (after removing broker-level duplicates, which must be byte-identical resends), and the
/// per-pollster order of first arrivals. Returns the number of duplicate notifications.
fn check_delivery(got: &[Received], produced: &HashMap<String, Vec<String>>) -> usize {
    let mut first: HashMap<String, &Received> = HashMap::new();
    let mut dups = 0;
    let mut order: HashMap<String, Vec<String>> = HashMap::new();
    for r in got {
        let inner = r.inner();
        let mid = inner["message_id"].as_str().unwrap().to_string();
        if let Some(prev) = first.get(&mid) {
            assert_eq!(
                prev.body, r.body,
                "a duplicate of {mid} is not a byte-identical resend"
            );
            dups += 1;
            continue;
        }
        first.insert(mid, r);
        for id in r.sample_ids() {
            let pollster = id.rsplit_once('-').unwrap().0.to_string();
            order.entry(pollster).or_default().push(id);
        }
    }
    for (p, want) in produced {
        let have = order.remove(p).unwrap_or_default();
        assert_eq!(
            have.len(),
            want.len(),
            "{p}: {} samples received, {} produced",
            have.len(),
            want.len()
        );
        assert_eq!(
            &have, want,
            "{p}: samples missing, duplicated or out of order"
        );
    }
    assert!(order.is_empty(), "unexpected pollsters {:?}", order.keys());
    dups
}

fn publish_round(
    n: &Notifier,
    produced: &mut HashMap<String, Vec<String>>,
    next: &mut HashMap<String, u64>,
    batches: u64,
    size: u64,
) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..batches {
        for p in POLLSTERS {
            let b = next.entry(p.to_string()).or_insert(0);
            let batch = batch(p, *b, size);
            produced.entry(p.to_string()).or_default().extend(
                batch
                    .messages
                    .iter()
                    .map(|m| m.message_id().unwrap().to_string()),
            );
            *b += 1;
            let t = Instant::now();
            n.publish(batch).unwrap();
            slowest = slowest.max(t.elapsed());
        }
    }
    slowest
}

#[test]
fn broker_outage_mid_run_loses_and_duplicates_nothing() {
    let logs = logs();
    let amqp = Amqp::connect();
    let proxy = Proxy::start();
    let cfg = config(&proxy.url());
    let (exchange, queue) = (cfg.exchange.clone(), queue_of(&cfg));
    let n = Notifier::new(cfg).unwrap();
    let describe = n.describe();
    let (mut produced, mut next) = (HashMap::new(), HashMap::new());

    publish_round(&n, &mut produced, &mut next, 10, 10);
    n.flush(Duration::from_secs(30)).unwrap();
    let before = n.stats();
    assert_eq!(before.confirmed_notifications, 30);

    proxy.cut();
    let lost = logs.wait_for(1, Duration::from_secs(20), |l| {
        l.contains(&describe) && l.contains("connection to") && l.contains("lost")
    });
    assert!(!lost.is_empty(), "the notifier did not notice the outage");

    // The broker stays unreachable until every publish() of this phase has returned: had
    // publish() waited for the broker, this phase would never end.
    let slowest = publish_round(&n, &mut produced, &mut next, 10, 10);
    let during = n.stats();
    assert!(!during.connected);
    assert_eq!(
        during.confirmed_notifications, 30,
        "nothing can be confirmed during the outage"
    );
    assert_eq!(during.buffered_samples, 300);
    eprintln!("slowest publish() during the outage: {slowest:?}");
    match n.flush(Duration::from_millis(200)) {
        Err(PublishError::Timeout { pending, .. }) => assert_eq!(pending, 300),
        other => panic!("flush during the outage: {other:?}"),
    }

    proxy.restore();
    publish_round(&n, &mut produced, &mut next, 10, 10);
    n.flush(Duration::from_secs(60)).unwrap();
    let after = n.stats();
    assert_eq!(after.confirmed_notifications, 90);
    assert_eq!(
        after.resent_notifications, 0,
        "nothing was in flight at the cut"
    );
    assert_eq!((after.dropped_samples, after.buffered_samples), (0, 0));
    assert!(after.connections >= 2);

    let got = amqp.take(
        &queue,
        90,
        Duration::from_secs(30),
        Duration::from_millis(500),
    );
    assert_eq!(got.len(), 90, "received notifications");
    assert_eq!(check_delivery(&got, &produced), 0);
    n.close(Duration::from_secs(10)).unwrap();
    amqp.cleanup(&exchange, &[queue]);
}

#[test]
fn cut_mid_stream_resends_only_unconfirmed_in_order() {
    let amqp = Amqp::connect();
    let proxy = Proxy::start();
    let cfg = config(&proxy.url());
    let (exchange, queue) = (cfg.exchange.clone(), queue_of(&cfg));
    let n = Notifier::new(cfg).unwrap();
    let (mut produced, mut next) = (HashMap::new(), HashMap::new());
    // Let the connection come up and carry some traffic, then cut twice in mid-stream.
    publish_round(&n, &mut produced, &mut next, 5, 10);
    n.flush(Duration::from_secs(30)).unwrap();
    for cut in 1..=2 {
        proxy.cut_after(150_000);
        publish_round(&n, &mut produced, &mut next, 100, 10);
        assert!(
            proxy.wait_cuts(cut, Duration::from_secs(30)),
            "cut {cut} did not happen"
        );
        proxy.restore();
    }
    n.flush(Duration::from_secs(60)).unwrap();
    let s = n.stats();
    let total = 3 * 205;
    assert_eq!(s.confirmed_notifications, total);
    let got = amqp.take(
        &queue,
        total as usize,
        Duration::from_secs(30),
        Duration::from_millis(1000),
    );
    let dups = check_delivery(&got, &produced);
    eprintln!(
        "received {} notifications, {dups} broker-side duplicates, {} resent by the notifier",
        got.len(),
        s.resent_notifications
    );
    assert_eq!(got.len() - dups, total as usize);
    assert!(
        dups as u64 <= s.resent_notifications,
        "duplicates ({dups}) can only come from resends of unconfirmed notifications ({})",
        s.resent_notifications
    );
    assert!(s.connections >= 3);
    n.close(Duration::from_secs(10)).unwrap();
    amqp.cleanup(&exchange, &[queue]);
}

#[test]
fn wrong_credentials_are_reported_retried_and_do_not_crash() {
    let logs = logs();
    let user = unique("lsn-user");
    let cfg = config(&format!("rabbit://{user}:wrong-s3cret@127.0.0.1:5672/"));
    let n = Notifier::new(cfg).unwrap();
    let masked = format!("rabbit://{user}:***@127.0.0.1:5672/");
    let errors = logs.wait_for(3, Duration::from_secs(30), |l| {
        l.contains(&masked) && l.contains("cannot connect")
    });
    assert!(
        errors.len() >= 3,
        "expected repeated connection errors, got {errors:?}"
    );
    assert!(
        errors[0].contains("wrong user name or password") || errors[0].contains("login refused"),
        "unclear error: {}",
        errors[0]
    );
    let retries = logs.wait_for(1, Duration::ZERO, |l| {
        l.contains(&user) && l.contains("retrying in")
    });
    assert!(!retries.is_empty());
    n.publish(batch("cpu", 0, 3)).unwrap();
    assert!(matches!(
        n.flush(Duration::from_millis(100)),
        Err(PublishError::Timeout { pending: 3, .. })
    ));
    let s = n.stats();
    assert!(s.connect_failures >= 3 && !s.connected && s.connections == 0);
    assert!(matches!(
        n.close(Duration::from_millis(100)),
        Err(PublishError::Timeout { .. })
    ));
    assert!(
        logs.all().iter().all(|l| !l.contains("wrong-s3cret")),
        "password in logs"
    );
}

#[test]
fn buffer_overflow_drops_oldest_and_counts_them() {
    let logs = logs();
    let amqp = Amqp::connect();
    let proxy = Proxy::start();
    proxy.cut();
    let mut cfg = config(&proxy.url());
    cfg.max_buffered_samples = 100;
    let (exchange, queue) = (cfg.exchange.clone(), queue_of(&cfg));
    let n = Notifier::new(cfg).unwrap();
    let describe = n.describe();
    for b in 0..30 {
        n.publish(batch("cpu", b, 10)).unwrap();
    }
    let s = n.stats();
    assert_eq!((s.dropped_samples, s.dropped_notifications), (200, 20));
    assert_eq!((s.buffered_samples, s.buffered_notifications), (100, 10));
    assert_eq!(n.dropped_samples(), 200);
    // Never silent: one WARN per drop, with the counts.
    let warns = logs.wait_for(20, Duration::from_secs(5), |l| {
        l.contains(&describe) && l.contains("buffer full")
    });
    let logged: u64 = warns
        .iter()
        .map(|l| {
            let after = l.split("notification(s) (").nth(1).unwrap();
            after.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(logged, 200);
    assert!(warns.last().unwrap().contains("200 samples dropped so far"));

    proxy.restore();
    n.flush(Duration::from_secs(30)).unwrap();
    let got = amqp.take(
        &queue,
        10,
        Duration::from_secs(20),
        Duration::from_millis(500),
    );
    let ids: Vec<String> = got.iter().flat_map(|r| r.sample_ids()).collect();
    let want: Vec<String> = (200..300).map(|i| format!("cpu-{i:08}")).collect();
    assert_eq!(ids, want, "the newest 100 samples, in order");
    assert_eq!(300 - ids.len() as u64, n.dropped_samples());
    n.close(Duration::from_secs(10)).unwrap();
    amqp.cleanup(&exchange, &[queue]);
}

#[test]
fn buffer_byte_limit_drops_oldest() {
    let amqp = Amqp::connect();
    let proxy = Proxy::start();
    proxy.cut();
    let mut cfg = config(&proxy.url());
    let (exchange, queue) = (cfg.exchange.clone(), queue_of(&cfg));
    let one = {
        let b = batch("cpu", 0, 10);
        // Size of one notification body, measured through a throw-away encode.
        longshore_publisher::notification::encode_notification(
            &b.messages,
            "ceilometer.polling",
            "telemetry.polling",
            std::time::SystemTime::now(),
        )
        .len()
    };
    cfg.max_buffered_bytes = one * 4 + one / 2;
    let n = Notifier::new(cfg).unwrap();
    for b in 0..10 {
        n.publish(batch("cpu", b, 10)).unwrap();
    }
    let s = n.stats();
    assert_eq!(s.buffered_notifications, 4);
    assert_eq!(s.dropped_notifications, 6);
    assert!(s.buffered_bytes <= (one * 4 + one / 2) as u64);
    proxy.restore();
    n.flush(Duration::from_secs(30)).unwrap();
    let got = amqp.take(
        &queue,
        4,
        Duration::from_secs(20),
        Duration::from_millis(500),
    );
    let ids: Vec<String> = got.iter().flat_map(|r| r.sample_ids()).collect();
    assert_eq!(ids.len() as u64 + n.dropped_samples(), 100);
    assert_eq!(ids.first().unwrap(), "cpu-00000060");
    n.close(Duration::from_secs(10)).unwrap();
    amqp.cleanup(&exchange, &[queue]);
}

fn spool_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".msg")
        })
        .count()
}

#[test]
fn disk_spool_survives_a_restart_during_an_outage() {
    let amqp = Amqp::connect();
    let proxy = Proxy::start();
    proxy.cut();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&proxy.url());
    cfg.spool_dir = Some(dir.path().join("spool"));
    let (exchange, queue) = (cfg.exchange.clone(), queue_of(&cfg));
    let spool = cfg.spool_dir.clone().unwrap();

    let (mut produced, mut next) = (HashMap::new(), HashMap::new());
    let first = Notifier::new(cfg.clone()).unwrap();
    publish_round(&first, &mut produced, &mut next, 8, 4);
    assert_eq!(spool_files(&spool), 24);
    // One notifier per spool directory: a second one would replay the same files.
    let busy = Notifier::new(cfg.clone())
        .err()
        .expect("spool directory in use");
    assert!(busy.to_string().contains("already in use"), "{busy}");
    // The host stops during the outage (no flush possible).
    drop(first);
    assert_eq!(
        spool_files(&spool),
        24,
        "spooled notifications survive the stop"
    );

    // Restart with the broker reachable (directly this time).
    let mut cfg2 = cfg.clone();
    cfg2.transport_url =
        longshore_notifier::TransportUrl::parse("rabbit://guest:guest@127.0.0.1:5672/").unwrap();
    let second = Notifier::new(cfg2).unwrap();
    assert_eq!(
        second.stats().published_notifications,
        24,
        "replayed from the spool"
    );
    publish_round(&second, &mut produced, &mut next, 2, 4);
    second.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(
        spool_files(&spool),
        0,
        "confirmed notifications leave the spool"
    );
    second.close(Duration::from_secs(10)).unwrap();

    let got = amqp.take(
        &queue,
        30,
        Duration::from_secs(20),
        Duration::from_millis(500),
    );
    assert_eq!(got.len(), 30);
    assert_eq!(check_delivery(&got, &produced), 0);

    // A third start finds nothing to replay (no duplicates from the host).
    let third = Notifier::new(cfg).unwrap();
    assert_eq!(third.stats().published_notifications, 0);
    drop(third);
    amqp.cleanup(&exchange, &[queue]);
}

#[test]
fn fails_over_to_the_next_broker() {
    let logs = logs();
    let amqp = Amqp::connect();
    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = config(&format!(
        "rabbit://guest:guest@{dead},guest:guest@127.0.0.1:5672/"
    ));
    let (exchange, queue) = (cfg.exchange.clone(), queue_of(&cfg));
    let n = Notifier::new(cfg).unwrap();
    n.publish(batch("cpu", 0, 5)).unwrap();
    n.flush(Duration::from_secs(30)).unwrap();
    let dead_url = format!("rabbit://guest:***@{dead}/");
    assert!(!logs
        .wait_for(1, Duration::ZERO, |l| l.contains(&dead_url)
            && l.contains("cannot connect"))
        .is_empty());
    let describe = n.describe();
    assert!(!logs
        .wait_for(1, Duration::ZERO, |l| {
            l.contains(&describe) && l.contains("connected to rabbit://guest:***@127.0.0.1:5672/")
        })
        .is_empty());
    let got = amqp.take(&queue, 1, Duration::from_secs(10), Duration::ZERO);
    assert_eq!(got.len(), 1);
    n.close(Duration::from_secs(10)).unwrap();
    amqp.cleanup(&exchange, &[queue]);
}

#[test]
fn a_lagging_broker_holds_publish_back_instead_of_piling_up_notifications() {
    // Polling makes a pollster run's notifications far faster than one connection sends
    // and confirms them: while the broker is connected, publish waits for confirms once
    // 256 KiB is unconfirmed (at most 20 ms each time), so a cycle's output does not pile
    // up in memory. The proxy holds the broker's answers 100 ms per read. Notifications
    // of 50 samples with ~1 KB of metadata each, as compute ones.
    let amqp = Amqp::connect();
    let proxy = Proxy::start();
    let cfg = config(&proxy.url());
    let (exchange, queue) = (cfg.exchange.clone(), queue_of(&cfg));
    let notifier = Notifier::new(cfg).unwrap();
    let big = |b: u64| {
        let mut batch = batch("cpu", b, 50);
        for m in &mut batch.messages {
            let mut map = m.to_map();
            map.insert(
                "resource_metadata",
                Map::new().with("blob", "x".repeat(1000)),
            );
            *m = map.into();
        }
        batch
    };
    // Connected (a confirmed notification), then a burst.
    notifier.publish(big(0)).unwrap();
    notifier.flush(Duration::from_secs(20)).unwrap();
    proxy.slow_downstream(Duration::from_millis(100));
    let mut most = 0;
    for b in 1..200 {
        notifier.publish(big(b)).unwrap();
        most = most.max(notifier.stats().buffered_bytes);
    }
    notifier.flush(Duration::from_secs(60)).unwrap();
    let stats = notifier.stats();
    assert_eq!(
        (stats.confirmed_notifications, stats.dropped_notifications),
        (200, 0)
    );
    // 256 KiB, plus what confirms could not bring down within a 20 ms wait.
    assert!(most <= 3 << 19, "{most} bytes were unconfirmed at once");
    notifier.close(Duration::from_secs(10)).unwrap();
    amqp.cleanup(&exchange, &[queue]);
}

#[test]
fn a_broker_that_stops_confirming_holds_publish_back_only_briefly() {
    // Connected, but its confirms are held 3 s: publish stops waiting on it once it has
    // confirmed nothing for 500 ms of waits (150 waits of 20 ms would be 3 s), and the
    // buffer holds the rest until the confirms come.
    let amqp = Amqp::connect();
    let proxy = Proxy::start();
    let cfg = config(&proxy.url());
    let (exchange, queue) = (cfg.exchange.clone(), queue_of(&cfg));
    let notifier = Notifier::new(cfg).unwrap();
    notifier.publish(batch("cpu", 0, 50)).unwrap();
    notifier.flush(Duration::from_secs(20)).unwrap();
    proxy.slow_downstream(Duration::from_secs(3));
    let t = Instant::now();
    for b in 1..150 {
        notifier.publish(batch("cpu", b, 50)).unwrap();
    }
    let took = t.elapsed();
    proxy.slow_downstream(Duration::ZERO);
    notifier.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(
        (
            notifier.stats().confirmed_notifications,
            notifier.stats().dropped_notifications
        ),
        (150, 0)
    );
    assert!(
        took < Duration::from_millis(1500),
        "publish stalled {took:?}"
    );
    notifier.close(Duration::from_secs(10)).unwrap();
    amqp.cleanup(&exchange, &[queue]);
}
