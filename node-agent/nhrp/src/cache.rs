//! The NHRP cache (RFC 2332 section 4.2 "NHRP cache"): prefix → next hop (tunnel address)
//! and NBMA address, with a type, an expiry and flags; longest-prefix lookup for the
//! dataplane; bounded size for the dynamic entries.

use core::net::IpAddr;
use std::time::Instant;

use crate::expiry::{Schedule, TimerId};
use crate::prefix::{Keyed, Prefix, PrefixMap, PrefixTable, TableSlot, random_seed};

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

/// A cache entry with the handle of its expiry, if it expires.
#[derive(Debug, Clone, Copy)]
struct Stored {
    entry: Entry,
    timer: Option<TimerId>,
}

/// The number of registered entries of each owner, keyed by the host prefix of its tunnel
/// address (whose hash is one word, where an `IpAddr`'s is three writes).
#[derive(Debug, Clone)]
pub(crate) struct Owners(PrefixMap<usize>);

impl Owners {
    /// The number of registered entries whose owner is `tunnel`.
    pub(crate) fn count(&self, tunnel: IpAddr) -> usize {
        self.0.get(&Prefix::host(tunnel)).copied().unwrap_or(0)
    }

    fn add(&mut self, tunnel: IpAddr) {
        *self.0.entry(Prefix::host(tunnel)).or_default() += 1;
    }

    fn sub(&mut self, tunnel: IpAddr) {
        let key = Prefix::host(tunnel);
        if let Some(n) = self.0.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(&key);
            }
        }
    }
}

/// The NHRP cache.
#[derive(Debug, Clone)]
pub struct Cache {
    table: PrefixTable<Stored>,
    /// When each expiring entry expires ([`crate::expiry`]).
    expiry: Schedule,
    limit: usize,
    dynamic: usize,
    registered: Owners,
}

impl Cache {
    /// An empty cache holding at most `limit` dynamic entries, its hash keyed with a random
    /// seed.
    pub fn new(limit: usize) -> Self {
        Self::with_seed(limit, random_seed())
    }

    /// An empty cache holding at most `limit` dynamic entries, its hash keyed with `seed`,
    /// which must be secret and random (the engine draws it from its injected RNG).
    pub fn with_seed(limit: usize, seed: u64) -> Self {
        Cache {
            table: PrefixTable::with_seed(seed),
            expiry: Schedule::default(),
            limit,
            dynamic: 0,
            registered: Owners(PrefixMap::with_hasher(Keyed::with_seed(seed))),
        }
    }

    /// Inserts or replaces the entry of `prefix` and returns the old one.
    ///
    /// # Errors
    /// [`CacheFull`] when the entry is dynamic, `prefix` holds no dynamic entry yet and the
    /// cache holds its limit of dynamic entries; the cache is then unchanged.
    pub fn insert(&mut self, prefix: Prefix, entry: Entry) -> Result<Option<Entry>, CacheFull> {
        match self.insert_with(prefix, |_, _| Ok::<_, core::convert::Infallible>(entry)) {
            Ok(done) => done.map(|(old, _)| old),
            Err(never) => match never {},
        }
    }

    /// Inserts or replaces the entry of `prefix` with the one `make` builds from the old
    /// entry and the owner counts, with one lookup of `prefix`; `make` may refuse with its
    /// own error, which leaves the cache unchanged. Returns the old entry and the new one.
    ///
    /// # Errors
    /// `make`'s error as the outer `Err`; [`CacheFull`] as the inner one, as
    /// [`Cache::insert`] returns it.
    pub(crate) fn insert_with<E>(
        &mut self,
        prefix: Prefix,
        make: impl FnOnce(Option<&Entry>, &Owners) -> Result<Entry, E>,
    ) -> Result<Result<(Option<Entry>, Entry), CacheFull>, E> {
        let (old, entry) = match self.table.slot(prefix) {
            TableSlot::Occupied(mut o) => {
                let stored = o.get_mut();
                let old = stored.entry;
                let entry = make(Some(&old), &self.registered)?;
                if entry.kind.is_dynamic() && !old.kind.is_dynamic() && self.dynamic >= self.limit {
                    return Ok(Err(CacheFull { limit: self.limit }));
                }
                stored.entry = entry;
                stored.timer = match (entry.expires, stored.timer) {
                    (Some(at), timer) => {
                        Some(self.expiry.schedule(timer, prefix, at, entry.holdtime))
                    }
                    (None, Some(timer)) => {
                        self.expiry.cancel(timer);
                        None
                    }
                    (None, None) => None,
                };
                (Some(old), entry)
            }
            TableSlot::Vacant(v) => {
                let entry = make(None, &self.registered)?;
                if entry.kind.is_dynamic() && self.dynamic >= self.limit {
                    return Ok(Err(CacheFull { limit: self.limit }));
                }
                let timer = entry
                    .expires
                    .map(|at| self.expiry.schedule(None, prefix, at, entry.holdtime));
                v.insert(Stored { entry, timer });
                (None, entry)
            }
        };
        if let Some(old) = &old {
            self.forget(old, Some(&entry));
        }
        if entry.kind.is_dynamic() {
            self.dynamic += 1;
        }
        // A refresh by the same owner leaves its count as it is.
        if entry.kind == EntryType::Registered && !old.is_some_and(|o| same_owner(&o, &entry)) {
            self.registered.add(entry.tunnel);
        }
        Ok(Ok((old, entry)))
    }

    /// Takes `old` out of the counts; `new` is the entry replacing it.
    fn forget(&mut self, old: &Entry, new: Option<&Entry>) {
        if old.kind.is_dynamic() {
            self.dynamic -= 1;
        }
        if old.kind == EntryType::Registered && !new.is_some_and(|new| same_owner(old, new)) {
            self.registered.sub(old.tunnel);
        }
    }

    /// Removes the entry of `prefix`.
    pub fn remove(&mut self, prefix: &Prefix) -> Option<Entry> {
        let old = self.table.remove(prefix)?;
        if let Some(timer) = old.timer {
            self.expiry.cancel(timer);
        }
        self.forget(&old.entry, None);
        Some(old.entry)
    }

    /// The entry of exactly `prefix`.
    pub fn get(&self, prefix: &Prefix) -> Option<&Entry> {
        self.table.get(prefix).map(|s| &s.entry)
    }

    /// Marks the shortcut of exactly `prefix` as used; false when there is none.
    pub(crate) fn mark_used(&mut self, prefix: &Prefix) -> bool {
        match self.table.get_mut(prefix) {
            Some(s) if s.entry.kind == EntryType::Shortcut => {
                s.entry.used = true;
                true
            }
            _ => false,
        }
    }

    /// The entry of the longest prefix containing `addr`: where the dataplane sends a packet
    /// for `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<(Prefix, &Entry)> {
        self.table.longest_match(addr).map(|(p, s)| (p, &s.entry))
    }

    /// The earliest expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.next()
    }

    /// Removes and returns the entries whose expiry is at or before `now`, earliest first
    /// (in prefix order among equal expiries).
    pub fn expire(&mut self, now: Instant) -> Vec<(Prefix, Entry)> {
        let mut gone = Vec::new();
        while let Some((prefix, at)) = self.expiry.pop_due(now) {
            if let Some(old) = self.table.remove(&prefix) {
                self.forget(&old.entry, None);
                gone.push((at, prefix, old.entry));
            }
        }
        gone.sort_unstable_by_key(|(at, prefix, _)| (*at, *prefix));
        gone.into_iter().map(|(_, p, e)| (p, e)).collect()
    }

    /// The entries in prefix order (sorted on each call: for show and configuration paths).
    pub fn iter(&self) -> impl Iterator<Item = (&Prefix, &Entry)> {
        self.table.iter().map(|(p, s)| (p, &s.entry))
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
        self.registered.count(tunnel)
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
    fn refreshes_expire_once_in_order_with_a_bounded_schedule() {
        let now = Instant::now();
        let mut c = Cache::new(64);
        let hosts: Vec<Prefix> = (1..=20).map(|k| host(&format!("10.1.1.{k}"))).collect();
        // Each host refreshed 50 times with a later expiry: 980 items go stale.
        for round in 0..50u64 {
            for (k, p) in hosts.iter().enumerate() {
                let e = entry(EntryType::Registered, now, Some(100 + round + k as u64));
                c.insert(*p, e).unwrap();
                assert!(c.expiry.held() <= 2 * c.expiry.live() + 64);
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
