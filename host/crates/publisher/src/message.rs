//! Sample → meter message: Ceilometer's `meter_message_from_counter`, the signed dict that
//! goes into a notification's `payload.samples`, with Ceilometer's key order and a uuid1
//! `message_id`. [`MessageFactory`] bundles the per-agent settings for the polling loop.

use longshore_plugin_api::{Map, Sample, Value};

use crate::ids::Uuid1Generator;
use crate::signature::{Signer, SIGNATURE_KEY};

pub use crate::clock::{monotonic_now, notification_timestamp, polling_timestamp};

/// `[DEFAULT] sample_source` default.
pub const DEFAULT_SAMPLE_SOURCE: &str = "openstack";

/// The number of keys of a meter message.
const MESSAGE_KEYS: usize = 15;

/// What the host supplies where a sample leaves a field unset.
#[derive(Debug, Clone, Copy)]
pub struct MessageDefaults<'a> {
    /// `[DEFAULT] sample_source`, for samples without a source.
    pub source: &'a str,
    /// Monotonic seconds ([`monotonic_now`]) for samples without `monotonic_time`.
    pub monotonic_time: f64,
}

/// Ceilometer's `meter_message_from_counter(sample, secret)`: the message dict, keys in
/// Ceilometer's order, `message_signature` last.
///
/// `message_id` is a fresh uuid1 from `ids` (Ceilometer gives each `Sample` a uuid1 when
/// it is made). A sample without a timestamp gets `null`, as Ceilometer would (the
/// polling loop always stamps one). This clones the resource metadata; the polling loop,
/// which owns its samples, should use [`into_meter_message`] instead.
pub fn meter_message_from_counter(
    sample: &Sample,
    signer: &Signer,
    ids: &Uuid1Generator,
    defaults: &MessageDefaults<'_>,
) -> Map {
    build(
        sample,
        sample.resource_metadata().clone(),
        signer,
        ids,
        defaults,
    )
}

/// As [`meter_message_from_counter`], moving the resource metadata out of the sample
/// instead of copying it (the costliest part of building a message).
pub fn into_meter_message(
    mut sample: Sample,
    signer: &Signer,
    ids: &Uuid1Generator,
    defaults: &MessageDefaults<'_>,
) -> Map {
    let metadata = std::mem::take(sample.resource_metadata_mut());
    build(&sample, metadata, signer, ids, defaults)
}

fn build(
    sample: &Sample,
    metadata: Map,
    signer: &Signer,
    ids: &Uuid1Generator,
    defaults: &MessageDefaults<'_>,
) -> Map {
    let mut id_buf = [0u8; 36];
    let mut m = Map::with_capacity(MESSAGE_KEYS);
    m.insert("source", sample.source().unwrap_or(defaults.source));
    m.insert("counter_name", sample.name());
    m.insert("counter_type", sample.kind().as_str());
    m.insert("counter_unit", sample.unit());
    m.insert("counter_volume", sample.volume().clone());
    m.insert("user_id", sample.user_id());
    // identity_name_discovery never resolves names in Ceilometer 27 (spec §4.2), and
    // Sample has no field for them: always null.
    m.insert("user_name", Value::NULL);
    m.insert("project_id", sample.project_id());
    m.insert("project_name", Value::NULL);
    m.insert("resource_id", sample.resource_id());
    m.insert("timestamp", sample.timestamp());
    m.insert("resource_metadata", metadata);
    m.insert("message_id", ids.next_str(&mut id_buf));
    m.insert(
        "monotonic_time",
        sample.monotonic_time().unwrap_or(defaults.monotonic_time),
    );
    let mut sig_buf = [0u8; 64];
    let signature = signer.sign_into(&m, &mut sig_buf).unwrap_or("");
    m.insert(SIGNATURE_KEY, signature);
    m
}

/// Everything the polling loop needs to turn samples into signed messages: the signer
/// (`[publisher] telemetry_secret`), `[DEFAULT] sample_source` and the uuid1 generator.
/// Cheap to share between threads (`&MessageFactory` is all a task needs).
#[derive(Debug)]
pub struct MessageFactory {
    signer: Signer,
    source: String,
    ids: &'static Uuid1Generator,
}

impl MessageFactory {
    pub fn new(telemetry_secret: &str, sample_source: &str) -> MessageFactory {
        MessageFactory {
            signer: Signer::new(telemetry_secret),
            source: sample_source.to_owned(),
            ids: Uuid1Generator::global(),
        }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The signed message for `sample`; `monotonic_now` is used when the sample carries
    /// no `monotonic_time`.
    pub fn message(&self, sample: Sample, monotonic_now: f64) -> Map {
        let defaults = MessageDefaults {
            source: &self.source,
            monotonic_time: monotonic_now,
        };
        into_meter_message(sample, &self.signer, self.ids, &defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use longshore_plugin_api::SampleType;

    fn sample() -> Sample {
        Sample::new("cpu", SampleType::Cumulative, "ns", 5u64, "r-1")
            .with_user_id(Some("u"))
            .with_project_id(Some("p"))
            .with_metadata("flavor", Map::new().with("vcpus", 1))
            .with_timestamp("2025-01-02T03:04:05.123456")
    }

    #[test]
    fn keys_follow_ceilometer_order() {
        let defaults = MessageDefaults {
            source: DEFAULT_SAMPLE_SOURCE,
            monotonic_time: 1.5,
        };
        let m = meter_message_from_counter(
            &sample(),
            &Signer::new("s"),
            Uuid1Generator::global(),
            &defaults,
        );
        let keys: Vec<&str> = m.keys().collect();
        assert_eq!(
            keys,
            [
                "source",
                "counter_name",
                "counter_type",
                "counter_unit",
                "counter_volume",
                "user_id",
                "user_name",
                "project_id",
                "project_name",
                "resource_id",
                "timestamp",
                "resource_metadata",
                "message_id",
                "monotonic_time",
                "message_signature",
            ]
        );
        assert_eq!(m.get("source").and_then(Value::as_str), Some("openstack"));
        assert_eq!(
            m.get("counter_type").and_then(Value::as_str),
            Some("cumulative")
        );
        assert_eq!(m.get("monotonic_time").and_then(Value::as_f64), Some(1.5));
        assert!(m.get("user_name").is_some_and(Value::is_null));
        assert_eq!(
            m.get("message_signature")
                .and_then(Value::as_str)
                .map(str::len),
            Some(64)
        );
        assert!(crate::signature::verify_signature(&m, "s"));
    }

    #[test]
    fn sample_fields_win_over_defaults_and_empty_secret_gives_empty_signature() {
        let f = MessageFactory::new("", "elsewhere");
        let m = f.message(sample().with_source("mine").with_monotonic_time(9.25), 1.0);
        assert_eq!(m.get("source").and_then(Value::as_str), Some("mine"));
        assert_eq!(m.get("monotonic_time").and_then(Value::as_f64), Some(9.25));
        assert_eq!(m.get("message_signature").and_then(Value::as_str), Some(""));
        let m = f.message(sample(), 1.0);
        assert_eq!(m.get("source").and_then(Value::as_str), Some("elsewhere"));
    }

    #[test]
    fn consuming_and_borrowing_forms_agree() {
        let ids = Uuid1Generator::with_node([1, 2, 3, 4, 5, 6], 1);
        let d = MessageDefaults {
            source: "openstack",
            monotonic_time: 2.0,
        };
        let signer = Signer::new("s");
        let mut a = meter_message_from_counter(&sample(), &signer, &ids, &d);
        let mut b = into_meter_message(sample(), &signer, &ids, &d);
        for m in [&mut a, &mut b] {
            m.remove("message_id");
            m.remove("message_signature");
        }
        assert_eq!(a, b);
    }

    #[test]
    fn missing_owner_and_timestamp_are_null() {
        let s = Sample::new("vcpus", SampleType::Gauge, "vcpu", 1, "r");
        let f = MessageFactory::new("s", "openstack");
        let m = f.message(s, 1.0);
        for k in ["user_id", "project_id", "timestamp"] {
            assert!(m.get(k).is_some_and(Value::is_null), "{k}");
        }
    }
}
