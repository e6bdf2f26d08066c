//! The TUN device through tun-rs, with the Linux TUN offloads on (`IFF_VNET_HDR` and
//! `TUNSETOFFLOAD` with checksum, TSO and USO: tun-rs `offload(true)`), so that TCP moves
//! through the tunnel in super-packets of up to 64 KiB as it does through a NIC:
//!
//! - Read: one `read` returns a virtio-net header and a GSO super-packet, which tun-rs
//!   (`recv_multiple`) splits into MTU-sized IP packets with their headers and checksums
//!   rewritten, each at [`HEADROOM`] of its own buffer; the forwarder then seals each one
//!   into its own ESP packet (and the UDP side sends the run in one GSO `sendmsg`). A packet
//!   the kernel left to be checksummed (`VIRTIO_NET_HDR_F_NEEDS_CSUM`) gets its checksum.
//! - Write: the packets of a batch are coalesced per TCP (and, where the kernel has USO,
//!   UDP) flow by tun-rs's GRO table (`send_multiple`), each flow written once as a super-
//!   packet with a virtio-net header.
//!
//! The device's `gso_max_segs` is set to [`SEGMENTS`] (`ip link set DEV gso_max_segs`), so
//! that no super-packet has more segments than one read can split into. Where the kernel
//! refuses the offloads or the limit, the device is made without offloads and moves one
//! packet per system call ([`LinuxTun::offload`] says which).

use core::net::IpAddr;
use std::io;

use tun_rs::{GROTable, VIRTIO_NET_HDR_LEN};

use crate::batch::{HEADROOM, PacketBatch, PacketBuf};
use crate::os::linux::link;
use crate::os::{TunDevice, TunDrops};

/// The most packets one read of the device yields: tun-rs's ideal batch, and the device's
/// `gso_max_segs`.
pub const SEGMENTS: usize = tun_rs::IDEAL_BATCH_SIZE;

/// The largest read: a virtio-net header and an IP packet of up to 64 KiB (the 16-bit IPv4
/// total length, RFC 791; the kernel's legacy GSO limit).
const READ_SIZE: usize = VIRTIO_NET_HDR_LEN + 65_535;

/// Where a packet to write starts in its write buffer: the virtio-net header goes before.
const WRITE_OFFSET: usize = VIRTIO_NET_HDR_LEN;

/// The capacity of a write buffer: tun-rs coalesces into a buffer only while the result
/// fits twice the offset plus the packet, and a coalesced packet is at most 64 KiB.
const WRITE_CAPACITY: usize = 2 * WRITE_OFFSET + 65_535;

/// The write side of a device with offloads: the packets of a batch copied into buffers of
/// their own at [`WRITE_OFFSET`] (room for the virtio-net header in front, and for a whole
/// flow's payload after), and tun-rs's GRO table, which coalesces them per flow.
#[derive(Default)]
pub struct TunWrites {
    bufs: Vec<Vec<u8>>,
    gro: GROTable,
}

impl core::fmt::Debug for TunWrites {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TunWrites")
            .field("buffers", &self.bufs.len())
            .finish_non_exhaustive()
    }
}

/// Copies the packets of `batch` into `bufs` (grown as needed), each at [`WRITE_OFFSET`];
/// returns the buffers filled.
fn stage<'a>(bufs: &'a mut Vec<Vec<u8>>, batch: &PacketBatch) -> &'a mut [Vec<u8>] {
    let n = batch.len();
    while bufs.len() < n {
        bufs.push(Vec::with_capacity(WRITE_CAPACITY));
    }
    let staged = bufs.get_mut(..n).unwrap_or_default();
    for (w, b) in staged.iter_mut().zip(batch.bufs()) {
        w.clear();
        w.resize(WRITE_OFFSET, 0);
        w.extend_from_slice(b.packet());
    }
    staged
}

impl TunWrites {
    /// Empty, with tun-rs's GRO table.
    pub fn new() -> Self {
        TunWrites::default()
    }

    /// Stages `batch` and coalesces it as a write would, without writing (tun-rs's
    /// `apply_gro`, public but left out of its documentation, is what `send_multiple` runs
    /// before it writes). The packets the forwarder hands the device come from peers, so
    /// the forwarder's fuzz target runs them through this too.
    ///
    /// # Errors
    /// tun-rs's refusal of the batch (none is known for staged buffers).
    pub fn coalesce(&mut self, batch: &PacketBatch) -> io::Result<()> {
        let staged = stage(&mut self.bufs, batch);
        self.gro.apply_gro(staged, WRITE_OFFSET, true)
    }
}

/// Sets the device's `gso_max_segs` to [`SEGMENTS`].
fn limit_segments(dev: &tun_rs::AsyncDevice) -> io::Result<()> {
    let segments = u32::try_from(SEGMENTS).map_err(io::Error::other)?;
    link::set_gso_max_segs(dev.if_index()?, segments)
}

/// A buffer tun-rs splits a read into: the whole [`PacketBuf`], so that a packet written at
/// [`HEADROOM`] keeps the headroom in front of it.
#[derive(Debug, Default)]
struct Segment(PacketBuf);

impl AsRef<[u8]> for Segment {
    fn as_ref(&self) -> &[u8] {
        self.0.data()
    }
}

impl AsMut<[u8]> for Segment {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
}

/// A TUN device (no packet information header) with the tunnel address and MTU set and the
/// link up.
pub struct LinuxTun {
    dev: tun_rs::AsyncDevice,
    /// What one read returns (virtio-net header and packet), before splitting.
    raw: Vec<u8>,
    /// The packets of the last read, each at [`HEADROOM`]; `segments[next..count]` are not
    /// handed up yet.
    segments: Vec<Segment>,
    sizes: Vec<usize>,
    next: usize,
    count: usize,
    /// The capacity a segment buffer keeps (the MTU).
    segment_capacity: usize,
    writes: TunWrites,
    drops: TunDrops,
}

impl core::fmt::Debug for LinuxTun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinuxTun")
            .field("name", &self.dev.name().ok())
            .field("offload", &self.offload())
            .field("drops", &self.drops)
            .finish_non_exhaustive()
    }
}

impl LinuxTun {
    /// Creates the device `name` with `address`/`prefix_len` and `mtu`, link up, with the
    /// offloads where the kernel has them. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// The OS error (no permission, name taken).
    pub fn create(name: &str, address: IpAddr, prefix_len: u8, mtu: u16) -> io::Result<Self> {
        let build = |offload: bool| {
            let builder = tun_rs::DeviceBuilder::new()
                .name(name)
                .mtu(mtu)
                .offload(offload);
            match address {
                IpAddr::V4(a) => builder.ipv4(a, prefix_len, None),
                IpAddr::V6(a) => builder.ipv6(a, prefix_len),
            }
            .build_async()
        };
        let dev = match build(true) {
            Ok(dev) if !dev.tcp_gso() || limit_segments(&dev).is_ok() => dev,
            Ok(refused) => {
                drop(refused);
                build(false)?
            }
            Err(_) => build(false)?,
        };
        let segment_capacity = usize::from(mtu);
        Ok(LinuxTun {
            dev,
            raw: vec![0; READ_SIZE],
            segments: (0..SEGMENTS)
                .map(|_| Segment(PacketBuf::new(segment_capacity)))
                .collect(),
            sizes: vec![0; SEGMENTS],
            next: 0,
            count: 0,
            segment_capacity,
            writes: TunWrites::new(),
            drops: TunDrops::default(),
        })
    }

    /// Whether the offloads are on (reads may return super-packets, writes coalesce).
    pub fn offload(&self) -> bool {
        self.dev.tcp_gso()
    }

    /// The interface index, for routes.
    ///
    /// # Errors
    /// The OS error.
    pub fn if_index(&self) -> io::Result<u32> {
        self.dev.if_index()
    }

    /// The interface name.
    ///
    /// # Errors
    /// The OS error.
    pub fn name(&self) -> io::Result<String> {
        self.dev.name()
    }

    /// Moves the packets of the last read that are not handed up yet into `slots`, in
    /// order; returns how many. The slots' empty buffers take their place.
    fn hand_up(&mut self, slots: &mut [PacketBuf]) -> usize {
        let mut filled = 0;
        for slot in slots.iter_mut() {
            if self.next >= self.count {
                break;
            }
            let (Some(segment), Some(&size)) =
                (self.segments.get_mut(self.next), self.sizes.get(self.next))
            else {
                break;
            };
            core::mem::swap(slot, &mut segment.0);
            slot.set_read(size);
            segment.0.reserve(self.segment_capacity);
            self.next += 1;
            filled += 1;
        }
        filled
    }

    /// What one read came to: its packets, nothing more to read now, or an error to return.
    fn after_read(&mut self, read: io::Result<usize>) -> io::Result<bool> {
        match read {
            Ok(count) => {
                self.next = 0;
                self.count = count.min(self.segments.len());
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            // The device's own errors carry an OS error number; tun-rs's splitting errors
            // do not: that read is lost, the device goes on.
            Err(e) if e.raw_os_error().is_some() => Err(e),
            Err(_) => {
                self.drops.unsplit += 1;
                Ok(true)
            }
        }
    }
}

impl TunDevice for LinuxTun {
    /// Hands up what the last read left first, then waits for a read if the batch is still
    /// empty, and reads on without waiting while the batch has room. Cancel-safe: nothing
    /// is read while the future waits, and a read's packets are kept until handed up.
    async fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        let slots = batch.read_slots();
        let mut n = 0;
        loop {
            n += self.hand_up(slots.get_mut(n..).unwrap_or_default());
            if n == slots.len() {
                break;
            }
            let read = if n == 0 {
                self.dev
                    .recv_multiple(&mut self.raw, &mut self.segments, &mut self.sizes, HEADROOM)
                    .await
            } else {
                self.dev.try_recv_multiple(
                    &mut self.raw,
                    &mut self.segments,
                    &mut self.sizes,
                    HEADROOM,
                )
            };
            if !self.after_read(read)? {
                break;
            }
        }
        batch.set_len(n);
        Ok(n)
    }

    /// Copies the packets into the write buffers, which tun-rs coalesces per flow and
    /// writes with their virtio-net headers.
    async fn send_batch(&mut self, batch: &PacketBatch) -> io::Result<usize> {
        let TunWrites { bufs, gro } = &mut self.writes;
        let staged = stage(bufs, batch);
        self.dev.send_multiple(gro, staged, WRITE_OFFSET).await?;
        Ok(batch.len())
    }

    fn drops(&self) -> TunDrops {
        self.drops
    }
}
