//! What the notifier puts on a real RabbitMQ, compared with what the real Ceilometer 27.0.0
//! put there (tests/fixtures/capture/raw): body bytes (modulo the per-notification ids),
//! key order, AMQP properties, exchange/queue declare flags, binding, one copy per topic.

mod notifier_common;

use std::time::Duration;

use longshore_notifier::Notifier;
use longshore_plugin_api::Map;
use longshore_publisher::{Batch, Publisher};
use notifier_common::*;

fn capture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/capture/raw")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn inner_of(body: &[u8]) -> serde_json::Value {
    let outer: serde_json::Value = serde_json::from_slice(body).unwrap();
    serde_json::from_str(outer["oslo.message"].as_str().unwrap()).unwrap()
}

/// The captured bodies' samples as meter messages (key order and int/float kept).
fn captured_samples(body: &[u8]) -> Vec<Map> {
    inner_of(body)["payload"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::from_value::<Map>(s.clone()).unwrap())
        .collect()
}

#[test]
fn body_and_properties_match_the_ceilometer_capture() {
    let logs = logs();
    let amqp = Amqp::connect();
    let mut cfg = config("rabbit://guest:guest@127.0.0.1:5672/");
    cfg.exchange = unique("lsn-wire");
    let exchange = cfg.exchange.clone();
    let queue = cfg.routing_keys()[0].clone();
    let notifier = Notifier::new(cfg).unwrap();
    assert_eq!(
        notifier.describe(),
        "notifier://rabbit://guest:***@127.0.0.1:5672/"
    );

    let mut checked = 0;
    for n in ["00001", "00002", "00017", "00046"] {
        let want = capture(&format!("{n}.body"));
        let want_props: serde_json::Value =
            serde_json::from_slice(&capture(&format!("{n}.amqp.json"))).unwrap();
        notifier
            .publish(Batch {
                source: "some_pollsters".into(),
                pollster: "x".into(),
                messages: captured_samples(&want)
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            })
            .unwrap();
        notifier.flush(Duration::from_secs(20)).unwrap();
        let got = amqp.take(&queue, 1, Duration::from_secs(10), Duration::ZERO);
        assert_eq!(got.len(), 1, "message {n} not received");
        let got = &got[0];

        // Exchange and routing key: ours is per test, the key is `<topic>.sample`.
        assert_eq!(got.exchange, exchange);
        assert_eq!(got.routing_key, queue);
        assert_eq!(want_props["routing_key"], "notifications.sample");

        // Properties exactly as kombu set them, nothing else.
        let p = &got.properties;
        let wp = &want_props["properties"];
        assert_eq!(
            p.content_type().map(String::as_str),
            wp["content_type"].as_str()
        );
        assert_eq!(
            p.content_encoding().map(String::as_str),
            wp["content_encoding"].as_str()
        );
        assert_eq!(
            p.delivery_mode().map(u64::from),
            wp["delivery_mode"].as_u64()
        );
        assert_eq!(p.priority().map(u64::from), wp["priority"].as_u64());
        let headers = p.headers().expect("an (empty) headers table is present");
        assert!(headers.as_ref().is_empty() && wp["headers"].as_object().unwrap().is_empty());
        assert!(p.message_id().is_none() && p.correlation_id().is_none());
        assert!(p.timestamp().is_none() && p.reply_to().is_none() && p.expiration().is_none());
        assert!(p.message_type().is_none() && p.user_id().is_none() && p.app_id().is_none());

        // Same key order in the inner dict.
        let (gi, wi) = (got.inner(), inner_of(&want));
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&gi), keys(&wi));
        assert_eq!(gi["publisher_id"], "ceilometer.polling");
        assert_eq!(gi["event_type"], "telemetry.polling");
        assert_eq!(gi["priority"], "SAMPLE");

        // Byte-identical once the three per-notification values are Ceilometer's.
        let mut text = String::from_utf8(got.body.clone()).unwrap();
        for k in ["message_id", "timestamp", "_unique_id"] {
            let ours = gi[k].as_str().unwrap();
            let theirs = wi[k].as_str().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{k}: {ours} vs {theirs}");
            assert_eq!(text.matches(ours).count(), 1, "{k} appears once");
            text = text.replace(ours, theirs);
        }
        assert_eq!(text.as_bytes(), &want[..], "body of capture {n} differs");
        assert_eq!(
            got.body.len() as u64,
            want_props["body_bytes"].as_u64().unwrap()
        );
        checked += 1;
    }
    assert_eq!(checked, 4);

    // Declared as Ceilometer does (tests/fixtures/capture/rabbitmq-*.txt): a non-durable,
    // non-auto-delete topic exchange, and a queue named after the routing key, same flags.
    amqp.exchange_equivalent(&exchange, "topic", false, false)
        .expect("exchange is topic, durable=false, auto_delete=false");
    assert!(amqp
        .exchange_equivalent(&exchange, "topic", true, false)
        .is_err());
    let (msgs, _) = amqp
        .queue_equivalent(&queue, false, false)
        .expect("queue durable=false, auto_delete=false");
    assert_eq!(msgs, 0);
    assert!(amqp.queue_equivalent(&queue, true, false).is_err());

    notifier.close(Duration::from_secs(10)).unwrap();
    assert!(
        notifier.publish(batch("cpu", 0, 1)).is_err(),
        "publish after close fails"
    );
    let s = notifier.stats();
    assert_eq!(
        (
            s.confirmed_notifications,
            s.dropped_samples,
            s.resent_notifications
        ),
        (4, 0, 0)
    );
    assert!(
        logs.all().iter().all(|l| !l.contains("guest:guest")),
        "password in logs"
    );
    amqp.cleanup(&exchange, &[queue]);
}

#[test]
fn one_copy_per_topic_sharing_message_id() {
    let amqp = Amqp::connect();
    let mut cfg = config("amqp://guest:guest@127.0.0.1:5672/%2F");
    cfg.topics = vec![unique("lsn-t1"), unique("lsn-t2")];
    let exchange = cfg.exchange.clone();
    let queues = cfg.routing_keys();
    let notifier = Notifier::new(cfg).unwrap();
    for b in 0..3 {
        notifier.publish(batch("cpu", b, 5)).unwrap();
    }
    notifier.flush(Duration::from_secs(20)).unwrap();
    let a = amqp.take(&queues[0], 3, Duration::from_secs(10), Duration::ZERO);
    let b = amqp.take(&queues[1], 3, Duration::from_secs(10), Duration::ZERO);
    assert_eq!((a.len(), b.len()), (3, 3));
    for (x, y) in a.iter().zip(&b) {
        let (xi, yi) = (x.inner(), y.inner());
        assert_eq!(xi["message_id"], yi["message_id"]);
        assert_ne!(xi["_unique_id"], yi["_unique_id"]);
        assert_eq!(xi["payload"], yi["payload"]);
        assert_eq!(x.routing_key, queues[0]);
        assert_eq!(y.routing_key, queues[1]);
    }
    // In order.
    let ids: Vec<String> = a.iter().flat_map(|r| r.sample_ids()).collect();
    let want: Vec<String> = (0..15).map(|i| format!("cpu-{i:08}")).collect();
    assert_eq!(ids, want);
    notifier.close(Duration::from_secs(10)).unwrap();
    amqp.cleanup(&exchange, &queues);
}

#[test]
fn existing_durable_exchange_is_used_as_it_is() {
    // oslo would loop on PRECONDITION_FAILED here (it re-declares non-durable); we publish
    // to the exchange that exists.
    let amqp = Amqp::connect();
    let cfg = config("rabbit://guest:guest@127.0.0.1:5672/");
    let exchange = cfg.exchange.clone();
    let queue = cfg.routing_keys()[0].clone();
    amqp.exchange_equivalent(&exchange, "topic", true, false)
        .unwrap();
    let logs = logs();
    let notifier = Notifier::new(cfg).unwrap();
    notifier.publish(batch("mem", 0, 2)).unwrap();
    notifier.flush(Duration::from_secs(20)).unwrap();
    assert_eq!(
        amqp.take(&queue, 1, Duration::from_secs(10), Duration::ZERO)
            .len(),
        1
    );
    let warned = logs.wait_for(1, Duration::from_secs(1), |l| {
        l.contains(&exchange) && l.contains("exists with other flags")
    });
    assert_eq!(warned.len(), 1);
    notifier.close(Duration::from_secs(10)).unwrap();
    amqp.cleanup(&exchange, &[queue]);
}
