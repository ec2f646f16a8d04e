//! The per-resource rendering cache: a resource's metadata is shared by every sample about
//! it (plugin-api's shared `Map` entries), so its signing leaves and its JSON text are
//! rendered once and reused by each of those samples' messages; only a sample's own
//! metadata keys are rendered per message.
//!
//! Entries are keyed by the shared entries' identity and hold a handle on them, so an
//! identity cannot be reused while it is cached; an entry is dropped once nothing but the
//! cache shares its entries (checked when a shard has doubled since its last sweep).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use longshore_plugin_api::{Map, SharedEntries, Value};

use crate::pyjson::{map_g, str_g, value_g};
use crate::signature::SigningChunks;

/// What is rendered once for one set of shared metadata entries.
pub struct RenderedMetadata {
    entries: SharedEntries,
    signing: SigningChunks,
    json: OnceLock<JsonChunks>,
    json_nested: OnceLock<JsonChunks>,
}

impl std::fmt::Debug for RenderedMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedMetadata")
            .field("id", &self.entries.id())
            .field("keys", &self.entries.len())
            .finish()
    }
}

impl RenderedMetadata {
    fn new(entries: SharedEntries) -> RenderedMetadata {
        RenderedMetadata {
            signing: SigningChunks::render(&entries),
            entries,
            json: OnceLock::new(),
            json_nested: OnceLock::new(),
        }
    }

    /// Whether this renders the shared entries of `map`.
    pub(crate) fn renders(&self, map: &Map) -> bool {
        map.shared_id() == Some(self.entries.id())
    }

    pub(crate) fn signing(&self) -> &SigningChunks {
        &self.signing
    }

    fn json<const NESTED: bool>(&self) -> &JsonChunks {
        let cell = if NESTED {
            &self.json_nested
        } else {
            &self.json
        };
        cell.get_or_init(|| JsonChunks::render::<NESTED>(&self.entries))
    }
}

/// `"key": value` of every shared entry in insertion order, joined by `", "`.
struct JsonChunks {
    text: Box<[u8]>,
    /// Where each entry ends in `text`; the next starts 2 bytes later.
    ends: Box<[u32]>,
}

impl JsonChunks {
    fn render<const NESTED: bool>(entries: &SharedEntries) -> JsonChunks {
        let mut text = Vec::with_capacity(2048);
        let mut ends = Vec::with_capacity(entries.len());
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                text.extend_from_slice(b", ");
            }
            str_g::<NESTED>(&mut text, k);
            text.extend_from_slice(b": ");
            value_g::<NESTED>(&mut text, v);
            ends.push(text.len() as u32);
        }
        // Exact sizes: renderings are kept per resource.
        JsonChunks {
            text: text.into_boxed_slice(),
            ends: ends.into_boxed_slice(),
        }
    }

    fn start(&self, i: usize) -> usize {
        match i {
            0 => 0,
            _ => self.ends[i - 1] as usize + 2,
        }
    }

    /// Entries `from..to` as written in the dict.
    fn run(&self, from: usize, to: usize) -> &[u8] {
        &self.text[self.start(from)..self.ends[to - 1] as usize]
    }
}

/// Python's `json.dumps` of `map` (see [`crate::pyjson`]), from `rendered`'s text when it
/// renders the map's shared entries: their text is copied, and only the map's own
/// entries are rendered (an overriding value in its key's place, new keys after).
pub(crate) fn write_metadata<const NESTED: bool>(
    out: &mut Vec<u8>,
    map: &Map,
    rendered: Option<&RenderedMetadata>,
) {
    let Some(r) = rendered.filter(|r| r.renders(map)) else {
        return map_g::<NESTED>(out, map);
    };
    let json = r.json::<NESTED>();
    let n = json.ends.len();
    let entry = |out: &mut Vec<u8>, k: &str, v: &Value| {
        str_g::<NESTED>(out, k);
        out.extend_from_slice(b": ");
        value_g::<NESTED>(out, v);
    };
    let sep = |out: &mut Vec<u8>, first: &mut bool| {
        if !std::mem::take(first) {
            out.extend_from_slice(b", ");
        }
    };
    // Own keys that replace a shared key's value, by the shared key's position (rare;
    // an empty Vec does not allocate).
    let mut replaced: Vec<(usize, &Value)> = map
        .own_entries()
        .filter_map(|(k, v)| Some((r.signing.find(k)?, v)))
        .collect();
    let mut first = true;
    out.push(b'{');
    if replaced.is_empty() {
        out.extend_from_slice(&json.text);
        first = n == 0;
    } else {
        replaced.sort_unstable_by_key(|e| e.0);
        let mut next = 0;
        for &(index, value) in &replaced {
            if index > next {
                sep(out, &mut first);
                out.extend_from_slice(json.run(next, index));
            }
            sep(out, &mut first);
            let key = r.entries.get_index(index).map_or("", |e| e.0);
            entry(out, key, value);
            next = index + 1;
        }
        if next < n {
            sep(out, &mut first);
            out.extend_from_slice(json.run(next, n));
        }
    }
    for (k, v) in map.own_entries() {
        if replaced.is_empty() || r.signing.find(k).is_none() {
            sep(out, &mut first);
            entry(out, k, v);
        }
    }
    out.push(b'}');
}

const SHARDS: usize = 16;
/// A shard is swept when it reaches this size at least (then twice its live size).
const MIN_SWEEP: usize = 256;

/// Renderings of the shared metadata entries seen recently, for every thread of a
/// [`crate::MessageFactory`]: sharded maps behind short locks (a lookup is a hash probe
/// and a reference count), the rendering itself done outside the lock.
#[derive(Default)]
pub struct MetadataCache {
    shards: [Mutex<Shard>; SHARDS],
}

#[derive(Default)]
struct Shard {
    map: HashMap<usize, Arc<RenderedMetadata>, BuildHasherDefault<IdHasher>>,
    sweep_at: usize,
}

impl Shard {
    /// Entries nothing else shares any more belong to resources that are gone.
    fn sweep(&mut self) {
        self.map.retain(|_, r| r.entries.share_count() > 1);
        self.sweep_at = 2 * self.map.len();
    }
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataCache")
            .field("entries", &self.len())
            .finish()
    }
}

impl MetadataCache {
    pub fn new() -> MetadataCache {
        MetadataCache::default()
    }

    /// The rendering of `map`'s shared entries, made on first use; None for a map
    /// without shared entries (nothing to reuse).
    pub fn get(&self, map: &Map) -> Option<Arc<RenderedMetadata>> {
        let id = map.shared_id()?;
        let shard = &self.shards[shard_of(id)];
        if let Some(r) = lock(shard).map.get(&id) {
            return Some(Arc::clone(r));
        }
        let rendered = Arc::new(RenderedMetadata::new(map.shared_entries()?));
        let mut s = lock(shard);
        let r = Arc::clone(s.map.entry(id).or_insert(rendered));
        if s.map.len() >= s.sweep_at.max(MIN_SWEEP) {
            s.sweep();
        }
        Some(r)
    }

    /// Drop the renderings of metadata nothing else shares any more (resources that
    /// are gone). The polling engine calls this at the end of each cycle; lookups also
    /// sweep a shard when it has doubled since its last sweep.
    pub fn sweep(&self) {
        for shard in &self.shards {
            lock(shard).sweep();
        }
    }

    /// How many renderings are held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held by the renderings (approximate).
    pub fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                lock(s)
                    .map
                    .values()
                    .map(|r| {
                        r.signing.heap_bytes()
                            + [r.json.get(), r.json_nested.get()]
                                .into_iter()
                                .flatten()
                                .map(|j| j.text.len() + std::mem::size_of_val(&*j.ends))
                                .sum::<usize>()
                    })
                    .sum::<usize>()
            })
            .sum()
    }
}

/// A poisoned shard only means another thread panicked mid-lookup; its map is intact.
fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

fn mix(id: usize) -> u64 {
    let h = (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

fn shard_of(id: usize) -> usize {
    (mix(id) >> 50) as usize % SHARDS
}

/// Identities are addresses: a multiply-xorshift spreads them well enough, and SipHash
/// would cost more than the rest of a lookup.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix((self.0 << 8 | b as u64) as usize);
        }
    }
    fn write_usize(&mut self, id: usize) {
        self.0 = mix(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Map {
        Map::new()
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
            .with("m", 3.0)
            .into_shared()
    }

    /// Maps over one shared base with every shape of overlay.
    fn overlays(base: &Map) -> Vec<Map> {
        let with = |pairs: &[(&str, Value)]| {
            let mut m = base.clone();
            for (k, v) in pairs {
                m.insert(*k, v.clone());
            }
            m
        };
        vec![
            base.clone(),
            with(&[("cpu_number", Value::from(2))]),
            with(&[("a.b", Value::from("over"))]),
            with(&[("zeta", Value::from(1)), ("aa", Value::NULL)]),
            with(&[
                ("m", Value::from(Map::new().with("x", 1))),
                ("0", Value::from(true)),
                ("zz", Value::from(-1)),
                ("a", Value::from(5)),
            ]),
            with(&[
                ("a.b", Value::NULL),
                ("zeta", Value::NULL),
                ("m", Value::NULL),
            ]),
        ]
    }

    #[test]
    fn renders_json_and_signatures_as_the_uncached_paths() {
        let cache = MetadataCache::new();
        let base = base();
        for m in overlays(&base) {
            let r = cache.get(&m).expect("shared");
            for nested in [false, true] {
                let (mut want, mut got) = (Vec::new(), Vec::new());
                if nested {
                    map_g::<true>(&mut want, &m);
                    write_metadata::<true>(&mut got, &m, Some(&r));
                } else {
                    map_g::<false>(&mut want, &m);
                    write_metadata::<false>(&mut got, &m, Some(&r));
                }
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "{m:?}"
                );
            }
            let message = Map::new().with("resource_metadata", m.clone());
            assert_eq!(
                crate::signature::signing_input(&message),
                crate::signature::signing_input_over(&m, &r),
                "{m:?}"
            );
        }
        assert_eq!(cache.len(), 1, "one rendering per shared base");
    }

    #[test]
    fn a_rendering_of_another_base_is_not_used() {
        let cache = MetadataCache::new();
        let (a, b) = (base(), Map::new().with("k", 1).into_shared());
        let ra = cache.get(&a).expect("shared");
        let mut out = Vec::new();
        write_metadata::<false>(&mut out, &b, Some(&ra));
        assert_eq!(out, b"{\"k\": 1}");
        assert!(cache.get(&Map::new().with("k", 1)).is_none());
    }

    #[test]
    fn renderings_of_dropped_resources_are_swept() {
        let cache = MetadataCache::new();
        let kept: Vec<Map> = (0..10)
            .map(|i| Map::new().with("i", i).into_shared())
            .collect();
        for m in &kept {
            cache.get(m);
        }
        for i in 0..(SHARDS * MIN_SWEEP * 4) {
            let gone = Map::new().with("j", i).into_shared();
            cache.get(&gone);
        }
        // Bounded by twice the live set per shard, and nothing live was dropped.
        assert!(cache.len() <= SHARDS * MIN_SWEEP * 2, "{}", cache.len());
        cache.sweep();
        assert_eq!(
            cache.len(),
            kept.len(),
            "a sweep keeps exactly the live set"
        );
        assert!(cache.len() <= SHARDS * MIN_SWEEP * 2, "{}", cache.len());
        for m in &kept {
            let r = cache.get(m).expect("shared");
            assert!(r.renders(m));
        }
        let ids: Vec<usize> = kept.iter().filter_map(Map::shared_id).collect();
        let held = cache
            .shards
            .iter()
            .flat_map(|s| lock(s).map.keys().copied().collect::<Vec<_>>())
            .filter(|id| ids.contains(id))
            .count();
        assert_eq!(held, kept.len());
    }
}
