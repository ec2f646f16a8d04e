//! `Progress`: whether the consumer behind a publisher (its writer thread, a broker) is
//! draining what it is given, as seen by the producer, so that holding the producer back
//! while the consumer is late (bounded memory) never turns into stalling it while the
//! consumer is stuck (a hung disk, a broker that stopped confirming).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The consumer's count of what it has done (lines written, notifications confirmed), as
/// the producer last saw it while waiting on it.
#[derive(Debug)]
pub struct Progress {
    seen: Mutex<Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    count: u64,
    /// When `count` was first seen.
    since: Instant,
    last_check: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        let now = Instant::now();
        Progress {
            seen: Mutex::new(Seen {
                count: 0,
                since: now,
                last_check: now,
            }),
        }
    }

    /// Whether the consumer, now at `count`, has not moved for `after` while the
    /// producer kept checking (a first check after a quiet spell starts afresh).
    pub fn stalled(&self, count: u64, after: Duration) -> bool {
        let now = Instant::now();
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = now.duration_since(s.last_check) > after;
        s.last_check = now;
        if count != s.count || fresh {
            s.count = count;
            s.since = now;
            return false;
        }
        now.duration_since(s.since) >= after
    }
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_only_when_the_count_stays_put_under_repeated_checks() {
        let p = Progress::new();
        let after = Duration::from_millis(30);
        assert!(!p.stalled(0, after));
        assert!(!p.stalled(1, after), "moved");
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(40) {
            std::thread::sleep(Duration::from_millis(5));
            if p.stalled(1, after) {
                break;
            }
        }
        assert!(p.stalled(1, after), "no progress for 40 ms of checks");
        assert!(!p.stalled(2, after), "moving again");
        // A first check after a quiet spell is not a stall.
        std::thread::sleep(Duration::from_millis(40));
        assert!(!p.stalled(2, after));
    }
}
