//! In-memory fakes of the OS traits, with state a test can inspect (wireguard-go
//! `tun/tuntest`, submariner `pkg/netlink/fake` style). They never wait: a read with
//! nothing queued returns 0 packets.

use core::net::SocketAddr;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{OsRoute, RouteTable, TunDevice, UdpEndpoint};
use crate::batch::PacketBatch;

/// A fake TUN device: packets the "kernel" routed into the tunnel wait in a queue for
/// [`TunDevice::recv_batch`]; packets the forwarder wrote are kept for the test.
#[derive(Debug, Default)]
pub struct FakeTun {
    /// Packets to be read, oldest first.
    pub to_read: VecDeque<Vec<u8>>,
    /// Packets written, oldest first.
    pub written: Vec<Vec<u8>>,
}

impl FakeTun {
    /// Queues a packet as if the kernel routed it into the tunnel.
    pub fn inject(&mut self, packet: &[u8]) {
        self.to_read.push_back(packet.to_vec());
    }

    /// Takes the packets written so far.
    pub fn take_written(&mut self) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.written)
    }
}

impl TunDevice for FakeTun {
    async fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        let mut n = 0;
        for slot in batch.read_slots() {
            let Some(p) = self.to_read.pop_front() else {
                break;
            };
            if !slot.load(&p) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "packet too large",
                ));
            }
            n += 1;
        }
        batch.set_len(n);
        Ok(n)
    }

    async fn send_batch(&mut self, batch: &PacketBatch) -> io::Result<usize> {
        self.written
            .extend(batch.bufs().iter().map(|b| b.packet().to_vec()));
        Ok(batch.len())
    }
}

/// One datagram on the fake network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Source.
    pub from: SocketAddr,
    /// Destination.
    pub to: SocketAddr,
    /// UDP payload.
    pub payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct NetState {
    inboxes: HashMap<SocketAddr, VecDeque<Datagram>>,
    /// Every datagram sent, in order, when capturing.
    capture: Option<Vec<Datagram>>,
    /// Datagrams sent to an address nobody bound.
    unreachable: u64,
}

/// A fake underlay: datagrams sent to a bound address wait in its inbox. Clones share the
/// network.
#[derive(Debug, Clone, Default)]
pub struct FakeNetwork(Arc<Mutex<NetState>>);

impl FakeNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, NetState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Binds an endpoint at `addr`.
    pub fn bind(&self, addr: SocketAddr) -> FakeUdp {
        self.state().inboxes.entry(addr).or_default();
        FakeUdp {
            net: self.clone(),
            local: addr,
        }
    }

    /// Records every datagram sent from now on.
    pub fn start_capture(&self) {
        self.state().capture = Some(Vec::new());
    }

    /// The datagrams recorded since [`FakeNetwork::start_capture`].
    pub fn captured(&self) -> Vec<Datagram> {
        self.state().capture.clone().unwrap_or_default()
    }

    /// Datagrams sent to addresses nobody bound.
    pub fn unreachable(&self) -> u64 {
        self.state().unreachable
    }

    /// Datagrams waiting in any inbox.
    pub fn in_flight(&self) -> usize {
        self.state().inboxes.values().map(VecDeque::len).sum()
    }
}

/// An endpoint on a [`FakeNetwork`].
#[derive(Debug)]
pub struct FakeUdp {
    net: FakeNetwork,
    local: SocketAddr,
}

impl UdpEndpoint for FakeUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    async fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        let mut state = self.net.state();
        let inbox = state.inboxes.entry(self.local).or_default();
        let mut n = 0;
        for slot in batch.read_slots() {
            let Some(d) = inbox.pop_front() else {
                break;
            };
            // Like a UDP socket, a datagram larger than the buffer is truncated.
            let len = d.payload.len().min(slot.packet_capacity());
            slot.load(&d.payload[..len]);
            slot.addr = Some(d.from);
            n += 1;
        }
        drop(state);
        batch.set_len(n);
        Ok(n)
    }

    async fn send_batch(&mut self, batch: &PacketBatch) -> io::Result<usize> {
        let mut state = self.net.state();
        let mut sent = 0;
        for b in batch.bufs() {
            let Some(to) = b.addr else {
                continue;
            };
            let d = Datagram {
                from: self.local,
                to,
                payload: b.packet().to_vec(),
            };
            if let Some(c) = state.capture.as_mut() {
                c.push(d.clone());
            }
            match state.inboxes.get_mut(&to) {
                Some(inbox) => inbox.push_back(d),
                None => state.unreachable += 1,
            }
            sent += 1;
        }
        Ok(sent)
    }
}

/// A fake routing table holding the marked routes; like netlink, adding a route that exists
/// or deleting one that does not is an error, so a sloppy reconciler fails its tests.
#[derive(Debug, Default)]
pub struct FakeRouteTable {
    /// The marked routes.
    pub routes: BTreeSet<OsRoute>,
    /// Adds and deletes performed.
    pub operations: u64,
}

impl RouteTable for FakeRouteTable {
    async fn list(&mut self) -> io::Result<Vec<OsRoute>> {
        Ok(self.routes.iter().copied().collect())
    }

    async fn add(&mut self, route: OsRoute) -> io::Result<()> {
        self.operations += 1;
        if !self.routes.insert(route) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "route exists"));
        }
        Ok(())
    }

    async fn del(&mut self, route: OsRoute) -> io::Result<()> {
        self.operations += 1;
        if !self.routes.remove(&route) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such route"));
        }
        Ok(())
    }
}
