//! The NHRP cache (RFC 2332 section 4.2 "NHRP cache"): prefix → next hop (tunnel address)
//! and NBMA address, with a type, an expiry and flags; longest-prefix lookup for the
//! dataplane; bounded size for the dynamic entries.

use core::cmp::Reverse;
use core::net::IpAddr;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use crate::prefix::{Prefix, PrefixTable};

/// Where a cache entry came from (Cisco `show ip nhrp` types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum EntryType {
    /// Configured: an NHS of this client (`ip nhrp nhs ... nbma ...`).
    Static,
    /// Learned from a registration (hub): Cisco "dynamic".
    Registered,
    /// Learned from a resolution reply (spoke, phase 3).
    Shortcut,
    /// This router's own tunnel address or advertised prefixes.
    Local,
    /// A resolution is in flight and no answer came yet (Cisco "incomplete").
    Incomplete,
}

impl EntryType {
    /// Whether the entry counts against the cache limit.
    pub const fn is_dynamic(self) -> bool {
        matches!(
            self,
            EntryType::Registered | EntryType::Shortcut | EntryType::Incomplete
        )
    }
}

/// One cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The type.
    pub kind: EntryType,
    /// The tunnel (protocol) address of the router that owns the prefix.
    pub tunnel: IpAddr,
    /// The NBMA address to send to: the address packets actually came from (post-NAT).
    pub nbma: IpAddr,
    /// The NBMA address the owner claimed in its packets (pre-NAT).
    pub claimed_nbma: IpAddr,
    /// When the entry was created (or its owner's NBMA address last changed).
    #[serde(skip)]
    pub created: Instant,
    /// When the entry expires; `None` for static and local entries.
    #[serde(skip)]
    pub expires: Option<Instant>,
    /// The holding time it was learned with, in seconds.
    pub holdtime: u16,
    /// Registered with the unique flag: only its owner's NBMA address may refresh it.
    pub unique: bool,
    /// The request ID of the registration or resolution that last set the entry (0 for
    /// local and static entries). A purge of a registration must name it (Cisco IOS).
    pub request_id: u32,
    /// A shortcut the dataplane used since its last refresh ([`crate::Engine::mark_used`]):
    /// it is refreshed before it expires; an unused one expires (Cisco "used" flag).
    pub used: bool,
}

impl Entry {
    /// Whether the owner sits behind NAT: the NBMA address seen differs from the claimed one.
    pub fn nat(&self) -> bool {
        self.nbma != self.claimed_nbma
    }
}

/// Whether both entries are registrations by the same owner.
fn same_owner(a: &Entry, b: &Entry) -> bool {
    a.kind == EntryType::Registered && b.kind == EntryType::Registered && a.tunnel == b.tunnel
}

/// The cache refused a dynamic entry because it holds `limit` of them already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("NHRP cache full ({limit} dynamic entries)")]
pub struct CacheFull {
    /// The configured limit.
    pub limit: usize,
}

/// The NHRP cache.
#[derive(Debug, Clone)]
pub struct Cache {
    table: PrefixTable<Entry>,
    /// The expiry of each expiring entry, earliest on top. Deletion is lazy: an item whose
    /// entry no longer expires at its time (replaced or removed) is stale, and is dropped
    /// when it reaches the top ([`Cache::settle`] keeps the top live) or when the heap is
    /// rebuilt, which happens once stale items outnumber the expiring entries. A refresh
    /// then costs a push onto the heap rather than a removal and an insertion in an ordered
    /// set.
    expiry: BinaryHeap<Reverse<(Instant, Prefix)>>,
    /// The number of entries that expire.
    expiring: usize,
    limit: usize,
    dynamic: usize,
    /// The number of registered entries of each owner, keyed by the host prefix of its
    /// tunnel address (whose hash is one word, where an `IpAddr`'s is three writes).
    registered: HashMap<Prefix, usize>,
}

impl Cache {
    /// An empty cache holding at most `limit` dynamic entries.
    pub fn new(limit: usize) -> Self {
        Cache {
            table: PrefixTable::new(),
            expiry: BinaryHeap::new(),
            expiring: 0,
            limit,
            dynamic: 0,
            registered: HashMap::new(),
        }
    }

    /// Inserts or replaces the entry of `prefix` and returns the old one.
    ///
    /// # Errors
    /// [`CacheFull`] when the entry is dynamic, `prefix` holds no dynamic entry yet and the
    /// cache holds its limit of dynamic entries; the cache is then unchanged.
    pub fn insert(&mut self, prefix: Prefix, entry: Entry) -> Result<Option<Entry>, CacheFull> {
        // One lookup on the common path; the rare refusal undoes the insertion.
        let old = self.table.insert(prefix, entry);
        let replaces_dynamic = old.is_some_and(|old| old.kind.is_dynamic());
        if entry.kind.is_dynamic() && !replaces_dynamic && self.dynamic >= self.limit {
            match old {
                Some(old) => self.table.insert(prefix, old),
                None => self.table.remove(&prefix),
            };
            return Err(CacheFull { limit: self.limit });
        }
        if let Some(old) = &old {
            self.forget(old, Some(&entry));
        }
        if entry.kind.is_dynamic() {
            self.dynamic += 1;
        }
        // A refresh by the same owner leaves its count as it is.
        if entry.kind == EntryType::Registered && !old.is_some_and(|o| same_owner(&o, &entry)) {
            *self
                .registered
                .entry(Prefix::host(entry.tunnel))
                .or_default() += 1;
        }
        if let Some(at) = entry.expires {
            self.expiring += 1;
            // Unless the old entry's item, still live, says the same.
            if old.is_none_or(|old| old.expires != entry.expires) {
                self.expiry.push(Reverse((at, prefix)));
            }
        }
        self.settle(prefix);
        Ok(old)
    }

    /// Takes `old` out of the counts; `new` is the entry replacing it.
    fn forget(&mut self, old: &Entry, new: Option<&Entry>) {
        if old.kind.is_dynamic() {
            self.dynamic -= 1;
        }
        if old.kind == EntryType::Registered
            && !new.is_some_and(|new| same_owner(old, new))
            && let Some(n) = self.registered.get_mut(&Prefix::host(old.tunnel))
        {
            *n -= 1;
            if *n == 0 {
                self.registered.remove(&Prefix::host(old.tunnel));
            }
        }
        if old.expires.is_some() {
            self.expiring -= 1;
        }
    }

    /// Restores the invariants of `expiry` after the entry of `touched` changed: its top is
    /// live, and stale items are at most as many as live ones (plus a little slack, so that
    /// small caches do not rebuild often).
    fn settle(&mut self, touched: Prefix) {
        const SLACK: usize = 64;
        if self.expiry.len() > 2 * self.expiring + SLACK {
            let live: Vec<Reverse<(Instant, Prefix)>> = self
                .table
                .iter_unordered()
                .filter_map(|(p, e)| e.expires.map(|at| Reverse((at, *p))))
                .collect();
            self.expiry = BinaryHeap::from(live);
        }
        // The top was live before the change, so it is still live unless it is the item of
        // the entry that changed; the items below it may be stale.
        let mut first = true;
        while let Some(&Reverse((at, prefix))) = self.expiry.peek() {
            let live = (first && prefix != touched)
                || self
                    .table
                    .get(&prefix)
                    .is_some_and(|e| e.expires == Some(at));
            if live {
                break;
            }
            first = false;
            self.expiry.pop();
        }
    }

    /// Removes the entry of `prefix`.
    pub fn remove(&mut self, prefix: &Prefix) -> Option<Entry> {
        let old = self.table.remove(prefix)?;
        self.forget(&old, None);
        self.settle(*prefix);
        Some(old)
    }

    /// The entry of exactly `prefix`.
    pub fn get(&self, prefix: &Prefix) -> Option<&Entry> {
        self.table.get(prefix)
    }

    /// Marks the shortcut of exactly `prefix` as used; false when there is none.
    pub(crate) fn mark_used(&mut self, prefix: &Prefix) -> bool {
        match self.table.get_mut(prefix) {
            Some(e) if e.kind == EntryType::Shortcut => {
                e.used = true;
                true
            }
            _ => false,
        }
    }

    /// The entry of the longest prefix containing `addr`: where the dataplane sends a packet
    /// for `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<(Prefix, &Entry)> {
        self.table.longest_match(addr)
    }

    /// The earliest expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the entries whose expiry is at or before `now`, earliest first.
    pub fn expire(&mut self, now: Instant) -> Vec<(Prefix, Entry)> {
        let mut gone = Vec::new();
        // The top is live: removing its entry makes it stale, and `remove` pops it.
        while let Some(&Reverse((at, prefix))) = self.expiry.peek() {
            if at > now {
                break;
            }
            match self.remove(&prefix) {
                Some(entry) => gone.push((prefix, entry)),
                // Not reached while the top is live; popping keeps the loop finite.
                None => {
                    self.expiry.pop();
                }
            }
        }
        gone
    }

    /// The entries in prefix order (sorted on each call: for show and configuration paths).
    pub fn iter(&self) -> impl Iterator<Item = (&Prefix, &Entry)> {
        self.table.iter()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The number of registered entries whose owner is `tunnel`.
    pub fn registered_by(&self, tunnel: IpAddr) -> usize {
        self.registered
            .get(&Prefix::host(tunnel))
            .copied()
            .unwrap_or(0)
    }

    /// The number of dynamic entries.
    pub fn dynamic_len(&self) -> usize {
        self.dynamic
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn entry(kind: EntryType, now: Instant, secs: Option<u64>) -> Entry {
        let nbma = "198.18.0.2".parse().unwrap();
        Entry {
            kind,
            tunnel: "10.1.1.2".parse().unwrap(),
            nbma,
            claimed_nbma: nbma,
            created: now,
            expires: secs.map(|s| now + Duration::from_secs(s)),
            holdtime: 0,
            unique: true,
            request_id: 0,
            used: false,
        }
    }

    fn host(s: &str) -> Prefix {
        Prefix::host(s.parse().unwrap())
    }

    #[test]
    fn bounded_with_refusal_and_expiry_in_order() {
        let now = Instant::now();
        let mut c = Cache::new(2);
        c.insert(host("10.1.1.1"), entry(EntryType::Local, now, None))
            .unwrap();
        c.insert(
            host("10.1.1.2"),
            entry(EntryType::Registered, now, Some(20)),
        )
        .unwrap();
        c.insert(
            host("10.1.1.3"),
            entry(EntryType::Registered, now, Some(10)),
        )
        .unwrap();
        assert_eq!(
            c.insert(host("10.1.1.4"), entry(EntryType::Registered, now, Some(5))),
            Err(CacheFull { limit: 2 })
        );
        // Replacing a dynamic entry is not growth.
        c.insert(
            host("10.1.1.3"),
            entry(EntryType::Registered, now, Some(30)),
        )
        .unwrap();
        assert_eq!(c.next_expiry(), Some(now + Duration::from_secs(20)));
        assert!(c.expire(now + Duration::from_secs(19)).is_empty());
        let gone = c.expire(now + Duration::from_secs(30));
        assert_eq!(gone.len(), 2);
        assert_eq!(gone[0].0, host("10.1.1.2"));
        assert_eq!(c.len(), 1);
        assert_eq!(c.dynamic_len(), 0);
        assert_eq!(c.registered_by("10.1.1.2".parse().unwrap()), 0);
        assert_eq!(c.next_expiry(), None);
    }

    #[test]
    fn refreshes_expire_once_in_order_with_a_bounded_heap() {
        let now = Instant::now();
        let mut c = Cache::new(64);
        let hosts: Vec<Prefix> = (1..=20).map(|k| host(&format!("10.1.1.{k}"))).collect();
        // Each host refreshed 50 times with a later expiry: 980 items go stale.
        for round in 0..50u64 {
            for (k, p) in hosts.iter().enumerate() {
                let e = entry(EntryType::Registered, now, Some(100 + round + k as u64));
                c.insert(*p, e).unwrap();
                assert!(c.expiry.len() <= 2 * c.expiring + 64);
            }
        }
        // Replacing an entry with a static one leaves a stale item that must not expire it.
        c.insert(hosts[0], entry(EntryType::Static, now, None))
            .unwrap();
        assert_eq!(c.next_expiry(), Some(now + Duration::from_secs(150)));
        assert!(c.expire(now + Duration::from_secs(149)).is_empty());
        let gone = c.expire(now + Duration::from_secs(1000));
        let order: Vec<Prefix> = gone.iter().map(|(p, _)| *p).collect();
        assert_eq!(order, hosts[1..]);
        assert_eq!(c.len(), 1);
        assert_eq!(c.next_expiry(), None);
        assert_eq!(c.registered_by("10.1.1.2".parse().unwrap()), 0);
    }

    #[test]
    fn lookup_is_longest_prefix() {
        let now = Instant::now();
        let mut c = Cache::new(8);
        let lan = Prefix::new("192.168.2.0".parse().unwrap(), 24).unwrap();
        c.insert(lan, entry(EntryType::Registered, now, Some(5)))
            .unwrap();
        let mut other = entry(EntryType::Shortcut, now, Some(5));
        other.tunnel = "10.1.1.9".parse().unwrap();
        c.insert(host("192.168.2.7"), other).unwrap();
        let (p, e) = c.lookup("192.168.2.7".parse().unwrap()).unwrap();
        assert_eq!((p, e.tunnel), (host("192.168.2.7"), other.tunnel));
        let (p, _) = c.lookup("192.168.2.8".parse().unwrap()).unwrap();
        assert_eq!(p, lan);
        assert!(c.lookup("192.168.3.1".parse().unwrap()).is_none());
    }
}
