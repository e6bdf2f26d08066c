//! A UDP socket through quinn-udp on tokio: `recvmmsg` takes up to [`RECV_BATCH`] messages
//! in one system call, and UDP GRO (which quinn-udp enables) is split back into datagrams
//! in order.
//!
//! With UDP GRO the kernel may coalesce up to 64 datagrams of a flow (from a NIC, a veth
//! with GRO, or a local GSO send) into one message of up to 64 KiB, more than a batch
//! buffer holds. Messages are therefore received into buffers of [`MAX_MESSAGE`] bytes,
//! which no UDP message exceeds, allocated once, and their datagrams copied into the
//! batch; those that do not fit stay for the next `recv_batch`. A datagram is never handed
//! up cut: one longer than a batch buffer, or a message that fills its buffer (so may have
//! been truncated), is dropped and counted ([`RecvDrops`]).
//!
//! Sending uses UDP GSO (Linux `UDP_SEGMENT`, which quinn-udp drives through
//! `Transmit::segment_size`): a run of equal-sized datagrams to one peer is copied into one
//! buffer and leaves in one `sendmsg`, the kernel cutting it into datagrams (or the receiving
//! socket taking it whole with UDP GRO). Without kernel support, datagrams go one by one.

use core::net::SocketAddr;
use std::io::{self, IoSliceMut};

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;

use crate::batch::{PacketBatch, PacketBuf};
use crate::os::{RecvDrops, UdpEndpoint};

/// The most messages one `recvmmsg` takes.
const RECV_BATCH: usize = 32;

/// The receive buffer of one message: more than any UDP message the kernel hands up, as
/// the 16-bit IP and UDP length fields (RFC 768) bound a datagram's payload to 65527 bytes
/// and the kernel ends UDP GRO before a coalesced message reaches 64 KiB with its headers.
/// A message that fills it was truncated.
const MAX_MESSAGE: usize = 1 << 16;

/// The most datagrams one GSO send carries: the most quinn-udp uses, the kernel's
/// `UDP_MAX_SEGMENTS` before newer kernels raised it to 128. A TUN read of a 64 KiB TCP
/// super-packet yields about 45 datagrams, which leave in one send.
const GSO_MAX_SEGMENTS: usize = 64;

/// The most bytes one GSO send carries: the kernel refuses a send whose payload does not
/// fit one IPv4 datagram's 16-bit total length (65535 less the 20-byte IPv4 and 8-byte UDP
/// headers, RFC 791 and RFC 768). A peer receiving with UDP GRO takes such a run whole into
/// one [`MAX_MESSAGE`] region.
const GSO_MAX_BYTES: usize = 65_535 - 20 - 8;

/// The socket buffer asked for each way: room for a few hundred full-sized datagrams (a
/// dozen GSO runs) while the agent is busy elsewhere. The kernel's default (about 200 KiB)
/// holds three runs, and a receive buffer that overflows drops a whole coalesced message.
/// wireguard-go asks for 7 MiB for the same reason.
const SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket on the underlay.
#[derive(Debug)]
pub struct LinuxUdp {
    sock: tokio::net::UdpSocket,
    state: UdpSocketState,
    /// Where a GSO run's datagrams are copied back to back (allocated once).
    gso: Vec<u8>,
    rx: Received,
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
        grow_buffers(&sock);
        sock.bind(&addr.into())?;
        let std: std::net::UdpSocket = sock.into();
        let state = UdpSocketState::new((&std).into())?;
        Ok(LinuxUdp {
            sock: tokio::net::UdpSocket::from_std(std)?,
            state,
            gso: Vec::with_capacity(GSO_MAX_BYTES),
            rx: Received::new(),
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

/// Asks for [`SOCKET_BUFFER`] each way, best effort: `SO_RCVBUFFORCE` and `SO_SNDBUFFORCE`
/// (`CAP_NET_ADMIN`, which the agent holds for its TUN device) pass `net.core.rmem_max` and
/// `wmem_max`; without the capability `SO_RCVBUF` and `SO_SNDBUF` are capped at them.
fn grow_buffers(sock: &socket2::Socket) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(sock, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    }
    if setsockopt(sock, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
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

/// Where the next datagram to hand up is in the received messages: a message and the
/// number of its (GRO) segments already handed up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cursor {
    message: usize,
    segment: usize,
}

/// Copies the datagrams of received messages into `slots`, in order, from `at` on, and
/// moves `at` past them; returns the number of slots filled. Message `i` (`metas[i]`) is
/// in `regions[i * region..]`; one UDP GRO coalesced (`stride` bytes a datagram, the last
/// may be shorter) is split back into its datagrams. What does not fit in `slots` stays
/// for the next call. A message that fills its region may have been cut: its last datagram
/// is counted as truncated and dropped; a datagram longer than its slot is counted as
/// oversize and dropped.
fn split_messages(
    regions: &[u8],
    region: usize,
    metas: &[RecvMeta],
    at: &mut Cursor,
    slots: &mut [PacketBuf],
    drops: &mut RecvDrops,
) -> usize {
    let mut filled = 0;
    while let Some(m) = metas.get(at.message) {
        let len = m.len.min(region);
        let stride = if m.stride == 0 { len } else { m.stride };
        let segments = if len == 0 { 1 } else { len.div_ceil(stride) };
        let base = at.message * region;
        while at.segment < segments {
            let from = at.segment.saturating_mul(stride);
            let to = from.saturating_add(stride).min(len);
            if at.segment + 1 == segments && m.len >= region {
                drops.truncated += 1;
                at.segment += 1;
                continue;
            }
            let Some(slot) = slots.get_mut(filled) else {
                return filled;
            };
            at.segment += 1;
            let bytes = regions.get(base + from..base + to).unwrap_or(&[]);
            if slot.load(bytes) {
                slot.addr = Some(m.addr);
                filled += 1;
            } else {
                drops.oversize += 1;
            }
        }
        *at = Cursor {
            message: at.message + 1,
            segment: 0,
        };
    }
    filled
}

/// Received messages and how far they have been handed up: the receive buffers, one region
/// of [`MAX_MESSAGE`] bytes per message of a `recvmmsg` (allocated once, at bind).
#[derive(Debug)]
struct Received {
    regions: Vec<u8>,
    metas: [RecvMeta; RECV_BATCH],
    /// The messages in `regions` (`metas[..count]`).
    count: usize,
    at: Cursor,
    drops: RecvDrops,
}

impl Received {
    fn new() -> Self {
        Received {
            regions: vec![0; RECV_BATCH * MAX_MESSAGE],
            metas: [RecvMeta::default(); RECV_BATCH],
            count: 0,
            at: Cursor::default(),
            drops: RecvDrops::default(),
        }
    }

    /// Hands up datagrams still held into `slots`; returns their number. Once all are, the
    /// regions are free for the next receive.
    fn drain(&mut self, slots: &mut [PacketBuf]) -> usize {
        let metas = self.metas.get(..self.count).unwrap_or(&[]);
        let n = split_messages(
            &self.regions,
            MAX_MESSAGE,
            metas,
            &mut self.at,
            slots,
            &mut self.drops,
        );
        if self.at.message >= self.count {
            self.count = 0;
            self.at = Cursor::default();
        }
        n
    }
}

impl UdpEndpoint for LinuxUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    fn drops(&self) -> RecvDrops {
        self.rx.drops
    }

    async fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        let slots = batch.read_slots();
        let mut filled = self.rx.drain(slots);
        loop {
            let free = slots.len().saturating_sub(filled).min(RECV_BATCH);
            if free == 0 {
                break;
            }
            let wait = filled == 0;
            let rx = &mut self.rx;
            let mut regions = rx.regions.chunks_mut(MAX_MESSAGE);
            let mut iovs: [IoSliceMut<'_>; RECV_BATCH] =
                core::array::from_fn(|_| IoSliceMut::new(regions.next().unwrap_or_default()));
            let (sock, state) = (&self.sock, &self.state);
            let recv = || {
                let iovs = iovs.get_mut(..free).unwrap_or_default();
                let metas = rx.metas.get_mut(..free).unwrap_or_default();
                state.recv(sock.into(), iovs, metas)
            };
            // Datagrams held from the last call are handed up now: only what is ready
            // joins them.
            let n = if wait {
                sock.async_io(Interest::READABLE, recv).await?
            } else {
                match sock.try_io(Interest::READABLE, recv) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    r => r?,
                }
            };
            self.rx.count = n;
            filled += self.rx.drain(slots.get_mut(filled..).unwrap_or_default());
            // Waited, but every datagram received was dropped: wait again.
            if !wait || filled > 0 {
                break;
            }
        }
        batch.set_len(filled);
        Ok(filled)
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
    fn gso_runs_fit_one_datagram_and_a_peer_receive_region() {
        // ESP-in-UDP datagrams of a 1400-byte tunnel MTU (a TUN read of a 64 KiB TCP
        // super-packet and more): a run never exceeds one IPv4 datagram, which a peer's
        // receive region takes whole from UDP GRO.
        let mut bufs = Vec::new();
        for _ in 0..100 {
            let mut b = PacketBuf::new(1500);
            assert!(b.load(&[0; 1466]));
            b.addr = Some(SocketAddr::from(([198, 18, 0, 9], 4500)));
            bufs.push(b);
        }
        let per_run = GSO_MAX_BYTES / 1466;
        assert_eq!(per_run, 44);
        let got = runs(&bufs, GSO_MAX_SEGMENTS, GSO_MAX_BYTES);
        assert_eq!(got, [(0, 44), (44, 88), (88, 100)]);
        for (start, end) in got {
            assert!((end - start) * 1466 <= GSO_MAX_BYTES);
            assert!((end - start) * 1466 < MAX_MESSAGE);
        }
        // Small datagrams (TCP acknowledgements): GSO_MAX_SEGMENTS a run.
        let acks = datagrams(&[(60, 1); 150]);
        assert_eq!(
            runs(&acks, GSO_MAX_SEGMENTS, GSO_MAX_BYTES),
            [(0, 64), (64, 128), (128, 150)]
        );
    }

    /// Messages in regions of `REGION` bytes: each a list of datagrams (byte, length),
    /// coalesced with the first one's length as stride.
    const REGION: usize = 64;

    fn messages(msgs: &[(&[(u8, usize)], u16)]) -> (Vec<u8>, Vec<RecvMeta>) {
        let mut regions = vec![0; msgs.len() * REGION];
        let mut metas = Vec::new();
        for (i, (datagrams, port)) in msgs.iter().enumerate() {
            let mut at = i * REGION;
            for &(byte, len) in *datagrams {
                regions[at..at + len].fill(byte);
                at += len;
            }
            metas.push(meta(at - i * REGION, datagrams[0].1, *port));
        }
        (regions, metas)
    }

    fn split(
        regions: &[u8],
        metas: &[RecvMeta],
        at: &mut Cursor,
        slots: usize,
        capacity: usize,
        drops: &mut RecvDrops,
    ) -> Vec<(Vec<u8>, u16)> {
        let mut batch = PacketBatch::new(slots, capacity);
        let n = split_messages(regions, REGION, metas, at, batch.read_slots(), drops);
        batch.set_len(n);
        batch
            .bufs()
            .iter()
            .map(|b| (b.packet().to_vec(), b.addr.unwrap().port()))
            .collect()
    }

    #[test]
    fn gro_segments_keep_their_order() {
        // Message 0: three 4-byte datagrams coalesced (the last short); message 1: one.
        let (regions, metas) = messages(&[(&[(1, 4), (2, 4), (3, 2)], 1), (&[(4, 2)], 2)]);
        let (mut at, mut drops) = (Cursor::default(), RecvDrops::default());
        let got = split(&regions, &metas, &mut at, 6, 64, &mut drops);
        assert_eq!(
            got,
            [
                (vec![1; 4], 1),
                (vec![2; 4], 1),
                (vec![3; 2], 1),
                (vec![4; 2], 2)
            ]
        );
        assert_eq!(at.message, 2);
        assert_eq!(drops, RecvDrops::default());
    }

    #[test]
    fn segments_beyond_the_slots_carry_over_to_the_next_call() {
        // 7 datagrams in two messages over batches of 3 slots: 3, 3, then 1; none lost.
        let (regions, metas) = messages(&[
            (&[(1, 8), (2, 8), (3, 8), (4, 8), (5, 3)], 1),
            (&[(6, 5), (7, 5)], 2),
        ]);
        let (mut at, mut drops) = (Cursor::default(), RecvDrops::default());
        let mut got = Vec::new();
        let mut calls = 0;
        while at.message < metas.len() {
            let part = split(&regions, &metas, &mut at, 3, 64, &mut drops);
            assert!(!part.is_empty() && part.len() <= 3);
            got.extend(part);
            calls += 1;
        }
        assert_eq!(calls, 3);
        let bytes: Vec<u8> = got.iter().map(|(p, _)| p[0]).collect();
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 7]);
        let lens: Vec<usize> = got.iter().map(|(p, _)| p.len()).collect();
        assert_eq!(lens, [8, 8, 8, 8, 3, 5, 5]);
        assert_eq!(got[5].1, 2);
        assert_eq!(drops, RecvDrops::default());
        // Drained: no slot is filled from nothing.
        assert!(split(&regions, &metas, &mut at, 3, 64, &mut drops).is_empty());
    }

    #[test]
    fn a_message_that_fills_its_buffer_loses_only_its_last_datagram() {
        // 16-byte datagrams filling the 64-byte region: the kernel may have cut the fourth.
        let (regions, metas) = messages(&[(&[(1, 16), (2, 16), (3, 16), (4, 16)], 1)]);
        let (mut at, mut drops) = (Cursor::default(), RecvDrops::default());
        let got = split(&regions, &metas, &mut at, 8, 64, &mut drops);
        let bytes: Vec<u8> = got.iter().map(|(p, _)| p[0]).collect();
        assert_eq!(bytes, [1, 2, 3]);
        assert_eq!(
            drops,
            RecvDrops {
                truncated: 1,
                oversize: 0
            }
        );
        // A single datagram that fills it is dropped whole.
        let (regions, metas) = messages(&[(&[(5, 64)], 1), (&[(6, 10)], 1)]);
        let mut at = Cursor::default();
        let got = split(&regions, &metas, &mut at, 8, 64, &mut drops);
        assert_eq!(got, [(vec![6; 10], 1)]);
        assert_eq!(drops.truncated, 2);
    }

    #[test]
    fn datagrams_longer_than_a_slot_are_dropped_and_counted() {
        // Slots of 10 bytes: the 12-byte datagrams go, the 6-byte ones arrive in order.
        let (regions, metas) = messages(&[
            (&[(1, 12), (2, 12)], 1),
            (&[(3, 6), (4, 6)], 1),
            (&[(5, 12)], 1),
        ]);
        let (mut at, mut drops) = (Cursor::default(), RecvDrops::default());
        let got = split(&regions, &metas, &mut at, 8, 10, &mut drops);
        assert_eq!(got, [(vec![3; 6], 1), (vec![4; 6], 1)]);
        assert_eq!(
            drops,
            RecvDrops {
                truncated: 0,
                oversize: 3
            }
        );
    }

    #[test]
    fn hostile_metadata_never_reads_outside_its_message() {
        // An empty datagram is one datagram; a zero or huge stride is one datagram; a
        // length beyond the region is cut to it (and counted as truncated).
        let regions = vec![9; 3 * REGION];
        let metas = [meta(0, 0, 1), meta(20, usize::MAX, 1), meta(1000, 0, 1)];
        let (mut at, mut drops) = (Cursor::default(), RecvDrops::default());
        let got = split(&regions, &metas, &mut at, 8, 64, &mut drops);
        assert_eq!(got, [(vec![], 1), (vec![9; 20], 1)]);
        assert_eq!(drops.truncated, 1);
        assert_eq!(at.message, 3);
    }
}
