//! The NHRP cache (RFC 2332 section 4.2 "NHRP cache"): prefix → next hop (tunnel address)
//! and NBMA address, with a type, an expiry and flags; longest-prefix lookup for the
//! dataplane; bounded size for the dynamic entries.

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};
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
    /// The expiring entries in expiry order.
    expiry: BTreeSet<(Instant, Prefix)>,
    limit: usize,
    dynamic: usize,
    /// The number of registered entries of each owner (tunnel address).
    registered: BTreeMap<IpAddr, usize>,
}

impl Cache {
    /// An empty cache holding at most `limit` dynamic entries.
    pub fn new(limit: usize) -> Self {
        Cache {
            table: PrefixTable::new(),
            expiry: BTreeSet::new(),
            limit,
            dynamic: 0,
            registered: BTreeMap::new(),
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
            self.forget(prefix, old);
        }
        if entry.kind.is_dynamic() {
            self.dynamic += 1;
        }
        if entry.kind == EntryType::Registered {
            *self.registered.entry(entry.tunnel).or_default() += 1;
        }
        if let Some(at) = entry.expires {
            self.expiry.insert((at, prefix));
        }
        Ok(old)
    }

    fn forget(&mut self, prefix: Prefix, old: &Entry) {
        if old.kind.is_dynamic() {
            self.dynamic -= 1;
        }
        if old.kind == EntryType::Registered
            && let Some(n) = self.registered.get_mut(&old.tunnel)
        {
            *n -= 1;
            if *n == 0 {
                self.registered.remove(&old.tunnel);
            }
        }
        if let Some(at) = old.expires {
            self.expiry.remove(&(at, prefix));
        }
    }

    /// Removes the entry of `prefix`.
    pub fn remove(&mut self, prefix: &Prefix) -> Option<Entry> {
        let old = self.table.remove(prefix)?;
        self.forget(*prefix, &old);
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
        self.expiry.first().map(|(at, _)| *at)
    }

    /// Removes and returns the entries whose expiry is at or before `now`, earliest first.
    pub fn expire(&mut self, now: Instant) -> Vec<(Prefix, Entry)> {
        let mut gone = Vec::new();
        while let Some(&(at, prefix)) = self.expiry.first() {
            if at > now {
                break;
            }
            if let Some(entry) = self.remove(&prefix) {
                gone.push((prefix, entry));
            }
        }
        gone
    }

    /// The entries in prefix order.
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
        self.registered.get(&tunnel).copied().unwrap_or(0)
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
