//! Against the real Ceilometer 27.0.0 capture (tests/fixtures/capture): every AMQP body,
//! every inner `oslo.message` string and every `message_signature` is reproduced byte
//! for byte from the parsed messages.

use std::fs;
use std::path::PathBuf;

use longshore_plugin_api::{Map, Value, ValueRef};
use longshore_publisher::hmac_group::{HmacKey, LANES};
use longshore_publisher::notification::{
    encode_inner, encode_notification_into, NotificationIds, EVENT_TYPE, PUBLISHER_ID,
};
use longshore_publisher::signature::signing_input;
use longshore_publisher::{compute_signature, pyjson, Signer};

const SECRET: &str = "peer-telemetry-secret";

fn capture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/capture")
}

/// (file name, raw body) of every captured message, in order.
fn bodies() -> Vec<(String, Vec<u8>)> {
    let raw = capture_dir().join("raw");
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(&raw)
        .unwrap_or_else(|e| panic!("{}: {e}", raw.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "body"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert_eq!(out.len(), 46, "the capture holds 46 messages");
    out
}

fn parse_map(text: &[u8], what: &str) -> Map {
    serde_json::from_slice::<Map>(text).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn str_of<'a>(m: &'a Map, key: &str) -> &'a str {
    m.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key}"))
}

fn samples(inner: &Map) -> Vec<Map> {
    inner
        .get("payload")
        .and_then(Value::as_map)
        .and_then(|p| p.get("samples"))
        .and_then(Value::as_list)
        .expect("payload.samples")
        .iter()
        .map(|v| v.as_map().expect("sample dict").clone())
        .collect()
}

#[test]
fn outer_and_inner_json_are_reproduced_byte_for_byte() {
    for (name, raw) in bodies() {
        let outer = parse_map(&raw, &name);
        assert_eq!(
            outer.keys().collect::<Vec<_>>(),
            ["oslo.version", "oslo.message"],
            "{name}"
        );
        assert_eq!(
            pyjson::map_to_string(&outer).as_bytes(),
            &raw[..],
            "{name}: outer body"
        );
        let inner_text = str_of(&outer, "oslo.message");
        let inner = parse_map(inner_text.as_bytes(), &name);
        assert_eq!(
            pyjson::map_to_string(&inner),
            inner_text,
            "{name}: inner oslo.message"
        );
    }
}

#[test]
fn every_captured_signature_is_reproduced() {
    let signer = Signer::new(SECRET);
    let mut checked = 0;
    for (name, raw) in bodies() {
        let outer = parse_map(&raw, &name);
        let inner = parse_map(str_of(&outer, "oslo.message").as_bytes(), &name);
        for s in samples(&inner) {
            let want = str_of(&s, "message_signature");
            assert_eq!(
                signer.sign(&s),
                want,
                "{name}: {} of {}",
                str_of(&s, "counter_name"),
                str_of(&s, "resource_id")
            );
            assert_eq!(compute_signature(&s, SECRET), want);
            checked += 1;
        }
    }
    // signatures.txt: verified=164
    assert_eq!(checked, 164);
}

#[test]
fn every_captured_signature_is_reproduced_four_messages_at_a_time() {
    // The agent's path signs a batch's messages in groups (hmac_group): the same signing
    // inputs through it, groups made of consecutive captured samples of different
    // meters and lengths.
    let key = HmacKey::new(SECRET.as_bytes());
    let mut all = Vec::new();
    for (name, raw) in bodies() {
        let outer = parse_map(&raw, &name);
        let inner = parse_map(str_of(&outer, "oslo.message").as_bytes(), &name);
        for s in samples(&inner) {
            all.push((
                signing_input(&s),
                str_of(&s, "message_signature").to_owned(),
            ));
        }
    }
    assert_eq!(all.len(), 164);
    for group in all.chunks(LANES) {
        let mut inputs: Vec<Vec<u8>> = group.iter().map(|(input, _)| input.clone()).collect();
        let mut out = [[0u8; 32]; LANES];
        key.sign(&mut inputs, &mut out);
        for ((input, want), got) in group.iter().zip(out) {
            let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(&hex, want, "signing input of {} bytes", input.len());
        }
    }
}

#[test]
fn encode_notification_rebuilds_the_captured_bodies() {
    let mut body = Vec::new();
    for (name, raw) in bodies() {
        let outer = parse_map(&raw, &name);
        let inner = parse_map(str_of(&outer, "oslo.message").as_bytes(), &name);
        assert_eq!(str_of(&inner, "publisher_id"), PUBLISHER_ID);
        assert_eq!(str_of(&inner, "event_type"), EVENT_TYPE);
        let ids = NotificationIds {
            message_id: str_of(&inner, "message_id").to_owned(),
            timestamp: str_of(&inner, "timestamp").to_owned(),
            unique_id: str_of(&inner, "_unique_id").to_owned(),
        };
        body.clear();
        encode_notification_into(&mut body, &samples(&inner), PUBLISHER_ID, EVENT_TYPE, &ids);
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&raw),
            "{name}"
        );
        let mut text = Vec::new();
        encode_inner(&mut text, &samples(&inner), PUBLISHER_ID, EVENT_TYPE, &ids);
        assert_eq!(
            String::from_utf8_lossy(&text),
            str_of(&outer, "oslo.message"),
            "{name}: inner"
        );
    }
}

#[test]
fn floats_with_integral_values_stay_floats_when_parsed() {
    // memory volumes are 2048.0 on the wire: they must not come back as ints.
    let (name, raw) = &bodies()[0];
    let outer = parse_map(raw, name);
    let inner = parse_map(str_of(&outer, "oslo.message").as_bytes(), name);
    let s = &samples(&inner)[0];
    assert_eq!(str_of(s, "counter_name"), "memory");
    assert_eq!(
        s.get("counter_volume").unwrap().get(),
        ValueRef::Float(2048.0)
    );
    assert!(matches!(
        s.get("monotonic_time").unwrap().get(),
        ValueRef::Float(_)
    ));
    let flavor = s
        .get("resource_metadata")
        .and_then(Value::as_map)
        .and_then(|m| m.get("flavor"))
        .and_then(Value::as_map)
        .unwrap();
    assert_eq!(flavor.get("ram").unwrap().get(), ValueRef::Int(2048));
}
