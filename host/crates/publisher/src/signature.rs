//! Ceilometer's `message_signature` (`ceilometer.publisher.utils.compute_signature`):
//! HMAC-SHA256 over the message's leaves, depth-first with keys sorted at each level,
//! values rendered as Python's `str()`. Streams into the HMAC through a small stack buffer.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use longshore_plugin_api::{Map, Value, ValueRef};

use crate::pyjson::{format_int, FloatBuf};

type HmacSha256 = Hmac<Sha256>;

/// The one top-level key left out of the signed leaves.
pub const SIGNATURE_KEY: &str = "message_signature";

/// Signs messages with one `telemetry_secret`. The keyed HMAC state is computed once and
/// cloned per message, which saves two SHA-256 blocks per signature.
#[derive(Clone)]
pub struct Signer {
    /// None for an empty secret: Ceilometer then signs with the empty string.
    mac: Option<HmacSha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Signer")
            .field("enabled", &self.mac.is_some())
            .finish()
    }
}

impl Signer {
    pub fn new(secret: &str) -> Signer {
        let mac = if secret.is_empty() {
            None
        } else {
            // HMAC accepts keys of any length; this cannot fail.
            HmacSha256::new_from_slice(secret.as_bytes()).ok()
        };
        Signer { mac }
    }

    /// Ceilometer's `compute_signature(message, secret)`: 64 lowercase hex digits, or
    /// `""` when the secret is empty.
    pub fn sign(&self, message: &Map) -> String {
        let mut hex = [0u8; 64];
        match self.sign_into(message, &mut hex) {
            Some(s) => s.to_owned(),
            None => String::new(),
        }
    }

    /// As [`Signer::sign`], writing the hex digest into `out`; None for an empty secret.
    pub fn sign_into<'a>(&self, message: &Map, out: &'a mut [u8; 64]) -> Option<&'a str> {
        let mut sink = HmacSink {
            mac: self.mac.clone()?,
            buf: [0; SINK_LEN],
            len: 0,
        };
        walk_map(&mut sink, message, None);
        let digest = sink.finish();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in digest.iter().enumerate() {
            out[2 * i] = HEX[(b >> 4) as usize];
            out[2 * i + 1] = HEX[(b & 0xf) as usize];
        }
        std::str::from_utf8(&out[..]).ok()
    }
}

/// Ceilometer's `compute_signature(message, secret)`. Prefer a long-lived [`Signer`]
/// when signing many messages with one secret.
pub fn compute_signature(message: &Map, secret: &str) -> String {
    Signer::new(secret).sign(message)
}

/// Ceilometer's `verify_signature`: constant-time comparison of the recomputed signature
/// with the message's `message_signature` (missing → false).
pub fn verify_signature(message: &Map, secret: &str) -> bool {
    let Some(claimed) = message.get(SIGNATURE_KEY).and_then(Value::as_str) else {
        return false;
    };
    let expected = compute_signature(message, secret);
    expected.len() == claimed.len()
        && expected
            .bytes()
            .zip(claimed.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The exact bytes Ceilometer feeds to the HMAC for `message` (leaf names and `str()`
/// values, no separators). For diagnosing signature mismatches.
pub fn signing_input(message: &Map) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    walk_map(&mut out, message, None);
    out
}

/// Where the leaves go: the HMAC, or a buffer for [`signing_input`].
trait Sink {
    fn write(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

const SINK_LEN: usize = 512;

/// Buffers small writes: a HMAC `update` per name piece would cost more than the hash.
struct HmacSink {
    mac: HmacSha256,
    buf: [u8; SINK_LEN],
    len: usize,
}

impl HmacSink {
    fn finish(mut self) -> [u8; 32] {
        self.mac.update(&self.buf[..self.len]);
        self.mac.finalize().into_bytes().into()
    }
}

impl Sink for HmacSink {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > SINK_LEN {
            self.mac.update(&self.buf[..self.len]);
            self.len = 0;
            if bytes.len() > SINK_LEN {
                self.mac.update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

/// The flattened name of a nested dict, as a chain of parent keys on the stack.
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    key: &'a str,
}

fn write_path<S: Sink>(sink: &mut S, path: &Path<'_>) {
    if let Some(parent) = path.parent {
        write_path(sink, parent);
    }
    sink.write(path.key.as_bytes());
    sink.write(b":");
}

/// Maps up to this size are sorted on the stack.
const STACK_ENTRIES: usize = 48;
static NULL: Value = Value::NULL;

/// Python's `sorted(d.items())` (keys are unique, so only keys are compared; `str`
/// order is code point order, which is UTF-8 byte order), then `f(entries)`.
fn with_sorted<'m, R>(map: &'m Map, f: impl FnOnce(&[(&'m str, &'m Value)]) -> R) -> R {
    if map.len() <= STACK_ENTRIES {
        let mut arr: [(&str, &Value); STACK_ENTRIES] = [("", &NULL); STACK_ENTRIES];
        for (slot, kv) in arr.iter_mut().zip(map.iter()) {
            *slot = kv;
        }
        let entries = &mut arr[..map.len()];
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        f(entries)
    } else {
        let mut entries: Vec<(&str, &Value)> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        f(&entries)
    }
}

/// `recursive_keypairs`: dicts recurse (an empty dict yields nothing), every other value
/// is a leaf `name` + `str(value)`.
fn walk_map<S: Sink>(sink: &mut S, map: &Map, path: Option<&Path<'_>>) {
    with_sorted(map, |entries| {
        for &(key, value) in entries {
            if let ValueRef::Map(sub) = value.get() {
                let here = Path { parent: path, key };
                walk_map(sink, sub, Some(&here));
                continue;
            }
            // Only the flattened name `message_signature` is skipped, i.e. the top level.
            if path.is_none() && key == SIGNATURE_KEY {
                continue;
            }
            if let Some(p) = path {
                write_path(sink, p);
            }
            sink.write(key.as_bytes());
            write_str_value(sink, value);
        }
    })
}

/// Python's `str(value)` for a leaf; lists go through `decode_unicode` first.
fn write_str_value<S: Sink>(sink: &mut S, value: &Value) {
    match value.get() {
        ValueRef::Str(s) => sink.write(s.as_bytes()),
        ValueRef::List(items) => write_list_repr(sink, items),
        other => write_scalar(sink, other),
    }
}

/// `str()`/`repr()` of None, bools and numbers (the same in Python 3).
fn write_scalar<S: Sink>(sink: &mut S, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => sink.write(b"None"),
        ValueRef::Bool(true) => sink.write(b"True"),
        ValueRef::Bool(false) => sink.write(b"False"),
        ValueRef::Int(i) => sink.write(format_int(i, &mut [0; 20])),
        ValueRef::Float(f) => sink.write(FloatBuf::new().format(f).as_bytes()),
        // Strings, lists and dicts are handled by the callers.
        ValueRef::Str(_) | ValueRef::List(_) | ValueRef::Map(_) => {}
    }
}

/// `repr(decode_unicode(value))` for an element of a list: strings become bytes, dicts
/// get sorted keys (also bytes).
fn write_elem_repr<S: Sink>(sink: &mut S, value: &Value) {
    match value.get() {
        ValueRef::Str(s) => write_bytes_repr(sink, s.as_bytes()),
        ValueRef::List(items) => write_list_repr(sink, items),
        ValueRef::Map(m) => {
            sink.write(b"{");
            with_sorted(m, |entries| {
                for (i, &(k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        sink.write(b", ");
                    }
                    write_bytes_repr(sink, k.as_bytes());
                    sink.write(b": ");
                    write_elem_repr(sink, v);
                }
            });
            sink.write(b"}");
        }
        other => write_scalar(sink, other),
    }
}

fn write_list_repr<S: Sink>(sink: &mut S, items: &[Value]) {
    sink.write(b"[");
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            sink.write(b", ");
        }
        write_elem_repr(sink, v);
    }
    sink.write(b"]");
}

/// Python's `bytes.__repr__`: `b'...'`, or `b"..."` when the bytes hold `'` but no `"`;
/// `\\`, the quote, `\t \n \r` escaped, other bytes outside 0x20..0x7e as `\xNN`.
fn write_bytes_repr<S: Sink>(sink: &mut S, bytes: &[u8]) {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    sink.write(&[b'b', quote]);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let plain = (0x20..0x7f).contains(&c) && c != quote && c != b'\\';
        if plain {
            continue;
        }
        sink.write(&bytes[start..i]);
        start = i + 1;
        match c {
            b'\t' => sink.write(b"\\t"),
            b'\n' => sink.write(b"\\n"),
            b'\r' => sink.write(b"\\r"),
            b'\\' => sink.write(b"\\\\"),
            _ if c == quote => sink.write(&[b'\\', c]),
            _ => sink.write(&[b'\\', b'x', HEX[(c >> 4) as usize], HEX[(c & 0xf) as usize]]),
        }
    }
    sink.write(&bytes[start..]);
    sink.write(&[quote]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(message: &Map) -> String {
        String::from_utf8(signing_input(message)).unwrap()
    }

    fn bytes_repr(s: &[u8]) -> String {
        let mut out = Vec::new();
        write_bytes_repr(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn bytes_repr_matches_python() {
        assert_eq!(bytes_repr(b"a"), "b'a'");
        assert_eq!(bytes_repr(b"it's"), r#"b"it's""#);
        assert_eq!(bytes_repr(b"'\""), r#"b'\'"'"#);
        assert_eq!(bytes_repr(b"\"q\""), r#"b'"q"'"#);
        assert_eq!(bytes_repr(b"a\\b\t\n\r\x00\x7f"), r"b'a\\b\t\n\r\x00\x7f'");
        assert_eq!(bytes_repr("é".as_bytes()), r"b'\xc3\xa9'");
        assert_eq!(bytes_repr(b""), "b''");
    }

    #[test]
    fn empty_secret_gives_empty_signature() {
        assert_eq!(compute_signature(&Map::new().with("a", 1), ""), "");
    }

    #[test]
    fn nested_names_sort_per_level_and_skip_only_top_level_signature() {
        let m = Map::new()
            .with("a.b", 1)
            .with("message_signature", "x")
            .with(
                "a",
                Map::new()
                    .with("message_signature", "kept")
                    .with("b", Value::NULL),
            )
            .with("e", Map::new());
        // `a` (a dict) sorts before `a.b` even though "a.b" < "a:b" as flat strings.
        assert_eq!(leaves(&m), "a:bNonea:message_signaturekepta.b1");
    }

    #[test]
    fn lists_render_as_python_repr_of_decoded_bytes() {
        let m = Map::new().with(
            "l",
            Value::list([
                Value::from("a"),
                Value::from(Map::new().with("z", "1").with("k", Value::list([Value::from(2.0)]))),
                Value::list([]),
                Value::from(false),
                Value::from(-3),
            ]),
        );
        assert_eq!(leaves(&m), "l[b'a', {b'k': [2.0], b'z': b'1'}, [], False, -3]");
    }

    #[test]
    fn long_input_streams_through_the_buffer() {
        let long = "x".repeat(3 * SINK_LEN + 7);
        let m = Map::new().with("a", long.as_str()).with("b", "y");
        let mut whole = HmacSha256::new_from_slice(b"s").unwrap();
        whole.update(format!("a{long}by").as_bytes());
        let want: [u8; 32] = whole.finalize().into_bytes().into();
        let want: String = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(compute_signature(&m, "s"), want);
    }

    #[test]
    fn verify_accepts_own_signature_and_rejects_tampering() {
        let mut m = Map::new().with("counter_volume", 1.5);
        let sig = compute_signature(&m, "s");
        m.insert(SIGNATURE_KEY, sig);
        assert!(verify_signature(&m, "s"));
        assert!(!verify_signature(&m, "t"));
        m.insert("counter_volume", 2.5);
        assert!(!verify_signature(&m, "s"));
    }
}
