//! Packet buffers and batches: reused buffers with headroom before the packet, so that GRE,
//! the ESP header and IV (RFC 4303 section 2) are written in front of a packet in place and the
//! ESP trailer and ICV after it, without a copy or an allocation per packet.
//!
//! A [`PacketBuf`] is one fixed-size buffer and the range of it the packet occupies. A
//! [`PacketBatch`] is a set of them filled by one system call (TUN read, `recvmmsg`) or sent
//! by one. Buffers move between batches by swapping ([`PacketBatch::push_swap`]): the batch a
//! packet leaves gets an empty buffer back, so the number of buffers stays what the busiest
//! moment needed and steady state allocates nothing.
//!
//! Every packet read from the OS starts at [`HEADROOM`]: the offset tun-rs's
//! `recv_multiple(.., offset)` takes, so that TUN offloads (a virtio-net header in front of
//! a GSO super-packet, split into MTU-sized packets each at the offset) fill the same
//! buffers. [`PacketBuf::read_area`] is what the OS writes into.

use core::net::SocketAddr;

/// Bytes kept free before a packet read from the OS: room for the GRE header with key (8),
/// the ESP header and IV (16) and, in ESP tunnel mode, an IPv6 header (40), rounded up.
pub const HEADROOM: usize = 64;
/// Bytes kept free after the largest packet: ESP padding, pad length and next header (at
/// most 5) and the 16-byte ICV, rounded up.
pub const TAILROOM: usize = 32;
/// The default largest packet a buffer holds: a jumbo frame.
pub const DEFAULT_PACKET_CAPACITY: usize = 9216;

/// One packet buffer: a fixed-size byte area and the range the packet occupies in it, plus
/// the remote address of a datagram (its source on receipt, its destination to send).
#[derive(Debug, Clone, Default)]
pub struct PacketBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
    /// The remote UDP address: where a received datagram came from, or where a datagram to
    /// send goes. `None` for TUN packets.
    pub addr: Option<SocketAddr>,
}

impl PacketBuf {
    /// A buffer for packets of up to `packet_capacity` bytes, with [`HEADROOM`] and
    /// [`TAILROOM`] around them.
    pub fn new(packet_capacity: usize) -> Self {
        PacketBuf {
            data: vec![0; HEADROOM + packet_capacity + TAILROOM],
            start: HEADROOM,
            end: HEADROOM,
            addr: None,
        }
    }

    /// Gives the buffer room for packets of `packet_capacity` bytes if it has less (a buffer
    /// taken out of a batch with `mem::take` is empty).
    pub fn reserve(&mut self, packet_capacity: usize) {
        let want = HEADROOM + packet_capacity + TAILROOM;
        if self.data.len() < want {
            self.data.resize(want, 0);
        }
    }

    /// The largest packet [`PacketBuf::read_area`] holds.
    pub fn packet_capacity(&self) -> usize {
        self.data.len().saturating_sub(HEADROOM + TAILROOM)
    }

    /// The packet.
    pub fn packet(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or(&[])
    }

    /// The packet, mutably.
    pub fn packet_mut(&mut self) -> &mut [u8] {
        self.data.get_mut(self.start..self.end).unwrap_or(&mut [])
    }

    /// The packet's length.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Where the packet starts in the buffer.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The whole buffer, headroom and tailroom included.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The whole buffer, for code that writes around the packet (ESP seals a packet at
    /// `start()` into the bytes before and after it).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// The area the OS reads one packet into: from [`HEADROOM`] to the tailroom.
    pub fn read_area(&mut self) -> &mut [u8] {
        let end = self.data.len().saturating_sub(TAILROOM);
        self.data.get_mut(HEADROOM..end).unwrap_or(&mut [])
    }

    /// Marks the first `len` bytes of [`PacketBuf::read_area`] as the packet (clamped to the
    /// area).
    pub fn set_read(&mut self, len: usize) {
        let len = len.min(self.packet_capacity());
        self.start = HEADROOM;
        self.end = HEADROOM + len;
    }

    /// Sets the packet to `start..end` of the buffer; false (and unchanged) when the range
    /// is not inside it.
    pub fn set_range(&mut self, start: usize, end: usize) -> bool {
        if start > end || end > self.data.len() {
            return false;
        }
        self.start = start;
        self.end = end;
        true
    }

    /// Copies `packet` in at [`HEADROOM`]; false when it does not fit.
    pub fn load(&mut self, packet: &[u8]) -> bool {
        let Some(area) = self.read_area().get_mut(..packet.len()) else {
            return false;
        };
        area.copy_from_slice(packet);
        self.set_read(packet.len());
        true
    }

    /// Grows the packet by `n` bytes at its front (for a header) and returns them; `None`
    /// when the headroom is short.
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(n)?;
        self.start = start;
        self.data.get_mut(start..start + n)
    }

    /// Drops `n` bytes from the packet's front (a header read); false when it is shorter.
    pub fn advance(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }

    /// Shortens the packet to `len` bytes (no effect when it is not longer).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.end = self.start + len;
        }
    }
}

/// A batch of packet buffers: the unit of one batched read or write.
#[derive(Debug, Clone)]
pub struct PacketBatch {
    bufs: Vec<PacketBuf>,
    len: usize,
    /// The packets an OS read fills at most.
    max: usize,
    packet_capacity: usize,
}

impl PacketBatch {
    /// A batch of `max` buffers for packets of up to `packet_capacity` bytes, allocated now.
    /// Batches that receive swapped or copied packets grow past `max` when they must (say,
    /// for multicast replication) and keep the buffers they grew by.
    pub fn new(max: usize, packet_capacity: usize) -> Self {
        PacketBatch {
            bufs: (0..max).map(|_| PacketBuf::new(packet_capacity)).collect(),
            len: 0,
            max,
            packet_capacity,
        }
    }

    /// The number of packets in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The packets an OS read fills at most.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The largest packet a buffer holds.
    pub fn packet_capacity(&self) -> usize {
        self.packet_capacity
    }

    /// Empties the batch; its buffers stay for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The packets.
    pub fn bufs(&self) -> &[PacketBuf] {
        self.bufs.get(..self.len).unwrap_or(&[])
    }

    /// The packets, mutably.
    pub fn bufs_mut(&mut self) -> &mut [PacketBuf] {
        self.bufs.get_mut(..self.len).unwrap_or(&mut [])
    }

    /// The `max` buffers an OS read fills, emptied and with full capacity, in order; the
    /// reader then calls [`PacketBuf::set_read`] on each it filled and
    /// [`PacketBatch::set_len`] with their number.
    pub fn read_slots(&mut self) -> &mut [PacketBuf] {
        self.len = 0;
        while self.bufs.len() < self.max {
            self.bufs.push(PacketBuf::new(self.packet_capacity));
        }
        let cap = self.packet_capacity;
        let slots = self.bufs.get_mut(..self.max).unwrap_or(&mut []);
        for b in slots.iter_mut() {
            b.reserve(cap);
            b.addr = None;
            b.set_read(0);
        }
        slots
    }

    /// The `max` read slots as an OS read left them (for post-processing such as
    /// splitting coalesced datagrams), without emptying them.
    pub fn read_slots_filled(&mut self) -> &mut [PacketBuf] {
        let max = self.max.min(self.bufs.len());
        self.bufs.get_mut(..max).unwrap_or(&mut [])
    }

    /// Sets the number of packets after an OS read filled the first `n` read slots.
    pub fn set_len(&mut self, n: usize) {
        self.len = n.min(self.bufs.len());
    }

    /// The next free buffer, appended to the batch (allocated only when the batch has never
    /// held this many packets), emptied.
    pub fn push_empty(&mut self) -> &mut PacketBuf {
        if self.len == self.bufs.len() {
            self.bufs.push(PacketBuf::new(self.packet_capacity));
        }
        let cap = self.packet_capacity;
        let i = self.len;
        self.len += 1;
        let b = &mut self.bufs[i];
        b.reserve(cap);
        b.addr = None;
        b.set_read(0);
        b
    }

    /// Moves `buf`'s packet into the batch by swapping buffers: `buf` gets a free buffer of
    /// the batch back (empty and with full capacity).
    pub fn push_swap(&mut self, buf: &mut PacketBuf) {
        let slot = self.push_empty();
        core::mem::swap(slot, buf);
    }

    /// Drops the last packet, if any; its buffer stays for reuse.
    pub fn pop(&mut self) -> bool {
        if self.len == 0 {
            return false;
        }
        self.len -= 1;
        true
    }

    /// Removes the last packet, if any, into `buf` by swapping (the inverse of
    /// [`PacketBatch::push_swap`]).
    pub fn pop_swap(&mut self, buf: &mut PacketBuf) -> bool {
        if self.len == 0 {
            return false;
        }
        self.len -= 1;
        core::mem::swap(&mut self.bufs[self.len], buf);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_prepend_and_advance() {
        let mut b = PacketBuf::new(100);
        assert!(b.load(&[1, 2, 3]));
        assert_eq!(b.start(), HEADROOM);
        b.prepend(4).unwrap().copy_from_slice(&[9; 4]);
        assert_eq!(b.packet(), &[9, 9, 9, 9, 1, 2, 3]);
        assert!(b.advance(4));
        assert_eq!(b.packet(), &[1, 2, 3]);
        assert!(!b.advance(4));
        assert!(b.prepend(HEADROOM + 1).is_none());
        assert!(!b.load(&[0; 101]));
        assert!(!b.set_range(10, 9));
        assert!(!b.set_range(0, HEADROOM + 100 + TAILROOM + 1));
        b.truncate(1);
        assert_eq!(b.packet(), &[1]);
    }

    #[test]
    fn swapping_keeps_the_buffer_count() {
        let mut a = PacketBatch::new(4, 64);
        let mut b = PacketBatch::new(4, 64);
        let slots = a.read_slots();
        assert_eq!(slots.len(), 4);
        slots[0].load(&[7; 10]);
        slots[1].load(&[8; 10]);
        a.set_len(2);
        for i in 0..a.len() {
            let buf = &mut a.bufs_mut()[i];
            b.push_swap(buf);
        }
        assert_eq!(b.len(), 2);
        assert_eq!(b.bufs()[1].packet(), &[8; 10]);
        // The buffers a got back are empty and usable.
        assert!(a.bufs().iter().all(PacketBuf::is_empty));
        let mut taken = PacketBuf::default();
        assert!(b.pop_swap(&mut taken));
        assert_eq!(taken.packet(), &[8; 10]);
        assert_eq!(b.len(), 1);
        b.clear();
        assert!(!b.pop_swap(&mut taken));
        // A slot emptied with mem::take regains its capacity on the next read.
        let mut c = PacketBatch::new(1, 64);
        c.read_slots();
        c.set_len(1);
        let _ = core::mem::take(&mut c.bufs_mut()[0]);
        assert_eq!(c.read_slots()[0].packet_capacity(), 64);
    }
}
