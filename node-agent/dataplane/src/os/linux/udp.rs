//! A UDP socket through quinn-udp on tokio: `recvmmsg` fills a batch in one system call,
//! and UDP GRO (which quinn-udp enables) is split back into datagrams in order.
//!
//! Sending uses UDP GSO (Linux `UDP_SEGMENT`, which quinn-udp drives through
//! `Transmit::segment_size`): a run of equal-sized datagrams to one peer is copied into one
//! buffer and leaves in one `sendmsg`, the kernel cutting it into datagrams (or the receiving
//! socket taking it whole with UDP GRO). Without kernel support, datagrams go one by one.

use core::net::SocketAddr;
use std::io::{self, IoSliceMut};

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;

use crate::batch::{DEFAULT_PACKET_CAPACITY, PacketBatch, PacketBuf};
use crate::os::UdpEndpoint;

/// The most datagrams one `recvmmsg` takes.
const RECV_BATCH: usize = 32;

/// The most datagrams one GSO send carries. A receiving agent takes up to its batch size
/// divided by this many messages per `recvmmsg`, so that the datagrams of coalesced ones
/// (UDP GRO) all find a slot of the batch.
const GSO_MAX_SEGMENTS: usize = 8;

/// The most bytes one GSO send carries. A receiving agent's socket has UDP GRO on, so the
/// kernel may hand it a whole run in one receive buffer: a run fits the buffer of a peer
/// with the default packet capacity, or its tail would be truncated.
const GSO_MAX_BYTES: usize = DEFAULT_PACKET_CAPACITY;

/// A UDP socket on the underlay.
#[derive(Debug)]
pub struct LinuxUdp {
    sock: tokio::net::UdpSocket,
    state: UdpSocketState,
    /// Where a GSO run's datagrams are copied back to back (allocated once).
    gso: Vec<u8>,
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
            gso: Vec::with_capacity(GSO_MAX_BYTES),
        })
    }

    /// Sends one datagram, or a GSO run cut into datagrams of `segment_size` bytes (the last
    /// may be shorter); errors are the OS's.
    async fn send(
        &self,
        destination: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> io::Result<()> {
        let transmit = Transmit {
            destination,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        let (sock, state) = (&self.sock, &self.state);
        sock.async_io(Interest::WRITABLE, || {
            state.try_send(sock.into(), &transmit)
        })
        .await
    }
}

/// The end of the GSO run that starts at `bufs[start]`: the datagrams after it with the
/// same destination and its size (a shorter one may close the run, as `UDP_SEGMENT` allows
/// only the last segment to be short), at most `max_segments` datagrams and `max_bytes` in
/// all. A datagram without a destination is a run of its own.
fn gso_run_end(bufs: &[PacketBuf], start: usize, max_segments: usize, max_bytes: usize) -> usize {
    let Some(first) = bufs.get(start) else {
        return start;
    };
    let size = first.packet().len();
    let mut end = start + 1;
    let mut bytes = size;
    if first.addr.is_none() || size == 0 {
        return end;
    }
    while let Some(b) = bufs.get(end) {
        let len = b.packet().len();
        if end - start >= max_segments
            || b.addr != first.addr
            || len > size
            || len == 0
            || bytes + len > max_bytes
        {
            break;
        }
        end += 1;
        bytes += len;
        if len < size {
            break;
        }
    }
    end
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
        let messages = (batch.max() / GSO_MAX_SEGMENTS).clamp(1, RECV_BATCH);
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
                let iovs = iovs.get_mut(..messages).unwrap_or_default();
                let metas = metas.get_mut(..messages).unwrap_or_default();
                state.recv(sock.into(), iovs, metas)
            })
            .await?
        };
        let total = split_gro(batch.read_slots_filled(), &metas, n);
        batch.set_len(total);
        Ok(total)
    }

    async fn send_batch(&mut self, batch: &PacketBatch) -> io::Result<usize> {
        let bufs = batch.bufs();
        let max_segments = self.state.max_gso_segments().min(GSO_MAX_SEGMENTS);
        let mut sent = 0;
        let mut start = 0;
        while start < bufs.len() {
            let end = gso_run_end(bufs, start, max_segments, GSO_MAX_BYTES);
            let run = bufs.get(start..end).unwrap_or(&[]);
            start = end;
            let Some((first, Some(destination))) = run.first().map(|b| (b, b.addr)) else {
                continue;
            };
            if run.len() > 1 {
                let mut gso = core::mem::take(&mut self.gso);
                gso.clear();
                for b in run {
                    gso.extend_from_slice(b.packet());
                }
                let r = self
                    .send(destination, &gso, Some(first.packet().len()))
                    .await;
                self.gso = gso;
                if r.is_ok() {
                    sent += run.len();
                    continue;
                }
                // Refused (the kernel or device cannot segment; quinn-udp then stops using
                // GSO): the run goes again one datagram at a time.
            }
            for b in run {
                // One unreachable peer must not stop the batch: its datagram is skipped.
                if self.send(destination, b.packet(), None).await.is_ok() {
                    sent += 1;
                }
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

    fn datagrams(sizes: &[(usize, u16)]) -> Vec<PacketBuf> {
        sizes
            .iter()
            .map(|&(len, port)| {
                let mut b = PacketBuf::new(64);
                assert!(b.load(&vec![7; len]));
                b.addr = (port != 0).then(|| SocketAddr::from(([198, 18, 0, 9], port)));
                b
            })
            .collect()
    }

    fn runs(bufs: &[PacketBuf], max_segments: usize, max_bytes: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < bufs.len() {
            let end = gso_run_end(bufs, start, max_segments, max_bytes);
            out.push((start, end));
            start = end;
        }
        out
    }

    #[test]
    fn gso_runs_are_equal_sized_datagrams_to_one_peer() {
        // Three full 10-byte datagrams and a short one to port 1 form one run; the short one
        // closes it; then a new peer, a datagram without a destination, and a larger one.
        let bufs = datagrams(&[
            (10, 1),
            (10, 1),
            (10, 1),
            (4, 1),
            (10, 1),
            (10, 2),
            (10, 2),
            (10, 0),
            (10, 2),
            (12, 2),
        ]);
        assert_eq!(
            runs(&bufs, 64, 1000),
            [(0, 4), (4, 5), (5, 7), (7, 8), (8, 9), (9, 10)]
        );
    }

    #[test]
    fn gso_runs_respect_the_segment_and_byte_limits() {
        let bufs = datagrams(&[(10, 1); 7]);
        assert_eq!(runs(&bufs, 3, 1000), [(0, 3), (3, 6), (6, 7)]);
        assert_eq!(runs(&bufs, 64, 25), [(0, 2), (2, 4), (4, 6), (6, 7)]);
        // Without GSO every datagram is a run of its own.
        assert_eq!(runs(&bufs, 1, 1000).len(), 7);
    }

    #[test]
    fn gso_runs_fit_a_peer_receive_buffer_and_batch() {
        // ESP-in-UDP datagrams of a 1400-byte tunnel MTU: a run never exceeds what a peer's
        // default-sized buffer takes whole from UDP GRO.
        let mut bufs = Vec::new();
        for _ in 0..64 {
            let mut b = PacketBuf::new(1500);
            assert!(b.load(&[0; 1466]));
            b.addr = Some(SocketAddr::from(([198, 18, 0, 9], 4500)));
            bufs.push(b);
        }
        for (start, end) in runs(&bufs, GSO_MAX_SEGMENTS, GSO_MAX_BYTES) {
            assert!((end - start) * 1466 <= DEFAULT_PACKET_CAPACITY);
            assert_eq!(
                end - start,
                (DEFAULT_PACKET_CAPACITY / 1466).min(64 - start)
            );
        }
        // Small datagrams (TCP acknowledgements): GSO_MAX_SEGMENTS a run.
        let acks = datagrams(&[(60, 1); 20]);
        assert_eq!(
            runs(&acks, GSO_MAX_SEGMENTS, GSO_MAX_BYTES),
            [(0, 8), (8, 16), (16, 20)]
        );
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
