//! `dmvpn-dataplane`: the packet path of a DMVPN router in userspace, for a TUN device and
//! UDP sockets on the underlay (no kernel GRE or XFRM needed).
//!
//! - The forwarding core, sans-IO and runtime-free: [`Forwarder`] owns the NHRP engine and
//!   the routes and moves batches ([`batch`]) between the TUN side and the underlay:
//!   routing ([`route`]), GRE ([`encap`]), protection ([`protection`]: GRE-in-UDP per
//!   RFC 8086, or ESP-in-UDP per RFC 3948 over `dmvpn-esp` SAs with a bounded queue while
//!   IKE negotiates), hub hairpin with NHRP Traffic Indications (DMVPN phase 3), multicast
//!   replication, MSS clamping ([`mss`]), ICMP for path MTU discovery ([`icmp`]), counters
//!   ([`counters`]), overhead arithmetic ([`overhead`]).
//! - The OS side ([`os`]): traits for the TUN device, UDP endpoints and the routing table,
//!   in-memory fakes, Linux implementations (tun-rs with TUN offloads: GSO super-packets
//!   split on read, GRO on write; quinn-udp with `recvmmsg`, UDP GRO and GSO; rtnetlink;
//!   tokio), and the idempotent route reconciler.
//!
//! Steady state allocates nothing per packet: buffers are reused and swapped between
//! batches, and ESP seals and opens in place in the buffer's head- and tailroom
//! (`tests/alloc.rs` counts allocations to hold this).

pub mod batch;
pub mod config;
pub mod counters;
pub mod encap;
pub mod event;
mod forward;
pub mod icmp;
pub mod mss;
pub mod os;
pub mod overhead;
pub mod protection;
pub mod route;

pub use batch::{PacketBatch, PacketBuf};
pub use config::{ConfigError, ForwarderConfig, StaticRoute};
pub use counters::{Counters, DropReason, PeerCounters};
pub use event::Event;
pub use forward::{Forwarder, Output};
pub use protection::{EspInUdp, EspMode, GreInUdp, Opened, Protection, SealFailure};
