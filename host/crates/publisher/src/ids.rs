//! Message identifiers as Ceilometer and oslo.messaging make them: a version-1 (time-based)
//! UUID per sample (`str(uuid.uuid1())`), version-4 UUIDs for the notification's
//! `message_id` and `_unique_id` (`uuid4().hex`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::{Builder, Uuid};

/// 100-ns intervals from the Gregorian reform (1582-10-15) to the Unix epoch.
const GREGORIAN_TO_UNIX_TICKS: u64 = 0x01B2_1DD2_1381_4000;

/// Version-1 UUIDs for sample `message_id`s: cheap (no syscall but the vDSO clock, no
/// lock) and unique within the process from any number of threads.
///
/// Like Python's `uuid1()`, a timestamp that would not advance (several ids in one
/// 100-ns tick, or the wall clock stepping back) is bumped to last + 1 tick, so ids never
/// repeat. The node id is random with the multicast bit set (RFC 4122 §4.5: not a real
/// MAC, so no hardware address leaks onto the bus); the clock sequence is random per
/// process, which keeps ids distinct across restarts even if the clock went back.
#[derive(Debug)]
pub struct Uuid1Generator {
    node: [u8; 6],
    clock_seq: u16,
    last_ticks: AtomicU64,
}

impl Default for Uuid1Generator {
    fn default() -> Self {
        Uuid1Generator::new()
    }
}

impl Uuid1Generator {
    /// A generator with a random node id and clock sequence.
    pub fn new() -> Uuid1Generator {
        let r = Uuid::new_v4().into_bytes();
        let node = [r[0] | 0x01, r[1], r[2], r[3], r[4], r[5]];
        let clock_seq = u16::from_be_bytes([r[9], r[10]]) & 0x3fff;
        Uuid1Generator::with_node(node, clock_seq)
    }

    /// A generator with a fixed node id and clock sequence (14 bits used).
    pub fn with_node(node: [u8; 6], clock_seq: u16) -> Uuid1Generator {
        Uuid1Generator {
            node,
            clock_seq: clock_seq & 0x3fff,
            last_ticks: AtomicU64::new(0),
        }
    }

    /// The process-wide generator (one node id per process, as Python's `uuid1()`).
    pub fn global() -> &'static Uuid1Generator {
        static GLOBAL: OnceLock<Uuid1Generator> = OnceLock::new();
        GLOBAL.get_or_init(Uuid1Generator::new)
    }

    /// A new id stamped with the current time.
    pub fn next_uuid(&self) -> Uuid {
        self.next_at(SystemTime::now())
    }

    /// A new id stamped with `now` (or later, if an id at or after `now` was already made).
    pub fn next_at(&self, now: SystemTime) -> Uuid {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let ticks = GREGORIAN_TO_UNIX_TICKS
            .saturating_add(since_epoch.as_secs().saturating_mul(10_000_000))
            .saturating_add(u64::from(since_epoch.subsec_nanos() / 100));
        let advance = |last: u64| if ticks > last { ticks } else { last + 1 };
        // fetch_update retries on contention; the closure is pure, so recompute the
        // value it stored from the previous one.
        let prev = self
            .last_ticks
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(advance(last))
            })
            .unwrap_or_else(|last| last);
        Builder::from_gregorian_timestamp(advance(prev), self.clock_seq, &self.node).into_uuid()
    }

    /// `str(uuid.uuid1())`: the hyphenated lowercase form, 36 bytes, into `buf`.
    pub fn next_str<'b>(&self, buf: &'b mut [u8; 36]) -> &'b str {
        self.next_uuid().hyphenated().encode_lower(buf)
    }
}

/// `str(uuid.uuid4())`, the notification's `message_id`.
pub fn uuid4_string() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

/// `uuid.uuid4().hex`, the notification's `_unique_id` (32 hex digits, no dashes).
pub fn uuid4_hex() -> String {
    Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    #[test]
    fn v1_fields_encode_time_clock_seq_and_node() {
        let g = Uuid1Generator::with_node([0x02, 0xfc, 0, 0, 0, 1], 0x2eaa);
        // Python: uuid.UUID('f53b9b76-e61f-11f1-aeaa-02fc00000001').time
        //   = 0x1f1e61ff53b9b76 ticks since 1582-10-15.
        let ticks = 0x1f1_e61f_f53b_9b76u64;
        let unix_100ns = ticks - GREGORIAN_TO_UNIX_TICKS;
        let at = UNIX_EPOCH
            + Duration::new(
                unix_100ns / 10_000_000,
                (unix_100ns % 10_000_000) as u32 * 100,
            );
        let mut buf = [0u8; 36];
        let id = g.next_at(at).hyphenated().encode_lower(&mut buf).to_owned();
        assert_eq!(id, "f53b9b76-e61f-11f1-aeaa-02fc00000001");
        assert_eq!(Uuid::parse_str(&id).unwrap().get_version_num(), 1);
    }

    #[test]
    fn same_instant_still_gives_distinct_increasing_ids() {
        let g = Uuid1Generator::with_node([1, 2, 3, 4, 5, 6], 7);
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = g.next_at(t).get_timestamp().unwrap().to_gregorian().0;
        let b = g.next_at(t).get_timestamp().unwrap().to_gregorian().0;
        // clock stepping back
        let c = g
            .next_at(t - Duration::from_secs(10))
            .get_timestamp()
            .unwrap()
            .to_gregorian()
            .0;
        assert_eq!(b, a + 1);
        assert_eq!(c, b + 1);
    }

    #[test]
    fn unique_across_threads() {
        let g = Uuid1Generator::new();
        let ids: Vec<Vec<Uuid>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..5000).map(|_| g.next_uuid()).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let all: HashSet<Uuid> = ids.into_iter().flatten().collect();
        assert_eq!(all.len(), 20_000);
    }

    #[test]
    fn random_node_is_marked_multicast() {
        let id = Uuid1Generator::new().next_uuid();
        let node = &id.as_bytes()[10..];
        assert_eq!(node[0] & 1, 1);
        assert_eq!(id.get_version_num(), 1);
    }

    #[test]
    fn v4_forms() {
        let s = uuid4_string();
        assert_eq!(s.len(), 36);
        assert_eq!(Uuid::parse_str(&s).unwrap().get_version_num(), 4);
        let h = uuid4_hex();
        assert_eq!(h.len(), 32);
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
