//! The expiry schedule of the NHRP cache: when each entry's holding time (RFC 2332 sections
//! 5.2.3 and 5.2.4, `Holding Time` of the CIE) runs out.
//!
//! Entries learned with the same holding time expire in the order they were learned, so
//! each holding time gets a FIFO lane and scheduling is a push at its back: a refresh costs
//! O(1) where a heap would pay a sift for every entry that leaves its top. A time earlier
//! than the back of its lane (a clock that went backwards) or a holding time beyond the
//! first [`LANES`] goes to an ordered heap instead, so the schedule stays exact whatever
//! arrives.
//!
//! Each scheduled entry holds a slot whose generation changes when it is rescheduled or
//! cancelled; the items it left in the lanes are then stale, recognised by one array read
//! (no hash), skipped when they reach a front and dropped in bulk once they outnumber the
//! live ones. The fronts are kept live, so [`Schedule::next`] is exact.

use core::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use crate::prefix::Prefix;

/// The number of FIFO lanes (distinct holding times served in O(1); a tuning constant:
/// deployments use one or two holding times).
pub(crate) const LANES: usize = 4;
/// Stale items tolerated beyond the live ones before a compaction (a tuning constant, so
/// that small caches do not compact often).
const SLACK: usize = 64;

/// The handle of a scheduled entry: the index of its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerId(u32);

/// One scheduled expiry: an item is live while its slot still has its generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    at: Instant,
    slot: u32,
    generation: u32,
}

/// The state of one slot: its generation and, while in use, the entry it schedules.
#[derive(Debug, Clone, Copy)]
struct Slot {
    generation: u32,
    prefix: Prefix,
    at: Instant,
    used: bool,
}

/// The items of one holding time, in time order.
#[derive(Debug, Clone)]
struct Lane {
    holdtime: u16,
    items: VecDeque<Item>,
}

/// The expiry times of the cache's expiring entries, earliest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Schedule {
    slots: Vec<Slot>,
    free: Vec<u32>,
    lanes: Vec<Lane>,
    /// What fits no lane, earliest on top.
    overflow: BinaryHeap<Reverse<Item>>,
    /// Items in the lanes and the heap, live or stale.
    items: usize,
    /// Slots in use: the live items.
    live: usize,
}

impl Schedule {
    /// Schedules the expiry of `prefix` at `at`, learned with `holdtime` seconds: a new
    /// slot when `timer` is `None`, else a new time for that slot (its old item goes
    /// stale). Returns the slot's handle.
    pub(crate) fn schedule(
        &mut self,
        timer: Option<TimerId>,
        prefix: Prefix,
        at: Instant,
        holdtime: u16,
    ) -> TimerId {
        let id = match timer.filter(|t| self.slot(*t).is_some_and(|s| s.used)) {
            Some(id) => {
                let Some(slot) = self.slots.get_mut(id.0 as usize) else {
                    return id;
                };
                if slot.at == at && slot.prefix == prefix {
                    return id;
                }
                slot.generation = slot.generation.wrapping_add(1);
                slot.prefix = prefix;
                slot.at = at;
                id
            }
            None => self.allocate(prefix, at),
        };
        let generation = self.slot(id).map_or(0, |s| s.generation);
        self.push(
            Item {
                at,
                slot: id.0,
                generation,
            },
            holdtime,
        );
        self.settle();
        id
    }

    /// Cancels the expiry of `timer`: its item goes stale and its slot is reused.
    pub(crate) fn cancel(&mut self, timer: TimerId) {
        if let Some(slot) = self.slots.get_mut(timer.0 as usize)
            && slot.used
        {
            slot.used = false;
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(timer.0);
            self.live -= 1;
            self.settle();
        }
    }

    /// The earliest scheduled expiry.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.fronts().map(|(item, _)| item.at).min()
    }

    /// Takes the earliest expiry if it is at or before `now`: its prefix and time. Its slot
    /// is freed, as [`Schedule::cancel`] would.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Prefix, Instant)> {
        let (item, from) = self.fronts().min_by_key(|(item, _)| *item)?;
        if item.at > now {
            return None;
        }
        let prefix = self.slot(TimerId(item.slot))?.prefix;
        match from {
            Some(lane) => {
                self.lanes.get_mut(lane).and_then(|l| l.items.pop_front());
            }
            None => {
                self.overflow.pop();
            }
        }
        self.items -= 1;
        self.cancel(TimerId(item.slot));
        Some((prefix, item.at))
    }

    /// The number of items held, live or stale (for the bound the tests check).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.items
    }

    /// The number of scheduled entries.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    fn slot(&self, id: TimerId) -> Option<&Slot> {
        self.slots.get(id.0 as usize)
    }

    fn allocate(&mut self, prefix: Prefix, at: Instant) -> TimerId {
        self.live += 1;
        if let Some(i) = self.free.pop()
            && let Some(slot) = self.slots.get_mut(i as usize)
        {
            // The generation moved on when the slot was freed.
            *slot = Slot {
                prefix,
                at,
                used: true,
                ..*slot
            };
            return TimerId(i);
        }
        let i = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot {
            generation: 0,
            prefix,
            at,
            used: true,
        });
        TimerId(i)
    }

    /// Appends `item` to the lane of `holdtime` when it keeps the lane in order, else puts
    /// it in the heap.
    fn push(&mut self, item: Item, holdtime: u16) {
        self.items += 1;
        let lane = match self.lanes.iter().position(|l| l.holdtime == holdtime) {
            Some(i) => Some(i),
            None if self.lanes.len() < LANES => {
                self.lanes.push(Lane {
                    holdtime,
                    items: VecDeque::new(),
                });
                Some(self.lanes.len() - 1)
            }
            None => None,
        };
        match lane.and_then(|i| self.lanes.get_mut(i)) {
            Some(lane) if lane.items.back().is_none_or(|back| back.at <= item.at) => {
                lane.items.push_back(item);
            }
            _ => self.overflow.push(Reverse(item)),
        }
    }

    fn is_live(&self, item: &Item) -> bool {
        self.slot(TimerId(item.slot))
            .is_some_and(|s| s.used && s.generation == item.generation)
    }

    /// The front item of each lane (with the lane's index) and the top of the heap.
    fn fronts(&self) -> impl Iterator<Item = (Item, Option<usize>)> + '_ {
        self.lanes
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.items.front().map(|item| (*item, Some(i))))
            .chain(self.overflow.peek().map(|Reverse(item)| (*item, None)))
    }

    /// Restores the invariants: every front is live, and stale items are at most as many
    /// as live ones (plus [`SLACK`]).
    fn settle(&mut self) {
        if self.items > 2 * self.live + SLACK {
            self.compact();
        }
        for i in 0..self.lanes.len() {
            while let Some(front) = self.lanes.get(i).and_then(|l| l.items.front().copied()) {
                if self.is_live(&front) {
                    break;
                }
                self.lanes.get_mut(i).and_then(|l| l.items.pop_front());
                self.items -= 1;
            }
        }
        while let Some(Reverse(top)) = self.overflow.peek().copied() {
            if self.is_live(&top) {
                break;
            }
            self.overflow.pop();
            self.items -= 1;
        }
    }

    /// Drops every stale item.
    fn compact(&mut self) {
        let slots = &self.slots;
        let live = |item: &Item| {
            slots
                .get(item.slot as usize)
                .is_some_and(|s| s.used && s.generation == item.generation)
        };
        for lane in &mut self.lanes {
            lane.items.retain(live);
        }
        self.overflow.retain(|Reverse(item)| live(item));
        self.items = self.lanes.iter().map(|l| l.items.len()).sum::<usize>() + self.overflow.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn host(k: u8) -> Prefix {
        Prefix::host(core::net::Ipv4Addr::new(10, 1, 1, k).into())
    }

    fn drain(s: &mut Schedule, now: Instant) -> Vec<(Prefix, Instant)> {
        core::iter::from_fn(|| s.pop_due(now)).collect()
    }

    #[test]
    fn lanes_and_overflow_expire_in_time_order() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = Schedule::default();
        // Six holding times: four lanes, then the heap; and a time earlier than its lane's
        // back, which must go to the heap too.
        for (k, hold) in [(1u8, 30u16), (2, 10), (3, 50), (4, 20), (5, 40), (6, 5)] {
            s.schedule(None, host(k), at(u64::from(hold)), hold);
        }
        s.schedule(None, host(7), at(3), 30);
        assert_eq!(s.next(), Some(at(3)));
        assert!(drain(&mut s, at(2)).is_empty());
        let order: Vec<u8> = drain(&mut s, at(100))
            .iter()
            .map(|(p, _)| match p.addr() {
                core::net::IpAddr::V4(a) => a.octets()[3],
                core::net::IpAddr::V6(_) => 0,
            })
            .collect();
        assert_eq!(order, [7, 6, 2, 4, 1, 5, 3]);
        assert_eq!((s.next(), s.live(), s.held()), (None, 0, 0));
    }

    #[test]
    fn rescheduled_and_cancelled_items_never_fire() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = Schedule::default();
        let a = s.schedule(None, host(1), at(10), 10);
        let b = s.schedule(None, host(2), at(10), 10);
        let c = s.schedule(None, host(3), at(11), 10);
        // a refreshed: its old item at the front goes stale and the front moves on.
        assert_eq!(s.schedule(Some(a), host(1), at(20), 10), a);
        s.cancel(b);
        assert_eq!(s.next(), Some(at(11)));
        // A freed slot is reused with a new generation: b's stale item stays dead.
        let d = s.schedule(None, host(4), at(12), 10);
        assert_eq!(d, b);
        assert_eq!(
            drain(&mut s, at(100)),
            [(host(3), at(11)), (host(4), at(12)), (host(1), at(20))]
        );
        // Cancelling a freed slot is a no-op.
        s.cancel(c);
        assert_eq!((s.live(), s.held()), (0, 0));
    }

    #[test]
    fn stale_items_stay_bounded() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let ids: Vec<(TimerId, Prefix)> = (1..=10)
            .map(|k| {
                let id = s.schedule(None, host(k), t0 + Duration::from_secs(1000), 7200);
                (id, host(k))
            })
            .collect();
        for round in 0..1000u64 {
            for (id, prefix) in &ids {
                let at = t0 + Duration::from_secs(1000 + round);
                s.schedule(Some(*id), *prefix, at, 7200);
                assert!(s.held() <= 2 * s.live() + SLACK);
            }
        }
        assert_eq!(s.next(), Some(t0 + Duration::from_secs(1999)));
    }
}
