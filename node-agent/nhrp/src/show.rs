//! Snapshots for the operator commands: `show dmvpn` (one row per peer), `show ip nhrp
//! [detail]` (one row per cache entry) and `show ip nhrp nhs`. `show ip nhrp traffic` is
//! [`crate::Counters`]. Durations are relative to the `now` the snapshot is taken at.

use core::net::IpAddr;
use core::time::Duration;
use std::collections::BTreeMap;
use std::time::Instant;

use crate::cache::EntryType;
use crate::config::Role;
use crate::engine::Engine;
use crate::prefix::Prefix;

/// The state column of `show dmvpn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PeerState {
    /// Registered (hub) or registration accepted (spoke): Cisco "UP".
    Up,
    /// Registration not (yet) accepted: Cisco "NHRP".
    Nhrp,
}

/// One row of `show dmvpn`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DmvpnPeer {
    /// Peer NBMA address (as seen: post-NAT).
    pub nbma: IpAddr,
    /// Peer tunnel address.
    pub tunnel: IpAddr,
    /// State.
    pub state: PeerState,
    /// Time in the current state ("UpDn Tm").
    pub up_down: Duration,
    /// Attribute: how the peer is known (Cisco "D" dynamic = registered, "S" static).
    pub kind: EntryType,
    /// Whether the peer sits behind NAT (Cisco "N").
    pub nat: bool,
    /// The number of cache entries through this peer ("# Ent").
    pub entries: usize,
}

/// `show dmvpn`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dmvpn {
    /// Hub or spoke.
    pub role: Role,
    /// Our tunnel address.
    pub tunnel: IpAddr,
    /// Our NBMA address.
    pub nbma: IpAddr,
    /// `ip nhrp network-id`.
    pub network_id: u32,
    /// The peers, by tunnel address.
    pub peers: Vec<DmvpnPeer>,
}

/// One row of `show ip nhrp [detail]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NhrpEntry {
    /// The prefix.
    pub prefix: Prefix,
    /// The tunnel address of its owner ("via").
    pub via: IpAddr,
    /// The NBMA address packets go to.
    pub nbma: IpAddr,
    /// The NBMA address its owner claimed (detail; differs under NAT).
    pub claimed_nbma: IpAddr,
    /// The type.
    pub kind: EntryType,
    /// Age ("created").
    pub age: Duration,
    /// Time left before expiry; `None` = never ("never expire").
    pub expires_in: Option<Duration>,
    /// Holding time it was learned with (detail).
    pub holdtime: u16,
    /// Unique flag.
    pub unique: bool,
    /// Behind NAT ("nat" flag).
    pub nat: bool,
}

/// One row of `show ip nhrp nhs [detail]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NhsStatus {
    /// NHS tunnel address.
    pub tunnel: IpAddr,
    /// NHS NBMA address.
    pub nbma: IpAddr,
    /// Configured priority.
    pub priority: u8,
    /// Registration accepted and answering ("RE" vs "E" in Cisco's output).
    pub up: bool,
    /// Time in the current state.
    pub since: Duration,
    /// Requests sent without a reply since the last reply.
    pub unanswered: u32,
    /// The request ID in flight or last answered.
    pub request_id: u32,
    /// Our NBMA address as the NHS sees it, when NATed.
    pub nat_nbma: Option<IpAddr>,
    /// The codes of the last reply, tunnel address first, then each site prefix.
    pub codes: Vec<u8>,
}

impl Engine {
    /// `show dmvpn` at `now`.
    pub fn show_dmvpn(&self, now: Instant) -> Dmvpn {
        let mut peers: BTreeMap<IpAddr, DmvpnPeer> = BTreeMap::new();
        for nhs in &self.nhs {
            peers.insert(
                nhs.config.tunnel,
                DmvpnPeer {
                    nbma: nhs.config.nbma,
                    tunnel: nhs.config.tunnel,
                    state: if nhs.up {
                        PeerState::Up
                    } else {
                        PeerState::Nhrp
                    },
                    up_down: now.saturating_duration_since(nhs.since),
                    kind: EntryType::Static,
                    nat: false,
                    entries: 0,
                },
            );
        }
        for (_, e) in self.cache.iter() {
            if e.kind == EntryType::Local {
                continue;
            }
            let row = peers.entry(e.tunnel).or_insert(DmvpnPeer {
                nbma: e.nbma,
                tunnel: e.tunnel,
                state: PeerState::Up,
                up_down: now.saturating_duration_since(e.created),
                kind: e.kind,
                nat: e.nat(),
                entries: 0,
            });
            row.entries += 1;
        }
        Dmvpn {
            role: self.config.role,
            tunnel: self.config.tunnel_address,
            nbma: self.config.nbma_address,
            network_id: self.config.network_id,
            peers: peers.into_values().collect(),
        }
    }

    /// `show ip nhrp [detail]` at `now`: the cache, then the resolutions in flight as
    /// incomplete host entries (via the target, NBMA = the NHS asked).
    pub fn show_nhrp(&self, now: Instant) -> Vec<NhrpEntry> {
        let incomplete = self.resolutions.values().filter_map(|r| {
            let nhs = self.nhs.get(r.nhs)?;
            Some(NhrpEntry {
                prefix: Prefix::host(r.target),
                via: r.target,
                nbma: nhs.config.nbma,
                claimed_nbma: nhs.config.nbma,
                kind: EntryType::Incomplete,
                age: now.saturating_duration_since(r.started),
                expires_in: Some(r.deadline.saturating_duration_since(now)),
                holdtime: 0,
                unique: false,
                nat: false,
            })
        });
        self.cache
            .iter()
            .map(|(p, e)| NhrpEntry {
                prefix: *p,
                via: e.tunnel,
                nbma: e.nbma,
                claimed_nbma: e.claimed_nbma,
                kind: e.kind,
                age: now.saturating_duration_since(e.created),
                expires_in: e.expires.map(|at| at.saturating_duration_since(now)),
                holdtime: e.holdtime,
                unique: e.unique,
                nat: e.nat(),
            })
            .chain(incomplete)
            .collect()
    }

    /// `show ip nhrp nhs [detail]` at `now`.
    pub fn show_nhs(&self, now: Instant) -> Vec<NhsStatus> {
        self.nhs
            .iter()
            .map(|s| NhsStatus {
                tunnel: s.config.tunnel,
                nbma: s.config.nbma,
                priority: s.config.priority,
                up: s.up,
                since: now.saturating_duration_since(s.since),
                unanswered: s.exchange.unanswered(),
                request_id: s.exchange.request_id(),
                nat_nbma: s.nat_nbma,
                codes: s.codes.iter().map(|c| u8::from(*c)).collect(),
            })
            .collect()
    }
}
