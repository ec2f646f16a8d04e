//! The per-resource rendering: a resource's metadata is shared by every sample about it
//! (plugin-api's shared `Map` entries), so its signing leaves and its JSON text are
//! rendered once and reused by each of those samples' messages; only a sample's own
//! metadata keys are rendered per message.
//!
//! A rendering is kept in the shared entries' [`HostSlot`]: finding it is a pointer load,
//! and it is freed with the entries (when the last sample or resource holding them goes),
//! so nothing needs sweeping and nothing outlives its resource.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use longshore_plugin_api::host::prefetch as prefetch_bytes;
use longshore_plugin_api::{HostData, HostSlot, Map, SharedEntries, Value};

use crate::pyjson::{map_g, str_g, value_g};
use crate::signature::SigningChunks;

/// What is rendered once for one set of shared metadata entries.
pub struct RenderedMetadata {
    /// The identity of the entries rendered ([`SharedEntries::id`]).
    id: usize,
    signing: SigningChunks,
    json: OnceLock<JsonChunks>,
    json_nested: OnceLock<JsonChunks>,
}

impl std::fmt::Debug for RenderedMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedMetadata")
            .field("id", &self.id)
            .finish()
    }
}

impl RenderedMetadata {
    fn new(entries: &SharedEntries) -> Option<RenderedMetadata> {
        Some(RenderedMetadata {
            id: entries.id(),
            signing: SigningChunks::render(entries)?,
            json: OnceLock::new(),
            json_nested: OnceLock::new(),
        })
    }

    /// Whether this renders the shared entries of `map`.
    pub(crate) fn renders(&self, map: &Map) -> bool {
        map.shared_id() == Some(self.id)
    }

    pub(crate) fn signing(&self) -> &SigningChunks {
        &self.signing
    }

    /// `entries` must be the ones rendered.
    fn json<const NESTED: bool>(&self, entries: &SharedEntries) -> &JsonChunks {
        let cell = if NESTED {
            &self.json_nested
        } else {
            &self.json
        };
        cell.get_or_init(|| JsonChunks::render::<NESTED>(entries))
    }
}

/// What a [`HostSlot`] holds: the header plugin-api calls to free it, then the rendering.
#[repr(C)]
struct Attached {
    header: HostData,
    rendered: RenderedMetadata,
}

static LIVE: AtomicUsize = AtomicUsize::new(0);

#[cfg(test)]
thread_local! {
    static FREED_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

unsafe extern "C" fn free_attached(p: *mut ()) {
    // SAFETY: only `rendered` puts Attached boxes in slots, with this function.
    drop(unsafe { Box::from_raw(p.cast::<Attached>()) });
    LIVE.fetch_sub(1, Ordering::Relaxed);
    #[cfg(test)]
    FREED_HERE.with(|c| c.set(c.get() + 1));
}

/// The rendering kept in `slot`, if any: what the slot holds is only taken for an
/// `Attached` when its free function is ours (another user of the public slot would
/// have put its own there).
fn in_slot(slot: &HostSlot) -> Option<&RenderedMetadata> {
    let p = slot.get()?;
    // SAFETY: whatever is in a slot starts with a HostData header (HostSlot::set).
    let free = unsafe { (*p.as_ptr()).free };
    if !std::ptr::fn_addr_eq(free, free_attached as unsafe extern "C" fn(*mut ())) {
        return None;
    }
    // SAFETY: freed by free_attached, so made by `rendered` as an Attached box; it lives
    // as long as the entries, and so at least as long as the borrow of the slot.
    Some(unsafe { &(*p.as_ptr().cast::<Attached>()).rendered })
}

/// The rendering of `map`'s shared entries, made and kept with them on first use; None
/// for a map without shared entries (nothing to reuse) or with more than a rendering
/// indexes (see [`SigningChunks::render`]).
pub fn rendered(map: &Map) -> Option<&RenderedMetadata> {
    let entries = map.shared()?;
    if let Some(r) = in_slot(entries.slot()) {
        return Some(r);
    }
    let boxed = Box::new(Attached {
        header: HostData {
            free: free_attached,
        },
        rendered: RenderedMetadata::new(entries)?,
    });
    let data = NonNull::from(Box::leak(boxed)).cast::<HostData>();
    // SAFETY: an Attached box lives until free_attached releases it, from any thread.
    match unsafe { entries.slot().set(data) } {
        Ok(()) => {
            LIVE.fetch_add(1, Ordering::Relaxed);
        }
        // Another thread rendered the same entries first: keep theirs.
        Err(_) => drop(unsafe { Box::from_raw(data.as_ptr().cast::<Attached>()) }),
    }
    in_slot(entries.slot())
}

/// The rendering already kept with `map`'s shared entries, if any (makes none).
pub fn attached(map: &Map) -> Option<&RenderedMetadata> {
    in_slot(map.shared()?.slot())
}

/// Start loading into the CPU's caches the renderings kept with these maps' shared
/// entries (those already made), for messages about to be made from them: a cycle over
/// thousands of resources finds each resource's rendering in memory, not in a cache, and
/// one miss after another stalls the signing; requested together, the loads overlap.
pub fn prefetch<'m>(maps: impl Iterator<Item = &'m Map> + Clone) {
    // First the renderings' headers (where their texts are), then the texts.
    for m in maps.clone() {
        if let Some(p) = m.shared().and_then(|e| e.slot().get()) {
            prefetch_bytes(p.as_ptr().cast::<u8>(), std::mem::size_of::<Attached>());
        }
    }
    for m in maps {
        if let Some(r) = attached(m) {
            r.signing.prefetch();
            if let Some(j) = r.json.get() {
                prefetch_bytes(j.text.as_ptr(), j.text.len());
                prefetch_bytes(j.ends.as_ptr().cast(), std::mem::size_of_val(&*j.ends));
            }
        }
    }
}

/// How many renderings are alive in the process (for figures and logs).
pub fn live_renderings() -> usize {
    LIVE.load(Ordering::Relaxed)
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
    let (Some(r), Some(entries)) = (rendered.filter(|r| r.renders(map)), map.shared()) else {
        return map_g::<NESTED>(out, map);
    };
    let json = r.json::<NESTED>(entries);
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
            let key = entries.get_index(index).map_or("", |e| e.0);
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
            .with("void", Map::new())
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
            // Around and over the entries without leaves (their keys are kept apart).
            with(&[("empty", Value::from(1)), ("void", Value::from(2))]),
            with(&[
                ("emptx", Value::from(1)),
                ("emptz", Value::from(2)),
                ("voic", Value::NULL),
                ("voie", Value::NULL),
            ]),
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
        let base = base();
        let first = rendered(&base).expect("shared") as *const RenderedMetadata;
        for m in overlays(&base) {
            let r = rendered(&m).expect("shared");
            assert!(std::ptr::eq(r, first), "one rendering per shared base");
            for nested in [false, true] {
                let (mut want, mut got) = (Vec::new(), Vec::new());
                if nested {
                    map_g::<true>(&mut want, &m);
                    write_metadata::<true>(&mut got, &m, Some(r));
                } else {
                    map_g::<false>(&mut want, &m);
                    write_metadata::<false>(&mut got, &m, Some(r));
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
                crate::signature::signing_input_over(&m, r),
                "{m:?}"
            );
        }
    }

    #[test]
    fn a_rendering_of_another_base_is_not_used() {
        let (a, b) = (base(), Map::new().with("k", 1).into_shared());
        let ra = rendered(&a).expect("shared");
        let mut out = Vec::new();
        write_metadata::<false>(&mut out, &b, Some(ra));
        assert_eq!(out, b"{\"k\": 1}");
        assert!(rendered(&Map::new().with("k", 1)).is_none());
        assert!(attached(&b).is_none(), "attached() renders nothing");
    }

    #[test]
    fn a_rendering_is_freed_with_the_last_holder_of_its_entries() {
        let freed = || FREED_HERE.with(|c| c.get());
        let before = freed();
        let base = base();
        let sample_metadata = {
            let mut m = base.clone();
            m.insert("cpu_number", 1);
            m
        };
        assert!(rendered(&sample_metadata).is_some());
        assert!(attached(&base).is_some(), "kept with the shared entries");
        drop(base);
        assert_eq!(freed(), before, "a map still holds the entries");
        assert!(attached(&sample_metadata).is_some());
        drop(sample_metadata);
        assert_eq!(freed(), before + 1, "freed once, with the entries");
    }

    #[test]
    fn a_slot_holding_something_else_is_not_read_as_a_rendering() {
        unsafe extern "C" fn free_other(p: *mut ()) {
            drop(unsafe { Box::from_raw(p.cast::<HostData>()) });
        }
        let base = base();
        let other = NonNull::from(Box::leak(Box::new(HostData { free: free_other })));
        let slot = base.shared().expect("shared").slot();
        assert!(unsafe { slot.set(other) }.is_ok());
        assert!(
            rendered(&base).is_none(),
            "not ours: no rendering, the dict path"
        );
        assert!(attached(&base).is_none());
    }

    #[test]
    fn entries_beyond_a_renderings_index_are_not_rendered() {
        // A key of 65,536 bytes: longer than a chunk's 16-bit key length.
        let m = Map::new().with("k".repeat(65_536), 1).into_shared();
        assert!(rendered(&m).is_none(), "the uncached paths take it");
        let just_fits = Map::new().with("k".repeat(65_535), 1).into_shared();
        let r = rendered(&just_fits).expect("within the index");
        let message = Map::new().with("resource_metadata", just_fits.clone());
        assert_eq!(
            crate::signature::signing_input(&message),
            crate::signature::signing_input_over(&just_fits, r)
        );
    }

    #[test]
    fn racing_threads_keep_one_rendering() {
        let base = base();
        let ptrs: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| rendered(&base).map(|r| r as *const _ as usize)))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
        });
        assert!(ptrs.windows(2).all(|w| w[0] == w[1]), "{ptrs:?}");
    }
}
