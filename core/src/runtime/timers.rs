//! The engine's timers: one binary heap ordered by deadline.
//!
//! Re-arming or cancelling a timer does not search the heap: the timer's
//! current arming is recorded in a map, and heap entries that no longer match
//! it are skipped when they surface. The heap is rebuilt when stale entries
//! outnumber live ones, so its size stays proportional to the armed timers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::engine::{Time, TimerId};

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Time, u64, TimerId)>>,
    /// The sequence number of each armed timer's live heap entry.
    armed: HashMap<TimerId, (Time, u64)>,
    next_seq: u64,
}

impl Timers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `id` to fire at `at`, replacing any earlier arming of it.
    pub fn arm(&mut self, id: TimerId, at: Time) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.armed.insert(id, (at, seq));
        self.heap.push(Reverse((at, seq, id)));
        self.compact_if_stale();
    }

    /// Disarms `id`; nothing happens if it is not armed.
    pub fn cancel(&mut self, id: TimerId) {
        self.armed.remove(&id);
        self.compact_if_stale();
    }

    pub fn is_armed(&self, id: TimerId) -> bool {
        self.armed.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.armed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// The earliest deadline of an armed timer.
    pub fn next_deadline(&mut self) -> Option<Time> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Disarms and returns the earliest timer due at or before `now`; the
    /// timers due are returned in deadline order, ties in arming order.
    pub fn pop_due(&mut self, now: Time) -> Option<TimerId> {
        self.drop_stale_top();
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((_, _, id)) = self.heap.pop()?;
                self.armed.remove(&id);
                Some(id)
            }
            _ => None,
        }
    }

    fn is_live(&self, seq: u64, id: &TimerId) -> bool {
        self.armed.get(id).is_some_and(|&(_, s)| s == seq)
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((_, seq, id))) = self.heap.peek() {
            if self.is_live(*seq, id) {
                break;
            }
            self.heap.pop();
        }
    }

    fn compact_if_stale(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.armed.len() {
            let heap = std::mem::take(&mut self.heap);
            self.heap = heap
                .into_iter()
                .filter(|Reverse((_, seq, id))| self.is_live(*seq, id))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ServiceId, TimerKind};
    use std::time::Duration;

    fn id(n: u32) -> TimerId {
        TimerId {
            service: ServiceId(n),
            kind: TimerKind::StartTimeout,
        }
    }

    fn t(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    #[test]
    fn due_timers_come_out_in_deadline_order() {
        let mut timers = Timers::new();
        timers.arm(id(1), t(30));
        timers.arm(id(2), t(10));
        timers.arm(id(3), t(20));
        assert_eq!(timers.next_deadline(), Some(t(10)));
        assert_eq!(timers.pop_due(t(5)), None);
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(t(25))).collect();
        assert_eq!(fired, vec![id(2), id(3)]);
        assert_eq!(timers.next_deadline(), Some(t(30)));
    }

    #[test]
    fn rearming_replaces_and_cancel_disarms() {
        let mut timers = Timers::new();
        timers.arm(id(1), t(10));
        timers.arm(id(1), t(50));
        timers.arm(id(2), t(20));
        timers.cancel(id(2));
        assert_eq!(timers.next_deadline(), Some(t(50)));
        assert_eq!(timers.pop_due(t(100)), Some(id(1)));
        assert_eq!(timers.pop_due(t(100)), None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn heap_stays_small_under_rearming() {
        let mut timers = Timers::new();
        for round in 0..10_000 {
            timers.arm(id(round % 3), t(round as u64));
        }
        assert_eq!(timers.len(), 3);
        assert!(
            timers.heap.len() <= 70,
            "heap has {} entries",
            timers.heap.len()
        );
    }
}
