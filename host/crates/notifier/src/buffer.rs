//! The bounded in-memory queue of encoded notifications between `publish()` and the broker:
//! FIFO (so order per pollster is kept), bounded in samples and bytes with drop-oldest, and
//! the per-connection confirm bookkeeping (delivery tags, requeue of unconfirmed on loss).

use std::collections::VecDeque;
use std::sync::Arc;

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryState {
    /// Not sent on the current connection.
    Pending,
    /// Published on the current channel with this delivery tag, not yet confirmed.
    InFlight(u64),
    /// Confirmed by the broker; waits only for the entries before it to be popped.
    Confirmed,
}

/// One AMQP message: one notification on one topic.
#[derive(Debug)]
pub(crate) struct Entry {
    pub seq: u64,
    pub routing_key: Arc<str>,
    pub body: Arc<Vec<u8>>,
    pub samples: usize,
    /// Written to the spool directory (its file must be removed once confirmed or dropped).
    pub spooled: bool,
    /// Sent at least once before (a send now is a resend).
    sent_before: bool,
    state: EntryState,
}

impl Entry {
    pub fn new(seq: u64, routing_key: Arc<str>, body: Arc<Vec<u8>>, samples: usize) -> Entry {
        Entry {
            seq,
            routing_key,
            body,
            samples,
            spooled: false,
            sent_before: false,
            state: EntryState::Pending,
        }
    }
}

/// What `take_unsent` hands to the sender.
pub(crate) struct Outgoing {
    pub routing_key: Arc<str>,
    pub body: Arc<Vec<u8>>,
    pub resend: bool,
}

/// Limits of the buffer (both apply).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_samples: usize,
    pub max_bytes: usize,
}

/// The queue. Entries are in `seq` order; everything before `cursor` was sent on the
/// current connection (in flight or confirmed), everything from `cursor` on is waiting,
/// except confirmed entries a requeue left behind (skipped when sending).
pub(crate) struct Buffer {
    entries: VecDeque<Entry>,
    cursor: usize,
    in_flight: usize,
    limits: Limits,
    /// Unconfirmed samples / body bytes held (confirmed entries no longer count).
    samples: usize,
    bytes: usize,
    unconfirmed: usize,
    next_seq: u64,
}

impl Buffer {
    pub fn new(limits: Limits, next_seq: u64) -> Buffer {
        Buffer {
            entries: VecDeque::new(),
            cursor: 0,
            in_flight: 0,
            limits,
            samples: 0,
            bytes: 0,
            unconfirmed: 0,
            next_seq,
        }
    }

    /// The sequence number the next entry gets (and advances it).
    pub fn alloc_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Unconfirmed (samples, notifications, bytes).
    pub fn held(&self) -> (usize, usize, usize) {
        (self.samples, self.unconfirmed, self.bytes)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Seq of the oldest unconfirmed entry (the front is never a confirmed entry).
    pub fn oldest_seq(&self) -> Option<u64> {
        self.entries.front().map(|e| e.seq)
    }

    /// Unconfirmed samples among entries older than `seq`.
    pub fn samples_before(&self, seq: u64) -> usize {
        self.entries
            .iter()
            .take_while(|e| e.seq < seq)
            .filter(|e| e.state != EntryState::Confirmed)
            .map(|e| e.samples)
            .sum()
    }

    /// Append an entry (its seq must come from `alloc_seq`, in order). When a limit is
    /// exceeded, the oldest entries not yet sent on this connection are removed and
    /// returned; an entry that alone exceeds a limit is itself rejected (returned).
    pub fn push(&mut self, entry: Entry) -> Vec<Entry> {
        if entry.samples > self.limits.max_samples || entry.body.len() > self.limits.max_bytes {
            return vec![entry];
        }
        self.samples += entry.samples;
        self.bytes += entry.body.len();
        self.unconfirmed += 1;
        self.entries.push_back(entry);
        let mut dropped = Vec::new();
        while self.samples > self.limits.max_samples || self.bytes > self.limits.max_bytes {
            // Entries before the cursor are on the wire: dropping them would not stop their
            // delivery, so only waiting ones go, oldest first, never the one just added.
            let last = self.entries.len() - 1;
            let Some(i) =
                (self.cursor..last).find(|&i| self.entries[i].state == EntryState::Pending)
            else {
                break;
            };
            let e = self.entries.remove(i).expect("index in range");
            self.samples -= e.samples;
            self.bytes -= e.body.len();
            self.unconfirmed -= 1;
            dropped.push(e);
        }
        dropped
    }

    /// Mark up to `max` waiting entries as published with consecutive delivery tags from
    /// `*next_tag`, and return them in order.
    pub fn take_unsent(&mut self, max: usize, next_tag: &mut u64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        while out.len() < max && self.cursor < self.entries.len() {
            let e = &mut self.entries[self.cursor];
            self.cursor += 1;
            if e.state == EntryState::Confirmed {
                continue;
            }
            e.state = EntryState::InFlight(*next_tag);
            *next_tag += 1;
            out.push(Outgoing {
                routing_key: e.routing_key.clone(),
                body: e.body.clone(),
                resend: e.sent_before,
            });
            e.sent_before = true;
            self.in_flight += 1;
        }
        out
    }

    /// Whether an entry waits to be sent.
    #[cfg(test)]
    pub fn has_unsent(&self) -> bool {
        self.entries
            .range(self.cursor..)
            .any(|e| e.state == EntryState::Pending)
    }

    /// Apply a broker ack; returns the entries that are now confirmed and removed from the
    /// front (in order), which the caller accounts for and un-spools.
    pub fn confirm(&mut self, tag: u64, multiple: bool) -> Vec<Entry> {
        for e in self.entries.range_mut(..self.cursor) {
            match e.state {
                EntryState::InFlight(t) if t == tag || (multiple && t < tag) => {
                    e.state = EntryState::Confirmed;
                    self.in_flight -= 1;
                    self.samples -= e.samples;
                    self.bytes -= e.body.len();
                    self.unconfirmed -= 1;
                    if t == tag {
                        break;
                    }
                }
                // Tags grow along the queue, so nothing further can match.
                EntryState::InFlight(t) if t > tag => break,
                _ => {}
            }
        }
        let mut done = Vec::new();
        while self
            .entries
            .front()
            .is_some_and(|e| e.state == EntryState::Confirmed)
        {
            done.push(self.entries.pop_front().expect("front exists"));
            self.cursor = self.cursor.saturating_sub(1);
        }
        done
    }

    /// The connection is gone: everything in flight will be sent again, in order.
    /// Returns how many entries were in flight.
    pub fn requeue(&mut self) -> usize {
        let n = self.in_flight;
        for e in self.entries.range_mut(..self.cursor) {
            if let EntryState::InFlight(_) = e.state {
                e.state = EntryState::Pending;
            }
        }
        self.cursor = 0;
        self.in_flight = 0;
        n
    }

    /// Remove everything (the notifier stops); returns the unconfirmed entries.
    pub fn drain(&mut self) -> Vec<Entry> {
        self.cursor = 0;
        self.in_flight = 0;
        self.samples = 0;
        self.bytes = 0;
        self.unconfirmed = 0;
        self.entries
            .drain(..)
            .filter(|e| e.state != EntryState::Confirmed)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(b: &mut Buffer, samples: usize, bytes: usize) -> Entry {
        let seq = b.alloc_seq();
        Entry::new(
            seq,
            Arc::from("n.sample"),
            Arc::new(vec![b'x'; bytes]),
            samples,
        )
    }

    fn seqs(d: &[Entry]) -> Vec<u64> {
        d.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn drops_oldest_waiting_by_samples_and_bytes() {
        let mut b = Buffer::new(
            Limits {
                max_samples: 10,
                max_bytes: 1000,
            },
            0,
        );
        for _ in 0..5 {
            let e = entry(&mut b, 2, 10);
            assert!(b.push(e).is_empty());
        }
        let e = entry(&mut b, 3, 10);
        assert_eq!(seqs(&b.push(e)), vec![0, 1]);
        assert_eq!(b.held(), (9, 4, 40));
        let e = entry(&mut b, 1, 980);
        assert_eq!(seqs(&b.push(e)), vec![2, 3]);
        assert_eq!(b.held(), (6, 3, 1000));
        // Alone over the limit: rejected, nothing else dropped.
        let e = entry(&mut b, 11, 1);
        assert_eq!(seqs(&b.push(e)), vec![7]);
        assert_eq!(b.held(), (6, 3, 1000));
    }

    #[test]
    fn in_flight_entries_are_not_dropped() {
        let mut b = Buffer::new(
            Limits {
                max_samples: 4,
                max_bytes: 1000,
            },
            0,
        );
        for _ in 0..4 {
            let e = entry(&mut b, 1, 1);
            b.push(e);
        }
        let mut tag = 1;
        assert_eq!(b.take_unsent(2, &mut tag).len(), 2);
        let e = entry(&mut b, 1, 1);
        assert_eq!(seqs(&b.push(e)), vec![2]);
        let e = entry(&mut b, 2, 1);
        assert_eq!(seqs(&b.push(e)), vec![3, 4]);
        assert_eq!(b.oldest_seq(), Some(0));
    }

    #[test]
    fn confirms_in_and_out_of_order_then_requeue_resends_in_order() {
        let mut b = Buffer::new(
            Limits {
                max_samples: 100,
                max_bytes: 1000,
            },
            0,
        );
        for _ in 0..6 {
            let e = entry(&mut b, 1, 1);
            b.push(e);
        }
        let mut tag = 1;
        let out = b.take_unsent(4, &mut tag);
        assert_eq!(out.len(), 4);
        assert!(!out[0].resend);
        // Ack tag 2 alone: nothing popped (seq 0 still in flight).
        assert!(b.confirm(2, false).is_empty());
        assert_eq!(b.held().1, 5);
        // Ack multiple up to 1: pops seq 0 and 1.
        assert_eq!(seqs(&b.confirm(1, true)), vec![0, 1]);
        assert_eq!(b.in_flight(), 2);
        // Connection lost: seqs 2, 3 in flight go back; 4, 5 were never sent.
        assert_eq!(b.requeue(), 2);
        let mut tag = 1;
        let out = b.take_unsent(10, &mut tag);
        assert_eq!(out.len(), 4);
        assert_eq!(out.iter().filter(|o| o.resend).count(), 2);
        assert_eq!(seqs(&b.confirm(4, true)), vec![2, 3, 4, 5]);
        assert_eq!(b.held(), (0, 0, 0));
        assert!(!b.has_unsent());
    }

    #[test]
    fn confirmed_entries_left_by_requeue_are_not_resent() {
        let mut b = Buffer::new(
            Limits {
                max_samples: 100,
                max_bytes: 1000,
            },
            0,
        );
        for _ in 0..3 {
            let e = entry(&mut b, 1, 1);
            b.push(e);
        }
        let mut tag = 1;
        b.take_unsent(3, &mut tag);
        assert!(b.confirm(2, false).is_empty()); // seq 1 confirmed, seq 0 not
        b.requeue();
        let mut tag = 1;
        let out = b.take_unsent(10, &mut tag);
        assert_eq!(out.len(), 2); // seqs 0 and 2, not 1
        assert_eq!(seqs(&b.confirm(2, true)), vec![0, 1, 2]);
    }
}
