//! A UDP socket through quinn-udp on tokio: `recvmmsg` fills a batch in one system call,
//! and UDP GRO (which quinn-udp enables) is split back into datagrams in order.
//!
//! Sending is one `sendmsg` per datagram today; runs of equal-sized datagrams to one peer
//! can become one UDP GSO send (`Transmit::segment_size`) without changing the batch.

use core::net::SocketAddr;
use std::io::{self, IoSliceMut};

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;

use crate::batch::{PacketBatch, PacketBuf};
use crate::os::UdpEndpoint;

/// The most datagrams one `recvmmsg` takes.
const RECV_BATCH: usize = 32;

/// A UDP socket on the underlay.
#[derive(Debug)]
pub struct LinuxUdp {
    sock: tokio::net::UdpSocket,
    state: UdpSocketState,
}

impl LinuxUdp {
    /// Binds a socket at `addr`. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// The OS error.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        sock.set_nonblocking(true)?;
        sock.bind(&addr.into())?;
        let std: std::net::UdpSocket = sock.into();
        let state = UdpSocketState::new((&std).into())?;
        Ok(LinuxUdp {
            sock: tokio::net::UdpSocket::from_std(std)?,
            state,
        })
    }
}

/// Spreads the datagrams GRO coalesced into one buffer (`stride` bytes each) over the
/// following slots, keeping their order; returns the number of datagrams. Segments beyond
/// the slots are dropped.
fn split_gro(slots: &mut [PacketBuf], metas: &[RecvMeta], n: usize) -> usize {
    let segments = |m: &RecvMeta| {
        if m.stride == 0 {
            1
        } else {
            m.len.div_ceil(m.stride).max(1)
        }
    };
    let mut starts = [0usize; RECV_BATCH];
    let mut total = 0;
    for (i, m) in metas.iter().take(n).enumerate() {
        starts[i] = total;
        total += segments(m);
    }
    // From the back, so that each move goes to a slot already vacated.
    for i in (0..n).rev() {
        let m = &metas[i];
        let dest = starts[i];
        if dest >= slots.len() {
            continue;
        }
        slots.swap(i, dest);
        let stride = if m.stride == 0 { m.len } else { m.stride };
        let (head, tail) = slots.split_at_mut(dest + 1);
        let src = &mut head[dest];
        for (k, slot) in tail.iter_mut().take(segments(m) - 1).enumerate() {
            let from = (k + 1) * stride;
            let len = stride.min(m.len - from);
            let bytes = src.read_area().get(from..from + len).unwrap_or(&[]);
            slot.load(bytes);
            slot.addr = Some(m.addr);
        }
        src.set_read(stride.min(m.len));
        src.addr = Some(m.addr);
    }
    total.min(slots.len())
}

impl UdpEndpoint for LinuxUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    async fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        let mut metas = [RecvMeta::default(); RECV_BATCH];
        let n = {
            let slots = batch.read_slots();
            let mut it = slots.iter_mut();
            let mut iovs: [IoSliceMut<'_>; RECV_BATCH] = core::array::from_fn(|_| {
                IoSliceMut::new(match it.next() {
                    Some(b) => b.read_area(),
                    None => &mut [],
                })
            });
            let (sock, state) = (&self.sock, &self.state);
            sock.async_io(Interest::READABLE, || {
                state.recv(sock.into(), &mut iovs, &mut metas)
            })
            .await?
        };
        let total = split_gro(batch.read_slots_filled(), &metas, n);
        batch.set_len(total);
        Ok(total)
    }

    async fn send_batch(&mut self, batch: &PacketBatch) -> io::Result<usize> {
        let mut sent = 0;
        for b in batch.bufs() {
            let Some(destination) = b.addr else {
                continue;
            };
            let transmit = Transmit {
                destination,
                ecn: None,
                contents: b.packet(),
                segment_size: None,
                src_ip: None,
            };
            let (sock, state) = (&self.sock, &self.state);
            // One unreachable peer must not stop the batch: its datagram is skipped.
            if sock
                .async_io(Interest::WRITABLE, || {
                    state.try_send(sock.into(), &transmit)
                })
                .await
                .is_ok()
            {
                sent += 1;
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(len: usize, stride: usize, port: u16) -> RecvMeta {
        let mut m = RecvMeta::default();
        m.len = len;
        m.stride = stride;
        m.addr = SocketAddr::from(([198, 18, 0, 9], port));
        m
    }

    #[test]
    fn gro_segments_keep_their_order() {
        let mut batch = PacketBatch::new(6, 64);
        let slots = batch.read_slots();
        // Slot 0: three 4-byte datagrams coalesced (the last short); slot 1: one datagram.
        slots[0].read_area()[..10].copy_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
        slots[1].read_area()[..2].copy_from_slice(&[4, 4]);
        let metas = [meta(10, 4, 1), meta(2, 2, 2)];
        let n = split_gro(batch.read_slots_filled(), &metas, 2);
        assert_eq!(n, 4);
        batch.set_len(n);
        let got: Vec<&[u8]> = batch.bufs().iter().map(PacketBuf::packet).collect();
        assert_eq!(got, [&[1u8, 1, 1, 1][..], &[2, 2, 2, 2], &[3, 3], &[4, 4]]);
        assert_eq!(batch.bufs()[3].addr.unwrap().port(), 2);
    }
}
