//! The AMQP bodies of one batch: one oslo.messaging v2 notification per topic (spec §9.1-9.2),
//! built by `longshore_publisher::notification`. As oslo does, the copies on the different
//! topics share `message_id` and `timestamp` and each gets its own `_unique_id`.

use std::time::SystemTime;

use longshore_publisher::notification::{encode_notification_into, NotificationIds};
use longshore_publisher::MessageJson;

/// One body per topic, in topic order.
pub(crate) fn encode_for_topics(
    samples: &[impl MessageJson],
    publisher_id: &str,
    event_type: &str,
    topics: usize,
    now: SystemTime,
) -> Vec<Vec<u8>> {
    let mut ids = NotificationIds::new(now);
    let mut bodies = Vec::with_capacity(topics);
    for i in 0..topics {
        if i > 0 {
            ids.unique_id = NotificationIds::new(now).unique_id;
        }
        let mut body = Vec::new();
        encode_notification_into(&mut body, samples, publisher_id, event_type, &ids);
        bodies.push(body);
    }
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;
    use longshore_plugin_api::Map;

    fn inner(body: &[u8]) -> serde_json::Value {
        let outer: serde_json::Value = serde_json::from_slice(body).unwrap();
        serde_json::from_str(outer["oslo.message"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn topics_share_message_id_not_unique_id() {
        let s = Map::new()
            .with("counter_name", "cpu")
            .with("counter_volume", 1.5);
        let b = encode_for_topics(
            &[s],
            "ceilometer.polling",
            "telemetry.polling",
            2,
            SystemTime::now(),
        );
        assert_eq!(b.len(), 2);
        let (a, c) = (inner(&b[0]), inner(&b[1]));
        assert_eq!(a["message_id"], c["message_id"]);
        assert_eq!(a["timestamp"], c["timestamp"]);
        assert_ne!(a["_unique_id"], c["_unique_id"]);
        assert_eq!(a["payload"]["samples"][0]["counter_volume"], 1.5);
        assert_eq!(a["priority"], "SAMPLE");
    }
}
