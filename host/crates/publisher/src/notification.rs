//! The oslo.messaging v2 notification for a batch of meter messages, as bytes ready for
//! AMQP: the inner dict (`message_id`, `publisher_id`, `event_type`, `priority`,
//! `payload.samples`, `timestamp`, `_unique_id`) JSON-encoded inside the envelope
//! `{"oslo.version": "2.0", "oslo.message": "..."}`, byte for byte as oslo writes it.

use std::time::SystemTime;

use crate::message::MessageJson;

use crate::clock::notification_timestamp;
use crate::ids::{uuid4_hex, uuid4_string};
use crate::pyjson;

/// `publisher_id` of the polling agent's notifier.
pub const PUBLISHER_ID: &str = "ceilometer.polling";
/// `event_type` of polled samples.
pub const EVENT_TYPE: &str = "telemetry.polling";
/// `priority` in the body (`notifier.sample(...)`); the routing key uses it lower-cased:
/// `<topic>.sample`.
pub const PRIORITY: &str = "SAMPLE";
/// `oslo.version` of the v2 envelope (`messagingv2` driver).
pub const OSLO_VERSION: &str = "2.0";
/// AMQP properties oslo/kombu set on notifications.
pub const CONTENT_TYPE: &str = "application/json";
pub const CONTENT_ENCODING: &str = "utf-8";

/// The per-notification values that are not in the samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationIds {
    /// `str(uuid4())`.
    pub message_id: String,
    /// `str(utcnow())`, e.g. `2025-01-02 03:04:05.987654`.
    pub timestamp: String,
    /// `uuid4().hex`, for consumers' duplicate detection.
    pub unique_id: String,
}

impl NotificationIds {
    /// Fresh ids, timestamped `now`.
    pub fn new(now: SystemTime) -> NotificationIds {
        NotificationIds {
            message_id: uuid4_string(),
            timestamp: notification_timestamp(now),
            unique_id: uuid4_hex(),
        }
    }
}

/// The AMQP body of `notifier.sample({}, event_type, {"samples": samples})` published by
/// `publisher_id` through the `messagingv2` driver, with fresh ids stamped `now`.
pub fn encode_notification(
    samples: &[impl MessageJson],
    publisher_id: &str,
    event_type: &str,
    now: SystemTime,
) -> Vec<u8> {
    let mut body = Vec::new();
    encode_notification_into(
        &mut body,
        samples,
        publisher_id,
        event_type,
        &NotificationIds::new(now),
    );
    body
}

/// As [`encode_notification`] with given ids, appending the body to `body` (reuse it
/// to avoid allocating per notification).
///
/// The inner JSON is written directly in its string-escaped form, in one pass: the
/// same bytes as `json.dumps({"oslo.version": .., "oslo.message": json.dumps(msg)})`.
pub fn encode_notification_into(
    body: &mut Vec<u8>,
    samples: &[impl MessageJson],
    publisher_id: &str,
    event_type: &str,
    ids: &NotificationIds,
) {
    use pyjson::write_str_nested as text;
    body.reserve(320 + samples.len() * 1800);
    body.extend_from_slice(br#"{"oslo.version": ""#);
    body.extend_from_slice(OSLO_VERSION.as_bytes());
    body.extend_from_slice(br#"", "oslo.message": "{\"message_id\": "#);
    text(body, &ids.message_id);
    body.extend_from_slice(br#", \"publisher_id\": "#);
    text(body, publisher_id);
    body.extend_from_slice(br#", \"event_type\": "#);
    text(body, event_type);
    body.extend_from_slice(br#", \"priority\": "#);
    text(body, PRIORITY);
    body.extend_from_slice(br#", \"payload\": {\"samples\": ["#);
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b", ");
        }
        s.write_json_nested(body);
    }
    body.extend_from_slice(br#"]}, \"timestamp\": "#);
    text(body, &ids.timestamp);
    body.extend_from_slice(br#", \"_unique_id\": "#);
    text(body, &ids.unique_id);
    body.extend_from_slice(br#"}"}"#);
}

/// The inner dict's JSON alone: the `oslo.message` string of v2, and the whole body of
/// the `messagingv1` driver.
pub fn encode_inner(
    out: &mut Vec<u8>,
    samples: &[impl MessageJson],
    publisher_id: &str,
    event_type: &str,
    ids: &NotificationIds,
) {
    use pyjson::write_str as text;
    out.reserve(256 + samples.len() * 1600);
    out.extend_from_slice(br#"{"message_id": "#);
    text(out, &ids.message_id);
    out.extend_from_slice(br#", "publisher_id": "#);
    text(out, publisher_id);
    out.extend_from_slice(br#", "event_type": "#);
    text(out, event_type);
    out.extend_from_slice(br#", "priority": "#);
    text(out, PRIORITY);
    out.extend_from_slice(br#", "payload": {"samples": ["#);
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        s.write_json(out);
    }
    out.extend_from_slice(br#"]}, "timestamp": "#);
    text(out, &ids.timestamp);
    out.extend_from_slice(br#", "_unique_id": "#);
    text(out, &ids.unique_id);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use longshore_plugin_api::Map;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn envelope_layout_matches_spec_example() {
        let sample = Map::new()
            .with("counter_name", "vcpus")
            .with("resource_metadata", Map::new().with("display_name", "vmé"));
        let ids = NotificationIds {
            message_id: "0b7a5b0e-3c4f-4a55-9d8e-2f0e6b8a9c11".into(),
            timestamp: "2025-01-02 03:04:05.987654".into(),
            unique_id: "3f2b9c0e8d7a4b6c9e1f0a2b3c4d5e6f".into(),
        };
        let mut body = Vec::new();
        encode_notification_into(
            &mut body,
            std::slice::from_ref(&sample),
            PUBLISHER_ID,
            EVENT_TYPE,
            &ids,
        );
        let want = r#"{"oslo.version": "2.0", "oslo.message": "{\"message_id\": \"0b7a5b0e-3c4f-4a55-9d8e-2f0e6b8a9c11\", \"publisher_id\": \"ceilometer.polling\", \"event_type\": \"telemetry.polling\", \"priority\": \"SAMPLE\", \"payload\": {\"samples\": [{\"counter_name\": \"vcpus\", \"resource_metadata\": {\"display_name\": \"vm\\u00e9\"}}]}, \"timestamp\": \"2025-01-02 03:04:05.987654\", \"_unique_id\": \"3f2b9c0e8d7a4b6c9e1f0a2b3c4d5e6f\"}"}"#;
        assert_eq!(String::from_utf8(body).unwrap(), want);

        // v1 / the inner string alone
        let mut inner = Vec::new();
        encode_inner(&mut inner, &[sample], PUBLISHER_ID, EVENT_TYPE, &ids);
        let mut as_string = Vec::new();
        pyjson::write_str(&mut as_string, std::str::from_utf8(&inner).unwrap());
        assert!(want.contains(std::str::from_utf8(&as_string).unwrap()));
    }

    #[test]
    fn fresh_ids_have_oslo_shapes() {
        let now = UNIX_EPOCH + Duration::new(1_735_787_045, 987_654_000);
        let ids = NotificationIds::new(now);
        assert_eq!(ids.timestamp, "2025-01-02 03:04:05.987654");
        assert_eq!(ids.message_id.len(), 36);
        assert_eq!(ids.unique_id.len(), 32);
        let body = encode_notification(&[] as &[Map], PUBLISHER_ID, EVENT_TYPE, now);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(r#"\"payload\": {\"samples\": []}"#), "{text}");
    }
}
