//! IP prefixes (the address plus prefix length of an RFC 2332 section 5.2.0.1 CIE) and a
//! longest-prefix-match table over them.

use core::fmt;
use core::hash::{BuildHasher, Hash, Hasher};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::collections::{HashMap, hash_map};

/// The hash of the maps keyed by prefixes: foldhash, keyed with a 64-bit seed. Their keys
/// are addresses that peers choose, so the seed is secret and random (the engine draws it
/// from its injected RNG), lest hostile registrations aim at one bucket; foldhash hashes an
/// IPv4 prefix in a few instructions where std's SipHash takes about a hundred.
pub(crate) type Keyed = foldhash::fast::FixedState;

/// A hash map keyed by prefixes, with the [`Keyed`] hash.
pub(crate) type PrefixMap<V> = HashMap<Prefix, V, Keyed>;

/// A random seed for [`Keyed`] taken from std's randomly keyed SipHash, for tables built
/// outside the sans-IO engine.
pub(crate) fn random_seed() -> u64 {
    std::hash::RandomState::new().hash_one(0u8)
}

/// An IPv4 or IPv6 prefix whose host bits are zero: `192.168.2.0/24`, `10.1.1.2/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// A prefix length longer than its family's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("prefix length {0} is longer than the address")]
pub struct PrefixLenError(pub u8);

/// The number of bits of an address of `addr`'s family: 32 or 128.
pub const fn host_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl Prefix {
    /// The prefix of length `len` that contains `addr` (host bits are cleared).
    ///
    /// # Errors
    /// [`PrefixLenError`] when `len` exceeds 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PrefixLenError> {
        if len > host_len(addr) {
            return Err(PrefixLenError(len));
        }
        Ok(Prefix {
            addr: mask(addr, len),
            len,
        })
    }

    /// The host prefix (/32 or /128) of `addr`.
    pub fn host(addr: IpAddr) -> Self {
        Prefix {
            addr,
            len: host_len(addr),
        }
    }

    /// The network address (host bits zero).
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether this is a host prefix (/32 or /128).
    pub const fn is_host(&self) -> bool {
        self.len == host_len(self.addr)
    }

    /// Whether `addr` lies inside the prefix.
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.addr.is_ipv4() && mask(addr, self.len) == self.addr
    }
}

/// Hashes an IPv4 prefix as one 64-bit word and an IPv6 one as two writes (the length
/// marked with the family): the derived hash of an `IpAddr` writes its discriminant, a
/// slice length and the octets, which costs more on every lookup.
impl Hash for Prefix {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self.addr {
            IpAddr::V4(a) => state.write_u64((u64::from(a.to_bits()) << 8) | u64::from(self.len)),
            IpAddr::V6(a) => {
                state.write_u128(a.to_bits());
                state.write_u16(0x100 | u16::from(self.len));
            }
        }
    }
}

/// IPv4 before IPv6, then by address, then by length: the order a derived `Ord` gives, on
/// integers rather than on octet arrays (the cache's expiry heap compares prefixes whose
/// expiries tie).
impl Ord for Prefix {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        let addr = match (self.addr, other.addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => a.to_bits().cmp(&b.to_bits()),
            (IpAddr::V6(a), IpAddr::V6(b)) => a.to_bits().cmp(&b.to_bits()),
            (IpAddr::V4(_), IpAddr::V6(_)) => core::cmp::Ordering::Less,
            (IpAddr::V6(_), IpAddr::V4(_)) => core::cmp::Ordering::Greater,
        };
        addr.then(self.len.cmp(&other.len))
    }
}

impl PartialOrd for Prefix {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A map from prefixes to values with longest-prefix-match lookup.
///
/// Hashed, so that the per-packet exact and longest-prefix lookups cost a hash each rather
/// than a walk down a tree; a longest-prefix lookup probes only the prefix lengths in use,
/// longest first, found in a bitmask. The hash is keyed with a random seed ([`Keyed`]), so
/// that hostile registrations cannot aim at one bucket; the seed affects no output, because
/// iteration sorts: it is in prefix order, and everything derived from it (show output, the
/// multicast set) is deterministic. Iteration is for the show and configuration paths, not
/// per packet.
#[derive(Debug, Clone)]
pub struct PrefixTable<T> {
    map: PrefixMap<T>,
    /// How many prefixes of each length (index = length) each family holds: `[v4, v6]`.
    lens: [[u32; 129]; 2],
    /// The lengths in use of each family: bit `len % 64` of word `len / 64`.
    used: [[u64; 3]; 2],
}

impl<T> Default for PrefixTable<T> {
    fn default() -> Self {
        Self::with_seed(random_seed())
    }
}

fn family(addr: IpAddr) -> usize {
    usize::from(addr.is_ipv6())
}

/// The place of one prefix in a [`PrefixTable`], found with one hash: its value, or the
/// vacancy to fill.
pub(crate) enum TableSlot<'a, T> {
    /// The prefix has a value.
    Occupied(hash_map::OccupiedEntry<'a, Prefix, T>),
    /// The prefix has none.
    Vacant(Vacancy<'a, T>),
}

/// A prefix without a value in a [`PrefixTable`]; [`Vacancy::insert`] gives it one.
pub(crate) struct Vacancy<'a, T> {
    entry: hash_map::VacantEntry<'a, Prefix, T>,
    count: &'a mut u32,
    used: &'a mut [u64; 3],
}

impl<'a, T> Vacancy<'a, T> {
    /// Inserts the value.
    pub(crate) fn insert(self, value: T) -> &'a mut T {
        let len = usize::from(self.entry.key().len);
        *self.count += 1;
        set_bit(self.used, len, true);
        self.entry.insert(value)
    }
}

fn set_bit(used: &mut [u64; 3], len: usize, on: bool) {
    if let Some(word) = used.get_mut(len / 64) {
        let bit = 1u64 << (len % 64);
        if on {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }
}

impl<T> PrefixTable<T> {
    /// An empty table whose hash is keyed with a random seed.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table whose hash is keyed with `seed`, which must be secret and random
    /// (drawn from the engine's injected RNG).
    pub fn with_seed(seed: u64) -> Self {
        PrefixTable {
            map: HashMap::with_hasher(Keyed::with_seed(seed)),
            lens: [[0; 129]; 2],
            used: [[0; 3]; 2],
        }
    }

    /// Inserts or replaces the value of `prefix` and returns the old value.
    pub fn insert(&mut self, prefix: Prefix, value: T) -> Option<T> {
        match self.slot(prefix) {
            TableSlot::Occupied(mut o) => Some(o.insert(value)),
            TableSlot::Vacant(v) => {
                v.insert(value);
                None
            }
        }
    }

    /// The place of `prefix`, for a lookup that may end in an insertion or a replacement.
    pub(crate) fn slot(&mut self, prefix: Prefix) -> TableSlot<'_, T> {
        let f = family(prefix.addr);
        match self.map.entry(prefix) {
            hash_map::Entry::Occupied(o) => TableSlot::Occupied(o),
            hash_map::Entry::Vacant(entry) => TableSlot::Vacant(Vacancy {
                entry,
                count: &mut self.lens[f][usize::from(prefix.len)],
                used: &mut self.used[f],
            }),
        }
    }

    /// Removes `prefix` and returns its value.
    pub fn remove(&mut self, prefix: &Prefix) -> Option<T> {
        let old = self.map.remove(prefix);
        if old.is_some() {
            let (f, len) = (family(prefix.addr), usize::from(prefix.len));
            let count = &mut self.lens[f][len];
            *count -= 1;
            if *count == 0 {
                set_bit(&mut self.used[f], len, false);
            }
        }
        old
    }

    /// The value of exactly `prefix`.
    pub fn get(&self, prefix: &Prefix) -> Option<&T> {
        self.map.get(prefix)
    }

    /// The value of exactly `prefix`, mutably.
    pub fn get_mut(&mut self, prefix: &Prefix) -> Option<&mut T> {
        self.map.get_mut(prefix)
    }

    /// The longest prefix that contains `addr`, with its value.
    pub fn longest_match(&self, addr: IpAddr) -> Option<(Prefix, &T)> {
        let used = &self.used[family(addr)];
        for (w, &word) in used.iter().enumerate().rev() {
            let mut bits = word;
            while bits != 0 {
                let bit = 63 - bits.leading_zeros();
                bits &= !(1u64 << bit);
                // At most 128 + 1 lengths: the bit index fits a u8.
                let len = (w * 64) as u8 + bit as u8;
                let p = Prefix {
                    addr: mask(addr, len),
                    len,
                };
                if let Some(v) = self.map.get(&p) {
                    return Some((p, v));
                }
            }
        }
        None
    }

    /// The number of prefixes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The prefixes and values, in prefix order (sorted on each call).
    pub fn iter(&self) -> impl Iterator<Item = (&Prefix, &T)> {
        let mut all: Vec<(&Prefix, &T)> = self.map.iter().collect();
        all.sort_unstable_by_key(|(p, _)| **p);
        all.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, len: u8) -> Prefix {
        Prefix::new(s.parse().unwrap(), len).unwrap()
    }

    #[test]
    fn masks_host_bits() {
        assert_eq!(
            p("192.168.2.77", 24).addr(),
            "192.168.2.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            p("10.0.0.1", 0).addr(),
            "0.0.0.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(p("fd00::1:2", 112).to_string(), "fd00::1:0/112");
        assert!(Prefix::new("10.0.0.1".parse().unwrap(), 33).is_err());
        assert!(p("10.1.1.2", 32).is_host());
    }

    #[test]
    fn order_is_family_address_length() {
        let sorted = [
            p("0.0.0.0", 0),
            p("10.0.0.0", 8),
            p("10.0.0.0", 24),
            p("10.0.0.1", 32),
            p("192.168.0.0", 16),
            p("::", 0),
            p("fd00::", 8),
            p("fd00::1", 128),
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(a.cmp(b), i.cmp(&j), "{a} vs {b}");
                // The same as comparing the fields in order.
                assert_eq!(a.cmp(b), (a.addr, a.len).cmp(&(b.addr, b.len)));
            }
        }
    }

    #[test]
    fn longest_match_wins() {
        let mut t = PrefixTable::new();
        t.insert(p("0.0.0.0", 0), "default");
        t.insert(p("192.168.0.0", 16), "16");
        t.insert(p("192.168.2.0", 24), "24");
        t.insert(p("fd00::", 8), "v6");
        fn hit(t: &PrefixTable<&'static str>, s: &str) -> Option<&'static str> {
            t.longest_match(s.parse().unwrap()).map(|(_, v)| *v)
        }
        assert_eq!(hit(&t, "192.168.2.9"), Some("24"));
        assert_eq!(hit(&t, "192.168.3.9"), Some("16"));
        t.insert(p("fd00::7", 128), "v6 host");
        t.insert(p("::", 0), "v6 default");
        assert_eq!(hit(&t, "fd00::7"), Some("v6 host"));
        assert_eq!(hit(&t, "fe80::1"), Some("v6 default"));
        assert_eq!(t.remove(&p("::", 0)), Some("v6 default"));
        assert_eq!(t.remove(&p("fd00::7", 128)), Some("v6 host"));
        assert_eq!(hit(&t, "10.0.0.1"), Some("default"));
        assert_eq!(hit(&t, "fd12::1"), Some("v6"));
        assert_eq!(hit(&t, "fe80::1"), None);
        assert_eq!(t.remove(&p("192.168.2.0", 24)), Some("24"));
        assert_eq!(hit(&t, "192.168.2.9"), Some("16"));
        assert_eq!(t.len(), 3);
    }
}
