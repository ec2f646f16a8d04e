//! When interval tasks run: every task at start, then on a fixed grid of its interval
//! measured from its first start. A task never overlaps itself: a slot that comes while
//! the previous cycle still runs is skipped (reported, no catch-up burst later). Pure
//! state, driven by the timer thread in `agent`, so it is tested with synthetic clocks.

use std::time::{Duration, Instant};

/// What the timer must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start a cycle of `task` for the slot `slot`.
    Dispatch { task: usize, slot: Instant },
    /// The slot came while the previous cycle was still running.
    Skip {
        task: usize,
        slot: Instant,
        running_for: Duration,
    },
}

struct Entry {
    interval: Duration,
    next_due: Instant,
    running_since: Option<Instant>,
}

pub(crate) struct Schedule {
    entries: Vec<Entry>,
}

/// How far ahead "never" is.
const FAR: Duration = Duration::from_secs(365 * 86_400);

impl Schedule {
    /// Every task is due at `start`.
    pub(crate) fn new(intervals: &[Duration], start: Instant) -> Schedule {
        Schedule {
            entries: intervals
                .iter()
                .map(|&interval| Entry {
                    interval,
                    next_due: start,
                    running_since: None,
                })
                .collect(),
        }
    }

    /// The actions due at `now`, in task order.
    pub(crate) fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        for (task, e) in self.entries.iter_mut().enumerate() {
            if e.next_due > now {
                continue;
            }
            let slot = latest_slot(e.next_due, e.interval, now);
            match e.running_since {
                Some(since) => actions.push(Action::Skip {
                    task,
                    slot,
                    running_for: now.saturating_duration_since(since),
                }),
                None => {
                    e.running_since = Some(now);
                    actions.push(Action::Dispatch { task, slot });
                }
            }
            e.next_due = slot
                .checked_add(e.interval.max(MIN_INTERVAL))
                .unwrap_or_else(|| now.checked_add(FAR).unwrap_or(now));
        }
        actions
    }

    /// The cycle of `task` is over.
    pub(crate) fn finished(&mut self, task: usize) {
        if let Some(e) = self.entries.get_mut(task) {
            e.running_since = None;
        }
    }

    /// When `poll` next has something to do (a far time when there are no tasks).
    pub(crate) fn next_deadline(&self, now: Instant) -> Instant {
        self.entries
            .iter()
            .map(|e| e.next_due)
            .min()
            .unwrap_or_else(|| now.checked_add(FAR).unwrap_or(now))
    }
}

const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// The last grid slot at or before `now`, starting from the due slot `due`: slots
/// missed while the timer was late collapse into one.
fn latest_slot(due: Instant, interval: Duration, now: Instant) -> Instant {
    let interval = interval.max(MIN_INTERVAL);
    let behind = now.saturating_duration_since(due).as_nanos();
    let missed = u32::try_from(behind / interval.as_nanos()).unwrap_or(u32::MAX);
    interval
        .checked_mul(missed)
        .and_then(|d| due.checked_add(d))
        .filter(|s| *s <= now)
        .unwrap_or(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn all_tasks_run_at_start_then_on_their_grid() {
        let t0 = Instant::now();
        let mut sch = Schedule::new(&[s(10), s(30)], t0);
        assert_eq!(
            sch.poll(t0),
            vec![
                Action::Dispatch { task: 0, slot: t0 },
                Action::Dispatch { task: 1, slot: t0 }
            ]
        );
        assert_eq!(sch.next_deadline(t0), t0 + s(10));
        sch.finished(0);
        sch.finished(1);
        assert!(sch.poll(t0 + s(9)).is_empty());
        // dispatched a little late: the grid does not drift
        assert_eq!(
            sch.poll(t0 + s(10) + Duration::from_millis(300)),
            vec![Action::Dispatch {
                task: 0,
                slot: t0 + s(10)
            }]
        );
        assert_eq!(sch.next_deadline(t0), t0 + s(20));
    }

    #[test]
    fn an_overrunning_task_is_skipped_without_catch_up() {
        let t0 = Instant::now();
        let mut sch = Schedule::new(&[s(10), s(10), s(5)], t0);
        sch.poll(t0);
        sch.finished(1);
        sch.finished(2);
        // task 0 still running at its next slot: skipped; the others are not delayed
        let acts = sch.poll(t0 + s(10));
        assert_eq!(
            acts,
            vec![
                Action::Skip {
                    task: 0,
                    slot: t0 + s(10),
                    running_for: s(10)
                },
                Action::Dispatch {
                    task: 1,
                    slot: t0 + s(10)
                },
                Action::Dispatch {
                    task: 2,
                    slot: t0 + s(10)
                },
            ]
        );
        sch.finished(1);
        sch.finished(2);
        // still running at 20 s: skipped again
        let acts = sch.poll(t0 + s(20));
        assert!(matches!(acts[0], Action::Skip { task: 0, .. }), "{acts:?}");
        assert_eq!(acts.len(), 3);
        sch.finished(1);
        sch.finished(2);
        // it finishes at 25 s: it does not run until its next slot at 30 s
        sch.finished(0);
        assert_eq!(
            sch.poll(t0 + s(25)),
            vec![Action::Dispatch {
                task: 2,
                slot: t0 + s(25)
            }]
        );
        sch.finished(2);
        assert_eq!(sch.poll(t0 + s(30)).len(), 3);
    }

    #[test]
    fn a_late_timer_runs_once_not_once_per_missed_slot() {
        let t0 = Instant::now();
        let mut sch = Schedule::new(&[s(10)], t0);
        sch.poll(t0);
        sch.finished(0);
        // the timer wakes 35 s late (machine suspended): one run for the latest slot,
        // the next one on the grid
        assert_eq!(
            sch.poll(t0 + s(45)),
            vec![Action::Dispatch {
                task: 0,
                slot: t0 + s(40)
            }]
        );
        assert_eq!(sch.next_deadline(t0), t0 + s(50));
    }
}
