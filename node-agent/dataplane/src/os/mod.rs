//! The OS effects of the dataplane behind small traits, each with a stateful in-memory fake
//! ([`fake`]) so that routers run in tests without root, and a Linux implementation
//! (`linux`: tun-rs, quinn-udp, rtnetlink; needs a tokio runtime).
//!
//! - [`TunDevice`]: batches of IP packets to and from the tunnel interface.
//! - [`UdpEndpoint`]: batches of datagrams on the underlay.
//! - [`RouteTable`]: routes into the tunnel interface, reconciled from desired state by
//!   [`reconcile`]: routes carry a protocol marker, so that those left by a crash are found
//!   and removed at the next start.

use core::future::Future;
use core::net::{IpAddr, SocketAddr};
use std::collections::BTreeSet;
use std::io;

use dmvpn_nhrp::Prefix;

use crate::batch::PacketBatch;

pub mod fake;
#[cfg(target_os = "linux")]
pub mod linux;

/// The tunnel interface: IP packets in and out, in batches.
pub trait TunDevice {
    /// Reads packets into `batch` ([`PacketBatch::read_slots`]): waits for one, then takes
    /// the others that are ready, up to [`PacketBatch::max`]; returns their number.
    fn recv_batch(
        &mut self,
        batch: &mut PacketBatch,
    ) -> impl Future<Output = io::Result<usize>> + Send;

    /// Writes every packet of `batch`; returns the number written.
    fn send_batch(&mut self, batch: &PacketBatch)
    -> impl Future<Output = io::Result<usize>> + Send;

    /// The reads dropped so far, by reason (none where nothing can be lost).
    fn drops(&self) -> TunDrops {
        TunDrops::default()
    }
}

/// What a [`TunDevice`] read but did not hand up, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunDrops {
    /// Reads that could not be split into packets (a virtio-net header refused, a packet
    /// longer than a buffer): the read is dropped, the device goes on.
    pub unsplit: u64,
}

/// What a [`UdpEndpoint`] received but did not hand up, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvDrops {
    /// Datagrams the kernel cut to fit a receive buffer (the message filled it, so its
    /// last datagram may be short of its real length).
    pub truncated: u64,
    /// Datagrams longer than a batch buffer's packet capacity.
    pub oversize: u64,
}

/// A UDP socket on the underlay.
pub trait UdpEndpoint {
    /// The address it is bound to.
    ///
    /// # Errors
    /// The OS error.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Receives datagrams into `batch`, each buffer's `addr` set to its source: waits for
    /// one, then takes the others that are ready; returns their number. Datagrams the OS
    /// delivered together (UDP GRO) that do not fit the batch come first in the next call.
    fn recv_batch(
        &mut self,
        batch: &mut PacketBatch,
    ) -> impl Future<Output = io::Result<usize>> + Send;

    /// Sends every datagram of `batch` to its buffer's `addr`; returns the number sent
    /// (datagrams without an address or refused by the OS are skipped).
    fn send_batch(&mut self, batch: &PacketBatch)
    -> impl Future<Output = io::Result<usize>> + Send;

    /// The datagrams received but not handed up so far, by reason (none where nothing can
    /// be lost).
    fn drops(&self) -> RecvDrops {
        RecvDrops::default()
    }
}

/// A route as the OS holds it (with the implementation's protocol marker and table): into
/// the tunnel interface, or via a gateway on the node's network (a route agent's routes to
/// the overlay through the cluster's gateway node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OsRoute {
    /// The destinations.
    pub prefix: Prefix,
    /// The interface index of the tunnel device; 0 for a route via a gateway, whose
    /// interface the kernel picks.
    pub ifindex: u32,
    /// The gateway (next hop) of a route via one; `None` for a route into the tunnel device.
    pub via: Option<IpAddr>,
}

/// The OS routing table, as far as routes with this agent's protocol marker go.
pub trait RouteTable {
    /// Every route carrying the marker, on any interface.
    fn list(&mut self) -> impl Future<Output = io::Result<Vec<OsRoute>>> + Send;

    /// Adds a route with the marker.
    fn add(&mut self, route: OsRoute) -> impl Future<Output = io::Result<()>> + Send;

    /// Deletes a route with the marker.
    fn del(&mut self, route: OsRoute) -> impl Future<Output = io::Result<()>> + Send;
}

/// What [`reconcile`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Routes added.
    pub added: Vec<OsRoute>,
    /// Routes removed: stale ones, and leftovers of an earlier run.
    pub removed: Vec<OsRoute>,
}

/// Makes the marked routes of `table` exactly `desired`: deletes the others (leftovers of a
/// crash included), then adds the missing ones. Idempotent: a second run changes nothing.
/// An empty `desired` removes every marked route (shutdown).
///
/// # Errors
/// The first OS error; the routes changed before it stay changed, and the next run picks
/// up from there.
pub async fn reconcile<R: RouteTable>(
    table: &mut R,
    desired: &BTreeSet<OsRoute>,
) -> io::Result<Reconciled> {
    let current: BTreeSet<OsRoute> = table.list().await?.into_iter().collect();
    let mut done = Reconciled::default();
    for route in current.difference(desired) {
        table.del(*route).await?;
        done.removed.push(*route);
    }
    for route in desired.difference(&current) {
        table.add(*route).await?;
        done.added.push(*route);
    }
    Ok(done)
}
