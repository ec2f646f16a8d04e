//! The oslo.messaging v2 notification for a batch of meter messages, as bytes ready for
//! AMQP: the inner dict (`message_id`, `publisher_id`, `event_type`, `priority`,
//! `payload.samples`, `timestamp`, `_unique_id`) JSON-encoded inside the envelope
//! `{"oslo.version": "2.0", "oslo.message": "..."}`, byte for byte as oslo writes it.

use std::time::SystemTime;

use longshore_plugin_api::Map;

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
    samples: &[Map],
    publisher_id: &str,
    event_type: &str,
    now: SystemTime,
) -> Vec<u8> {
    let mut body = Vec::new();
    encode_notification_into(
        &mut body,
        &mut Vec::new(),
        samples,
        publisher_id,
        event_type,
        &NotificationIds::new(now),
    );
    body
}

/// As [`encode_notification`] with given ids, appending the body to `body` and using
/// `scratch` for the inner JSON (reuse both to avoid allocating per notification).
pub fn encode_notification_into(
    body: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    samples: &[Map],
    publisher_id: &str,
    event_type: &str,
    ids: &NotificationIds,
) {
    scratch.clear();
    encode_inner(scratch, samples, publisher_id, event_type, ids);
    // Every `"` of the inner text gains a backslash in the envelope: ~1.2x.
    body.reserve(scratch.len() + scratch.len() / 4 + 48);
    body.extend_from_slice(br#"{"oslo.version": ""#);
    body.extend_from_slice(OSLO_VERSION.as_bytes());
    body.extend_from_slice(br#"", "oslo.message": "#);
    // The inner text is ASCII (ensure_ascii), so this is valid UTF-8 and write_str's
    // escaping is exactly json.dumps of the string.
    pyjson::write_str(body, std::str::from_utf8(scratch).unwrap_or_default());
    body.push(b'}');
}

/// The inner dict's JSON (the `messagingv1` body, and the `oslo.message` string of v2).
pub fn encode_inner(
    out: &mut Vec<u8>,
    samples: &[Map],
    publisher_id: &str,
    event_type: &str,
    ids: &NotificationIds,
) {
    out.reserve(256 + samples.len() * 1600);
    out.extend_from_slice(br#"{"message_id": "#);
    pyjson::write_str(out, &ids.message_id);
    out.extend_from_slice(br#", "publisher_id": "#);
    pyjson::write_str(out, publisher_id);
    out.extend_from_slice(br#", "event_type": "#);
    pyjson::write_str(out, event_type);
    out.extend_from_slice(br#", "priority": "#);
    pyjson::write_str(out, PRIORITY);
    out.extend_from_slice(br#", "payload": {"samples": ["#);
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        pyjson::write_map(out, s);
    }
    out.extend_from_slice(br#"]}, "timestamp": "#);
    pyjson::write_str(out, &ids.timestamp);
    out.extend_from_slice(br#", "_unique_id": "#);
    pyjson::write_str(out, &ids.unique_id);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
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
            &mut Vec::new(),
            &[sample],
            PUBLISHER_ID,
            EVENT_TYPE,
            &ids,
        );
        let want = r#"{"oslo.version": "2.0", "oslo.message": "{\"message_id\": \"0b7a5b0e-3c4f-4a55-9d8e-2f0e6b8a9c11\", \"publisher_id\": \"ceilometer.polling\", \"event_type\": \"telemetry.polling\", \"priority\": \"SAMPLE\", \"payload\": {\"samples\": [{\"counter_name\": \"vcpus\", \"resource_metadata\": {\"display_name\": \"vm\\u00e9\"}}]}, \"timestamp\": \"2025-01-02 03:04:05.987654\", \"_unique_id\": \"3f2b9c0e8d7a4b6c9e1f0a2b3c4d5e6f\"}"}"#;
        assert_eq!(String::from_utf8(body).unwrap(), want);
    }

    #[test]
    fn fresh_ids_have_oslo_shapes() {
        let now = UNIX_EPOCH + Duration::new(1_735_787_045, 987_654_000);
        let ids = NotificationIds::new(now);
        assert_eq!(ids.timestamp, "2025-01-02 03:04:05.987654");
        assert_eq!(ids.message_id.len(), 36);
        assert_eq!(ids.unique_id.len(), 32);
        let body = encode_notification(&[], PUBLISHER_ID, EVENT_TYPE, now);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(r#"\"payload\": {\"samples\": []}"#), "{text}");
    }
}
