//! The TUN device through tun-rs: one blocking-free read wakes the task, then the packets
//! that are ready are read without waiting, up to the batch size.
//!
//! TUN offloads (`IFF_VNET_HDR`, `TUNSETOFFLOAD`: tun-rs `offload(true)`, `recv_multiple`
//! and `send_multiple` with a `GROTable`) fill the same batch: `recv_multiple` splits a GSO
//! super-packet into the batch's buffers at offset [`crate::batch::HEADROOM`], which leaves
//! room for the virtio-net header `send_multiple` writes in front. They are the next step.

use core::net::IpAddr;
use std::io;

use crate::batch::PacketBatch;
use crate::os::TunDevice;

/// A TUN device (no packet information header) with the tunnel address and MTU set and the
/// link up.
pub struct LinuxTun {
    dev: tun_rs::AsyncDevice,
}

impl core::fmt::Debug for LinuxTun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinuxTun")
            .field("name", &self.dev.name().ok())
            .finish_non_exhaustive()
    }
}

impl LinuxTun {
    /// Creates the device `name` with `address`/`prefix_len` and `mtu`, link up. Must run
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// The OS error (no permission, name taken).
    pub fn create(name: &str, address: IpAddr, prefix_len: u8, mtu: u16) -> io::Result<Self> {
        let builder = tun_rs::DeviceBuilder::new().name(name).mtu(mtu);
        let builder = match address {
            IpAddr::V4(a) => builder.ipv4(a, prefix_len, None),
            IpAddr::V6(a) => builder.ipv6(a, prefix_len),
        };
        Ok(LinuxTun {
            dev: builder.build_async()?,
        })
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
}

impl TunDevice for LinuxTun {
    async fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        let slots = batch.read_slots();
        let mut n = 0;
        if let Some(first) = slots.first_mut() {
            let len = self.dev.recv(first.read_area()).await?;
            first.set_read(len);
            n = 1;
        }
        while let Some(slot) = slots.get_mut(n) {
            match self.dev.try_recv(slot.read_area()) {
                Ok(len) => {
                    slot.set_read(len);
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        batch.set_len(n);
        Ok(n)
    }

    async fn send_batch(&mut self, batch: &PacketBatch) -> io::Result<usize> {
        for b in batch.bufs() {
            self.dev.send(b.packet()).await?;
        }
        Ok(batch.len())
    }
}
