//! NAT traversal (RFC 7296 section 2.23, RFC 3948): the NAT_DETECTION hashes of IKE_SA_INIT
//! and what they reveal.
//!
//! Our ESP always travels in UDP 4500: the kernel here has no ESP, and strongSwan's
//! kernel-libipsec peers always encapsulate. So by default ([`crate::UdpEncap::Forced`]) the
//! engine floats to port 4500 after IKE_SA_INIT whether or not a NAT is seen, and sends a
//! NAT_DETECTION_SOURCE_IP that cannot match (as strongSwan's `encap = yes` does) so that the
//! peer encapsulates its ESP too.

use core::net::{IpAddr, SocketAddr};

use ring::digest;

/// The NAT_DETECTION hash: `SHA-1(SPIi | SPIr | IP | Port)` (RFC 7296 section 2.23), SPIr
/// zero in the first request.
pub fn detection_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> [u8; 20] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    let mut out = [0; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The source hash of a side that forces encapsulation: the hash of the unspecified
/// address and port 0, which never matches a real sender.
pub fn fake_source_hash(spi_i: u64, spi_r: u64, local: SocketAddr) -> [u8; 20] {
    let unspecified = match local.ip() {
        IpAddr::V4(_) => IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
    };
    detection_hash(spi_i, spi_r, SocketAddr::new(unspecified, 0))
}

/// What the NAT_DETECTION payloads of a message say (RFC 7296 section 2.23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatState {
    /// Our address as the peer saw it differs from ours: we are behind a NAT (and send
    /// keepalives).
    pub local_behind: bool,
    /// The peer's source differs from what it hashed: it is behind a NAT (or forces
    /// encapsulation).
    pub remote_behind: bool,
}

impl NatState {
    /// Compares the received hashes with the addresses the message travelled between.
    /// Without any hash (a peer without NAT-T), nothing is detected.
    pub fn detect(
        spi_i: u64,
        spi_r: u64,
        local: SocketAddr,
        remote: SocketAddr,
        sources: &[&[u8]],
        destinations: &[&[u8]],
    ) -> Self {
        let remote_hash = detection_hash(spi_i, spi_r, remote);
        let local_hash = detection_hash(spi_i, spi_r, local);
        NatState {
            remote_behind: !sources.is_empty() && !sources.iter().any(|h| *h == remote_hash),
            local_behind: !destinations.is_empty()
                && !destinations.iter().any(|h| *h == local_hash),
        }
    }

    /// Whether any NAT is between the peers.
    pub fn any(&self) -> bool {
        self.local_behind || self.remote_behind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7296 section 2.23 hash, checked against the input laid out by hand and SHA-1
    /// computed over it.
    #[test]
    fn hash_layout() {
        let a: SocketAddr = "198.18.0.1:500".parse().unwrap();
        let mut input = Vec::new();
        input.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
        input.extend_from_slice(&[0; 8]);
        input.extend_from_slice(&[198, 18, 0, 1, 0x01, 0xf4]);
        let want = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
        assert_eq!(detection_hash(0x1122_3344_5566_7788, 0, a), want.as_ref());
    }

    #[test]
    fn detection() {
        let l: SocketAddr = "198.18.0.1:500".parse().unwrap();
        let r: SocketAddr = "198.18.0.2:500".parse().unwrap();
        let nat: SocketAddr = "198.19.9.9:31000".parse().unwrap();
        // The peer hashed r as its source and l as its destination.
        let src = detection_hash(1, 2, r);
        let dst = detection_hash(1, 2, l);
        assert_eq!(
            NatState::detect(1, 2, l, r, &[&src], &[&dst]),
            NatState::default()
        );
        let s = NatState::detect(1, 2, l, nat, &[&src], &[&dst]);
        assert!(s.remote_behind && !s.local_behind);
        let fake = fake_source_hash(1, 2, r);
        assert!(NatState::detect(1, 2, l, r, &[&fake], &[&dst]).remote_behind);
        assert!(!NatState::detect(1, 2, l, nat, &[], &[]).any());
    }
}
