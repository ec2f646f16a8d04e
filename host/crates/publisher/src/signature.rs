//! Ceilometer's `message_signature` (`ceilometer.publisher.utils.compute_signature`):
//! HMAC-SHA256 over the message's leaves, depth-first with keys sorted at each level,
//! values rendered as Python's `str()`. Streams into the HMAC through a small stack buffer.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use longshore_plugin_api::{Map, SharedEntries, Value, ValueRef};

use crate::hmac_group::{self, HmacKey};
use crate::metadata::RenderedMetadata;

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
    /// The same key for signing several messages at once.
    key: Option<HmacKey>,
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
        if secret.is_empty() {
            return Signer {
                mac: None,
                key: None,
            };
        }
        Signer {
            // HMAC accepts keys of any length; this cannot fail.
            mac: HmacSha256::new_from_slice(secret.as_bytes()).ok(),
            key: Some(HmacKey::new(secret.as_bytes())),
        }
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
        let mut walker = Walker::new(HmacSink {
            mac: self.mac.clone()?,
            buf: [0; SINK_LEN],
            len: 0,
        });
        walker.walk(message);
        Some(hex_digest(walker.sink.finish(), out))
    }

    /// The signature of the meter message made of `fields`, without building or sorting
    /// the top-level dict: its keys are fixed, so their sorted order is a constant
    /// ([`METER_SIGNING_ORDER`]); only the resource metadata is sorted. Equal to
    /// [`Signer::sign_into`] of the built message.
    pub fn sign_meter_into<'a>(
        &self,
        fields: &MeterFields<'_>,
        out: &'a mut [u8; 64],
    ) -> Option<&'a str> {
        let mut w = Walker::new(HmacSink {
            mac: self.mac.clone()?,
            buf: [0; SINK_LEN],
            len: 0,
        });
        w.meter(fields);
        Some(hex_digest(w.sink.finish(), out))
    }

    /// The signatures of the first [`Signer::GROUP`] meter messages of `fields` at once,
    /// into `out` (64 hex digits each; none taken from `fields` beyond those); false,
    /// and nothing written, for an empty secret. Hashing several messages together costs
    /// less per message than one at a time (see `hmac_group`); `scratch` holds their
    /// signing inputs and is reused across calls.
    ///
    /// # Panics
    /// If `out` has less room than the messages taken.
    pub fn sign_meters_into<'f>(
        &self,
        fields: impl IntoIterator<Item = MeterFields<'f>>,
        scratch: &mut SignScratch,
        out: &mut [[u8; 64]],
    ) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        let mut n = 0;
        // The buffers first: zip then stops before taking a fifth message.
        for (buf, f) in scratch.inputs.iter_mut().zip(fields) {
            buf.clear();
            Walker::new(&mut *buf).meter(&f);
            n += 1;
        }
        assert!(out.len() >= n, "room for {n} signatures");
        let mut digests = [[0u8; 32]; hmac_group::LANES];
        key.sign(&mut scratch.inputs[..n], &mut digests[..n]);
        for (d, o) in digests.iter().zip(out.iter_mut()).take(n) {
            hex_digest(*d, o);
        }
        true
    }

    /// The most messages [`Signer::sign_meters_into`] signs at once.
    pub const GROUP: usize = hmac_group::LANES;
}

/// Reusable buffers for [`Signer::sign_meters_into`] (one signing input per message).
pub struct SignScratch {
    inputs: [Vec<u8>; hmac_group::LANES],
}

impl SignScratch {
    pub fn new() -> SignScratch {
        // A compute message's signing input is about 1.4 KB (plus padding).
        SignScratch {
            inputs: std::array::from_fn(|_| Vec::with_capacity(2048)),
        }
    }
}

impl Default for SignScratch {
    fn default() -> SignScratch {
        SignScratch::new()
    }
}

impl<'m, S: Sink> Walker<'m, S> {
    /// The leaves of the meter message made of `fields`, without building or sorting the
    /// top-level dict: its keys are fixed, so their sorted order is a constant
    /// ([`METER_SIGNING_ORDER`]); only the resource metadata is sorted.
    fn meter(&mut self, fields: &MeterFields<'m>) {
        // Keep in step with METER_SIGNING_ORDER (a test checks it is sorted).
        self.leaf_str(b"counter_name", fields.counter_name);
        self.leaf_str(b"counter_type", fields.counter_type);
        self.leaf_str(b"counter_unit", fields.counter_unit);
        match fields.counter_volume_str {
            Some(v) => self.leaf_str(b"counter_volume", v),
            None => self.leaf_value(b"counter_volume", fields.counter_volume),
        }
        self.leaf_str(b"message_id", fields.message_id);
        self.leaf_str(b"monotonic_time", fields.monotonic_time);
        self.leaf_opt(b"project_id", fields.project_id);
        self.sink.write(b"project_nameNone");
        self.leaf_str(b"resource_id", fields.resource_id);
        self.prefix.extend_from_slice(METADATA_PREFIX);
        match fields.rendered {
            Some(r) if r.renders(fields.resource_metadata) => {
                self.walk_over(fields.resource_metadata, r.signing())
            }
            _ => self.walk(fields.resource_metadata),
        }
        self.prefix.clear();
        self.leaf_str(b"source", fields.source);
        self.leaf_opt(b"timestamp", fields.timestamp);
        self.leaf_opt(b"user_id", fields.user_id);
        self.sink.write(b"user_nameNone");
    }
}

/// The top-level keys of a meter message in Python's `sorted()` order: the order
/// [`Signer::sign_meter_into`] feeds them to the HMAC.
pub const METER_SIGNING_ORDER: [&str; 14] = [
    "counter_name",
    "counter_type",
    "counter_unit",
    "counter_volume",
    "message_id",
    "monotonic_time",
    "project_id",
    "project_name",
    "resource_id",
    "resource_metadata",
    "source",
    "timestamp",
    "user_id",
    "user_name",
];

/// The signed fields of a meter message (`user_name`/`project_name` are always None).
#[derive(Debug, Clone, Copy)]
pub struct MeterFields<'a> {
    pub source: &'a str,
    pub counter_name: &'a str,
    pub counter_type: &'a str,
    pub counter_unit: &'a str,
    pub counter_volume: &'a Value,
    /// `str(counter_volume)` when the caller has it already (a float formatted once
    /// for the signature and the JSON); None renders it here.
    pub counter_volume_str: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub project_id: Option<&'a str>,
    pub resource_id: &'a str,
    pub timestamp: Option<&'a str>,
    pub resource_metadata: &'a Map,
    pub message_id: &'a str,
    /// Python's `repr()` of the monotonic time ([`crate::pyjson::FloatBuf`]).
    pub monotonic_time: &'a str,
    /// The rendering kept with `resource_metadata`'s shared entries, if any: only the
    /// map's own entries are then walked (see [`crate::metadata`]).
    pub rendered: Option<&'a RenderedMetadata>,
}

fn hex_digest(digest: [u8; 32], out: &mut [u8; 64]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(&out[..]).unwrap_or_default()
}

/// Ceilometer's `compute_signature(message, secret)`. Prefer a long-lived [`Signer`]
/// when signing many messages with one secret.
pub fn compute_signature(message: &Map, secret: &str) -> String {
    Signer::new(secret).sign(message)
}

/// Ceilometer's `verify_signature`: true when no secret is configured; otherwise a
/// constant-time comparison of the recomputed signature with the message's
/// `message_signature` (missing or not a string → false).
pub fn verify_signature(message: &Map, secret: &str) -> bool {
    if secret.is_empty() {
        return true;
    }
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
    let mut walker = Walker::new(Vec::with_capacity(1024));
    walker.walk(message);
    walker.sink
}

/// The bytes [`Signer::sign_meter_into`] feeds for `resource_metadata` = `map`, from
/// `rendered` (equal to the `resource_metadata:` part of [`signing_input`]).
#[cfg(test)]
pub(crate) fn signing_input_over(map: &Map, rendered: &RenderedMetadata) -> Vec<u8> {
    let mut walker = Walker::new(Vec::with_capacity(1024));
    walker.prefix.extend_from_slice(METADATA_PREFIX);
    walker.walk_over(map, rendered.signing());
    walker.sink
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

impl Sink for &mut Vec<u8> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

const SINK_LEN: usize = 512;
/// Pieces at least this long bypass the buffer.
const DIRECT_LEN: usize = 128;

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
        let (n, len) = (bytes.len(), self.len);
        // Most pieces are short names and values: copy them with two fixed-size
        // (overlapping) moves instead of a memcpy call each.
        if n <= 32 && len + 32 <= SINK_LEN {
            let dst = &mut self.buf[len..len + 32];
            if n >= 16 {
                dst[..16].copy_from_slice(&bytes[..16]);
                dst[n - 16..n].copy_from_slice(&bytes[n - 16..]);
            } else if n >= 8 {
                dst[..8].copy_from_slice(&bytes[..8]);
                dst[n - 8..n].copy_from_slice(&bytes[n - 8..]);
            } else if n >= 4 {
                dst[..4].copy_from_slice(&bytes[..4]);
                dst[n - 4..n].copy_from_slice(&bytes[n - 4..]);
            } else {
                for (d, b) in dst.iter_mut().zip(bytes) {
                    *d = *b;
                }
            }
            self.len = len + n;
            return;
        }
        // A long piece (a run of cached metadata leaves) goes to the hash directly: it
        // takes whole blocks from the slice, so copying it here first would be waste.
        if n >= DIRECT_LEN || self.len + n > SINK_LEN {
            self.mac.update(&self.buf[..self.len]);
            self.len = 0;
            if n >= DIRECT_LEN {
                self.mac.update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

/// A dict entry with its key's first 8 bytes as a big-endian integer: most key
/// comparisons are then one integer comparison.
#[derive(Clone, Copy)]
struct Entry<'m> {
    pre: u64,
    key: &'m str,
    value: &'m Value,
}

impl<'m> Entry<'m> {
    fn new(key: &'m str, value: &'m Value) -> Entry<'m> {
        let bytes = key.as_bytes();
        let mut head = [0u8; 8];
        let n = bytes.len().min(8);
        head[..n].copy_from_slice(&bytes[..n]);
        Entry {
            pre: u64::from_be_bytes(head),
            key,
            value,
        }
    }

    /// Zero-padding keeps the prefix order consistent with byte order; equal prefixes
    /// fall back to the whole keys.
    #[inline]
    fn less(&self, other: &Entry<'_>) -> bool {
        self.pre < other.pre || (self.pre == other.pre && self.key < other.key)
    }
}

/// Python's `sorted(d.items())`: keys are unique, so only keys are compared; `str`
/// order is code point order, which is UTF-8 byte order.
fn sort_entries(entries: &mut [Entry<'_>]) {
    if entries.len() > 32 {
        entries.sort_unstable_by(|a, b| a.pre.cmp(&b.pre).then_with(|| a.key.cmp(b.key)));
        return;
    }
    // Insertion sort: dicts here have a few dozen keys at most.
    for i in 1..entries.len() {
        let e = entries[i];
        let mut j = i;
        while j > 0 && e.less(&entries[j - 1]) {
            entries[j] = entries[j - 1];
            j -= 1;
        }
        entries[j] = e;
    }
}

/// Depth-first walk of `recursive_keypairs`, reusing one entry stack for the sorted
/// levels and one buffer for the flattened name prefix (`a:b:`).
struct Walker<'m, S> {
    sink: S,
    stack: Vec<Entry<'m>>,
    prefix: Vec<u8>,
}

impl<'m, S: Sink> Walker<'m, S> {
    fn new(sink: S) -> Walker<'m, S> {
        Walker {
            sink,
            // Under 1 KiB, so glibc serves it from its per-thread cache; a typical
            // message (a few dozen metadata keys over two levels) fits.
            stack: Vec::with_capacity(31),
            prefix: Vec::with_capacity(64),
        }
    }

    /// A top-level string leaf.
    #[inline]
    fn leaf_str(&mut self, key: &[u8], value: &str) {
        self.sink.write(key);
        self.sink.write(value.as_bytes());
    }

    /// A top-level optional string leaf (`None` when unset).
    #[inline]
    fn leaf_opt(&mut self, key: &[u8], value: Option<&str>) {
        self.sink.write(key);
        self.sink
            .write(value.map_or(b"None".as_slice(), str::as_bytes));
    }

    /// A top-level leaf of any value (a dict recurses under `key:`).
    fn leaf_value(&mut self, key: &[u8], value: &'m Value) {
        if let ValueRef::Map(sub) = value.get() {
            self.prefix.extend_from_slice(key);
            self.prefix.push(b':');
            self.walk(sub);
            self.prefix.clear();
            return;
        }
        self.sink.write(key);
        write_str_value(&mut self.sink, value);
    }

    /// Dicts recurse (an empty dict yields nothing); every other value is a leaf:
    /// flattened name, then `str(value)`.
    fn walk(&mut self, map: &'m Map) {
        let start = self.stack.len();
        self.stack.extend(map.iter().map(|(k, v)| Entry::new(k, v)));
        sort_entries(&mut self.stack[start..]);
        let end = self.stack.len();
        for i in start..end {
            self.entry(self.stack[i]);
        }
        self.stack.truncate(start);
    }

    /// The leaves of one entry of the level under `prefix`.
    fn entry(&mut self, e: Entry<'m>) {
        if let ValueRef::Map(sub) = e.value.get() {
            let len = self.prefix.len();
            self.prefix.extend_from_slice(e.key.as_bytes());
            self.prefix.push(b':');
            self.walk(sub);
            self.prefix.truncate(len);
            return;
        }
        if self.prefix.is_empty() {
            // Only the flattened name `message_signature` is skipped: the top level.
            if e.key == SIGNATURE_KEY {
                return;
            }
        } else {
            self.sink.write(&self.prefix);
        }
        self.sink.write(e.key.as_bytes());
        write_str_value(&mut self.sink, e.value);
    }

    /// As [`Walker::walk`] of `map`, whose shared entries are `base` with their leaves
    /// already rendered in `chunks`: only the map's own entries are sorted and rendered,
    /// merged into the runs of rendered chunks; a chunk whose key the map overrides is
    /// skipped.
    fn walk_over(&mut self, map: &'m Map, chunks: &SigningChunks) {
        let start = self.stack.len();
        self.stack
            .extend(map.own_entries().map(|(k, v)| Entry::new(k, v)));
        sort_entries(&mut self.stack[start..]);
        let end = self.stack.len();
        let mut next = 0; // the first base chunk (in key order) not yet written
        for i in start..end {
            let e = self.stack[i];
            let (pos, found) = chunks.search(next, e.key);
            self.sink
                .write(&chunks.bytes[chunks.start(next)..chunks.start(pos)]);
            next = pos + usize::from(found);
            self.entry(e);
        }
        self.sink.write(&chunks.bytes[chunks.start(next)..]);
        self.stack.truncate(start);
    }
}

/// The signing leaves of a resource's shared metadata entries, rendered once for all
/// its samples: every top-level entry's leaves (under `resource_metadata:`) in sorted
/// key order, back to back. An entry's key is read where its leaves start, right after
/// `resource_metadata:`; only an entry without leaves (an empty dict) keeps its key
/// apart.
pub(crate) struct SigningChunks {
    bytes: Box<[u8]>,
    /// Per top-level entry, in key order.
    order: Box<[Chunk]>,
    /// The keys of the entries without leaves, in key order, back to back (usually
    /// none).
    leafless_keys: Box<[u8]>,
}

/// What precedes every leaf of the resource metadata in a signing input.
const METADATA_PREFIX: &[u8] = b"resource_metadata:";

/// Offsets rather than slices, and exact-size boxes: a rendering is kept per resource,
/// so its size is what renderings cost in memory (16 bytes per entry here).
#[derive(Clone, Copy)]
struct Chunk {
    /// The key's first 8 bytes (as [`Entry::pre`]): most comparisons while merging a
    /// sample's own keys in are then one integer comparison, on this array only.
    pre: u64,
    /// Where its leaves end in `bytes` (they start where the previous chunk's end).
    end: u32,
    key_len: u16,
    /// The entry's index in the shared entries.
    index: u16,
}

impl SigningChunks {
    /// The leaves of `base` as [`Signer::sign_meter_into`] feeds them; None for entries
    /// beyond what a rendering indexes (65,535 entries, a key over 65,535 bytes: never
    /// metadata, which then goes the uncached way).
    pub(crate) fn render(base: &SharedEntries) -> Option<SigningChunks> {
        if base.len() > usize::from(u16::MAX)
            || base.iter().any(|(k, _)| k.len() > usize::from(u16::MAX))
        {
            return None;
        }
        let mut sorted: Vec<(u16, Entry<'_>)> = base
            .iter()
            .enumerate()
            .map(|(i, (k, v))| (i as u16, Entry::new(k, v)))
            .collect();
        // str order is code point order, as Python's sorted().
        sorted.sort_unstable_by(|a, b| a.1.key.cmp(b.1.key));
        let mut w = Walker::new(Vec::with_capacity(2048));
        w.prefix.extend_from_slice(METADATA_PREFIX);
        let mut order = Vec::with_capacity(sorted.len());
        let mut leafless_keys = Vec::new();
        for (index, e) in sorted {
            let start = w.sink.len();
            w.entry(e);
            let leaves = &w.sink[start..];
            if leaves.is_empty() {
                leafless_keys.extend_from_slice(e.key.as_bytes());
            } else {
                // Every leaf of a top-level entry starts `resource_metadata:<key>`.
                debug_assert!(leaves[METADATA_PREFIX.len()..].starts_with(e.key.as_bytes()));
            }
            order.push(Chunk {
                pre: e.pre,
                index,
                end: u32::try_from(w.sink.len()).ok()?,
                key_len: e.key.len() as u16,
            });
        }
        Some(SigningChunks {
            bytes: w.sink.into_boxed_slice(),
            order: order.into_boxed_slice(),
            leafless_keys: leafless_keys.into_boxed_slice(),
        })
    }

    fn start(&self, pos: usize) -> usize {
        match pos {
            0 => 0,
            _ => self.order[pos - 1].end as usize,
        }
    }

    /// The key of the chunk at `pos`.
    fn key(&self, pos: usize) -> &[u8] {
        let (start, c) = (self.start(pos), &self.order[pos]);
        let len = usize::from(c.key_len);
        if c.end as usize > start {
            let at = start + METADATA_PREFIX.len();
            return &self.bytes[at..at + len];
        }
        // Rare (empty dicts): after the keys of the leafless entries before it.
        let at: usize = (0..pos)
            .filter(|&i| self.order[i].end as usize == self.start(i))
            .map(|i| usize::from(self.order[i].key_len))
            .sum();
        &self.leafless_keys[at..at + len]
    }

    /// Where `key` sorts among the chunks from `from` on, and whether a chunk has that
    /// very key (byte order is code point order).
    fn search(&self, from: usize, key: &str) -> (usize, bool) {
        let pre = Entry::new(key, &Value::NULL).pre;
        let key = key.as_bytes();
        let before = |i: usize| {
            let c = &self.order[i];
            c.pre < pre || (c.pre == pre && self.key(i) < key)
        };
        // partition_point over positions (a chunk's key needs its neighbour's end).
        let (mut lo, mut hi) = (from, self.order.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if before(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let found = self
            .order
            .get(lo)
            .is_some_and(|c| c.pre == pre && self.key(lo) == key);
        (lo, found)
    }

    /// The index in the shared entries of `key`.
    pub(crate) fn find(&self, key: &str) -> Option<usize> {
        match self.search(0, key) {
            (pos, true) => Some(self.order[pos].index as usize),
            _ => None,
        }
    }

    /// Start loading this rendering's arrays into the CPU's caches.
    pub(crate) fn prefetch(&self) {
        use longshore_plugin_api::host::prefetch;
        prefetch(self.bytes.as_ptr(), self.bytes.len());
        prefetch(
            self.order.as_ptr().cast(),
            std::mem::size_of_val(&*self.order),
        );
    }
}

/// Sorted entries of a dict inside a list (rare: no stack reuse needed).
fn sorted(map: &Map) -> Vec<Entry<'_>> {
    let mut entries: Vec<Entry<'_>> = map.iter().map(|(k, v)| Entry::new(k, v)).collect();
    sort_entries(&mut entries);
    entries
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
            for (i, e) in sorted(m).iter().enumerate() {
                if i > 0 {
                    sink.write(b", ");
                }
                write_bytes_repr(sink, e.key.as_bytes());
                sink.write(b": ");
                write_elem_repr(sink, e.value);
            }
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
    fn entry_order_is_code_point_order() {
        let keys = [
            "abcdefgh",
            "a",
            "a\0",
            "abcdefghi",
            "abcdefgg\u{ff}",
            "é",
            "z",
            "",
            "abcdefgh\0",
            "B",
            "a:b",
            "a.b",
            "ab",
            "\u{10000}",
            "\u{ffff}",
            "image_ref_url",
            "image_ref",
            "image",
            "image_meta",
        ];
        let mut entries: Vec<Entry<'_>> =
            keys.iter().map(|k| Entry::new(k, &Value::NULL)).collect();
        sort_entries(&mut entries);
        let got: Vec<&str> = entries.iter().map(|e| e.key).collect();
        let mut want = keys.to_vec();
        want.sort_by(|a, b| a.chars().cmp(b.chars()));
        assert_eq!(got, want);
        // and the large-map path
        let many: Vec<String> = (0..100).rev().map(|i| format!("k{i:03}")).collect();
        let mut entries: Vec<Entry<'_>> =
            many.iter().map(|k| Entry::new(k, &Value::NULL)).collect();
        sort_entries(&mut entries);
        assert!(entries.windows(2).all(|w| w[0].key < w[1].key));
    }

    #[test]
    fn a_group_takes_at_most_four_messages_and_signs_each_as_alone() {
        let md = Map::new().with("a", 1).with("b", Map::new().with("c", "d"));
        let vol = Value::from(1.5);
        let f = MeterFields {
            source: "openstack",
            counter_name: "cpu",
            counter_type: "cumulative",
            counter_unit: "ns",
            counter_volume: &vol,
            counter_volume_str: None,
            user_id: Some("u"),
            project_id: None,
            resource_id: "r",
            timestamp: Some("2025-01-01T00:00:00"),
            resource_metadata: &md,
            message_id: "m",
            monotonic_time: "1.0",
            rendered: None,
        };
        let signer = Signer::new("k");
        let mut it = std::iter::repeat_n(f, Signer::GROUP + 1);
        let mut out = [[0u8; 64]; Signer::GROUP];
        assert!(signer.sign_meters_into(it.by_ref(), &mut SignScratch::new(), &mut out));
        assert_eq!(
            it.count(),
            1,
            "the fifth message is left for the next group"
        );
        let mut alone = [0u8; 64];
        let alone = signer.sign_meter_into(&f, &mut alone).unwrap();
        assert!(out.iter().all(|o| o.as_slice() == alone.as_bytes()));
        assert!(!Signer::new("").sign_meters_into([f], &mut SignScratch::new(), &mut out));
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
                Value::from(
                    Map::new()
                        .with("z", "1")
                        .with("k", Value::list([Value::from(2.0)])),
                ),
                Value::list([]),
                Value::from(false),
                Value::from(-3),
            ]),
        );
        assert_eq!(
            leaves(&m),
            "l[b'a', {b'k': [2.0], b'z': b'1'}, [], False, -3]"
        );
    }

    #[test]
    fn pieces_of_every_length_stream_intact() {
        // Every short-copy branch, at every buffer offset (the pieces straddle flushes),
        // and pieces up to 597 bytes around the direct-update threshold.
        let mut leaves = Map::new();
        let mut want = Vec::new();
        for i in 0..200usize {
            let key = format!("k{i:03}");
            let value: String = (0..if i % 5 == 0 { i * 3 } else { i % 41 })
                .map(|j| (b'a' + (j % 26) as u8) as char)
                .collect();
            want.extend_from_slice(key.as_bytes());
            want.extend_from_slice(value.as_bytes());
            leaves.insert(key, value);
        }
        let mut whole = HmacSha256::new_from_slice(b"s").unwrap();
        whole.update(&want);
        let want: [u8; 32] = whole.finalize().into_bytes().into();
        let want: String = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(compute_signature(&leaves, "s"), want);
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
        assert!(
            verify_signature(&m, ""),
            "no secret configured: nothing to verify"
        );
        m.insert("counter_volume", 2.5);
        assert!(!verify_signature(&m, "s"));
        m.remove(SIGNATURE_KEY);
        assert!(!verify_signature(&m, "s"));
    }
}
