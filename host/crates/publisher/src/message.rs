//! Sample → meter message: Ceilometer's `meter_message_from_counter`, the signed dict that
//! goes into a notification's `payload.samples`, with Ceilometer's key order and a uuid1
//! `message_id`. [`MessageFactory`] bundles the per-agent settings for the polling loop and
//! makes [`MeterMessage`]s (typed fields, no dict built); the free functions return dicts.

use std::sync::Arc;
use std::time::SystemTime;

use longshore_plugin_api::{Map, Sample, Value, ValueRef};

use crate::ids::Uuid1Generator;
use crate::metadata::{self, write_metadata, RenderedMetadata};
use crate::pyjson::FloatBuf;
use crate::signature::{MeterFields, SignScratch, Signer, SIGNATURE_KEY};

pub use crate::clock::{monotonic_now, notification_timestamp, polling_timestamp};

thread_local! {
    static SCRATCH: std::cell::RefCell<SignScratch> = std::cell::RefCell::new(SignScratch::new());
}

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
/// polling loop always stamps one). This clones the resource metadata; the polling loop
/// uses [`MessageFactory::message_at`], which builds no dict at all.
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
    build_at(sample, sample.timestamp(), metadata, signer, ids, defaults)
}

/// Builds the message with `timestamp` in place of the sample's own. Signs from the
/// fields first (fixed top-level order, see [`Signer::sign_meter_into`]) so the dict is
/// built once and never walked or sorted.
fn build_at(
    sample: &Sample,
    timestamp: Option<&str>,
    metadata: Map,
    signer: &Signer,
    ids: &Uuid1Generator,
    defaults: &MessageDefaults<'_>,
) -> Map {
    let mut id_buf = [0u8; 36];
    let message_id = ids.next_str(&mut id_buf);
    let source = sample.source().unwrap_or(defaults.source);
    let monotonic_time = sample.monotonic_time().unwrap_or(defaults.monotonic_time);
    let mut float_buf = FloatBuf::new();
    let mut sig_buf = [0u8; 64];
    let signature = signer
        .sign_meter_into(
            &MeterFields {
                source,
                counter_name: sample.name(),
                counter_type: sample.kind().as_str(),
                counter_unit: sample.unit(),
                counter_volume: sample.volume(),
                counter_volume_str: None,
                user_id: sample.user_id(),
                project_id: sample.project_id(),
                resource_id: sample.resource_id(),
                timestamp,
                resource_metadata: &metadata,
                message_id,
                monotonic_time: float_buf.format(monotonic_time),
                rendered: None,
            },
            &mut sig_buf,
        )
        .unwrap_or("");
    let mut m = Map::with_capacity(MESSAGE_KEYS);
    m.insert("source", source);
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
    m.insert("timestamp", timestamp);
    m.insert("resource_metadata", metadata);
    m.insert("message_id", message_id);
    m.insert("monotonic_time", monotonic_time);
    m.insert(SIGNATURE_KEY, signature);
    m
}

/// A signed meter message: the dict of [`meter_message_from_counter`], kept as the
/// sample it was made from plus its uuid1 and signature, so making one allocates
/// nothing and its JSON is written straight from the fields. A message that only exists
/// as a dict (parsed, or made by a test) is kept as that dict ([`MeterMessage::from_map`]).
#[derive(Debug, Clone)]
pub struct MeterMessage(Repr);

// The fields are the common case: boxing them would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Repr {
    Fields(Fields),
    Dict(Box<Map>),
}

#[derive(Debug, Clone)]
struct Fields {
    /// The sample; its `resource_metadata` is the message's, its timestamp is used
    /// unless `timestamp` overrides it.
    sample: Sample,
    /// `[DEFAULT] sample_source`, for a sample without a source.
    default_source: Arc<str>,
    /// The pollster run's timestamp, shared by the run's messages.
    timestamp: Option<Arc<str>>,
    /// `monotonic_time` and its `repr()`, formatted once for the signature and the JSON.
    monotonic: NumberRepr,
    /// `repr()` of an int or finite float `counter_volume`, formatted once for both as
    /// well (`str()` and JSON agree on them).
    volume_repr: Option<NumberRepr>,
    message_id: [u8; 36],
    /// 64 hex digits, or none (`""`) without a secret.
    signature: [u8; 64],
    signed: bool,
}

impl Fields {
    fn source(&self) -> &str {
        self.sample.source().unwrap_or(&self.default_source)
    }
    fn timestamp(&self) -> Option<&str> {
        match &self.timestamp {
            Some(t) => Some(t),
            None => self.sample.timestamp(),
        }
    }
    fn message_id(&self) -> &str {
        ascii(&self.message_id)
    }
    fn monotonic_repr(&self) -> &str {
        self.monotonic.as_str()
    }
    fn signature(&self) -> &str {
        if self.signed {
            ascii(&self.signature)
        } else {
            ""
        }
    }
    /// The rendering kept with the metadata's shared entries (the resource's), if any.
    fn rendered(&self) -> Option<&RenderedMetadata> {
        metadata::attached(self.sample.resource_metadata())
    }
    fn signed_fields(&self) -> MeterFields<'_> {
        let s = &self.sample;
        MeterFields {
            source: self.source(),
            counter_name: s.name(),
            counter_type: s.kind().as_str(),
            counter_unit: s.unit(),
            counter_volume: s.volume(),
            counter_volume_str: self.volume_repr.as_ref().map(NumberRepr::as_str),
            user_id: s.user_id(),
            project_id: s.project_id(),
            resource_id: s.resource_id(),
            timestamp: self.timestamp(),
            resource_metadata: s.resource_metadata(),
            message_id: self.message_id(),
            monotonic_time: self.monotonic_repr(),
            rendered: self.rendered(),
        }
    }

    /// Python's `json.dumps` of the dict, keys in Ceilometer's order.
    fn write_json<const NESTED: bool>(&self, out: &mut Vec<u8>) {
        use crate::pyjson::{str_g, value_g, write_float};
        let q: &[u8] = if NESTED { b"\\\"" } else { b"\"" };
        let key = |out: &mut Vec<u8>, first: bool, name: &[u8]| {
            if !first {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(q);
            out.extend_from_slice(name);
            out.extend_from_slice(q);
            out.extend_from_slice(b": ");
        };
        let opt = |out: &mut Vec<u8>, v: Option<&str>| match v {
            Some(v) => str_g::<NESTED>(out, v),
            None => out.extend_from_slice(b"null"),
        };
        let s = &self.sample;
        out.reserve(512);
        out.push(b'{');
        key(out, true, b"source");
        str_g::<NESTED>(out, self.source());
        key(out, false, b"counter_name");
        str_g::<NESTED>(out, s.name());
        key(out, false, b"counter_type");
        str_g::<NESTED>(out, s.kind().as_str());
        key(out, false, b"counter_unit");
        str_g::<NESTED>(out, s.unit());
        key(out, false, b"counter_volume");
        match &self.volume_repr {
            Some(r) => out.extend_from_slice(r.as_str().as_bytes()),
            None => value_g::<NESTED>(out, s.volume()),
        }
        key(out, false, b"user_id");
        opt(out, s.user_id());
        key(out, false, b"user_name");
        out.extend_from_slice(b"null");
        key(out, false, b"project_id");
        opt(out, s.project_id());
        key(out, false, b"project_name");
        out.extend_from_slice(b"null");
        key(out, false, b"resource_id");
        str_g::<NESTED>(out, s.resource_id());
        key(out, false, b"timestamp");
        opt(out, self.timestamp());
        key(out, false, b"resource_metadata");
        write_metadata::<NESTED>(out, s.resource_metadata(), self.rendered());
        key(out, false, b"message_id");
        out.extend_from_slice(q);
        out.extend_from_slice(&self.message_id);
        out.extend_from_slice(q);
        key(out, false, b"monotonic_time");
        if self.monotonic.value.is_finite() {
            out.extend_from_slice(self.monotonic_repr().as_bytes());
        } else {
            // JSON spells these NaN/Infinity, str() nan/inf.
            write_float(out, self.monotonic.value);
        }
        key(out, false, SIGNATURE_KEY.as_bytes());
        out.extend_from_slice(q);
        out.extend_from_slice(self.signature().as_bytes());
        out.extend_from_slice(q);
        out.push(b'}');
    }
}

/// The text of a message's fixed-size fields (message id, signature, float reprs):
/// they start zeroed and only the uuid, hex and float formatters write them, all ASCII.
/// Checking that again on every read cost ~1.5 % of a message.
fn ascii(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: ASCII (see above) is UTF-8.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// A number (an int or a float) with its `repr()`, formatted once for every use (a
/// run's monotonic time is shared by all its messages).
#[derive(Debug, Clone, Copy)]
struct NumberRepr {
    value: f64,
    repr: [u8; 32],
    len: u8,
}

impl NumberRepr {
    fn as_str(&self) -> &str {
        ascii(&self.repr[..self.len as usize])
    }

    /// An int's decimal text (its `value` is unused).
    fn int(i: i64) -> NumberRepr {
        let mut repr = [0u8; 32];
        let mut buf = [0u8; 20];
        let text = crate::pyjson::format_int(i, &mut buf);
        repr[..text.len()].copy_from_slice(text);
        NumberRepr {
            value: i as f64,
            repr,
            len: text.len() as u8,
        }
    }

    fn new(value: f64) -> NumberRepr {
        let mut repr = [0u8; 32];
        let mut float_buf = FloatBuf::new();
        let text = float_buf.format(value).as_bytes();
        // A float's repr is at most 24 bytes ("-2.2250738585072014e-308").
        let len = text.len().min(32);
        repr[..len].copy_from_slice(&text[..len]);
        NumberRepr {
            value,
            repr,
            len: len as u8,
        }
    }
}

impl Fields {
    /// The message of `sample`, not yet signed; `now` is used when the sample carries no
    /// `monotonic_time`, and `clock` stamps its uuid1. Its resource's metadata is
    /// rendered here if it was not yet.
    fn new(
        sample: Sample,
        default_source: &Arc<str>,
        timestamp: Option<&Arc<str>>,
        now: &NumberRepr,
        ids: &Uuid1Generator,
        clock: SystemTime,
    ) -> Fields {
        metadata::rendered(sample.resource_metadata());
        let monotonic = match sample.monotonic_time() {
            Some(t) => NumberRepr::new(t),
            None => *now,
        };
        let volume_repr = match sample.volume().get() {
            ValueRef::Float(v) if v.is_finite() => Some(NumberRepr::new(v)),
            ValueRef::Int(i) => Some(NumberRepr::int(i)),
            _ => None,
        };
        let mut f = Fields {
            monotonic,
            volume_repr,
            sample,
            default_source: Arc::clone(default_source),
            timestamp: timestamp.cloned(),
            message_id: [0; 36],
            signature: [0; 64],
            signed: false,
        };
        ids.next_at(clock)
            .hyphenated()
            .encode_lower(&mut f.message_id);
        f
    }

    fn sign(&mut self, signer: &Signer) {
        let mut sig = [0u8; 64];
        self.signed = signer
            .sign_meter_into(&self.signed_fields(), &mut sig)
            .is_some();
        self.signature = sig;
    }
}

impl MeterMessage {
    /// Signs `sample` as Ceilometer's `meter_message_from_counter` would, with
    /// `timestamp` (when given) in place of the sample's own.
    fn new(
        sample: Sample,
        default_source: &Arc<str>,
        timestamp: Option<&Arc<str>>,
        monotonic_now: f64,
        signer: &Signer,
        ids: &Uuid1Generator,
    ) -> MeterMessage {
        let now = NumberRepr::new(monotonic_now);
        let mut f = Fields::new(
            sample,
            default_source,
            timestamp,
            &now,
            ids,
            SystemTime::now(),
        );
        f.sign(signer);
        MeterMessage(Repr::Fields(f))
    }

    /// A message that exists only as a dict (keys in its own order, signed or not).
    pub fn from_map(map: Map) -> MeterMessage {
        MeterMessage(Repr::Dict(Box::new(map)))
    }

    /// The message as the dict Ceilometer builds (keys in Ceilometer's order).
    pub fn to_map(&self) -> Map {
        let f = match &self.0 {
            Repr::Dict(m) => return (**m).clone(),
            Repr::Fields(f) => f,
        };
        let s = &f.sample;
        let mut m = Map::with_capacity(MESSAGE_KEYS);
        m.insert("source", f.source());
        m.insert("counter_name", s.name());
        m.insert("counter_type", s.kind().as_str());
        m.insert("counter_unit", s.unit());
        m.insert("counter_volume", s.volume().clone());
        m.insert("user_id", s.user_id());
        m.insert("user_name", Value::NULL);
        m.insert("project_id", s.project_id());
        m.insert("project_name", Value::NULL);
        m.insert("resource_id", s.resource_id());
        m.insert("timestamp", f.timestamp());
        m.insert("resource_metadata", s.resource_metadata().clone());
        m.insert("message_id", f.message_id());
        m.insert("monotonic_time", f.monotonic.value);
        m.insert(SIGNATURE_KEY, f.signature());
        m
    }

    /// `message_id` (None for a dict without a string one).
    pub fn message_id(&self) -> Option<&str> {
        match &self.0 {
            Repr::Fields(f) => Some(f.message_id()),
            Repr::Dict(m) => m.get("message_id").and_then(Value::as_str),
        }
    }

    /// `message_signature` (None for a dict without a string one).
    pub fn signature(&self) -> Option<&str> {
        match &self.0 {
            Repr::Fields(f) => Some(f.signature()),
            Repr::Dict(m) => m.get(SIGNATURE_KEY).and_then(Value::as_str),
        }
    }

    /// Append Python's `json.dumps(message)`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Fields(f) => f.write_json::<false>(out),
            Repr::Dict(m) => crate::pyjson::write_map(out, m),
        }
    }

    /// Append the JSON as it appears inside a JSON string (see
    /// [`crate::pyjson::write_map_nested`]).
    pub fn write_json_nested(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Fields(f) => f.write_json::<true>(out),
            Repr::Dict(m) => crate::pyjson::write_map_nested(out, m),
        }
    }
}

impl From<Map> for MeterMessage {
    fn from(map: Map) -> MeterMessage {
        MeterMessage::from_map(map)
    }
}

/// What a notification's `payload.samples` can hold: a [`MeterMessage`] or a plain dict.
pub trait MessageJson {
    /// Append Python's `json.dumps(self)`.
    fn write_json(&self, out: &mut Vec<u8>);
    /// As [`MessageJson::write_json`], nested inside a JSON string.
    fn write_json_nested(&self, out: &mut Vec<u8>);
}

impl MessageJson for MeterMessage {
    fn write_json(&self, out: &mut Vec<u8>) {
        MeterMessage::write_json(self, out)
    }
    fn write_json_nested(&self, out: &mut Vec<u8>) {
        MeterMessage::write_json_nested(self, out)
    }
}

impl MessageJson for Map {
    fn write_json(&self, out: &mut Vec<u8>) {
        crate::pyjson::write_map(out, self)
    }
    fn write_json_nested(&self, out: &mut Vec<u8>) {
        crate::pyjson::write_map_nested(out, self)
    }
}

/// Everything the polling loop needs to turn samples into signed messages: the signer
/// (`[publisher] telemetry_secret`), `[DEFAULT] sample_source` and the uuid1 generator.
/// Cheap to share between threads (`&MessageFactory` is all a task needs).
#[derive(Debug)]
pub struct MessageFactory {
    signer: Signer,
    source: Arc<str>,
    ids: &'static Uuid1Generator,
}

impl MessageFactory {
    pub fn new(telemetry_secret: &str, sample_source: &str) -> MessageFactory {
        MessageFactory {
            signer: Signer::new(telemetry_secret),
            source: sample_source.into(),
            ids: Uuid1Generator::global(),
        }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The signed message for `sample`; `monotonic_now` is used when the sample carries
    /// no `monotonic_time`.
    pub fn message(&self, sample: Sample, monotonic_now: f64) -> MeterMessage {
        MeterMessage::new(
            sample,
            &self.source,
            None,
            monotonic_now,
            &self.signer,
            self.ids,
        )
    }

    /// The signed messages of `samples`, stamped with `timestamp` (the pollster run's,
    /// shared by its messages), appended to `out`: [`MessageFactory::message_at`] of each,
    /// signed [`Signer::GROUP`] at a time, which costs much less per message.
    pub fn extend_at(
        &self,
        samples: impl IntoIterator<Item = Sample>,
        timestamp: &Arc<str>,
        monotonic_now: f64,
        out: &mut Vec<MeterMessage>,
    ) {
        let mut samples = samples.into_iter();
        let now = NumberRepr::new(monotonic_now);
        // One clock reading stamps the uuid1s of the call's messages (at most a batch):
        // the generator moves each id one 100-ns tick past the last, as Python's
        // uuid1() does for ids made within one tick, so they stay distinct and ordered.
        let clock = SystemTime::now();
        out.reserve(samples.size_hint().0);
        loop {
            // Each group's messages are made in place in `out` and signed there: a
            // message is ~600 bytes, and moving it through a group array would copy it
            // twice more.
            let start = out.len();
            for s in samples.by_ref().take(Signer::GROUP) {
                out.push(MeterMessage(Repr::Fields(Fields::new(
                    s,
                    &self.source,
                    Some(timestamp),
                    &now,
                    self.ids,
                    clock,
                ))));
            }
            let group = &mut out[start..];
            match group {
                [] => return,
                [MeterMessage(Repr::Fields(f))] => {
                    f.sign(&self.signer);
                    return;
                }
                _ => {}
            }
            let n = group.len();
            let mut sigs = [[0u8; 64]; Signer::GROUP];
            let fields = group.iter().filter_map(|m| match &m.0 {
                Repr::Fields(f) => Some(f.signed_fields()),
                Repr::Dict(_) => None,
            });
            // The thread's signing buffers (32 KB), made once: making them per call was
            // sixteen allocations per batch, and per slice of a per-resource run.
            let signed = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
                Ok(mut scratch) => self
                    .signer
                    .sign_meters_into(fields, &mut scratch, &mut sigs),
                // Only a signer re-entered from inside signing (never, today) gets here.
                Err(_) => self
                    .signer
                    .sign_meters_into(fields, &mut SignScratch::new(), &mut sigs),
            });
            let fields = group.iter_mut().filter_map(|m| match &mut m.0 {
                Repr::Fields(f) => Some(f),
                Repr::Dict(_) => None,
            });
            for (f, sig) in fields.zip(sigs) {
                f.signature = sig;
                f.signed = signed;
            }
            if n < Signer::GROUP {
                return;
            }
        }
    }

    /// The signed messages of `samples` in batches of at most `batch_size` (at least
    /// one): a [`Batcher`] over one part.
    pub fn batches_at<'a>(
        &'a self,
        samples: impl IntoIterator<Item = Sample> + 'a,
        batch_size: usize,
        timestamp: &'a Arc<str>,
        monotonic_now: f64,
    ) -> impl Iterator<Item = Vec<MeterMessage>> + 'a {
        let mut batcher = Batcher::new(batch_size, Arc::clone(timestamp));
        let mut samples = samples.into_iter().fuse();
        std::iter::from_fn(move || {
            batcher
                .fill(self, &mut samples, monotonic_now)
                .or_else(|| batcher.finish())
        })
    }

    /// As [`MessageFactory::message`], stamped with `timestamp` (the pollster run's,
    /// shared by its messages) whatever the sample carries.
    pub fn message_at(
        &self,
        sample: Sample,
        timestamp: &Arc<str>,
        monotonic_now: f64,
    ) -> MeterMessage {
        MeterMessage::new(
            sample,
            &self.source,
            Some(timestamp),
            monotonic_now,
            &self.signer,
            self.ids,
        )
    }
}

/// The polling loop's batching: a pollster run's samples, signed by
/// [`MessageFactory::extend_at`] (the run's timestamp) into batches of `batch_size` (at
/// least one). The samples may come in several parts (a per-resource pollster's
/// slices): a batch is handed out once full, so parts fill the same batches one part
/// would, and the last, partial one at [`Batcher::finish`].
pub struct Batcher {
    size: usize,
    timestamp: Arc<str>,
    pending: Vec<MeterMessage>,
}

impl Batcher {
    pub fn new(batch_size: usize, timestamp: Arc<str>) -> Batcher {
        Batcher {
            size: batch_size.max(1),
            timestamp,
            pending: Vec::new(),
        }
    }

    /// Sign samples from `samples` into the pending batch: the batch once it is full
    /// (`samples` may have more), None once `samples` ran out before.
    pub fn fill(
        &mut self,
        factory: &MessageFactory,
        samples: &mut impl Iterator<Item = Sample>,
        monotonic_now: f64,
    ) -> Option<Vec<MeterMessage>> {
        let hint = samples.size_hint().0.min(self.size);
        if self.pending.capacity() == 0 && hint > 0 {
            self.pending.reserve_exact(hint);
        }
        let room = self.size - self.pending.len();
        factory.extend_at(
            samples.by_ref().take(room),
            &self.timestamp,
            monotonic_now,
            &mut self.pending,
        );
        (self.pending.len() == self.size).then(|| std::mem::take(&mut self.pending))
    }

    /// The last, partial batch, if any.
    pub fn finish(&mut self) -> Option<Vec<MeterMessage>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// Signed messages waiting for their batch to fill.
    pub fn pending(&self) -> usize {
        self.pending.len()
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
        let m = f
            .message(sample().with_source("mine").with_monotonic_time(9.25), 1.0)
            .to_map();
        assert_eq!(m.get("source").and_then(Value::as_str), Some("mine"));
        assert_eq!(m.get("monotonic_time").and_then(Value::as_f64), Some(9.25));
        assert_eq!(m.get("message_signature").and_then(Value::as_str), Some(""));
        let m = f.message(sample(), 1.0).to_map();
        assert_eq!(m.get("source").and_then(Value::as_str), Some("elsewhere"));
    }

    #[test]
    fn extend_at_signs_each_message_as_its_dict_would_be_signed() {
        let secret = "peer-telemetry-secret";
        let f = MessageFactory::new(secret, "openstack");
        let ts: Arc<str> = "2025-01-02T03:04:05.123456".into();
        // Every group remainder, and signing inputs of different block counts in one
        // group (the metadata grows by 37 bytes per sample).
        for n in 0..=9usize {
            // Float volumes are formatted once for the signature and the JSON; the
            // non-finite ones and the others are rendered where used.
            let volumes = [
                Value::from(0.1 + n as f64 / 3.0),
                Value::from(1e16),
                Value::from(f64::NAN),
                Value::from(-0.0),
                Value::from(7),
                Value::from(f64::INFINITY),
            ];
            let samples: Vec<Sample> = (0..n)
                .map(|i| {
                    Sample::new(
                        "cpu",
                        SampleType::Gauge,
                        "ns",
                        volumes[i % volumes.len()].clone(),
                        "r-1",
                    )
                    .with_user_id(Some("u"))
                    .with_metadata("flavor", Map::new().with("vcpus", 1))
                    .with_metadata("note", "x".repeat(37 * i))
                    .with_timestamp("ignored")
                })
                .collect();
            let mut out = vec![f.message(sample(), 1.0)];
            f.extend_at(samples.clone(), &ts, 2.5, &mut out);
            assert_eq!(out.len(), n + 1, "appends, keeping what was there");
            for (m, s) in out[1..].iter().zip(&samples) {
                let map = m.to_map();
                assert!(crate::signature::verify_signature(&map, secret), "{n}");
                assert_eq!(map.get("timestamp").and_then(Value::as_str), Some(&*ts));
                assert_eq!(map.get("monotonic_time").and_then(Value::as_f64), Some(2.5));
                assert_eq!(
                    map.get("resource_metadata"),
                    Some(&Value::from(s.resource_metadata().clone()))
                );
                // The JSON written from the fields is the dict's.
                let (mut from_fields, mut from_dict) = (Vec::new(), Vec::new());
                m.write_json(&mut from_fields);
                crate::pyjson::write_map(&mut from_dict, &map);
                assert_eq!(
                    String::from_utf8_lossy(&from_fields),
                    String::from_utf8_lossy(&from_dict)
                );
            }
            let ids: std::collections::HashSet<_> =
                out.iter().filter_map(MeterMessage::message_id).collect();
            assert_eq!(ids.len(), n + 1, "a fresh message_id each");
            // uuid1s from one clock reading per call, one tick apart, in order.
            let ticks: Vec<u64> = out[1..]
                .iter()
                .map(|m| uuid::Uuid::parse_str(m.message_id().unwrap()).unwrap())
                .map(|u| {
                    assert_eq!(u.get_version_num(), 1);
                    u.get_timestamp().unwrap().to_gregorian().0
                })
                .collect();
            assert!(ticks.windows(2).all(|w| w[0] < w[1]), "{ticks:?}");
        }
        // A sample's own monotonic_time wins over the batch's.
        let mut out = Vec::new();
        let own = sample().with_monotonic_time(9.25);
        f.extend_at([sample(), own], &ts, 2.5, &mut out);
        let times: Vec<_> = out
            .iter()
            .map(|m| m.to_map().get("monotonic_time").and_then(Value::as_f64))
            .collect();
        assert_eq!(times, [Some(2.5), Some(9.25)]);
        assert!(out
            .iter()
            .all(|m| crate::signature::verify_signature(&m.to_map(), secret)));
        let unsigned = MessageFactory::new("", "openstack");
        let mut out = Vec::new();
        unsigned.extend_at([sample(), sample()], &ts, 1.0, &mut out);
        assert!(out.iter().all(|m| m.signature() == Some("")));
    }

    #[test]
    fn batches_at_splits_in_order_with_the_remainder_last() {
        let f = MessageFactory::new("s", "openstack");
        let ts: Arc<str> = "2025-01-02T03:04:05.123456".into();
        for (n, size, want) in [
            (0, 50, vec![]),
            (7, 3, vec![3, 3, 1]),
            (6, 3, vec![3, 3]),
            (2, 0, vec![1, 1]),
            (5, 50, vec![5]),
        ] {
            let samples: Vec<Sample> = (0..n)
                .map(|i| sample().with_resource_id(format!("r-{i}")))
                .collect();
            let batches: Vec<Vec<MeterMessage>> = f.batches_at(samples, size, &ts, 1.0).collect();
            let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
            assert_eq!(sizes, want, "{n} samples in batches of {size}");
            let ids: Vec<String> = batches
                .iter()
                .flatten()
                .map(|m| {
                    m.to_map()
                        .get("resource_id")
                        .and_then(Value::as_str)
                        .unwrap()
                        .to_owned()
                })
                .collect();
            let expected: Vec<String> = (0..n).map(|i| format!("r-{i}")).collect();
            assert_eq!(ids, expected);
            // In parts (a pollster run's slices), the same batches.
            let mut samples = (0..n).map(|i| sample().with_resource_id(format!("r-{i}")));
            let mut b = Batcher::new(size, Arc::clone(&ts));
            let mut parts = Vec::new();
            for part in [2, 0, 3, usize::MAX] {
                let mut part = samples.by_ref().take(part);
                while let Some(batch) = b.fill(&f, &mut part, 1.0) {
                    parts.push(batch);
                }
            }
            parts.extend(b.finish());
            let part_sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
            assert_eq!(part_sizes, want, "{n} samples in parts, batches of {size}");
        }
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
        let m = f.message(s, 1.0).to_map();
        for k in ["user_id", "project_id", "timestamp"] {
            assert!(m.get(k).is_some_and(Value::is_null), "{k}");
        }
    }

    /// Samples that exercise every field shape the fixed-order signer and the direct
    /// JSON writer handle.
    fn varied_samples() -> Vec<Sample> {
        let base = Map::new()
            .with("zeta", "é\"\\\n")
            .with("a.b", 1)
            .with(
                "a",
                Map::new()
                    .with("b", Value::NULL)
                    .with("message_signature", "x"),
            )
            .with("list", Value::list([Value::from("q'"), Value::from(2.5)]))
            .with("empty", Map::new())
            .into_shared();
        vec![
            sample(),
            Sample::new("vcpus", SampleType::Gauge, "vcpu", 1, "r"),
            Sample::new("m", SampleType::Delta, "B/s", 1.0e-7, "r\u{1F600}")
                .with_resource_metadata(base.clone())
                .with_metadata("over", true)
                .with_source("src\"x")
                .with_timestamp("t")
                .with_monotonic_time(-2.2250738585072014e-308),
            Sample::new("m", SampleType::Gauge, "u", Map::new().with("k", 1), "r")
                .with_resource_metadata(base)
                .with_user_id(Some("u\u{7f}"))
                .with_monotonic_time(f64::NAN),
        ]
    }

    #[test]
    fn meter_message_signs_and_serialises_as_its_dict() {
        use crate::notification::{encode_inner, encode_notification_into, NotificationIds};
        let ts: Arc<str> = "2026-11-22T02:53:55.788625".into();
        for secret in ["s", ""] {
            let f = MessageFactory::new(secret, "openstack");
            for (i, s) in varied_samples().into_iter().enumerate() {
                let mm = if i % 2 == 0 {
                    f.message(s, 3.25)
                } else {
                    f.message_at(s, &ts, 3.25)
                };
                let m = mm.to_map();
                let sig = m.get(SIGNATURE_KEY).and_then(Value::as_str).unwrap();
                assert_eq!(sig, f.signer().sign(&m), "sample {i}");
                assert_eq!(Some(sig), mm.signature());
                assert_eq!(m.get("message_id").and_then(Value::as_str), mm.message_id());
                let (mut a, mut b) = (Vec::new(), Vec::new());
                mm.write_json(&mut a);
                crate::pyjson::write_map(&mut b, &m);
                assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
                let ids = NotificationIds::new(std::time::SystemTime::now());
                let (mut a, mut b) = (Vec::new(), Vec::new());
                encode_notification_into(&mut a, std::slice::from_ref(&mm), "p", "e", &ids);
                encode_notification_into(&mut b, std::slice::from_ref(&m), "p", "e", &ids);
                assert_eq!(a, b);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                encode_inner(&mut a, std::slice::from_ref(&mm), "p", "e", &ids);
                encode_inner(&mut b, std::slice::from_ref(&m), "p", "e", &ids);
                assert_eq!(a, b);
                // The dict form round-trips unchanged.
                let d = MeterMessage::from_map(m.clone());
                // (compared as JSON: a NaN dict is not equal to itself)
                let (mut a, mut b) = (Vec::new(), Vec::new());
                d.write_json(&mut a);
                crate::pyjson::write_map(&mut b, &d.to_map());
                assert_eq!(a, b);
                assert_eq!(d.signature(), Some(sig));
            }
        }
    }

    #[test]
    fn meter_signing_order_is_sorted_message_keys() {
        use crate::signature::METER_SIGNING_ORDER;
        let m = MessageFactory::new("s", "o")
            .message(sample(), 1.0)
            .to_map();
        let mut keys: Vec<&str> = m.keys().filter(|k| *k != SIGNATURE_KEY).collect();
        keys.sort_unstable();
        assert_eq!(keys, METER_SIGNING_ORDER);
    }

    #[test]
    fn message_at_overrides_the_sample_timestamp() {
        let ts: Arc<str> = "T".into();
        let m = MessageFactory::new("s", "o")
            .message_at(sample(), &ts, 1.0)
            .to_map();
        assert_eq!(m.get("timestamp").and_then(Value::as_str), Some("T"));
        assert!(crate::signature::verify_signature(&m, "s"));
    }
}
