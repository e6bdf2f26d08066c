//! `dmvpn-nhrp`: a sans-IO NHRP engine (RFC 2332 with the Cisco DMVPN extensions) for the
//! hub (Next Hop Server) and the spoke (Next Hop Client) of a DMVPN.
//!
//! The [`Engine`] takes bytes and time in and gives packets, events and deadlines out, in
//! the manner of quinn-proto: it reads no clock, opens no socket and draws randomness from an
//! injected [`Random`]. Every byte goes through the `dmvpn-wire` codecs, and the packets are
//! shaped like FRR nhrpd's, which interoperate with Cisco IOS.
//!
//! # Driving an engine
//! 1. Feed input: [`Engine::handle_packet`] for each NHRP packet received over GRE (protocol
//!    type 0x2001) with the outer source address, and [`Engine::handle_timeout`] when the
//!    deadline of [`Engine::poll_timeout`] has passed.
//! 2. Drain, in this order: [`Engine::poll_transmit`] until `None` (send each payload in GRE
//!    to its NBMA destination), [`Engine::poll_event`] until `None` (apply cache and route
//!    changes, count drops), then re-arm the timer with [`Engine::poll_timeout`].
//!
//! # This milestone
//! Registration both ways (spoke: register, refresh, retransmit with backoff, NHS up/down,
//! NAT discovery; hub: authenticate, register with anti-hijack uniqueness, NAT extension,
//! expiry, multicast replication set), authentication, cache, counters and show snapshots;
//! phase 3 shortcuts: the hub's rate-limited Traffic Indication, the spoke's resolution of
//! the destination and the answer from the cache (the hub's registrations, each router's
//! own prefixes), installed as a subnet shortcut that expires at its holding time.
//! Purge of a registration when the NBMA address changes (with Cisco's request-ID rule),
//! the hub's purge of the shortcuts it handed out for a registration that moved, and of
//! shortcuts on request; shortcuts the dataplane reports used are refreshed, idle ones
//! expire. Resolution requests an NHS cannot answer are forwarded along its static routes
//! or to its own NHS, with transit records, hop count and loop detection ([`resolution`]). A client with NHSs of
//! different priorities registers with the best reachable ones and fails over and back
//! (Cisco backup NHS). [`Engine::update_config`] changes the NHSs, prefixes, password and
//! holdtime of a running engine; [`Engine::clear_dynamic`] is IOS's `clear ip nhrp`.

pub mod auth;
pub mod cache;
pub mod clear;
pub mod config;
pub mod counters;
mod engine;
pub mod error;
mod expiry;
mod nhs;
pub mod prefix;
pub mod purge;
pub mod registration;
pub mod resolution;
pub mod show;
mod small;
mod timer;
pub mod traffic_indication;
mod update;

pub use cache::{Cache, CacheFull, Entry, EntryType};
pub use config::{Config, ConfigError, NhsConfig, Password, Role, Route};
pub use counters::Counters;
pub use engine::{
    ERROR_INDICATIONS_PER_SECOND, Engine, Event, Random, RemoveReason, SplitMix64, Transmit,
};
pub use error::DropReason;
pub use prefix::{Prefix, PrefixTable};
